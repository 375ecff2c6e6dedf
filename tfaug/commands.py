"""The jobs behind each ``tfaug`` subcommand: argument namespace in, library calls, a short printed summary out."""
from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path

import numpy as np

from tfaug.errors import TfaugError


def _runtime(args, base=None):
    """The run's ``RuntimeConfig`` from the runtime flags (over ``base``), checked, with its devices made before any
    TensorFlow work (a mirrored run on a CPU splits it into logical devices, which TensorFlow allows only before it
    starts)."""
    from tfaug.cli_args import runtime_from_args
    from tfaug.training.distribute import configure_devices, is_chief

    runtime = runtime_from_args(args, base)
    if runtime.strategy == "multiworker":
        if not os.environ.get("TF_CONFIG"):
            raise TfaugError("--strategy multiworker needs the TF_CONFIG environment variable (the cluster's "
                             "addresses and this worker's task); see the README, 'Several GPUs and machines'")
        is_chief()  # parses TF_CONFIG: malformed JSON is an error now, not after the data is loaded
    configure_devices(runtime)
    return runtime


def _load_split(args):
    """Load --dataset and draw the leakage-safe split (test held out first, then the training draw); images a
    ``folder:`` manifest marks synthetic (``tfaug fill``) never go to the test set."""
    from tfaug.data.experiment import draw_experiment
    from tfaug.data.sources import load_dataset

    if (args.minority is None) != (args.keep is None):
        raise TfaugError("--minority and --keep go together")
    ds = load_dataset(args.dataset, data_dir=args.data_dir, image_size=getattr(args, "image_size", None),
                      channels=getattr(args, "channels", None))
    if args.minority is not None:  # a name or an id; from here on the id
        from tfaug.utils.classes import resolve_class

        args.minority = resolve_class(args.minority, ds.class_names, "--minority", args.dataset)
    split = draw_experiment(ds.labels, test_fraction=args.test_fraction, per_class=args.per_class,
                            minority=args.minority, keep=args.keep, seed=args.seed, synthetic=ds.synthetic)
    return ds, split


def _data_info(args, split) -> dict:
    return {"spec": args.dataset, "per_class": args.per_class, "minority": args.minority, "keep": args.keep,
            "test_fraction": args.test_fraction, "split_seed": args.seed, "draw_seed": args.seed,
            "image_size": getattr(args, "image_size", None), "channels": getattr(args, "channels", None),
            "train_indices": split.train.tolist()}


def demo(args) -> int:
    from tfaug.studies.demo import DemoConfig, run_demo
    from tfaug.studies.report import markdown_table

    cfg = DemoConfig.quick() if args.quick else DemoConfig()
    changes = {"dataset": args.dataset, "per_class": args.per_class, "seed": args.seed,
               "test_fraction": args.test_fraction}
    if not args.quick:
        changes["repeats"] = args.repeats
    cfg = dataclasses.replace(cfg, **changes)
    if args.gan_steps:
        cfg = dataclasses.replace(cfg, gan=dataclasses.replace(cfg.gan, steps=args.gan_steps))
    if args.classifier_steps:
        cfg = dataclasses.replace(cfg, classifier=dataclasses.replace(cfg.classifier, steps=args.classifier_steps))
    res = run_demo(cfg, args.out, saved_models=None if args.no_export else args.saved_models, data_dir=args.data_dir,
                   progress=not args.no_progress)
    print(markdown_table(res.summary, reference="classic"))
    print(f"report: {res.out / 'report.md'}")
    if res.export_path:
        print(f"generator exported to {res.export_path}")
    return 0


