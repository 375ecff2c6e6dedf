"""Run directories: files written, resume continues instead of restarting, misuse gives clear errors."""
import json

import numpy as np
import pytest

from tfaug.config import GANConfig
from tfaug.errors import TfaugError
from tfaug.training.gan_runner import train_gan
from tfaug.utils.rundir import read_state

CFG = GANConfig(steps=6, batch_size=16, width=8, z_dim=8, sample_every=3, checkpoint_every=3, diffaugment="")


def test_run_dir_contents_and_resume(tmp_path, toy):
    x, y = toy
    run = train_gan(x, y, class_names=["a", "b", "c"], cfg=CFG, out=tmp_path / "run", data_info={"spec": "toy"},
                    progress=False, log_every=2)
    d = tmp_path / "run"
    assert run.step == 6 and read_state(d) == {"step": 6, "finished": True}
    cfg = json.loads((d / "config.json").read_text())
    assert cfg["kind"] == "cdcgan" and cfg["data"]["class_names"] == ["a", "b", "c"] and cfg["data"]["spec"] == "toy"
    assert [r["step"] for r in run.history] == [2, 4, 6]
    assert (d / "samples" / "step_000003.png").exists() and (d / "samples" / "final.png").exists()
    assert (d / "checkpoints" / "generator.keras").exists()
    before = run.model.generator.get_weights()

    # A new run into the same directory is refused; resume with more steps continues from step 6.
    with pytest.raises(TfaugError, match="--resume"):
        train_gan(x, y, class_names=["a", "b", "c"], cfg=CFG, out=d, progress=False)
    more = GANConfig(**{**CFG.__dict__, "steps": 8})
    resumed = train_gan(x, y, class_names=["a", "b", "c"], cfg=more, out=d, resume=True, progress=False, log_every=2)
    assert resumed.step == 8
    assert [r["step"] for r in resumed.history] == [2, 4, 6, 8]
    assert len((d / "history.jsonl").read_text().splitlines()) == 4


def test_restored_weights_equal_saved_weights(tmp_path, toy):
    """Resuming loads the checkpoint (networks and optimizer state), it does not reinitialise."""
    from tfaug.models.cgan import build_conditional_gan
    from tfaug.training.gan_runner import restore_checkpoint

    x, y = toy
    run = train_gan(x, y, class_names=["a", "b", "c"], cfg=CFG, out=tmp_path / "r", progress=False)
    fresh = build_conditional_gan((8, 8, 1), 3, CFG)
    assert not all(np.array_equal(a, b) for a, b in zip(fresh.generator.get_weights(), run.model.generator.get_weights()))
    restore_checkpoint(fresh, tmp_path / "r")
    for a, b in zip(fresh.ema_generator.get_weights(), run.model.ema_generator.get_weights()):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(fresh.d_optimizer.variables, run.model.d_optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_resume_without_run_is_an_error(tmp_path, toy):
    x, y = toy
    with pytest.raises(TfaugError, match="cannot resume"):
        train_gan(x, y, class_names=["a", "b", "c"], cfg=CFG, out=tmp_path / "none", resume=True, progress=False)
