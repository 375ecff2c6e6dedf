"""The jobs behind the subcommands, as a newcomer meets them (issue 20): a folder of 300x400 photos trained at full
size, classes by name, a refused non-empty --out, the --best-every hint, portable export metadata, quiet logs."""
import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tfaug.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """folder: cat/ and coffee/, 3 RGB 300x400 photos each (colours differ by class)."""
    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for c, cls in enumerate(("cat", "coffee")):
        (root / cls).mkdir()
        for i in range(3):
            img = rng.integers(0, 64, (300, 400, 3), dtype=np.uint8)
            img[..., c] += 150
            Image.fromarray(img).save(root / cls / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def photo_run(photos, tmp_path_factory):
    """A 1-step train-gan run on the 300x400 folder, and the warnings it gave."""
    out = tmp_path_factory.mktemp("runs") / "pets-gan"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rc = main(["train-gan", "--dataset", f"folder:{photos}", "--steps", "1", "--batch-size", "2", "--preset",
                   "gan/quick", "--out", str(out), "--no-progress"])
    assert rc == 0
    return out, [str(w.message) for w in caught if issubclass(w.category, UserWarning)]


def _err(capsys):
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    return err


def test_a_300x400_folder_trains_at_full_size_with_tensorboard_and_a_hint(photo_run):
    out, msgs = photo_run
    config = json.loads((out / "config.json").read_text())
    assert config["data"]["image_shape"] == [300, 400, 3]
    assert config["data"]["class_names"] == ["cat", "coffee"]
    assert not any("resized" in m for m in msgs)  # one size: nothing resized
    assert sum("nearly uniform grey after 1 steps" in m for m in msgs) == 1  # a 1-step run's grey final.png
    assert list((out / "tensorboard").glob("events.out.tfevents.*")) and (out / "losses.png").is_file()


def test_generate_by_class_name(photo_run, tmp_path, capsys):
    out, _ = photo_run
    assert main(["generate", str(out), "--class-id", "coffee", "--n", "2", "--out", str(tmp_path / "g")]) == 0
    assert "class 1 (coffee)" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "g").iterdir()) == ["class1_seed0.png", "class1_seed1.png", "grid.png"]
    with Image.open(tmp_path / "g" / "class1_seed0.png") as im:
        assert im.size == (400, 300)


@pytest.mark.parametrize("value", ["cofee", "2"])
def test_unknown_class_lists_the_valid_names(photo_run, tmp_path, capsys, value):
    out, _ = photo_run
    assert main(["generate", str(out), "--class-id", value, "--out", str(tmp_path / "g")]) == 2
    err = _err(capsys)
    assert len(err.splitlines()) == 1 and "0 cat, 1 coffee" in err and repr(value) in err
    assert not (tmp_path / "g").exists()


def test_generate_refuses_a_non_empty_out_unless_overwrite(photo_run, tmp_path, capsys):
    out, _ = photo_run
    target = tmp_path / "mine"
    target.mkdir()
    (target / "notes.txt").write_text("the user's own file")
    assert main(["generate", str(out), "--class-id", "cat", "--n", "1", "--out", str(target)]) == 2
    err = _err(capsys)
    assert "not empty" in err and "--overwrite" in err and sorted(os.listdir(target)) == ["notes.txt"]
    assert main(["generate", str(out), "--class-id", "cat", "--n", "1", "--out", str(target), "--overwrite"]) == 0
    assert sorted(os.listdir(target)) == ["class0_seed0.png", "grid.png", "notes.txt"]
    assert (target / "notes.txt").read_text() == "the user's own file"


def test_export_best_without_best_names_the_flag(photo_run, tmp_path, capsys):
    out, _ = photo_run
    assert main(["export", str(out), "--name", "x", "--base", str(tmp_path), "--checkpoint", "best"]) == 2
    err = _err(capsys)
    assert "--best-every" in err and len(err.splitlines()) == 1


