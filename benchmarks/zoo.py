"""Train every zoo model on 100 MNIST images per class for a fixed step budget and compare them (not a test).

For each model (``tfaug.models.zoo``): wall time (model build + ``prepare`` + training loop), training images/s
(steps x batch / seconds between the first and the last of ten history records, so the one-off tracing of the
train step is left out), and class consistency: the share of generated images (``--eval-per-class``
per class, fixed seeds) that a held-out classifier assigns to the requested class. The classifier (``small_cnn``)
is trained on real images that are NOT among the generators' training images, and its accuracy on a third,
disjoint set of real images is printed so the consistency figures can be trusted. Unconditional models
(``dcgan``, ``vae``) ignore the class, so their consistency is near chance by design.

Prints a Markdown table and writes it, with the command and machine, to ``--out``.

    .venv/bin/python benchmarks/zoo.py --quick --out /tmp/zoo_quick.md            # smoke run, seconds per model
    .venv/bin/python benchmarks/zoo.py --out benchmarks/results/zoo.md           # the full budget
    .venv/bin/python benchmarks/zoo.py --models cdcgan,acgan --steps 500 --out /tmp/zoo.md
    .venv/bin/python benchmarks/zoo.py --models cdcgan --precisions off,bf16 --gan-seeds 0,1 --out /tmp/bf16.md

``--precisions`` trains each model once per ``RuntimeConfig.mixed_precision`` (off = float32, bf16, fp16) and
``--gan-seeds`` once per GAN seed (the data split and the held-out classifier keep ``--seed``), so precisions are
compared against the seed-to-seed spread.
"""
from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist10k.npz"
UNCONDITIONAL = ("dcgan", "vae")
# Default budget: the step count at which cdcgan reached >= 80% consistency on 100 MNIST images per class (see
# tfaug.models.cgan); wgan-gp steps cost n_critic critic updates each, so it takes several times longer.
DEFAULT_STEPS = 1500