def train_gan(args) -> int:
    from tfaug.config import GANConfig, preset, replace
    from tfaug.training.gan_runner import stored_runtime, train_gan as run

    # A resumed run keeps the precision it was trained in unless --mixed-precision says otherwise.
    runtime = _runtime(args, stored_runtime(args.out, precision_only=True) if args.resume else None)
    ds, split = _load_split(args)
    cfg = preset(args.preset) if args.preset else GANConfig()
    n = len(split.train)
    batch = args.batch_size or cfg.batch_size
    steps = args.steps
    if args.epochs is not None:
        if args.steps is not None:
            raise TfaugError("give --steps or --epochs, not both")
        steps = max(1, math.ceil(args.epochs * n / min(batch, n)))
    options = dict(cfg.options)
    for key, value in getattr(args, "option", None) or []:
        options[key] = value
    diffaugment = getattr(args, "diffaugment", None)
    if diffaugment is not None and diffaugment.strip().lower() == "none":
        diffaugment = ""
    model = args.model or (cfg.model if args.preset else "cdcgan")
    cfg = replace(cfg, model=model, steps=steps, batch_size=args.batch_size, seed=args.seed, options=options,
                  diffaugment=diffaugment, ada_target=getattr(args, "ada_target", None),
                  r1=getattr(args, "r1", None), ema_decay=getattr(args, "ema_decay", None),
                  best_every=getattr(args, "best_every", None),
                  class_balanced=True if getattr(args, "class_balanced", False) else None)
    run_ = run(ds.images[split.train], ds.labels[split.train], class_names=ds.class_names, cfg=cfg, out=args.out,
               data_info=_data_info(args, split), resume=args.resume, progress=not args.no_progress, runtime=runtime)
    last = run_.history[-1] if run_.history else {}
    losses = ", ".join(f"{k} {v:.3f}" for k, v in last.items() if k not in ("step", "time_s"))
    print(f"trained {cfg.model} on {n} images for {run_.step} steps -> {run_.run_dir}" + (f" ({losses})" if losses else ""))
    return 0


def generate(args) -> int:
    from tfaug.synthesis.loader import load_generator
    from tfaug.synthesis.sample import write_samples

    truncation = getattr(args, "truncation", None)
    if truncation is not None and not 0.0 <= truncation <= 1.0:  # before loading anything; NaN fails too
        raise TfaugError(f"--truncation must be a psi in [0, 1] (1 = none), got {truncation:g}")
    out = Path(args.out)
    if out.is_dir() and any(out.iterdir()) and not getattr(args, "overwrite", False):
        raise TfaugError(f"--out {out} is not empty; choose a new directory or pass --overwrite to write into it")
    if out.exists() and not out.is_dir():
        raise TfaugError(f"--out {out} is a file, not a directory; choose a directory")
    gen = load_generator(args.source)
    from tfaug.utils.classes import resolve_class

    names = list(gen.class_names) if gen.class_names else [str(i) for i in range(gen.num_classes)]
    class_id = resolve_class(args.class_id, names, "--class-id", "the generator")
    paths = write_samples(gen, class_id, args.n, args.seed, args.out, truncation=truncation)
    psi = f" with truncation {truncation:g}" if truncation is not None else ""
    print(f"wrote {args.n} images of class {class_id} ({names[class_id]}){psi} and grid.png to {args.out}")
    return 0 if paths else 1


def export(args) -> int:
    from tfaug.export.savedmodel import export_run

    version = args.version
    if version != "auto":
        try:
            version = int(version)
        except ValueError:
            raise TfaugError(f"--version must be an integer or 'auto', got {args.version!r}") from None
        if version < 1:
            raise TfaugError("--version must be >= 1")
    path = export_run(args.run_dir, name=args.name, version=version, base=args.base, overwrite=args.overwrite,
                      checkpoint=getattr(args, "checkpoint", "last"))
    print(f"exported {args.run_dir} -> {path}")
    return 0


def _choice_text(choice) -> str:
    if choice.protocol == "default":
        return "a class has fewer than 2 training images, so nothing could be held out to validate it"
    scores = ", ".join(f"{k} {v:.3f}" for k, v in choice.scores.items())
    return f"validation accuracy {scores}"


