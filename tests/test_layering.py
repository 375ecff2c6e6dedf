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
    "training": {"metrics", "fewshot", "studies", "export", "serving", "enrich"},  # scores via utils.classification
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


# The top-level modules: errors and config sit below every package (any layer may read a config); cli_args
# parses arguments for the CLI glue (cli, commands, __main__), which may import anything.
TOP_LEVEL = {
    "errors.py": {"tfaug." + p for p in ORDER} | {"tfaug.config", "tfaug.cli", "tfaug.commands", "tfaug.cli_args"},
    "config.py": {"tfaug." + p for p in ORDER} | {"tfaug.cli", "tfaug.commands", "tfaug.cli_args"},
    "cli_args.py": {"tfaug.studies", "tfaug.enrich", "tfaug.cli", "tfaug.commands"},
}


def test_top_level_modules_import_only_below_them():
    assert {p.name for p in PKG.glob("*.py")} <= set(TOP_LEVEL) | {"__init__.py", "__main__.py", "cli.py",
                                                                   "commands.py"}, "a new top-level module: add it"
    bad = []
    for name, forbidden in TOP_LEVEL.items():
        for mod in _imports(PKG / name):
            if any(mod == f or mod.startswith(f + ".") for f in forbidden):
                bad.append(f"{name} imports {mod}")
    assert not bad, "\n".join(bad)


def test_every_package_is_in_the_layer_order():
    packages = {p.name for p in PKG.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages == set(ORDER), f"packages outside the layering test: {sorted(packages - set(ORDER))}"
