"""docs/design.md: lower layers never import higher ones; nothing imports studies (except the CLI glue) or enrich."""
import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "tfaug"
ORDER = ["utils", "data", "augment", "models", "synthesis", "training", "metrics", "export", "fewshot", "serving",
         "studies", "enrich"]
# metrics must not depend on model classes: they take arrays or a generator_fn; they may train a classifier
# (the domain feature extractor, CAS) through ``tfaug.training``, which comes before them in the data flow.
FORBIDDEN = {
    "utils": set(ORDER[1:]),
    "data": {"fewshot", "augment", "models", "synthesis", "training", "metrics", "export", "serving", "studies",
             "enrich"},
    "augment": {"fewshot", "models", "synthesis", "training", "metrics", "export", "serving", "studies", "enrich"},
    "models": {"synthesis", "training", "metrics", "export", "fewshot", "serving", "studies", "enrich"},
    "metrics": {"fewshot", "models", "export", "serving", "studies", "enrich"},
    "synthesis": {"fewshot", "training", "studies", "serving", "enrich"},
    "training": {"fewshot", "studies", "export", "serving", "enrich"},
    "export": {"studies", "training", "fewshot", "serving", "enrich"},
    "fewshot": {"studies", "serving", "enrich"},
    "serving": {"studies", "training", "enrich"},
    "studies": {"enrich"},  # enrich sits on top: it may import studies, nothing imports it
}


def _imports(path: Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module


def test_no_upward_imports():
    bad = []
    for layer, forbidden in FORBIDDEN.items():
        for f in (PKG / layer).rglob("*.py"):
            for mod in _imports(f):
                parts = mod.split(".")
                if parts[0] == "tfaug" and len(parts) > 1 and parts[1] in forbidden:
                    bad.append(f"{f.relative_to(PKG)} imports {mod}")
    assert not bad, "\n".join(bad)


def test_no_import_circle_between_the_study_runner_and_its_executors():
    """runner -> executors -> cells (one cell's work): neither executors nor cells imports the runner back."""
    for name in ("executors", "cells"):
        tree = ast.parse((PKG / "studies" / f"{name}.py").read_text())
        mods = set(_imports(PKG / "studies" / f"{name}.py")) | {
            f"{n.module}.{a.name}" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
        assert "tfaug.studies.runner" not in mods, f"studies/{name}.py imports the runner"
    assert "tfaug.studies.executors" in set(_imports(PKG / "studies" / "runner.py"))
