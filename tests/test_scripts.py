"""scripts/: one thin script per `tfaug` command, whose usage line and errors name the script itself."""
import argparse
import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts"
DOC_SCRIPTS = ("results_doc.py", "choose_strategy.py")  # tools over finished runs, not `tfaug` commands
COMMAND_SCRIPTS = sorted(p for p in SCRIPTS.glob("*.py") if p.name not in DOC_SCRIPTS)


def _commands():
    from tfaug.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sorted(sub.choices)


def test_every_command_has_a_script_and_every_script_a_command():
    commands = _commands()
    assert {"adapt", "invert", "fill", "evaluate", "serve", "query", "study"} <= set(commands)
    assert sorted(p.stem.replace("_", "-") for p in COMMAND_SCRIPTS) == commands


def _run(script, argv, monkeypatch):
    monkeypatch.setattr(sys, "argv", [str(script), *argv])
    with pytest.raises(SystemExit) as exc:
        runpy.run_path(str(script), run_name="__main__")
    return exc.value.code


@pytest.mark.parametrize("script", COMMAND_SCRIPTS, ids=lambda p: p.name)
def test_usage_line_and_errors_show_the_scripts_own_name(script, monkeypatch, capsys):
    assert _run(script, ["--help"], monkeypatch) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: {script.name} ") and "tfaug" not in out.splitlines()[0]
    assert _run(script, ["--no-such-flag"], monkeypatch) == 2
    assert capsys.readouterr().err.startswith(f"{script.name}: error: ")


def test_a_script_runs_as_a_program():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    res = subprocess.run([sys.executable, str(SCRIPTS / "generate.py"), "--help"], capture_output=True, text=True,
                         env=env, timeout=120)
    assert res.returncode == 0 and res.stdout.startswith("usage: generate.py ")


def test_choose_strategy_ranks_on_validation(tmp_path, capsys, monkeypatch):
    import json

    run = tmp_path / "run"
    run.mkdir()
    rows = [{"setting": "k=1", "strategy": s, "repeat": r, "val_accuracy": v + r / 100}
            for r in range(2) for s, v in (("classic", 0.5), ("a", 0.6), ("b", 0.55), ("extra-real", 0.9))]
    (run / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (run / "study.json").write_text(json.dumps({"strategies": ["classic", "extra-real", "a", "b"]}))
    out = tmp_path / "choice.md"
    assert _run(SCRIPTS / "choose_strategy.py", [str(run), "--out", str(out)], monkeypatch) == 0
    printed = capsys.readouterr().out
    assert "chosen: a" in printed and "extra-real" not in printed and "| **a** | +10.00 | 2 |" in out.read_text()
    assert _run(SCRIPTS / "choose_strategy.py", [str(tmp_path)], monkeypatch) == 2
    assert "holds no results.jsonl" in capsys.readouterr().err