def train_classifier(args) -> int:
    from tfaug.augment.kinds import is_auto
    from tfaug.config import FEWSHOT, ClassifierConfig
    from tfaug.training.augment_choice import choose_augment
    from tfaug.synthesis.strategies import Counts, Draw, parse
    from tfaug.training.classifier import save_classifier, train_classifier as run
    from tfaug.training.mixing import mix_kwargs
    from tfaug.training.distribute import is_chief
    from tfaug.utils.io import write_json

    runtime = _runtime(args)
    ds, split = _load_split(args)
    text = args.augment if args.augment != "none" else "baseline"
    if not args.synthetic:
        parse(text)  # the --augment text alone: its own errors name it
    text = _with_external(text, args)
    generator = _checked_generator(args.synthetic, ds, split, args.dataset) if args.synthetic else None
    strategy = parse(text, generators=(EXTERNAL,))
    out = Path(args.out)
    draw = Draw(x=ds.images[split.train], y=ds.labels[split.train], num_classes=ds.num_classes, seed=args.seed)
    cfg = FEWSHOT if args.classifier == "fewshot" else ClassifierConfig(name=args.classifier)
    cfg = dataclasses.replace(cfg, seed=args.seed, batch_size=args.batch_size or cfg.batch_size)
    if args.steps:
        cfg = dataclasses.replace(cfg, steps=args.steps, min_epochs=0.0, max_steps=0)
    chosen: list = []

    def choose():  # chosen once, on validation splits of the training draw, never on the test set
        if not chosen:
            c = choose_augment(draw.x, draw.y, num_classes=ds.num_classes, cfg=cfg,
                               progress="choosing the classic augmentation" if not args.no_progress else False)
            print(f"classic augmentation for this draw: {c.spec} (data kind {c.kind}; {_choice_text(c)})")
            chosen.append(c)
        return chosen[0]

    def teacher_augment() -> str:  # the control's augmentation: the strategy's own preset, else the draw's choice
        a = strategy.augment
        return a if a and not is_auto(a) else choose().spec

    resources = _CommandResources(generator, draw, cfg, runtime, teacher_augment, progress=not args.no_progress)
    mix = strategy.build(draw, Counts(kind="imbalance" if args.minority is not None else "per_class"),
                         resources=resources)
    per_class = np.bincount(mix.labels[mix.synthetic], minlength=ds.num_classes).tolist() if generator else None
    choice = None
    if is_auto(mix.augment):
        choice = choose()
        mix.augment = None if choice.spec == "none" else choice.spec
    res = run(mix.images, mix.labels, num_classes=ds.num_classes, cfg=cfg, x_test=ds.images[split.test],
              y_test=ds.labels[split.test], augment=mix.augment, minority=args.minority, progress=not args.no_progress,
              runtime=runtime, log_dir=out / "tensorboard" if is_chief() else None, budget_images=mix.n_real,
              **mix_kwargs(mix, ds.num_classes))
    if not is_chief():  # every worker of a cluster trains the same model; only the chief writes it
        print(f"worker done: accuracy {res.metrics['accuracy']:.4f}; the chief writes {out}")
        return 0
    write_json(out / "config.json", {"kind": "classifier", "classifier": dataclasses.asdict(cfg),
                                     "data": {**_data_info(args, split), "class_names": list(ds.class_names),
                                              "image_shape": list(ds.image_shape)},
                                     "augment": args.augment, "augment_used": mix.augment or "none",
                                     "augment_choice": dataclasses.asdict(choice) if choice else None,
                                     "steps": res.steps, "synthetic": args.synthetic, "ratio": args.ratio,
                                     "n_real": mix.n_real, "n_duplicates": mix.n_duplicates,
                                     "n_synthetic": mix.n_synthetic, "synthetic_per_class": per_class,
                                     "runtime": dataclasses.asdict(runtime)})
    write_json(out / "metrics.json", res.metrics)
    save_classifier(res.model, out / "classifier.keras")
    m = res.metrics
    print(f"accuracy {m['accuracy']:.4f}, macro-F1 {m['macro_f1']:.4f} on {m['n']} real test images "
          f"(trained on {mix.n_real} real + {mix.n_duplicates} duplicated + {mix.n_synthetic} generated) -> {out}")
    if m.get("degenerate"):
        print("warning: the classifier predicts a single class for every test image (degenerate)")
    if args.export:
        from tfaug.export.savedmodel import export_classifier

        path = export_classifier(res.model, metadata={"class_names": list(ds.class_names), "dataset": args.dataset,
                                                      "metrics": m}, name=args.export, version="auto")
        print(f"classifier exported to {path}")
    return 0


