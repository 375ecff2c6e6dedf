"""The README's "Bring your own data" walk-through, executed as written on a tiny folder.

The commands are read from README.md itself (so the test breaks when the README and the CLI part ways); each runs
in-process through ``tfaug.cli.main`` with the user's folder replaced by a small class folder and a few flags
appended to make the training tiny (argparse keeps the last value of a repeated option; the classifiers are
LeNet-5s, the cheapest network to build, since each ``--augment classic`` command trains up to 6 more to choose its
preset). The ``tfaug enrich`` line is parsed here and run end to end by tests/enrich/test_run.py.
"""
import re
import shlex
import subprocess
import sys
from pathlib import Path

from tfaug.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
FAST = {"train-gan": ["--preset", "gan/quick", "--steps", "3", "--batch-size", "4"],
        "train-classifier": ["--steps", "3", "--batch-size", "4", "--classifier", "lenet5", "--no-progress"]}


def _section() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("## Bring your own data")
    return text[start:text.index("\n## ", start + 1)]


def _bash_blocks(section: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", section, re.S)


def _commands(block: str) -> list[list[str]]:
    out = []
    for line in block.splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("tfaug "):
            out.append(shlex.split(line)[1:])
    return out


def test_the_digits_folder_snippet_writes_20_images_per_class(tmp_path):
    block = next(b for b in _bash_blocks(_section()) if "python - <<'PY'" in b)
    code = block.split("python - <<'PY'\n", 1)[1].split("\nPY\n", 1)[0]
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True, timeout=120)
    counts = [len(list((tmp_path / "digits20" / f"digit{c}").glob("*.png"))) for c in range(10)]
    assert counts == [20] * 10
    enrich = [c for b in _bash_blocks(_section()) for c in _commands(b) if c[0] == "enrich"]
    assert enrich and all(build_parser().parse_args(c).command == "enrich" for c in enrich)


def test_the_single_steps_run_as_written(tmp_path, monkeypatch):
    from tests_helpers import toy_images
    from tfaug.utils.images import save_png

    x, y = toy_images(n_per_class=8, num_classes=4, size=16)  # class 3 exists: the README generates it
    folder = tmp_path / "scans"
    for i, (im, label) in enumerate(zip(x, y)):
        save_png(folder / f"class{label}" / f"{i:03d}.png", im)
    block = next(b for b in _bash_blocks(_section()) if "train-gan" in b)
    commands = _commands(block)
    assert [c[0] for c in commands] == ["train-gan", "train-classifier", "train-classifier", "export", "generate"]
    monkeypatch.chdir(tmp_path)
    for argv in commands:
        argv = [a.replace("~/scans", str(folder)) for a in argv] + FAST.get(argv[0], [])
        assert main(argv) == 0, argv
    assert (tmp_path / "saved_models" / "scans-gan" / "1").is_dir()
    pngs = {p.name for p in (tmp_path / "more-class-3").glob("*.png")}
    assert "grid.png" in pngs and len(pngs) == 64 + 1