def _split(labels: np.ndarray, per_class: int, clf_per_class: int, test_per_class: int, seed: int):
    """Disjoint per-class draws: generator training set, classifier training set, classifier test set."""
    rng = np.random.default_rng(seed)
    gen, clf, test = [], [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        need = per_class + clf_per_class + test_per_class
        if len(idx) < need:
            raise SystemExit(f"class {c} has {len(idx)} images, the benchmark needs {need}")
        gen.append(idx[:per_class])
        clf.append(idx[per_class:per_class + clf_per_class])
        test.append(idx[per_class + clf_per_class:need])
    return tuple(np.sort(np.concatenate(a)) for a in (gen, clf, test))


def _machine() -> str:
    import tensorflow as tf

    from tfaug.utils.hardware import machine_summary

    hw = machine_summary()
    gpu = "GPU" if tf.config.list_physical_devices("GPU") else "no GPU"
    load = " ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return (f"{os.cpu_count()} CPU cores ({hw['cpu_model'] or platform.machine()}; flags: "
            f"{' '.join(hw['cpu_flags']) or 'none of note'}), {gpu}, TF {tf.__version__}; load average (1/5/15 min) "
            f"{load}")


def _row(name, cfg, images, labels, class_names, classifier, eval_per_class, run_root, progress, precision="off"):
    from tfaug.config import RuntimeConfig
    from tfaug.training.classifier import predict_classes
    from tfaug.training.gan_runner import train_gan

    t0 = time.perf_counter()
    run = train_gan(images, labels, class_names=class_names, cfg=cfg, out=run_root / f"{name}-{precision}-{cfg.seed}",
                    progress=progress, log_every=max(1, cfg.steps // 10),
                    runtime=RuntimeConfig(mixed_precision=precision))
    wall = time.perf_counter() - t0
    # Throughput from the first to the last history record: excludes the first interval, which holds the
    # one-off tf.function tracing of the train step.
    h = run.history
    span = (h[-1]["time_s"] - h[0]["time_s"], h[-1]["step"] - h[0]["step"]) if len(h) >= 2 else (float("nan"), 0)
    k = len(class_names)
    ids = np.repeat(np.arange(k, dtype=np.int32), eval_per_class)
    seeds = np.arange(len(ids), dtype=np.int64) + 10_000
    pred = predict_classes(classifier, run.model.sample(ids, seeds))
    per_class = [float(np.mean(pred[ids == c] == c)) for c in range(k)]
    return {"model": name, "precision": precision, "seed": cfg.seed, "steps": run.step, "batch": min(cfg.batch_size, len(images)), "wall_s": wall,
            "images_per_s": span[1] * min(cfg.batch_size, len(images)) / span[0] if span[0] > 0 else float("nan"),
            "consistency": float(np.mean(pred == ids)), "worst_class": float(min(per_class)),
            "conditional": name not in UNCONDITIONAL}


def _table(rows) -> str:
    lines = ["| model | precision | GAN seed | steps | batch | wall time (s) | training images/s | class consistency "
             "| worst class |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['model']} | {r.get('precision', '-')} | - | - | - | - | - | - | {r['error']} |")
            continue
        note = "" if r["conditional"] else " (unconditional)"
        lines.append(f"| {r['model']} | {r['precision']} | {r['seed']} | {r['steps']} | {r['batch']} | {r['wall_s']:.1f} | {r['images_per_s']:.0f} | "
                     f"{r['consistency']:.1%}{note} | {r['worst_class']:.1%} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default=f"npz:{MNIST}", help="dataset spec (default the shared MNIST sample)")
    p.add_argument("--models", default=None, help="comma-separated zoo names (default: all)")
    p.add_argument("--steps", type=int, default=None, help=f"steps per model (default {DEFAULT_STEPS}; --quick 20)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--width", type=int, default=32, help="GANConfig.width (default 32; --quick 8)")
    p.add_argument("--per-class", type=int, default=100, help="generator training images per class (default 100)")
    p.add_argument("--eval-per-class", type=int, default=100, help="generated images per class scored (default 100)")
    p.add_argument("--classifier-steps", type=int, default=None, help="held-out classifier steps (default 1500)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="smoke run: tiny budget everywhere")
    p.add_argument("--runs", default=None, help="keep run directories here (default: a temporary directory)")
    p.add_argument("--progress", action="store_true", help="show progress bars")
    p.add_argument("--diffaugment", default=None, help="DiffAugment policies for every model (default: GANConfig's)")
    p.add_argument("--option", action="append", default=[], metavar="MODEL:KEY=VALUE",
                   help="a model-specific option for one model, e.g. wgan-gp:n_critic=2 (repeatable)")
    p.add_argument("--precisions", default="off",
                   help="comma-separated mixed precisions to train each model in: off (float32), bf16, fp16")
    p.add_argument("--gan-seeds", default=None, help="comma-separated GAN seeds (default: --seed)")
    p.add_argument("--threads", type=int, default=None, help="TensorFlow intra- and inter-op threads (default all)")
    p.add_argument("--out", default=None, help="write the Markdown table (with command and machine) here")
    args = p.parse_args(argv)
    options: dict[str, dict[str, str]] = {}
    for item in args.option:
        model, sep, kv = item.partition(":")
        key, eq, value = kv.partition("=")
        if not sep or not eq or not key:
            p.error(f"--option expects MODEL:KEY=VALUE, got {item!r}")
        options.setdefault(model, {})[key] = value

    if args.threads:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    from tfaug.config import ClassifierConfig, GANConfig, precision_name
    from tfaug.data.sources import load_dataset
    from tfaug.models.zoo import model_names
    from tfaug.training.classifier import predict_classes, train_classifier
    from tfaug.utils.io import atomic_write_text

    names = [n.strip() for n in args.models.split(",")] if args.models else list(model_names())
    unknown = [n for n in names if n not in model_names()]
    if unknown:
        p.error(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(model_names())}")
    precisions = [precision_name(v) for v in args.precisions.split(",") if v.strip()]
    gan_seeds = [int(v) for v in args.gan_seeds.split(",")] if args.gan_seeds else [args.seed]
    steps = args.steps or (20 if args.quick else DEFAULT_STEPS)
    width = 8 if args.quick and args.width == 32 else args.width
    per_class = 20 if args.quick and args.per_class == 100 else args.per_class
    eval_per_class = 10 if args.quick and args.eval_per_class == 100 else args.eval_per_class
    clf_steps = args.classifier_steps or (100 if args.quick else 1500)

    ds = load_dataset(args.dataset)
    clf_n, test_n = (100, 50) if args.quick else (300, 100)
    gen_idx, clf_idx, test_idx = _split(ds.labels, per_class, clf_n, test_n, args.seed)
    clf = train_classifier(ds.images[clf_idx], ds.labels[clf_idx], num_classes=ds.num_classes,
                           cfg=ClassifierConfig(steps=clf_steps, seed=args.seed), x_test=ds.images[test_idx],
                           y_test=ds.labels[test_idx])
    acc = clf.metrics["accuracy"]
    print(f"held-out classifier: small_cnn, {clf_steps} steps on {len(clf_idx)} real images not seen by the "
          f"generators; accuracy {acc:.1%} on {len(test_idx)} other real images")
    assert float(np.mean(predict_classes(clf.model, ds.images[test_idx]) == ds.labels[test_idx])) == acc

    rows = []
    with tempfile.TemporaryDirectory(prefix="tfaug-zoo-") as tmp:
        root = Path(args.runs) if args.runs else Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        for name, precision, gan_seed in [(n, p, s) for n in names for s in gan_seeds for p in precisions]:
            cfg = GANConfig(model=name, steps=steps, batch_size=args.batch_size, width=width, seed=gan_seed,
                            sample_every=0, checkpoint_every=0, options=options.get(name, {}),
                            **({"diffaugment": args.diffaugment} if args.diffaugment is not None else {}))
            try:
                rows.append(_row(name, cfg, ds.images[gen_idx], ds.labels[gen_idx], ds.class_names, clf.model,
                                 eval_per_class, root, args.progress, precision))
            except Exception as exc:  # a benchmark reports a broken model and carries on with the others
                traceback.print_exc(file=sys.stderr)
                rows.append({"model": name, "precision": precision,
                             "error": f"failed: {type(exc).__name__}: {str(exc)[:80]}"})
            print(_table(rows[-1:]).splitlines()[-1], flush=True)

    table = _table(rows)
    print()
    print(table)
    if args.out:
        command = "python benchmarks/zoo.py " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
        text = (f"# Zoo benchmark\n\nCommand: `{command}`\n\nMachine: {_machine()}\n\n"
                f"Data: {args.dataset}, {per_class} training images per class ({len(gen_idx)} in all); "
                f"GANConfig defaults with steps={steps}, batch_size={args.batch_size}, width={width}, "
                f"GAN seeds {gan_seeds}, precisions {precisions}, split/classifier seed={args.seed}, diffaugment={args.diffaugment if args.diffaugment is not None else GANConfig().diffaugment!r}; model options: {options or 'none'}.\n\nClass consistency: share of {eval_per_class} generated images per class that "
                f"a held-out small_cnn ({clf_steps} steps on {len(clf_idx)} real images outside the generators' "
                f"training set; accuracy {acc:.1%} on {len(test_idx)} further real images) assigns to the requested "
                f"class. Unconditional models ignore the class (chance is {1 / ds.num_classes:.0%}).\n\n"
                f"Wall time: model build + prepare + training loop; images/s: steps x batch between the first and last "
                f"of ten history records (leaves out the one-off tracing).\n\n"
                f"{table}\n")
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.out, text)
        print(f"\nwritten to {args.out}")
    return 0 if all("error" not in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