EXTERNAL = "external"  # the strategy block name of a generator given by path (--synthetic)


def _with_external(text: str, args) -> str:
    """``text`` with its generator blocks (an alias such as ``recommended`` expanded) served by ``--synthetic``:
    each zoo-model block becomes ``external`` (``--ratio`` replaces its ratio); without one, ``--synthetic`` adds
    ``+external[:R]``. Without R the shared rule applies (an imbalanced draw is topped up to its majority)."""
    from tfaug.synthesis.strategies import model_names
    from tfaug.synthesis.strategies.base import expand_aliases

    parts = expand_aliases(text)
    models = set(model_names())
    gens = [p for p in parts if p.partition(":")[0] in models]
    ratio = f":{args.ratio!r}" if args.ratio is not None else None
    if gens and not args.synthetic:
        raise TfaugError(f"{args.augment!r} adds generated images ({', '.join(gens)}); pass --synthetic "
                         "RUN_DIR_OR_SAVEDMODEL, a trained generator, to supply them")
    if not args.synthetic:
        return text
    if not gens:
        return text + f"+{EXTERNAL}" + (ratio or "")
    out = []
    for p in parts:
        head, sep, arg = p.partition(":")
        out.append(EXTERNAL + (ratio if ratio is not None else sep + arg) if head in models else p)
    return "+".join(out)


class _CommandResources:
    """Strategy resources of ``train-classifier``: the generator loaded from ``--synthetic`` and, for ``soft`` and
    ``filter:teacher``, the teacher: the control classifier (this run's recipe with the strategy's classic preset,
    or the draw's chosen one) trained on the real draw, once, as a study trains it per draw."""

    def __init__(self, generator, draw, cfg, runtime, augment, progress: bool = False):
        self._generator, self._draw, self._cfg, self._runtime = generator, draw, cfg, runtime
        self._augment, self._progress, self._teacher = augment, progress, None

    def generator(self, model: str):
        return self._generator

    def teacher_fn(self):
        """images float32 [-1, 1] [n, H, W, C] -> the teacher's softmax probabilities float32 [n, K]."""
        if self._teacher is None:
            from tfaug.training.classifier import train_classifier

            spec = self._augment()
            print(f"training the teacher (the control: {spec} on the {len(self._draw.y)} real images)")
            self._teacher = train_classifier(
                self._draw.x, self._draw.y, num_classes=self._draw.num_classes, cfg=self._cfg,
                augment=None if spec == "none" else spec, runtime=self._runtime,
                progress="teacher" if self._progress else False).model
        from tfaug.training.classifier import predict_probabilities

        model, k = self._teacher, self._draw.num_classes
        return lambda x: predict_probabilities(model, x, k)


def _checked_generator(source, ds, split, spec):
    """Load a generator and refuse it when it trained on this run's test images (same dataset)."""
    from tfaug.data.experiment import check_no_leakage
    from tfaug.synthesis.loader import load_generator

    gen = load_generator(source)
    if tuple(gen.image_shape) != tuple(ds.image_shape):
        raise TfaugError(f"the generator makes {tuple(gen.image_shape)} images but {spec} has {tuple(ds.image_shape)}")
    if gen.num_classes != ds.num_classes:
        raise TfaugError(f"the generator has {gen.num_classes} classes but {spec} has {ds.num_classes}")
    meta = getattr(gen, "metadata", None) or {}
    data = (meta.get("config") or meta.get("training_config") or {}).get("data", {})
    from tfaug.utils.io import portable_text

    # Exported metadata keeps only a path's last component, so specs are compared in that form.
    if data.get("spec") and portable_text(data["spec"]) == portable_text(spec) and "train_indices" in data:
        check_no_leakage(np.asarray(data["train_indices"]), split.test)
    else:
        print("note: cannot verify that the generator never saw this test set (different or unknown training data)")
    return gen
