"""``tfaug study``: --dry-run and bad configs (one line, exit 2, nothing written)."""
import json

import numpy as np
import pytest
from PIL import Image

from tfaug.cli import main

GOOD = """\
name: cli
dataset: digits
test: {per_class: 20}
per_class: [2, 5]
strategies: [baseline, classic, cdcgan]
repeats: 3
"""


def write(tmp_path, text, name="study.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_dry_run_prints_the_grid_and_trains_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["study", write(tmp_path, GOOD), "--out", str(out), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "cells: 18 = 2 settings x 3 strategies x 3 repeats" in text
    assert "already in" in text and "0 of 18 cells" in text
    assert not out.exists()

    out.mkdir()  # a partly done study: the dry run counts its cells
    rows = [{"setting": "k=2", "strategy": "baseline", "repeat": 0}, {"setting": "k=9", "strategy": "x", "repeat": 0}]
    (out / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["study", write(tmp_path, GOOD), "--out", str(out), "--dry-run"]) == 0
    assert "1 of 18 cells" in capsys.readouterr().out


def _empty_class_folder(tmp_path):
    root = tmp_path / "imgs"
    for name, n in (("a", 3), ("b", 0)):
        (root / name).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(root / name / f"{i}.png")
    return root


BAD = {
    "unknown key": ("name: x\ndataset: digits\nper_class: [2]\nstrategies: [baseline]\ncolour: red\n", "colour"),
    "unknown strategy": ("dataset: digits\nper_class: [2]\nstrategies: [baseline, magic]\n", "magic"),
    "k larger than the pool": ("dataset: digits\ntest: {per_class: 20}\nper_class: [500]\nstrategies: [baseline]\n",
                               "500"),
    "YAML syntax": ("dataset: digits\nper_class: [2\nstrategies: [baseline]\n", "YAML"),
    "bad number": ("dataset: digits\nper_class: [2]\nrepeats: -1\nstrategies: [baseline]\n", "repeats"),
}


@pytest.mark.parametrize("case", sorted(BAD) + ["missing file", "empty class"])
def test_bad_configs_exit_2_with_one_line_and_write_nothing(tmp_path, capsys, case):
    out = tmp_path / "out"
    if case == "missing file":
        path, needle = str(tmp_path / "nope.yaml"), "does not exist"
    elif case == "empty class":
        root = _empty_class_folder(tmp_path)
        path = write(tmp_path, f"dataset: folder:{root}\ntest: {{per_class: 1}}\nper_class: [1]\n"
                               "strategies: [baseline]\n")
        needle = "no readable images"
    else:
        text, needle = BAD[case]
        path = write(tmp_path, text)
    assert main(["study", path, "--out", str(out), "--no-progress"]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tfaug study: error: ") and needle in lines[0], captured.err
    assert "Traceback" not in captured.err and captured.out == ""
    assert not out.exists()


def test_help_lists_study_without_importing_tensorflow():
    import subprocess
    import sys

    code = ("import sys; from tfaug.cli import build_parser; build_parser(); "
            "print('tensorflow' in sys.modules)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "False"


def test_shipped_quickstart_runs_quick_through_the_cli(tmp_path, capsys):
    """The README's first study command, as a user types it (``--quick``): rows, summary and plots on disk."""
    from pathlib import Path

    config = Path(__file__).resolve().parents[2] / "configs" / "quickstart.yaml"
    out = tmp_path / "quickstart"
    assert main(["study", str(config), "--out", str(out), "--quick", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert sorted(r["strategy"] for r in rows) == ["baseline", "cdcgan", "classic"]
    assert all(0.0 <= r["accuracy"] <= 1.0 and r["setting"] == "k=5" for r in rows)
    assert (out / "summary.md").exists() and (out / "accuracy.png").stat().st_size > 0
    assert "summary.md" in printed


def test_sigterm_becomes_a_clean_interrupt_while_a_study_runs():
    import os
    import signal

    from tfaug.studies.cli import sigterm_as_interrupt

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt):
        with sigterm_as_interrupt():
            os.kill(os.getpid(), signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) is before  # restored afterwards
