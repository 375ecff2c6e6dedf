"""Strong controls: the first wave's default classifier against the few-shot recipe, with and without classic
augmentation, at k images per class (issue 15).

For each dataset, k and draw: one stratified real test set (half of every class, the same for every draw), a
training draw of k images per class from the other half, and four arms trained on that draw only:

- ``old/baseline``  ``small_cnn``, Adam 1e-3, 600 steps, batch 32, no augmentation (the first wave's default);
- ``old/classic``   the same with ``classic:default`` (the first wave's classic);
- ``new/baseline``  ``classifier/fewshot`` (tfaug.config.FEWSHOT), no augmentation;
- ``new/classic``   ``classifier/fewshot`` with a bare ``classic``: the data kind's preset, its milder one or none,
                    chosen on a validation split of the draw (tfaug.training.augment_choice); never the test set;
- ``long/classic``  the same with a budget floor of 1,500 steps instead of 800 (not a default arm: what a longer
                    budget buys).

Rows go to OUT/results.jsonl as each finishes (resumable: a rerun skips them; ``--shard i/n`` splits the grid
between processes). The report (mean ± 95 % t-interval over draws, paired differences, wall time) goes to
``--report`` (markdown) and a JSON beside it.

    python benchmarks/controls.py --out runs/controls --shard 0/2 &
    python benchmarks/controls.py --out runs/controls --shard 1/2 &
    python benchmarks/controls.py --out runs/controls --report benchmarks/results/controls.md   # after both
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MNIST = ROOT.parent / "shared" / "data" / "mnist10k.npz"
DATASETS = {  # name -> (spec, k values)
    "mnist": (f"npz:{MNIST}", (10, 1, 100, 5, 2)),  # also S3's k-grid (1, 2, 5, 10, 100)
    "digits": ("digits", (1, 5, 10, 50)),
}
ARMS = ("old/baseline", "old/classic", "new/baseline", "new/classic", "long/classic")
DEFAULT_ARMS = ("new/classic", "old/classic", "new/baseline")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="runs/controls", help="results directory (results.jsonl)")
    p.add_argument("--datasets", default="digits,mnist", help=f"comma list of {', '.join(DATASETS)}")
    p.add_argument("--k", default="", help="override the k values (comma list) of every dataset")
    p.add_argument("--draws", type=int, default=3, help="training draws per (dataset, k), >= 1")
    p.add_argument("--arms", default=",".join(DEFAULT_ARMS), help="comma list of " + ", ".join(ARMS))
    p.add_argument("--shard", default="0/1",
                   help="i/n: run every n-th (dataset, k, draw) group starting at i (all arms of a group together)")
    p.add_argument("--quick", action="store_true", help="smoke run: tiny budgets, one draw, k=5 on digits")
    p.add_argument("--report", help="write the markdown report here (and .json beside it) from OUT's rows")
    p.add_argument("--no-run", action="store_true", help="only write the report")
    return p.parse_args(argv)


def cells(args) -> list[tuple]:
    out = []
    for name in [d.strip() for d in args.datasets.split(",") if d.strip()]:
        if name not in DATASETS:
            raise SystemExit(f"controls: unknown dataset {name!r}; known: {', '.join(DATASETS)}")
        ks = [int(k) for k in args.k.split(",")] if args.k else DATASETS[name][1]
        for k in ks:
            for draw in range(args.draws):
                for arm in args.arms.split(","):
                    out.append((name, k, draw, arm.strip()))
    return out


def configs(quick: bool):
    from tfaug.config import FEWSHOT, ClassifierConfig

    old, new = ClassifierConfig(), FEWSHOT
    long = dataclasses.replace(FEWSHOT, steps=1500)
    if quick:
        old = dataclasses.replace(old, steps=20, width=8)
        new = dataclasses.replace(new, steps=20, min_epochs=0.0, width=4)
        long = dataclasses.replace(new, steps=30)
    return {"old": old, "new": new, "long": long}


def run_cell(cell, data: dict, cfgs: dict) -> dict:
    from tfaug.data.experiment import draw_experiment
    from tfaug.training.augment_choice import choose_augment
    from tfaug.training.classifier import train_classifier

    name, k, draw, arm = cell
    ds = data[name]
    split = draw_experiment(ds.labels, test_fraction=0.5, per_class=k, seed=1000 + draw, split_seed=0)
    which, strategy = arm.split("/")
    cfg = dataclasses.replace(cfgs[which], seed=draw)
    x, y = ds.images[split.train], ds.labels[split.train]
    t0 = time.perf_counter()
    choice = None
    if strategy == "baseline":
        augment = None
    elif which == "old":
        augment = "classic:default"
    else:
        choice = choose_augment(x, y, num_classes=ds.num_classes, cfg=cfg)
        augment = None if choice.spec == "none" else choice.spec
    t_choice = time.perf_counter() - t0
    res = train_classifier(x, y, num_classes=ds.num_classes, cfg=cfg, x_test=ds.images[split.test],
                           y_test=ds.labels[split.test], augment=augment)
    row = {"dataset": name, "k": k, "draw": draw, "arm": arm, "accuracy": res.metrics["accuracy"],
           "macro_f1": res.metrics["macro_f1"], "n_train": int(len(split.train)), "n_test": int(len(split.test)),
           "steps": res.steps, "augment": augment or "none", "seconds": round(time.perf_counter() - t0, 1),
           "choice_seconds": round(t_choice, 1)}
    if choice is not None:
        row.update(choice_protocol=choice.protocol, choice_scores=choice.scores, kind=choice.kind)
    return row


def machine_info() -> dict:
    """CPU model, notable flags, cores and the 1-minute load average when a row finished."""
    from tfaug.utils.hardware import machine_summary

    m = machine_summary()
    return {"cpu": m["cpu_model"], "cpu_flags": m["cpu_flags"], "cpu_count": os.cpu_count(),
            "load_average_1min": round(os.getloadavg()[0], 2)}


def _key(row) -> tuple:
    return row["dataset"], row["k"], row["draw"], row["arm"]


def load_data(names):
    from tfaug.data.sources import load_dataset

    data = {}
    for name in names:
        spec = DATASETS[name][0]
        if name == "mnist" and not MNIST.exists():
            raise SystemExit(f"controls: {MNIST} is missing; run with --datasets digits or put mnist10k.npz there")
        data[name] = load_dataset(spec)
    return data


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.quick:
        args.datasets, args.draws, args.k = "digits", 1, "5"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from tfaug.utils.io import append_jsonl, read_jsonl

    if not args.no_run:
        i, n = (int(v) for v in args.shard.split("/"))
        groups = list(dict.fromkeys(c[:3] for c in cells(args)))
        mine = set(groups[i::n])
        todo = [c for c in cells(args) if c[:3] in mine]
        done = {_key(r) for r in read_jsonl(out / "results.jsonl")}
        todo = [c for c in todo if c not in done]
        data = load_data(sorted({c[0] for c in todo}))
        cfgs = configs(args.quick)
        for c in todo:
            row = run_cell(c, data, cfgs)
            row["machine"] = machine_info()
            append_jsonl(out / "results.jsonl", row)
            print(f"{c}: accuracy {row['accuracy']:.4f} ({row['augment']}, {row['steps']} steps, {row['seconds']} s)",
                  flush=True)
    if args.report:
        write_report(read_jsonl(out / "results.jsonl"), Path(args.report), " ".join(sys.argv))
    return 0


def summarize(rows: list[dict]) -> list[dict]:
    """One entry per (dataset, k): per-arm mean ± CI of accuracy, mean seconds, and paired deltas."""
    from tfaug.metrics.stats import mean_ci, paired_difference_ci

    out = []
    for name in dict.fromkeys(r["dataset"] for r in rows):
        for k in sorted({r["k"] for r in rows if r["dataset"] == name}):
            sub = [r for r in rows if r["dataset"] == name and r["k"] == k]
            by = {a: {r["draw"]: r for r in sub if r["arm"] == a} for a in ARMS}
            entry = {"dataset": name, "k": k, "arms": {}}
            for a, rs in by.items():
                if rs:
                    m, h = mean_ci([r["accuracy"] for r in rs.values()])
                    entry["arms"][a] = {"accuracy": m, "ci": h, "n": len(rs),
                                        "seconds": float(np.mean([r["seconds"] for r in rs.values()])),
                                        "augment": sorted({r["augment"] for r in rs.values()})}
            for a, b, key in (("new/classic", "old/classic", "new_vs_old"),
                              ("new/classic", "new/baseline", "classic_vs_none"),
                              ("long/classic", "new/classic", "long_vs_new")):
                draws = sorted(set(by[a]) & set(by[b]))
                if draws:
                    d, h = paired_difference_ci([by[a][i]["accuracy"] for i in draws],
                                                [by[b][i]["accuracy"] for i in draws])
                    entry[key] = {"delta": d, "ci": h, "n": len(draws)}
            out.append(entry)
    return out


# S3's k-grid beside this benchmark's MNIST rows: the first wave's `classic` in the S3 study (small_cnn width 16,
# 600 steps, classic:default; 2 repeats; test 100 per class; docs/RESULTS.md section s3) and S3's best published
# method per k (docs/studies.md). Copied numbers, in %.
S3_OLD_CLASSIC = {1: 60.7, 2: 64.9, 5: 83.7, 10: 91.2, 100: 96.6}
S3_PUBLISHED = {1: (44.6, "M2"), 2: (47.3, "M4"), 5: (63.2, "M2"), 10: (67.4, "M2"), 100: (89.3, "discriminator bank")}
TARGETS = {1: 70.0, 5: 90.0, 10: 95.0, 100: 99.0}  # issue 15's targets for the new classic on MNIST


def s3_lines(summary: list[dict]) -> list[str]:
    """The S3 k-grid table: published best, the first wave's classic in S3, the new classic here, the target."""
    rows = {e["k"]: e for e in summary if e["dataset"] == "mnist"}
    lines = ["| k | S3 published best | first wave's classic (S3 study, 2 repeats) | new classic (this benchmark) "
             "| issue 15 target |", "|---|---|---|---|---|"]
    for k in sorted(set(S3_PUBLISHED) | set(rows)):
        new = rows.get(k, {}).get("arms", {}).get("new/classic")
        got = f"{_fmt(new['accuracy'], new['ci'])} (n={new['n']})" if new else "not run"
        pub = S3_PUBLISHED.get(k)
        lines.append(f"| {k} | {pub[0]:.1f} ({pub[1]}) | {S3_OLD_CLASSIC.get(k, float('nan')):.1f} | {got} | "
                     f"{TARGETS[k]:.0f} |" if k in TARGETS else
                     f"| {k} | {pub[0]:.1f} ({pub[1]}) | {S3_OLD_CLASSIC.get(k, float('nan')):.1f} | {got} | — |")
    return lines