def test_export_metadata_carries_no_local_path(photo_run, photos, tmp_path):
    from tfaug.export.savedmodel import read_metadata

    out, _ = photo_run
    assert main(["export", str(out), "--name", "pets", "--base", str(tmp_path / "sm")]) == 0
    meta = read_metadata(tmp_path / "sm" / "pets" / "1")
    text = json.dumps(meta)
    for local in (str(tmp_path), str(photos), str(out), os.path.expanduser("~"), str(Path.cwd())):
        assert local not in text
    assert meta["run_dir"] == "pets-gan" and meta["dataset"] == f"folder:{photos.name}"
    assert meta["class_names"] == ["cat", "coffee"]
    # the SavedModel's own metadata names its classes
    assert main(["generate", str(tmp_path / "sm" / "pets"), "--class-id", "coffee", "--n", "1", "--out",
                 str(tmp_path / "g")]) == 0
    assert (tmp_path / "g" / "class1_seed0.png").is_file()


def test_minority_by_name_with_image_size_and_channels(photos, tmp_path, capsys):
    out = tmp_path / "clf"
    with pytest.warns(UserWarning) as record:
        rc = main(["train-classifier", "--dataset", f"folder:{photos}", "--minority", "Coffee", "--keep", "1",
                   "--test-fraction", "0.34", "--image-size", "12x16", "--channels", "1", "--steps", "2",
                   "--batch-size", "2", "--out", str(out), "--no-progress"])
    assert rc == 0
    msgs = [str(w.message) for w in record]
    assert sum("became greyscale" in m for m in msgs) == 1 and sum("resized 6 of 6" in m for m in msgs) == 1
    config = json.loads((out / "config.json").read_text())
    assert config["data"]["minority"] == 1 and config["data"]["image_shape"] == [12, 16, 1]
    assert config["data"]["image_size"] == [12, 16] and config["data"]["channels"] == 1
    assert list((out / "tensorboard" / "train").glob("events.out.tfevents.*"))
    assert main(["train-classifier", "--dataset", f"folder:{photos}", "--minority", "dog", "--keep", "1",
                 "--out", str(tmp_path / "c2"), "--no-progress"]) == 2
    err = _err(capsys)
    assert "--minority 'dog'" in err and "0 cat, 1 coffee" in err


def test_make_demo_installs_without_the_test_extras(tmp_path):
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    venv = tmp_path / "venv"

    def dry_run(target):
        r = subprocess.run(["make", "-n", target, f"VENV={venv}"], cwd=ROOT, capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 0, r.stderr
        return [line for line in r.stdout.splitlines() if "pip install" in line and "--upgrade pip" not in line]

    demo = dry_run("demo")
    assert demo and not any("[test]" in line for line in demo) and any("-e ." in line for line in demo)
    assert any("[test]" in line for line in dry_run("test"))


def test_a_real_command_prints_only_tfaugs_lines(tmp_path):
    """python -m tfaug train-gan in a fresh process: TensorFlow's native log lines never reach stderr."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CUDA_VISIBLE_DEVICES": ""}
    for key in ("TFAUG_VERBOSE", "TF_CPP_MIN_LOG_LEVEL"):
        env.pop(key, None)
    r = subprocess.run([sys.executable, "-m", "tfaug", "train-gan", "--dataset", "digits", "--per-class", "2",
                        "--steps", "2", "--batch-size", "4", "--preset", "gan/quick", "--out", str(tmp_path / "r"),
                        "--no-progress"], capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.startswith("trained cdcgan on 20 images")
    for needle in ("absl", "cuInit", "oneDNN", "remapper", "cuda", "I0000", "E0000"):
        assert needle not in r.stderr, r.stderr[-3000:]
    assert all(line.startswith("tfaug") for line in r.stderr.splitlines() if line.strip()), r.stderr


@pytest.mark.parametrize("argv", [["--verbose", "generate", "r", "--class-id", "0", "--out", "o"],
                                  ["generate", "r", "--class-id", "0", "--out", "o", "--verbose"],
                                  ["train-gan", "--dataset", "digits", "--out", "o", "--verbose"]])
def test_verbose_is_accepted_before_or_after_the_command(argv):
    from tfaug.cli import build_parser

    assert build_parser().parse_args(argv).verbose is True
    plain = [a for a in argv if a != "--verbose"]
    assert build_parser().parse_args(plain).verbose is False
