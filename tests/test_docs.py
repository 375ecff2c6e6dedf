"""The docs are self-contained: nothing outside tests/ points into ../shared, the design and studies pages exist,
README links resolve, and the README's command table and model list cover every command and zoo model."""
import argparse
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIP_DIRS = {".git", ".venv", "venv", "runs", "saved_models", "__pycache__", ".pytest_cache", "node_modules", "build",
             "dist", "tests"}
TEXT = {".py", ".md", ".yaml", ".yml", ".toml", ".txt", ".cfg", ".config", ".json", ".sh", ".ini", ".csv"}
# Docs that only exist beside this checkout on the development machines (now docs/design.md and docs/studies.md).
FOREIGN_DOCS = re.compile(r"shared/docs|DESIGN\.md|STUDIES\.md|shared/data/README")
# The one allowed mention of ../shared: where the optional MNIST sample lies (a data path in a config or benchmark).
DATA_PATH = re.compile(r"(?:\.\./|/work/)shared/data/[\w.-]+\.npz")
SHARED = re.compile(r"(?:\.\./|/work/)shared\b")


def _files():
    for path in ROOT.rglob("*"):
        rel = path.relative_to(ROOT)
        if any(part in SKIP_DIRS or part.endswith(".egg-info") for part in rel.parts[:-1]) or not path.is_file():
            continue
        if path.suffix in TEXT or path.name in ("Makefile", "Dockerfile"):
            yield rel, path.read_text(encoding="utf-8", errors="replace")


def test_nothing_outside_tests_points_into_shared():
    bad = []
    for rel, text in _files():
        for n, line in enumerate(text.splitlines(), 1):
            if FOREIGN_DOCS.search(line):
                bad.append(f"{rel}:{n}: {line.strip()}")
            elif SHARED.search(DATA_PATH.sub("", line)):
                bad.append(f"{rel}:{n}: {line.strip()}")
            elif rel.parts[0] == "tfaug" and SHARED.search(line):  # the package assumes no machine layout at all
                bad.append(f"{rel}:{n}: {line.strip()}")
    assert not bad, "references to files outside the repository:\n" + "\n".join(bad)


def test_the_check_catches_what_it_should():
    assert FOREIGN_DOCS.search("see ../shared/docs/DESIGN.md")
    assert SHARED.search(DATA_PATH.sub("", "see ../shared/README.md")) and SHARED.search("/work/shared/x")
    assert not SHARED.search(DATA_PATH.sub("", "dataset: npz:../shared/data/mnist10k.npz"))


def test_design_and_studies_pages_exist_with_their_contracts():
    design = (ROOT / "docs" / "design.md").read_text()
    for needle in ("tfaug.synthesis.strategies.parse", "Strategy.build", "### The control", "`truncated`",
                   "serving_default", "generate_png",
                   "TFSMLayer", "tests/test_layering.py", "A generator"):
        assert needle in design, needle
    studies = (ROOT / "docs" / "studies.md").read_text()
    for study in ("S1", "S2", "S3", "S4", "S5"):
        assert re.search(rf"^## {study}: ", studies, re.M), study
    assert studies.count("**Reproduction**") == 5


def test_relative_links_in_readme_and_docs_resolve():
    broken = []
    for doc in [ROOT / "README.md", ROOT / "serving" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)\s]+)\)", doc.read_text()):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            if not (doc.parent / target.split("#")[0]).exists():
                broken.append(f"{doc.relative_to(ROOT)} -> {target}")
    assert not broken, broken
    readme = (ROOT / "README.md").read_text()
    assert "(docs/design.md)" in readme and "(docs/studies.md)" in readme


def test_readme_command_table_lists_every_command_and_train_gan_every_model():
    from tfaug.cli import build_parser
    from tfaug.models.zoo import model_names

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    rows = [line for line in (ROOT / "README.md").read_text().splitlines() if line.startswith("| `tfaug ")]
    listed = {re.match(r"\| `tfaug ([\w-]+)", row).group(1) for row in rows}
    assert set(sub.choices) <= listed, sorted(set(sub.choices) - listed)
    train_gan = next(row for row in rows if row.startswith("| `tfaug train-gan"))
    models = re.search(r"train a zoo model \(([^)]*)\)", train_gan).group(1).split(", ")
    assert sorted(models) == sorted(model_names())
