"""The tfaug command: every subcommand end to end on tiny data, and one-line errors with exit status 2."""
import json
import subprocess
import sys

import numpy as np
import pytest

from tfaug.cli import main

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.fixture(scope="module")
def npz(tmp_path_factory):
    from tests_helpers import toy_images

    x, y = toy_images(n_per_class=30, num_classes=3, size=8)
    p = tmp_path_factory.mktemp("data") / "toy.npz"
    np.savez(p, x=x[..., 0], y=y)
    return p


@pytest.fixture(scope="module")
def gan_run(npz, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "gan"
    rc = main(["train-gan", "--dataset", f"npz:{npz}", "--per-class", "10", "--steps", "20", "--batch-size", "16",
               "--preset", "gan/quick", "--out", str(out), "--no-progress"])
    assert rc == 0
    return out


def _err(capsys):
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    return err


def test_train_gan_generate_export_classifier(gan_run, npz, tmp_path, capsys):
    assert (gan_run / "checkpoints" / "generator.keras").exists()
    assert main(["generate", str(gan_run), "--class-id", "2", "--n", "5", "--seed", "7", "--out", str(tmp_path / "g")]) == 0
    assert len(list((tmp_path / "g").glob("*.png"))) == 6  # 5 images + grid
    base = tmp_path / "sm"
    assert main(["export", str(gan_run), "--name", "toy", "--base", str(base)]) == 0
    assert main(["export", str(gan_run), "--name", "toy", "--base", str(base), "--version", "auto"]) == 0
    assert sorted(p.name for p in (base / "toy").iterdir()) == ["1", "2"]
    assert main(["generate", str(base / "toy"), "--class-id", "0", "--n", "3", "--out", str(tmp_path / "g2")]) == 0
    out = tmp_path / "clf"
    assert main(["train-classifier", "--dataset", f"npz:{npz}", "--per-class", "10", "--augment", "classic",
                 "--synthetic", str(gan_run), "--ratio", "0.5", "--steps", "20", "--out", str(out), "--no-progress",
                 "--classifier", "lenet5"]) == 0  # the cheapest network: choosing the preset trains up to 6 more
    text = capsys.readouterr().out
    assert "30 real + 0 duplicated + 15 generated" in text
    assert (out / "metrics.json").exists() and (out / "classifier.keras").exists()


def test_train_classifier_tops_the_minority_class_up(gan_run, npz, tmp_path, capsys):
    import json

    out = tmp_path / "imb"
    assert main(["train-classifier", "--dataset", f"npz:{npz}", "--per-class", "10", "--minority", "1", "--keep", "3",
                 "--synthetic", str(gan_run), "--steps", "2", "--out", str(out), "--no-progress",
                 "--classifier", "lenet5"]) == 0
    assert "23 real + 0 duplicated + 7 generated" in capsys.readouterr().out  # 3 minority images topped up to 10
    config = json.loads((out / "config.json").read_text())
    assert config["synthetic_per_class"] == [0, 7, 0] and config["ratio"] is None
    ratio = tmp_path / "ratio"
    assert main(["train-classifier", "--dataset", f"npz:{npz}", "--per-class", "10", "--minority", "1", "--keep", "3",
                 "--synthetic", str(gan_run), "--ratio", "1", "--steps", "2", "--out", str(ratio),
                 "--no-progress", "--classifier", "lenet5"]) == 0
    assert "23 real + 0 duplicated + 23 generated" in capsys.readouterr().out  # an explicit ratio keeps the balance


def test_train_classifier_mixes_generated_images_in_their_own_batches(gan_run, npz, tmp_path, capsys):
    out = tmp_path / "sepbn"
    assert main(["train-classifier", "--dataset", f"npz:{npz}", "--per-class", "10", "--augment",
                 "classic:glyphs+weight:0.5+sepbn", "--synthetic", str(gan_run), "--ratio", "0.5", "--steps", "2",
                 "--out", str(out), "--no-progress"]) == 0
    assert "30 real + 0 duplicated + 15 generated" in capsys.readouterr().out
    import keras

    model = keras.models.load_model(out / "classifier.keras")  # the real network, without the generated BN twin
    assert not [w for w in model.weights if "generated" in w.path]
    # soft targets: train-classifier trains the teacher (the control) on the real draw first; an alias standing for
    # a generator block takes its images from --synthetic, and without --synthetic it is one sentence
    from tfaug.synthesis.strategies.base import register_alias, unregister_alias

    register_alias("house-mix", "cdcgan:0.5+soft:2+classic:glyphs")
    try:
        assert main(["train-classifier", "--dataset", f"npz:{npz}", "--per-class", "10", "--augment", "house-mix",
                     "--synthetic", str(gan_run), "--steps", "2", "--out", str(tmp_path / "soft"),
                     "--no-progress"]) == 0
        printed = capsys.readouterr().out
        assert "training the teacher (the control: classic:glyphs on the 30 real images)" in printed
        assert "30 real + 0 duplicated + 15 generated" in printed
        rc = main(["train-classifier", "--dataset", f"npz:{npz}", "--per-class", "10", "--augment", "house-mix",
                   "--steps", "2", "--out", str(tmp_path / "nogen"), "--no-progress"])
        err = _err(capsys)
        assert rc == 2 and "pass --synthetic" in err and len(err.splitlines()) == 1
        assert not (tmp_path / "nogen").exists()
    finally:
        unregister_alias("house-mix")


def test_leaking_generator_is_refused(gan_run, npz, tmp_path, capsys):
    # Another split seed puts some of the generator's training images into this run's test set.
    rc = main(["train-classifier", "--dataset", f"npz:{npz}", "--per-class", "10", "--seed", "5",
               "--synthetic", str(gan_run), "--steps", "5", "--out", str(tmp_path / "c"), "--no-progress"])
    assert rc == 2 and "test images were used to train" in _err(capsys)


@pytest.mark.parametrize("argv, needle", [
    (["train-gan", "--dataset", "nosuch", "--out", "x"], "digits"),
    (["train-gan", "--dataset", "digits", "--per-class", "500", "--out", "{tmp}/r", "--steps", "1"], "fewer than"),
    (["generate", "{tmp}/missing", "--class-id", "0", "--out", "{tmp}/o"], "missing"),
    (["train-gan", "--dataset", "digits", "--steps", "0", "--out", "x"], ">= 1"),
    (["train-gan", "--dataset", "digits", "--minority", "3", "--out", "{tmp}/r2"], "go together"),
])
def test_bad_input_is_one_line_exit_2(argv, needle, tmp_path, capsys):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse errors
        rc = exc.code
    err = _err(capsys)
    assert rc == 2 and needle in err and len(err.splitlines()) == 1


def test_unreadable_run_dirs(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["export", str(empty), "--name", "x", "--base", str(tmp_path / "sm")]) == 2
    assert "config.json" in _err(capsys)
    (empty / "config.json").write_text("{not json")
    assert main(["generate", str(empty), "--class-id", "0", "--out", str(tmp_path / "o")]) == 2
    assert len(_err(capsys).splitlines()) == 1


def test_corrupt_image_is_skipped_by_name_and_class_balanced_batches_are_recorded(tmp_path, capsys):
    from PIL import Image

    from tests_helpers import toy_images

    x, y = toy_images(n_per_class=6, num_classes=2, size=8)
    for i, (img, c) in enumerate(zip(x, y)):
        (tmp_path / "imgs" / f"c{c}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(img[..., 0]).save(tmp_path / "imgs" / f"c{c}" / f"{i}.png")
    (tmp_path / "imgs" / "c0" / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.warns(UserWarning, match="broken.png"):
        rc = main(["train-gan", "--dataset", f"folder:{tmp_path / 'imgs'}", "--steps", "2", "--preset", "gan/quick",
                   "--out", str(tmp_path / "run"), "--no-progress", "--class-balanced"])
    assert rc == 0 and (tmp_path / "run" / "checkpoints" / "generator.keras").exists()
    assert json.loads((tmp_path / "run" / "config.json").read_text())["gan"]["class_balanced"] is True


def test_class_id_out_of_range(gan_run, tmp_path, capsys):
    assert main(["generate", str(gan_run), "--class-id", "9", "--out", str(tmp_path / "o")]) == 2
    assert "out of range" in _err(capsys)


def test_generate_with_truncation(gan_run, tmp_path, capsys):
    from PIL import Image

    assert main(["generate", str(gan_run), "--class-id", "1", "--n", "3", "--truncation", "0", "--out",
                 str(tmp_path / "t")]) == 0
    assert "with truncation 0" in capsys.readouterr().out
    images = [np.asarray(Image.open(tmp_path / "t" / f"class1_seed{s}.png")) for s in range(3)]
    assert all(np.array_equal(im, images[0]) for im in images)  # psi = 0: the class's average image for every seed
    with pytest.raises(SystemExit) as exc:  # rejected by the argument parser, before anything loads
        main(["generate", str(gan_run), "--class-id", "1", "--n", "3", "--truncation", "1.5", "--out",
              str(tmp_path / "bad")])
    assert exc.value.code == 2
    err = _err(capsys)
    assert "--truncation" in err and "[0, 1]" in err and len(err.splitlines()) == 1 and not (tmp_path / "bad").exists()


def test_console_script_help_and_exit_code():
    r = subprocess.run([sys.executable, "-m", "tfaug", "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "train-gan" in r.stdout and "demo" in r.stdout
    r = subprocess.run([sys.executable, "-m", "tfaug", "export"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
