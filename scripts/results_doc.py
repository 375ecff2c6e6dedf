"""Write docs/RESULTS.md from finished study runs, beside the studies' published numbers.

    python scripts/results_doc.py --study s3=runs/s3 --study s5=runs/s5 --out docs/RESULTS.md

Each ``--study KEY=RUN_DIR`` adds one section (``sN`` keys are compared with published study SN; e.g.
``s1-naive`` too). Figures are regenerated from the runs' rows into ``<out dir>/results/<KEY>/`` (the runs'
sample grids are copied there) and linked relatively. All logic lives in ``tfaug.studies.report``.

``--section KEY=FILE.md`` puts an already rendered Markdown section (e.g. ``OUT/section.md`` of
``benchmarks/fewshot_heldout.py``) into the document, between ``<!-- section: KEY -->`` markers; the images it
links relatively are copied to ``<out dir>/results/<KEY>/`` and relinked. With ``--study`` the document is
regenerated and the sections follow the studies; without ``--study`` the existing ``--out`` is kept and only the
section is replaced (or appended when new):

    python scripts/results_doc.py --section fewshot-heldout=runs/fewshot-heldout-mnist/section.md
"""
from __future__ import annotations

import argparse
import re
import shlex
import sys
from pathlib import Path

IMAGE_LINK = re.compile(r"!\[([^\]]*)\]\(([^)\s]+)\)")


def _pairs(values: list[str], flag: str = "--study", example: str = "KEY=RUN_DIR (e.g. s3=runs/s3)") -> dict[str, str]:
    from tfaug.errors import TfaugError

    out = {}
    for v in values:
        key, sep, path = v.partition("=")
        if not sep or not key or not path:
            raise TfaugError(f"{flag} takes {example}, got {v!r}")
        if key in out:
            raise TfaugError(f"{flag} {key} is given twice")
        out[key] = path
    return out


def _marker(key: str, end: bool = False) -> str:
    return f"<!-- {'/' if end else ''}section: {key} -->"


def render_section(key: str, path: str | Path, docs: Path) -> str:
    """The section file's Markdown between markers, its relative image links copied to ``docs/results/<key>/``.

    Raises:
        TfaugError: unreadable section file, a linked image that does not exist, an unsafe key.
    """
    from tfaug.errors import TfaugError
    from tfaug.utils.io import atomic_write_bytes

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", key):
        raise TfaugError(f"--section key {key!r} must be letters, digits, '.', '_' or '-'")
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise TfaugError(f"cannot read --section {key}={path}: {e.strerror}") from None

    def relink(m: re.Match) -> str:
        alt, link = m.group(1), m.group(2)
        if "://" in link or link.startswith("/") or link.startswith("#"):
            return m.group(0)
        src = path.parent / link
        if not src.is_file():
            raise TfaugError(f"section {path} links the image {link}, which does not exist next to it")
        dest = docs / "results" / key / src.name
        atomic_write_bytes(dest, src.read_bytes())
        return f"![{alt}]({dest.relative_to(docs).as_posix()})"

    body = IMAGE_LINK.sub(relink, text).strip()
    return f"{_marker(key)}\n{body}\n{_marker(key, end=True)}\n"


def study_section(key: str, run: str | Path, docs: Path, notes: str | None, command: str) -> str:
    """A study run's section (``tfaug.studies.report``: tables, plots into ``docs/results/<key>/``) between markers,
    with the Markdown of ``notes`` after its heading and the regenerating command."""
    from tfaug.errors import TfaugError
    from tfaug.studies.report import study_section_markdown

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", key):
        raise TfaugError(f"--study-section key {key!r} must be letters, digits, '.', '_' or '-'")
    body = study_section_markdown(key, Path(run), docs)
    head, _, rest = body.partition("\n")
    extra = [f"Regenerate: `{command}`", ""]
    if notes:
        try:
            extra = [Path(notes).read_text(encoding="utf-8").strip(), ""] + extra
        except OSError as e:
            raise TfaugError(f"cannot read --notes {key}={notes}: {e.strerror}") from None
    return f"{_marker(key)}\n" + "\n".join([head, "", *extra, rest.strip()]) + f"\n{_marker(key, end=True)}\n"


