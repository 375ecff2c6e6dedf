"""The ``tfaug study`` subcommand (no TensorFlow import at module level, so ``tfaug --help`` stays instant)."""
from __future__ import annotations

import contextlib
import signal
import threading
from pathlib import Path

from tfaug.cli_args import add_runtime_args, positive_int

EXECUTORS = ("local", "processes", "ray")  # = tfaug.studies.executors.EXECUTORS (not imported: keep --help light)


def add_parsers(sub) -> None:
    """Add ``study`` to the ``tfaug`` subparsers."""
    s = sub.add_parser("study", help="run a study config: strategies x settings x repeats, resumable, with a report")
    s.add_argument("config", metavar="CONFIG", help="study YAML file (see README 'Studies')")
    s.add_argument("--out", required=True, help="output directory (resumes a study already there)")
    s.add_argument("--quick", action="store_true", help="apply the config's 'quick:' overrides (a CI-sized run)")
    s.add_argument("--dry-run", action="store_true", help="print the expanded grid and exit without training")
    s.add_argument("--data-dir", help="TensorFlow Datasets data directory (for tfds: specs)")
    s.add_argument("--no-progress", action="store_true")
    g = s.add_argument_group("parallel cells (see README 'Studies in parallel')")
    g.add_argument("--executor", choices=EXECUTORS, default="local",
                   help="local: one cell at a time in this process (default); processes: parallel worker processes "
                        "on this machine; ray: Ray actors (local Ray, or the cluster at --address)")
    g.add_argument("--workers", type=positive_int, default=None,
                   help="parallel workers (default: the CPU count; with --address, the cluster's CPUs)")
    g.add_argument("--address", default=None,
                   help="ray only: an existing Ray cluster, e.g. auto or ray://HOST:10001 (default: start local Ray)")
    add_runtime_args(s)
    s.set_defaults(func="tfaug.studies.cli:study")


def study(args) -> int:
    """Validate the config, then print the grid (``--dry-run``) or run the study and print its summary."""
    import dataclasses

    from tfaug.cli_args import runtime_from_args
    from tfaug.studies.config import describe_cells, expand, load_study
    from tfaug.studies.executors import ExecutorSpec

    cfg = load_study(args.config, quick=args.quick)
    cfg = dataclasses.replace(cfg, runtime=runtime_from_args(args, cfg.runtime))
    executor = ExecutorSpec(args.executor, workers=args.workers, address=args.address)
    if args.dry_run:
        print(describe_cells(cfg))
        print(f"  already in {args.out}: {_done_cells(Path(args.out), expand(cfg))} of {len(expand(cfg))} cells")
        return 0
    from tfaug.studies.runner import run_study

    command = " ".join(["tfaug study", str(args.config), "--out", str(args.out)] + (["--quick"] if args.quick else [])
                       + ([f"--executor {args.executor}"] if args.executor != "local" else [])
                       + ([f"--workers {args.workers}"] if args.workers else [])
                       + ([f"--address {args.address}"] if args.address else []))
    if executor.name == "ray":
        from tfaug.studies.executors import import_ray

        import_ray()  # one sentence before anything is trained when Ray is missing
    with sigterm_as_interrupt():
        res = run_study(cfg, args.out, data_dir=args.data_dir, progress=not args.no_progress, command=command,
                        executor=executor)
    summary_md = res.out / "summary.md"
    if summary_md.exists():
        print(summary_md.read_text(encoding="utf-8").rstrip())
    print(f"summary: {summary_md}")
    return 0


def _done_cells(out: Path, cells) -> int:
    from tfaug.utils.io import read_jsonl

    keys = {c.key for c in cells}
    return len({(r.get("setting"), r.get("strategy"), r.get("repeat")) for r in read_jsonl(out / "results.jsonl")}
               & keys)


@contextlib.contextmanager
def sigterm_as_interrupt():
    """Treat SIGTERM like Ctrl-C while a study runs, so ``kill`` (or a batch scheduler) stops it the same clean way:
    finished cells are already in results.jsonl, and timing.json is written. Background jobs started from scripts
    ignore SIGINT, so SIGTERM is how they are stopped. Only the main thread can install handlers."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _raise(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
