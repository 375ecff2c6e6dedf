"""The ``tfaug evaluate`` subcommand (no TensorFlow import at module level, so ``tfaug --help`` stays instant)."""
from __future__ import annotations

from tfaug.cli_args import non_negative_int, positive_int

METRIC_HELP = "fid, kid, is, pr, per_class, consistency, diversity, memorisation, cas, or all"


def add_parsers(sub) -> None:
    """Add ``evaluate`` to the ``tfaug`` subparsers."""
    e = sub.add_parser("evaluate", help="measure a generator's images against real data (FID, KID, IS, PR, CAS ...)")
    e.add_argument("generator", metavar="GENERATOR", help="run directory, SavedModel directory or model base")
    e.add_argument("--dataset", required=True, help="real reference data: digits | npz:PATH | folder:PATH | tfds:NAME")
    e.add_argument("--data-dir", help="TensorFlow Datasets data directory (for tfds: specs)")
    e.add_argument("--metrics", default="fid,kid,is,pr,consistency,diversity",
                   help=f"comma-separated: {METRIC_HELP} (default fid,kid,is,pr,consistency,diversity)")
    e.add_argument("--n-per-class", type=positive_int,
                   help="generated images per class (default: held-out real images / classes)")
    e.add_argument("--extractor", default="domain",
                   help="domain (a classifier trained on the dataset, cached) or inception:WEIGHTS.h5")
    e.add_argument("--extractor-steps", type=positive_int,
                   help="training steps of the domain extractor (default 1500; part of its cache key)")
    e.add_argument("--seed", type=non_negative_int, default=0)
    e.add_argument("--cas-steps", type=positive_int, default=300, help="training steps of the CAS classifiers")
    e.add_argument("--cache-dir", help="feature extractor cache (default $TFAUG_CACHE or ~/.cache/tfaug)")
    e.add_argument("--out", required=True, help="metrics.json path (written atomically)")
    e.add_argument("--log", help="also append the record as one line to this JSONL file")
    e.add_argument("--no-progress", action="store_true")
    e.set_defaults(func="tfaug.metrics.cli:evaluate")


def evaluate(args) -> int:
    """Run :func:`tfaug.metrics.evaluate.evaluate` and print a short table."""
    import dataclasses

    from tfaug.metrics.evaluate import evaluate as run, summary_rows
    from tfaug.metrics.features import DEFAULT_DOMAIN_CONFIG

    config = (dataclasses.replace(DEFAULT_DOMAIN_CONFIG, steps=args.extractor_steps) if args.extractor_steps
              else None)

    record = run(args.generator, args.dataset, metrics=args.metrics, n_per_class=args.n_per_class,
                 extractor=args.extractor, extractor_config=config, seed=args.seed, data_dir=args.data_dir,
                 cache_dir=args.cache_dir,
                 out=args.out, log=args.log, options={"cas_steps": args.cas_steps}, progress=not args.no_progress)
    p = record["protocol"]
    rows = summary_rows(record)
    width = max(len(k) for k, _ in rows) if rows else 6
    print(f"{p['n_generated']} generated vs {p['n_real']} real images, {p['extractor']['name']} features "
          f"({p['extractor']['feature_dim']}-d)")
    for key, value in rows:
        print(f"  {key:<{width}}  {value}")
    for w in record["warnings"]:
        print(f"warning: {w}")
    print(f"-> {args.out}")
    return 0
