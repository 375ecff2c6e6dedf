"""The ``tfaug study`` subcommand (no TensorFlow import at module level, so ``tfaug --help`` stays instant)."""
from __future__ import annotations

import contextlib
import signal
import threading
from pathlib import Path


def add_parsers(sub) -> None:
    """Add ``study`` to the ``tfaug`` subparsers."""
    s = sub.add_parser("study", help="run a study config: strategies x settings x repeats, resumable, with a report")
    s.add_argument("config", metavar="CONFIG", help="study YAML file (see README 'Studies')")
    s.add_argument("--out", required=True, help="output directory (resumes a study already there)")
    s.add_argument("--quick", action="store_true", help="apply the config's 'quick:' overrides (a CI-sized run)")
    s.add_argument("--dry-run", action="store_true", help="print the expanded grid and exit without training")
    s.add_argument("--data-dir", help="TensorFlow Datasets data directory (for tfds: specs)")
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(func="tfaug.studies.cli:study")


def study(args) -> int:
    """Validate the config, then print the grid (``--dry-run``) or run the study and print its summary."""
    from tfaug.studies.config import describe_cells, expand, load_study

    cfg = load_study(args.config, quick=args.quick)
    if args.dry_run:
        print(describe_cells(cfg))
        print(f"  already in {args.out}: {_done_cells(Path(args.out), expand(cfg))} of {len(expand(cfg))} cells")
        return 0
    from tfaug.studies.runner import run_study

    command = " ".join(["tfaug study", str(args.config), "--out", str(args.out)] + (["--quick"] if args.quick else []))
    with sigterm_as_interrupt():
        res = run_study(cfg, args.out, data_dir=args.data_dir, progress=not args.no_progress, command=command)
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
