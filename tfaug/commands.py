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
    ds = load_dataset(args.dataset, data_dir=args.data_dir)
    if args.minority is not None and args.minority >= ds.num_classes:
        raise TfaugError(f"--minority {args.minority} is not a class of {args.dataset} (classes 0-{ds.num_classes - 1})")
    split = draw_experiment(ds.labels, test_fraction=args.test_fraction, per_class=args.per_class,
                            minority=args.minority, keep=args.keep, seed=args.seed, synthetic=ds.synthetic)
    return ds, split


def _data_info(args, split) -> dict:
    return {"spec": args.dataset, "per_class": args.per_class, "minority": args.minority, "keep": args.keep,
            "test_fraction": args.test_fraction, "split_seed": args.seed, "draw_seed": args.seed,
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
                  best_every=getattr(args, "best_every", None))
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
    gen = load_generator(args.source)
    if args.class_id >= gen.num_classes:
        raise TfaugError(f"--class-id {args.class_id} is out of range: the generator has classes 0-{gen.num_classes - 1}")
    paths = write_samples(gen, args.class_id, args.n, args.seed, args.out, truncation=truncation)
    name = gen.class_names[args.class_id] if gen.class_names else str(args.class_id)
    psi = f" with truncation {truncation:g}" if truncation is not None else ""
    print(f"wrote {args.n} images of class {args.class_id} ({name}){psi} and grid.png to {args.out}")
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


def train_classifier(args) -> int:
    from tfaug.config import ClassifierConfig
    from tfaug.studies.strategies import build_mix, parse_strategy
    from tfaug.training.classifier import save_classifier, train_classifier as run
    from tfaug.training.distribute import is_chief
    from tfaug.utils.io import write_json

    runtime = _runtime(args)
    ds, split = _load_split(args)
    base = parse_strategy(args.augment if args.augment != "none" else "baseline")
    generator = None
    if args.synthetic:
        generator = _checked_generator(args.synthetic, ds, split, args.dataset)
    strategy = dataclasses.replace(base, generator="external" if generator else None, ratio=args.ratio)
    out = Path(args.out)
    mix = build_mix(strategy, ds.images[split.train], ds.labels[split.train], seed=args.seed,
                    generator_fn=(lambda: generator) if generator else None)
    cfg = ClassifierConfig(name=args.classifier, steps=args.steps, batch_size=args.batch_size, seed=args.seed)
    res = run(mix.images, mix.labels, num_classes=ds.num_classes, cfg=cfg, x_test=ds.images[split.test],
              y_test=ds.labels[split.test], augment=mix.augment, minority=args.minority, progress=not args.no_progress,
              runtime=runtime)
    if not is_chief():  # every worker of a cluster trains the same model; only the chief writes it
        print(f"worker done: accuracy {res.metrics['accuracy']:.4f}; the chief writes {out}")
        return 0
    write_json(out / "config.json", {"kind": "classifier", "classifier": dataclasses.asdict(cfg),
                                     "data": {**_data_info(args, split), "class_names": list(ds.class_names),
                                              "image_shape": list(ds.image_shape)},
                                     "augment": args.augment, "synthetic": args.synthetic, "ratio": args.ratio,
                                     "n_real": mix.n_real, "n_duplicates": mix.n_duplicates,
                                     "n_synthetic": mix.n_synthetic, "runtime": dataclasses.asdict(runtime)})
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
    if data.get("spec") == spec and "train_indices" in data:
        check_no_leakage(np.asarray(data["train_indices"]), split.test)
    else:
        print("note: cannot verify that the generator never saw this test set (different or unknown training data)")
    return gen
