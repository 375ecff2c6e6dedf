"""Runtime flags of `tfaug train-gan` / `tfaug train-classifier`: wiring, one-line errors, a mirrored CLI run."""
import json

import pytest

from tfaug.cli import build_parser, main
from tfaug.config import RuntimeConfig
from tfaug.errors import TfaugError

pytestmark = pytest.mark.filterwarnings("ignore")
FLAGS = ("--strategy", "--devices", "--mixed-precision", "--xla")


class Recorded(TfaugError):
    """Raised by the stand-ins below after recording their keyword arguments (main turns it into exit 2)."""


@pytest.fixture
def recorder(monkeypatch):
    import tfaug.training.classifier as classifier
    import tfaug.training.gan_runner as gan_runner

    calls = []

    def record(*args, **kwargs):
        calls.append(kwargs)
        raise Recorded("recorded")

    monkeypatch.setattr(gan_runner, "train_gan", record)
    monkeypatch.setattr(classifier, "train_classifier", record)
    return calls


@pytest.fixture
def tf_initialised():
    """TensorFlow's devices exist in this process (as they do after any earlier test), so the CPU can no
    longer be split into logical devices."""
    import tensorflow as tf

    return len(tf.config.list_logical_devices("CPU"))


def _run(argv, capsys):
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse errors
        rc = exc.code
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    return rc, err


def test_runtime_flags_are_on_both_training_commands_only():
    choices = build_parser()._subparsers._group_actions[0].choices
    for command in ("train-gan", "train-classifier"):
        text = choices[command].format_help()
        assert all(flag in text for flag in FLAGS), command
    assert "--strategy" not in choices["generate"].format_help()


@pytest.mark.parametrize("command, extra", [
    ("train-gan", ["--steps", "1"]),
    ("train-classifier", ["--steps", "1"]),
])
def test_runtime_is_passed_to_the_library(command, extra, recorder, tmp_path, capsys):
    base = [command, "--dataset", "digits", "--per-class", "3", "--out", str(tmp_path / "r"), "--no-progress", *extra]
    rc, err = _run(base + ["--mixed-precision", "fp16", "--xla"], capsys)
    assert rc == 2 and "recorded" in err
    rc, _ = _run(base, capsys)
    assert rc == 2
    assert recorder[0]["runtime"] == RuntimeConfig(mixed_precision="fp16", jit_compile=True)
    assert recorder[1]["runtime"] == RuntimeConfig()


@pytest.mark.parametrize("flags, want", [(["--mixed-precision"], "bf16"), (["--mixed-precision", "bf16"], "bf16"),
                                         (["--mixed-precision", "off"], "off")])
def test_bare_mixed_precision_picks_what_the_hardware_supports(flags, want, recorder, monkeypatch, tmp_path, capsys):
    from tfaug.utils import hardware

    monkeypatch.setattr(hardware, "cpu_info", lambda path="": {"model": "x", "flags": ["amx_bf16"], "logical_cpus": 2})
    monkeypatch.setattr(hardware, "gpu_compute_capabilities", lambda: [])
    base = ["train-gan", "--dataset", "digits", "--per-class", "3", "--out", str(tmp_path / "r"), "--no-progress"]
    rc, _ = _run(base + flags + ["--steps", "1"], capsys)
    assert rc == 2 and recorder[0]["runtime"] == RuntimeConfig(mixed_precision=want)  # recorded resolved
    monkeypatch.setattr(hardware, "cpu_info", lambda path="": {"model": "x", "flags": ["avx2"], "logical_cpus": 2})
    rc, err = _run(base + flags + ["--steps", "1"], capsys)
    if want == "bf16" and len(flags) == 1:  # no bf16 hardware and no GPU: one sentence, nothing trained
        assert rc == 2 and "lacks bfloat16 instructions" in err and len(err.splitlines()) == 1
        assert len(recorder) == 1
    else:  # an explicit choice is honoured on any machine
        assert rc == 2 and recorder[1]["runtime"] == RuntimeConfig(mixed_precision=want)


@pytest.mark.parametrize("flags, env, needle", [
    (["--devices", "2"], None, "devices is a setting of the mirrored strategy only"),
    (["--strategy", "default", "--devices", "3"], None, "devices is a setting of the mirrored strategy only"),
    (["--strategy", "multiworker"], None, "needs the TF_CONFIG environment variable"),
    (["--strategy", "multiworker"], "{not json", "TF_CONFIG is not valid JSON"),
    (["--strategy", "mirrored", "--devices", "4"], None, "already initialised"),
    (["--strategy", "nosuch"], None, "invalid choice"),
])
@pytest.mark.parametrize("command", ["train-gan", "train-classifier"])
def test_bad_runtime_is_one_line_exit_2_before_any_data(command, flags, env, needle, recorder, tf_initialised,
                                                        monkeypatch, tmp_path, capsys):
    assert tf_initialised < 4
    monkeypatch.delenv("TF_CONFIG", raising=False)
    if env is not None:
        monkeypatch.setenv("TF_CONFIG", env)
    # The dataset does not exist: the runtime error must come first, before anything is loaded or trained.
    argv = [command, "--dataset", f"npz:{tmp_path}/missing.npz", "--out", str(tmp_path / "r"), *flags]
    rc, err = _run(argv, capsys)
    assert rc == 2 and needle in err and len(err.splitlines()) == 1, err
    assert recorder == []


def test_mirrored_train_classifier_through_the_cli_in_a_fresh_interpreter(mirrored_check):
    """A fresh interpreter whose first work is ``tfaug train-classifier --strategy mirrored`` (as ``python -m
    tfaug`` runs it) splits the CPU into 2 logical devices before TensorFlow starts and trains. The run is the
    first step of tests/training/mirrored_check.py (the session fixture ``mirrored_check`` of conftest), whose
    interpreter then serves the other mirrored tests."""
    cli, out = mirrored_check[0]["cli"], mirrored_check[2]
    assert cli["rc"] == 0, cli["stderr"][-2000:]
    config = json.loads((out / "config.json").read_text())
    assert config["runtime"] == {"strategy": "mirrored", "devices": 0, "mixed_precision": "off", "jit_compile": False}
    assert (out / "classifier.keras").is_file() and "accuracy" in cli["stdout"]
