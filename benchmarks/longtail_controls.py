"""Long-tail controls on MNIST (issue 17): plain cross-entropy against the class-balanced loss (Cui et al. 2019), the
logit-adjusted loss and its post-hoc variant (Menon et al. 2021) and class-balanced sampling. Not a test.

Protocol: ``npz:../shared/data/mnist10k.npz``; a stratified 30 % real test set held out first (seed 0, balanced, the
same for every cell); from the rest, per seed s (draw and classifier seed):

* ``exponential,ratio=R``: ``tfaug.data.subsets.long_tail_subset`` with head count ``--n-max`` (class c keeps
  ``floor(n_max * R^(-c/9))``);
* ``minority=4,keep=12``: ``--n-max`` images of every digit, 12 of digit 4 (``subset_draw``).

Each control trains ``tfaug.training.classifier.train_classifier`` with the same ClassifierConfig (``--steps``,
default small_cnn) and is scored on the test set: accuracy, balanced accuracy, minority F1/recall (the extreme case),
head / middle / tail accuracy (thirds of the classes by training count). Mean ± 95 % CI (t) over the seeds.

    python benchmarks/longtail_controls.py --seeds 3 --out benchmarks/results/longtail_controls.md
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CONTROLS = {  # name -> train_classifier keyword arguments (class weights filled in per draw)
    "plain": {},
    "reweight:0.999": {"beta": 0.999},
    "logit-adjust": {"logit_adjust_tau": 1.0},
    "logit-adjust:posthoc": {"logit_adjust_tau": 1.0, "posthoc": True},
    "balanced": {"balanced": True},
}
METRICS = ("accuracy", "balanced_accuracy", "minority_f1", "minority_recall", "head_accuracy", "middle_accuracy",
           "tail_accuracy")


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="npz:../shared/data/mnist10k.npz")
    p.add_argument("--ratios", default="100", help="comma-separated exponential ratios")
    p.add_argument("--n-max", type=int, default=400)
    p.add_argument("--no-extreme", action="store_true", help="skip the 12-against-n_max case")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--controls", default=",".join(CONTROLS))
    p.add_argument("--out", default="benchmarks/results/longtail_controls.md")
    args = p.parse_args(argv)

    from tfaug.config import ClassifierConfig
    from tfaug.data.sources import load_dataset
    from tfaug.data.subsets import long_tail_subset, stratified_split, subset_draw
    from tfaug.utils.classification import classification_metrics
    from tfaug.training.classifier import predict_classes, train_classifier
    from tfaug.training.longtail import class_counts, effective_number_weights

    ds = load_dataset(args.dataset)
    y, k = ds.labels.astype(np.int64), ds.num_classes
    rest, _, test = stratified_split(y, test=0.3, seed=0)
    settings = [(f"exponential,ratio={r:g}", float(r)) for r in map(float, args.ratios.split(",")) if r]
    if not args.no_extreme:
        settings.append(("minority=4,keep=12", None))
    controls = [c for c in args.controls.split(",") if c]
    rows, t_start = [], time.perf_counter()
    for name, ratio in settings:
        for seed in range(args.seeds):
            if ratio is not None:
                draw = rest[long_tail_subset(y[rest], ratio, n_max=args.n_max, seed=seed, num_classes=k)]
                minority = None
            else:
                draw = rest[subset_draw(y[rest], per_class=args.n_max, minority=[4], keep=12, seed=seed)]
                minority = 4
            counts = class_counts(y[draw], k)
            for control in controls:
                kw = dict(CONTROLS[control])
                if "beta" in kw:
                    kw["class_weights"] = effective_number_weights(counts, kw.pop("beta"))
                cfg = ClassifierConfig(steps=args.steps, seed=seed)
                t0 = time.perf_counter()
                res = train_classifier(ds.images[draw], y[draw], num_classes=k, cfg=cfg, **kw)
                pred = predict_classes(res.model, ds.images[test])
                m = classification_metrics(y[test], pred, k, minority=minority,
                                           train_counts=counts if ratio is not None else None)
                row = {"setting": name, "control": control, "seed": seed, "n_train": int(len(draw)),
                       "seconds": round(time.perf_counter() - t0, 1), **{x: m.get(x) for x in METRICS}}
                rows.append(row)
                print(row, flush=True)
                _write(args, argv, settings, controls, rows, time.perf_counter() - t_start)  # partial results survive
    return 0


def _write(args, argv, settings, controls, rows, seconds: float) -> None:
    """The Markdown table (mean ± 95 % CI over the seeds finished so far) and the rows as JSON."""
    from bench_report import command_line, write_report

    from tfaug.metrics.stats import mean_ci

    done = sorted({r["seed"] for r in rows})
    lines = [f"# Long-tail controls on MNIST ({len(done)} of {args.seeds} seeds done)", "",
             f"Command: `{command_line('longtail_controls.py', argv)}`  ",
             f"Machine: {_cpu()}, {os.cpu_count()} cores visible (shared with other jobs), one TensorFlow thread; "
             f"wall time so far {seconds:.0f} s. Classifier: ClassifierConfig(steps={args.steps}) defaults "
             "(small_cnn, Adam, batch 32). Test: 30 % of mnist10k, stratified, the same for every cell. Mean ± 95 % CI "
             "(t) over seeds; head / middle / tail = classes 0-3 / 4-6 / 7-9 by training count.", ""]
    for name, _ in settings:
        sub = [r for r in rows if r["setting"] == name]
        if not sub:
            continue
        cols = [x for x in METRICS if any(r[x] is not None for r in sub)]
        lines += [f"## {name} (n_train {sub[0]['n_train']})", "",
                  "| control | " + " | ".join(cols) + " | s/run |", "|---|" + "---|" * (len(cols) + 1)]
        for control in controls:
            rs = [r for r in sub if r["control"] == control]
            if not rs:
                continue
            cells = []
            for x in cols:
                mean, half = mean_ci([r[x] for r in rs])
                cells.append(f"{mean:.3f} ± {half:.3f}" if np.isfinite(half) else f"{mean:.3f}")
            lines.append(f"| {control} (n={len(rs)}) | " + " | ".join(cells)
                         + f" | {np.mean([r['seconds'] for r in rs]):.0f} |")
        lines.append("")
    write_report(args.out, "\n".join(lines), {"rows": rows, "argv": list(argv or sys.argv[1:])})


if __name__ == "__main__":
    raise SystemExit(main())
