"""The ``tfaug enrich`` subcommand (no TensorFlow import at module level, so ``tfaug --help`` stays instant)."""
from __future__ import annotations

from tfaug.cli_args import positive_float, positive_int, unit_fraction


def add_parsers(sub) -> None:
    """Add ``enrich`` to the ``tfaug`` subparsers."""
    e = sub.add_parser("enrich", help="does generation help MY data? held-out test set, budgeted selection of "
                       "controls and generative candidates, a verdict, a classifier, an enriched dataset, a report")
    e.add_argument("--dataset", required=True, metavar="SPEC",
                   help="folder:PATH (one sub-folder per class), npz:PATH, digits, tfds:NAME[:SPLIT]")
    e.add_argument("--out", required=True, help="output directory (a rerun with the same --out continues)")
    e.add_argument("--budget", type=positive_float, default=30.0, metavar="MINUTES",
                   help="wall-time budget of the whole run in minutes (default 30)")
    e.add_argument("--test-fraction", type=unit_fraction, default=0.3, metavar="F",
                   help="share of every class held out as the real test set (default 0.3)")
    e.add_argument("--min-per-class", type=positive_int, default=None, metavar="N",
                   help="images per class of the enriched dataset when a generator wins (default: twice the "
                        "largest training class)")
    e.add_argument("--strategies", default=None, metavar="LIST",
                   help="comma-separated candidates (default: baseline, classic, the long-tail controls for "
                        "imbalanced data, cdcgan, cdcgan+classic); classic is always included as the reference")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--data-dir", help="TensorFlow Datasets data directory (for tfds: specs)")
    e.add_argument("--no-progress", action="store_true")
    e.set_defaults(func="tfaug.enrich.cli:enrich")


def enrich(args) -> int:
    """Run enrich and print the verdict in a few lines."""
    from tfaug.enrich.protocol import EnrichConfig
    from tfaug.enrich.run import run_enrich
    from tfaug.studies.cli import sigterm_as_interrupt

    strategies = tuple(s.strip() for s in args.strategies.split(",") if s.strip()) if args.strategies else ()
    cfg = EnrichConfig(test_fraction=args.test_fraction, min_per_class=args.min_per_class or 0,
                       strategies=strategies, seed=args.seed)
    command = " ".join(["tfaug enrich", "--dataset", args.dataset, "--out", str(args.out), "--budget",
                        f"{args.budget:g}", "--test-fraction", f"{args.test_fraction:g}"]
                       + ([f"--min-per-class {args.min_per_class}"] if args.min_per_class else [])
                       + ([f"--strategies {args.strategies}"] if args.strategies else [])
                       + ([f"--seed {args.seed}"] if args.seed else []))
    with sigterm_as_interrupt():
        v = run_enrich(args.dataset, args.out, budget_minutes=args.budget, cfg=cfg, progress=not args.no_progress,
                       command=command, data_dir=args.data_dir)
    d = v["delta_vs_classic"]
    print(f"chosen: {v['chosen']} ({v['why']})")
    if d["mean"] is not None and d["mean"] == d["mean"]:
        ci = f" [{100 * d['ci_low']:+.1f}, {100 * d['ci_high']:+.1f}]" if d["ci_low"] is not None else ""
        print(f"validation vs classic: {100 * d['mean']:+.1f} points{ci}")
    if v["test"]:
        t = v["test"]
        print(f"test accuracy {100 * t['accuracy']['mean']:.1f} % [{100 * t['accuracy']['ci_low']:.1f}, "
              f"{100 * t['accuracy']['ci_high']:.1f}], macro-F1 {100 * t['macro_f1']['mean']:.1f} % "
              f"({t['n']} test images)")
    else:
        print(f"no test set: {v['protocol']['reason']}")
    print(f"report: {args.out}/report.html")
    return 0