def _fmt(m, h) -> str:
    from tfaug.metrics.stats import format_ci

    return format_ci(100 * m, 100 * h, 1) if m == m else "—"


def write_report(rows: list[dict], path: Path, command: str) -> None:
    from tfaug.utils.io import atomic_write_text, write_json

    summary = summarize(rows)
    ms = [r["machine"] for r in rows if "machine" in r]
    flags = sorted({f for m in ms for f in m.get("cpu_flags", [])})
    machines = [f"{n} CPU cores ({cpu}; {', '.join(flags)})" for cpu, n in sorted({(m["cpu"], m["cpu_count"]) for m in ms})]
    loads = [r["machine"]["load_average_1min"] for r in rows if "machine" in r]
    lines = ["# Strong controls: old default vs the few-shot recipe", "",
             f"Command: `{command}` (rows from `benchmarks/controls.py`, see its docstring for the protocol).",
             f"Machine: {'; '.join(machines) or 'unknown'}; 1-minute load average while the rows finished "
             f"{min(loads, default=float('nan')):.1f}-{max(loads, default=float('nan')):.1f} (other jobs shared "
             "the cores, so seconds are upper bounds). Accuracy in %, mean ± 95 % t-interval over draws; Δ is "
             "paired by draw.", "",
             "| dataset | k | old classic | new classic | Δ new − old | new baseline | Δ classic − none "
             "| new classic augmentation chosen | old / new seconds |",
             "|---|---|---|---|---|---|---|---|---|"]
    for e in summary:
        a = e["arms"]

        def cell(arm):
            return _fmt(a[arm]["accuracy"], a[arm]["ci"]) if arm in a else "—"

        def delta(key):
            return f"{100 * e[key]['delta']:+.1f} ± {100 * e[key]['ci']:.1f}" if key in e and e[key]["ci"] == e[key]["ci"] \
                else (f"{100 * e[key]['delta']:+.1f}" if key in e else "—")

        secs = " / ".join(f"{a[x]['seconds']:.0f}" if x in a else "—" for x in ("old/classic", "new/classic"))
        chosen = ", ".join(a["new/classic"]["augment"]) if "new/classic" in a else "—"
        lines.append(f"| {e['dataset']} | {e['k']} | {cell('old/classic')} | {cell('new/classic')} | {delta('new_vs_old')} "
                     f"| {cell('new/baseline')} | {delta('classic_vs_none')} | {chosen} | {secs} |")
    longer = [e for e in summary if "long/classic" in e["arms"] and "long_vs_new" in e]
    if longer:
        lines += ["", "A 1,500-step floor instead of 800 (`long/classic`, same draws and choice rule):", ""]
        for e in longer:
            a, d = e["arms"]["long/classic"], e["long_vs_new"]
            lines.append(f"- {e['dataset']} k = {e['k']}: {_fmt(a['accuracy'], a['ci'])} % over {a['n']} draws, "
                         f"paired Δ against `new/classic` {100 * d['delta']:+.1f} ± {100 * d['ci']:.1f} points, "
                         f"{a['seconds']:.0f} s per cell")
    if any(e["dataset"] == "mnist" for e in summary):
        lines += ["", "S3's k-grid on MNIST (S3's test set is 100 images per class; this benchmark's is half of "
                  "mnist10k, about 500 per class):", ""] + s3_lines(summary)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, "\n".join(lines) + "\n")
    write_json(path.with_suffix(".json"), {"command": command, "summary": summary, "rows": rows})
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