def put_sections(document: str, sections: dict[str, str]) -> str:
    """``document`` with each rendered section replacing its marked block, or appended when it has none."""
    for key, block in sections.items():
        start, end = document.find(_marker(key)), document.find(_marker(key, end=True))
        if start >= 0 and end > start:
            tail = document[end + len(_marker(key, end=True)):].lstrip("\n")
            document = document[:start] + block + ("\n" + tail if tail else "")
        else:
            document = document.rstrip("\n") + "\n\n" + block
    return document


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", action="append", default=[], metavar="KEY=RUN_DIR",
                        help="a study run directory (repeatable; sections follow this order)")
    parser.add_argument("--section", action="append", default=[], metavar="KEY=FILE.md",
                        help="a rendered Markdown section (e.g. a benchmark's section.md) put after the studies; "
                             "without --study only this section of the existing --out is replaced (repeatable)")
    parser.add_argument("--study-section", action="append", default=[], metavar="KEY=RUN_DIR",
                        help="a study run rendered as one marked section of the existing --out (replaced, or "
                             "appended when new), the rest of the document kept (repeatable)")
    parser.add_argument("--notes", action="append", default=[], metavar="KEY=FILE.md",
                        help="Markdown put at the top of --study-section KEY (what the tables say)")
    parser.add_argument("--out", default="docs/RESULTS.md", help="the Markdown file to write (default %(default)s)")
    parser.add_argument("--preface", metavar="FILE.md", help="Markdown inserted after the header (how the runs were made)")
    args = parser.parse_args(argv)
    from tfaug.errors import TfaugError
    from tfaug.studies.report import results_document
    from tfaug.utils.io import atomic_write_text

    argv = sys.argv[1:] if argv is None else argv
    command = " ".join(["python scripts/results_doc.py", *map(shlex.quote, argv)])
    if not args.study and not args.section and not args.study_section:
        parser.error("give at least one --study KEY=RUN_DIR, --section KEY=FILE.md or --study-section KEY=RUN_DIR")
    try:
        out = Path(args.out)
        sections = _pairs(args.section, "--section", "KEY=FILE.md (e.g. fewshot-heldout=runs/x/section.md)")
        if args.study_section:
            if args.study:
                raise TfaugError("--study-section changes one section of an existing document; without --study")
            notes = _pairs(args.notes, "--notes", "KEY=FILE.md")
            studies = _pairs(args.study_section, "--study-section", "KEY=RUN_DIR")
            unknown = sorted(set(notes) - set(studies))
            if unknown:
                raise TfaugError(f"--notes {unknown[0]} has no --study-section {unknown[0]}=RUN_DIR")
            document = out.read_text(encoding="utf-8") if out.exists() else "# tfaug results\n"
            rendered = {k: study_section(k, run, out.parent, notes.get(k), command) for k, run in studies.items()}
            rendered.update({k: render_section(k, p, out.parent) for k, p in sections.items()})
            atomic_write_text(out, put_sections(document, rendered))
            print(f"wrote {out} (section(s) {', '.join(rendered)})")
            return 0
        if not args.study:  # only the sections of the existing document change
            if args.preface:
                raise TfaugError("--preface needs --study (without it the existing document's preface is kept)")
            try:
                document = out.read_text(encoding="utf-8")
            except OSError as e:
                raise TfaugError(f"cannot read {out} to put the section into ({e.strerror}); pass --study to "
                                 f"write a new document") from None
            rendered = {k: render_section(k, p, out.parent) for k, p in sections.items()}
            atomic_write_text(out, put_sections(document, rendered))
            print(f"wrote {out} (section(s) {', '.join(sections)})")
            return 0
        preface = None
        if args.preface:
            try:
                with open(args.preface, encoding="utf-8") as f:
                    preface = f.read()
            except OSError as e:
                raise TfaugError(f"cannot read --preface {args.preface}: {e.strerror}") from None
        path = results_document(_pairs(args.study), args.out, command=command, preface=preface)
        if sections:
            rendered = {k: render_section(k, p, out.parent) for k, p in sections.items()}
            atomic_write_text(path, put_sections(path.read_text(encoding="utf-8"), rendered))
    except TfaugError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
