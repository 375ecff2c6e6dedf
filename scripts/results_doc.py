"""Write docs/RESULTS.md from finished study runs, beside the studies' published numbers.

    python scripts/results_doc.py --study s3=runs/s3 --study s5=runs/s5 --out docs/RESULTS.md

Each ``--study KEY=RUN_DIR`` adds one section (``sN`` keys are compared with published study SN; e.g.
``s1-naive`` too). Figures are regenerated from the runs' rows into ``<out dir>/results/<KEY>/`` (the runs'
sample grids are copied there) and linked relatively. All logic lives in ``tfaug.studies.report``.
"""
from __future__ import annotations

import argparse
import shlex
import sys


def _pairs(values: list[str]) -> dict[str, str]:
    from tfaug.errors import TfaugError

    out = {}
    for v in values:
        key, sep, path = v.partition("=")
        if not sep or not key or not path:
            raise TfaugError(f"--study takes KEY=RUN_DIR (e.g. s3=runs/s3), got {v!r}")
        if key in out:
            raise TfaugError(f"--study {key} is given twice")
        out[key] = path
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", action="append", required=True, metavar="KEY=RUN_DIR",
                        help="a study run directory (repeatable; sections follow this order)")
    parser.add_argument("--out", default="docs/RESULTS.md", help="the Markdown file to write (default %(default)s)")
    parser.add_argument("--preface", metavar="FILE.md", help="Markdown inserted after the header (how the runs were made)")
    args = parser.parse_args(argv)
    from tfaug.errors import TfaugError
    from tfaug.studies.report import results_document

    argv = sys.argv[1:] if argv is None else argv
    command = " ".join(["python scripts/results_doc.py", *map(shlex.quote, argv)])
    try:
        preface = None
        if args.preface:
            try:
                with open(args.preface, encoding="utf-8") as f:
                    preface = f.read()
            except OSError as e:
                raise TfaugError(f"cannot read --preface {args.preface}: {e.strerror}") from None
        path = results_document(_pairs(args.study), args.out, command=command, preface=preface)
    except TfaugError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
