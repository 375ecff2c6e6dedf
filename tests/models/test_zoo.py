"""The zoo registry (names, options) and the ``tfaug train-gan --model NAME --option K=V`` command."""
import json
import subprocess
import sys

import pytest

from tfaug.errors import TfaugError
from tfaug.models.zoo import BUILDERS, build_model, model_names, take_options

ZOO = ("dcgan", "cdcgan", "acgan", "wgan-gp", "vae", "cvae", "bagan", "cvae-gan", "gan-bank", "stylegan")


def test_model_names_and_unknown_model():
    assert model_names() == ZOO and set(BUILDERS) == set(ZOO)
    with pytest.raises(TfaugError, match="unknown model 'gan9'.*dcgan, cdcgan"):
        build_model("gan9", (8, 8, 1), 2, None)


def test_take_options_converts_and_rejects():
    defaults = {"widest": 8, "d_norm": "batch", "label_smoothing": True, "lam": 0.5}
    got = take_options("m", {"widest": "4", "label_smoothing": "false", "lam": "2"}, defaults)
    assert got == {"widest": 4, "d_norm": "batch", "label_smoothing": False, "lam": 2.0}
    assert take_options("m", None, defaults) == defaults
    with pytest.raises(TfaugError, match="no option 'depth'.*d_norm, label_smoothing, lam, widest"):
        take_options("m", {"depth": 3}, defaults)
    with pytest.raises(TfaugError, match="'widest' of model 'm' must be a int"):
        take_options("m", {"widest": "wide"}, defaults)
    with pytest.raises(TfaugError, match="label_smoothing"):
        take_options("m", {"label_smoothing": "maybe"}, defaults)


def test_cli_lists_the_zoo_and_parses_options_without_tensorflow():
    code = ("import sys; from tfaug.cli import build_parser; "
            "a = build_parser().parse_args(['train-gan', '--dataset', 'digits', '--out', 'x', '--model', 'acgan', "
            "'--option', 'n_critic=5', '--option', 'lam = 2', '--ada-target', '0.6', '--r1', '0', '--best-every', '50']); "
            "print(a.model, a.option, a.ada_target, a.r1, a.best_every, 'tensorflow' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[0] == "acgan [('n_critic', '5'), ('lam', '2')] 0.6 0.0 50 False"
    r = subprocess.run([sys.executable, "-m", "tfaug", "train-gan", "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and all(name in r.stdout for name in ZOO)


def test_cli_rejects_bad_options(tmp_path, capsys):
    from tfaug.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["train-gan", "--dataset", "digits", "--out", str(tmp_path / "a"), "--option", "novalue"])
    assert exc.value.code == 2 and "KEY=VALUE" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train-gan", "--dataset", "digits", "--out", str(tmp_path / "a"), "--model", "stylegan9"])
    rc = main(["train-gan", "--dataset", "digits", "--per-class", "4", "--steps", "1", "--out", str(tmp_path / "b"),
               "--option", "bogus=1", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "no option 'bogus'" in err and "Traceback" not in err
    assert not (tmp_path / "b" / "config.json").exists()


def test_cli_trains_a_zoo_model_with_options_and_exports_best(tmp_path, capsys):
    from tfaug.cli import main

    run = tmp_path / "dc"
    rc = main(["train-gan", "--dataset", "digits", "--per-class", "4", "--model", "dcgan", "--steps", "2",
               "--batch-size", "8", "--option", "d_norm=none", "--option", "widest=2", "--r1", "1",
               "--diffaugment", "none", "--ema-decay", "0.5", "--best-every", "1", "--out", str(run), "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    assert "trained dcgan on 40 images for 2 steps" in capsys.readouterr().out
    gan = json.loads((run / "config.json").read_text())["gan"]
    assert gan["options"] == {"d_norm": "none", "widest": "2"} and gan["r1"] == 1.0 and gan["diffaugment"] == ""
    assert gan["ema_decay"] == 0.5 and gan["best_every"] == 1 and gan["model"] == "dcgan"
    assert main(["export", str(run), "--name", "dc", "--base", str(tmp_path / "sm"), "--checkpoint", "best"]) == 0
    meta = json.loads(next((tmp_path / "sm" / "dc").glob("*/assets/tfaug_metadata.json")).read_text())
    assert meta["checkpoint"] == "best" and meta["model_kind"] == "dcgan"
