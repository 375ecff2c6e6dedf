"""Rank a study's strategies by their validation scores against the control and name the best.

    python scripts/choose_strategy.py runs/fewshot-mnist [--reference classic] [--metric val_accuracy]
        [--candidates "cdcgan+soft+classic,..."] [--settings k=1,k=5,k=10] [--out choice.md]

Candidates default to every strategy of the study except the reference and ``extra-real`` (more real images are a
ceiling, not something a user with few images can choose). Needs a study run with ``test.validation_per_class``.
The logic is ``tfaug.studies.choose``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv=None) -> int:
    from tfaug.errors import TfaugError
    from tfaug.studies.choose import choice_table, choose_on_validation
    from tfaug.utils.io import atomic_write_text, read_json, read_jsonl

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", help="a study output directory (results.jsonl, study.json)")
    p.add_argument("--reference", default="classic")
    p.add_argument("--metric", default="val_accuracy")
    p.add_argument("--candidates", default=None, help="comma-separated strategy texts (';' if they hold commas)")
    p.add_argument("--settings", default=None, help="comma-separated setting names (default: all)")
    p.add_argument("--out", default=None, help="also write the Markdown table here")
    a = p.parse_args(argv)
    try:
        run = Path(a.run)
        if not (run / "results.jsonl").exists():
            raise TfaugError(f"{run} holds no results.jsonl; pass a study output directory")
        rows = read_jsonl(run / "results.jsonl")
        strategies = read_json(run / "study.json")["strategies"]
        if a.candidates:
            cands = [c.strip() for c in a.candidates.split(";" if ";" in a.candidates else ",") if c.strip()]
        else:
            cands = [s for s in strategies if s != a.reference and not s.startswith("extra-real")]
        settings = [s.strip() for s in a.settings.split(",")] if a.settings else None
        choice = choose_on_validation(rows, cands, reference=a.reference, metric=a.metric, settings=settings)
    except TfaugError as e:
        print(f"choose_strategy: error: {e}", file=sys.stderr)
        return 2
    table = choice_table(choice)
    print(table + f"\nchosen: {choice.strategy}")
    if a.out:
        atomic_write_text(a.out, table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
