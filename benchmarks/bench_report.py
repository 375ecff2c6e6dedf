"""Shared output of the throughput benchmarks: the command line as run, and a Markdown report with its data as JSON.

``benchmarks/`` is not a package; the scripts put their own folder on ``sys.path`` and import this module.
"""
from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path


def command_line(script: str, argv) -> str:
    """``python benchmarks/<script> ARGS`` as it was run (``argv`` None means ``sys.argv[1:]``)."""
    args = argv if argv is not None else sys.argv[1:]
    return f"python benchmarks/{script} " + " ".join(shlex.quote(a) for a in args)


def write_report(out: str | Path, markdown: str, data: dict) -> None:
    """Write ``markdown`` to ``out`` and ``data`` to ``out`` with the suffix ``.json`` (both atomically)."""
    from tfaug.utils.io import atomic_write_text

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, markdown)
    atomic_write_text(out.with_suffix(".json"), json.dumps(data, indent=2, default=float) + "\n")
    print(f"written to {out} and {out.with_suffix('.json')}")


__all__ = ["command_line", "write_report"]
