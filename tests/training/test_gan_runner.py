"""The generic zoo runner: run-dir contents, exact resume, checkpointed model state, best checkpoint, export."""
import json
import shutil

import numpy as np
import pytest

from tfaug.config import GANConfig
from tfaug.errors import TfaugError
from tfaug.training.gan_runner import restore_checkpoint, save_checkpoint, train_gan
from tfaug.utils.rundir import read_state

CFG = GANConfig(steps=6, batch_size=16, width=8, z_dim=8, sample_every=3, checkpoint_every=3, diffaugment="")
NAMES = ["a", "b", "c"]


@pytest.fixture(scope="module")
def cdcgan_run(tmp_path_factory):
    """A finished 6-step cdcgan run (and the number of prepare() calls it made)."""
    from tests_helpers import toy_images
    from tfaug.models.cgan import ConditionalGAN

    x, y = toy_images()
    calls = []
    original = ConditionalGAN.prepare
    ConditionalGAN.prepare = lambda self, images, labels, progress=False: calls.append((images.dtype, len(images)))
    try:
        d = tmp_path_factory.mktemp("gan") / "run"
        run = train_gan(x, y, class_names=NAMES, cfg=CFG, out=d, data_info={"spec": "toy"}, progress=False,
                        log_every=2)
    finally:
        ConditionalGAN.prepare = original
    return run, d, calls


def test_run_dir_contents(cdcgan_run):
    run, d, calls = cdcgan_run
    assert calls == [(np.float32, 60)]  # prepare ran once, on [-1, 1] floats
    assert run.step == 6 and read_state(d) == {"step": 6, "finished": True}
    cfg = json.loads((d / "config.json").read_text())
    assert cfg["kind"] == "cdcgan" and cfg["data"]["class_names"] == NAMES and cfg["data"]["spec"] == "toy"
    assert cfg["gan"]["ada_target"] == 0.0 and cfg["gan"]["options"] == {}
    assert [r["step"] for r in run.history] == [2, 4, 6]
    assert (d / "samples" / "step_000003.png").exists() and (d / "samples" / "final.png").exists()
    assert (d / "checkpoints" / "generator.keras").exists() and not (d / "checkpoints" / "best").exists()


def test_restored_weights_equal_saved_weights(cdcgan_run):
    """Restoring loads networks, optimizer state and the noise state; it does not reinitialise."""
    from tfaug.models.cgan import build_conditional_gan

    run, d, _ = cdcgan_run
    fresh = build_conditional_gan((8, 8, 1), 3, CFG)
    assert not all(np.array_equal(a, b) for a, b in zip(fresh.generator.get_weights(), run.model.generator.get_weights()))
    assert restore_checkpoint(fresh, d) == 6
    for a, b in zip(fresh.ema_generator.get_weights(), run.model.ema_generator.get_weights()):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(fresh.d_optimizer.variables, run.model.d_optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_array_equal(np.asarray(fresh.seed_generator.state), np.asarray(run.model.seed_generator.state))


def test_resume_continues_without_prepare(cdcgan_run, tmp_path, toy, monkeypatch):
    from tfaug.models.cgan import ConditionalGAN

    _, src, _ = cdcgan_run
    d = tmp_path / "copy"
    shutil.copytree(src, d)
    x, y = toy
    with pytest.raises(TfaugError, match="--resume"):  # a new run into a run directory is refused
        train_gan(x, y, class_names=NAMES, cfg=CFG, out=d, progress=False)
    monkeypatch.setattr(ConditionalGAN, "prepare", lambda *a, **k: pytest.fail("prepare ran on resume"))
    more = GANConfig(**{**CFG.__dict__, "steps": 8})
    resumed = train_gan(x, y, class_names=NAMES, cfg=more, out=d, resume=True, progress=False, log_every=2)
    assert resumed.step == 8 and [r["step"] for r in resumed.history] == [2, 4, 6, 8]
    assert len((d / "history.jsonl").read_text().splitlines()) == 4


def test_resume_without_run_is_an_error(tmp_path, toy):
    x, y = toy
    with pytest.raises(TfaugError, match="cannot resume"):
        train_gan(x, y, class_names=NAMES, cfg=CFG, out=tmp_path / "none", resume=True, progress=False)


def test_bad_option_fails_before_the_run_exists(tmp_path, toy):
    x, y = toy
    cfg = GANConfig(**{**CFG.__dict__, "options": {"nope": 1}})
    with pytest.raises(TfaugError, match="no option 'nope'"):
        train_gan(x, y, class_names=NAMES, cfg=cfg, out=tmp_path / "r", progress=False)
    assert not (tmp_path / "r" / "config.json").exists()


def test_dcgan_with_ada_best_checkpoint_export_and_state(tmp_path, toy):
    """Another zoo model through the same runner: ADA's p logged and checkpointed, best checkpoint, export."""
    from tfaug.export.savedmodel import export_run, load_run
    from tfaug.models.zoo import build_model
    from tfaug.synthesis.loader import load_generator

    x, y = toy
    cfg = GANConfig(model="dcgan", steps=4, batch_size=16, width=8, z_dim=8, diffaugment="translation",
                    ada_target=0.6, ada_interval=1, ada_kimg=0.05, best_every=2, sample_every=0, checkpoint_every=0)
    d = tmp_path / "dc"
    run = train_gan(x, y, class_names=NAMES, cfg=cfg, out=d, progress=False, log_every=1)
    ps = [r["ada_p"] for r in run.history]
    assert len(ps) == 4 and all(0.0 <= p <= 1.0 for p in ps)
    best = json.loads((d / "checkpoints" / "best.json").read_text())
    assert best["step"] in (2, 4) and best["metric"] == "pixel_kid" and np.isfinite(best["score"])
    assert (d / "checkpoints" / "best" / "generator.keras").is_file()

    # ADA's state is checkpoint state: a p set now survives a save/restore round trip.
    run.model.ada.p.assign(0.37)
    save_checkpoint(run.model, d, 4, finished=True)
    fresh = build_model("dcgan", (8, 8, 1), 3, cfg)
    assert fresh.ada_p == 0.0
    restore_checkpoint(fresh, d)
    assert fresh.ada_p == pytest.approx(0.37)
    assert int(fresh.ada.steps.numpy()) == 4

    ids, seeds = np.array([0, 1, 2, 2]), np.array([5, 6, 7, 8])
    want = run.model.sample(ids, seeds)
    np.testing.assert_allclose(load_generator(d).sample(ids, seeds), want, atol=1e-5)
    path = export_run(d, name="dc", version=1, base=tmp_path / "sm")
    # The SavedModel serves uint8 images: equal up to rounding to the 8-bit grid.
    np.testing.assert_allclose(load_generator(path).sample(ids, seeds), want, atol=1.01 / 127.5)
    best_net, _ = load_run(d, "best")
    assert best_net.output_shape == (None, 8, 8, 1)
    shutil.rmtree(d / "checkpoints" / "best")
    with pytest.raises(TfaugError, match="no best checkpoint"):
        export_run(d, name="dc", version=3, base=tmp_path / "sm", checkpoint="best")


def test_best_checkpoint_keeps_the_lowest_score(tmp_path):
    """Scores a fake model whose samples are near the training images at step 20 only."""
    import keras

    from tfaug.training.gan_runner import _BestScorer

    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (30, 8, 8, 1), dtype=np.uint8)
    real = images.astype(np.float32) / 127.5 - 1.0

    class Fake:
        sampling_network = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1)])

        def __init__(self, offset):
            self.offset = offset

        def sample(self, ids, seeds):
            return np.clip(real[rng.permutation(len(real))[:len(ids)]] + self.offset, -1, 1)

    scorer = _BestScorer(images, np.zeros(30, np.int32), seed=0, run_dir=tmp_path)
    far, near, middle = scorer.update(Fake(1.0), 10), scorer.update(Fake(0.0), 20), scorer.update(Fake(0.5), 30)
    assert near < middle < far
    best = json.loads((tmp_path / "checkpoints" / "best.json").read_text())
    assert best["step"] == 20 and best["score"] == pytest.approx(near)
    assert (tmp_path / "checkpoints" / "best" / "generator.keras").is_file()
    # A resumed run continues from the stored best.
    assert _BestScorer(images, np.zeros(30, np.int32), seed=0, run_dir=tmp_path).best["step"] == 20


def test_resume_after_a_kill_between_the_publish_renames(cdcgan_run, tmp_path, toy):
    """Issue 19.1: a kill between ``last -> .last.old-PID`` and ``tmp -> last`` leaves no ``last``; resume must use
    the newest complete checkpoint, keep the history and clean the leftovers on the next save."""
    _, src, _ = cdcgan_run
    d = tmp_path / "killed"
    shutil.copytree(src, d)
    ckpt = d / "checkpoints"
    shutil.copytree(ckpt / "last", ckpt / ".last.tmp-x")
    (ckpt / "last").rename(ckpt / ".last.old-1")
    (ckpt / ".tmp-999-generator.keras").write_bytes(b"partial")  # a kill during the generator save
    (ckpt / ".best.tmp-abc").mkdir()  # ... or during a best-checkpoint save
    assert read_state(d) == {"step": 6, "finished": True}
    x, y = toy
    more = GANConfig(**{**CFG.__dict__, "steps": 8, "checkpoint_every": 0})
    resumed = train_gan(x, y, class_names=NAMES, cfg=more, out=d, resume=True, progress=False, log_every=2)
    assert resumed.step == 8 and [r["step"] for r in resumed.history] == [2, 4, 6, 8]
    assert [json.loads(line)["step"] for line in (d / "history.jsonl").read_text().splitlines()] == [2, 4, 6, 8]
    assert sorted(p.name for p in ckpt.iterdir()) == ["generator.keras", "last"]
    assert read_state(d) == {"step": 8, "finished": True}


def test_resume_prefers_the_newest_complete_checkpoint(cdcgan_run, tmp_path):
    """An incomplete temporary checkpoint (no state.json, written last) is ignored; a complete newer one wins."""
    from tfaug.utils.rundir import find_checkpoint

    _, src, _ = cdcgan_run
    d = tmp_path / "r"
    shutil.copytree(src, d)
    ckpt = d / "checkpoints"
    shutil.copytree(ckpt / "last", ckpt / ".last.tmp-partial")
    (ckpt / ".last.tmp-partial" / "state.json").unlink()
    assert find_checkpoint(d)[0] == ckpt / "last"
    shutil.copytree(ckpt / "last", ckpt / ".last.tmp-newer")
    (ckpt / ".last.tmp-newer" / "state.json").write_text('{"step": 7, "finished": false}')
    path, state = find_checkpoint(d)
    assert path == ckpt / ".last.tmp-newer" and state["step"] == 7


def test_resume_refuses_when_only_broken_checkpoints_remain(cdcgan_run, tmp_path, toy):
    _, src, _ = cdcgan_run
    d = tmp_path / "broken"
    shutil.copytree(src, d)
    ckpt = d / "checkpoints"
    (ckpt / "last").rename(ckpt / ".last.old-1")
    (ckpt / ".last.old-1" / "optimizers.npz").unlink()
    before = (d / "history.jsonl").read_text()
    x, y = toy
    with pytest.raises(TfaugError, match="no complete checkpoint"):
        train_gan(x, y, class_names=NAMES, cfg=CFG, out=d, resume=True, progress=False)
    assert (d / "history.jsonl").read_text() == before  # history untouched


@pytest.mark.parametrize("model, balanced", [("cdcgan", False), ("dcgan", False), ("cdcgan", True)])
def test_resumed_run_is_bitwise_identical_to_an_uninterrupted_one(tmp_path, toy, model, balanced):
    """Issue 19.5: the input pipeline is indexed by step, so stop + resume gives the same weights, bit for bit.
    60 images in batches of 16 make epochs end mid-batch, and the stop at step 5 falls inside the second epoch.
    Class-balanced batches (issue 17's long-tail generators) keep the guarantee and are recorded in config.json."""
    x, y = toy
    cfg = GANConfig(model=model, steps=9, batch_size=16, width=8, z_dim=8, sample_every=2, checkpoint_every=3,
                    diffaugment="translation",  # sample grids and checkpoints on the way must not disturb anything
                    class_balanced=balanced)
    full = train_gan(x, y, class_names=NAMES, cfg=cfg, out=tmp_path / "full", progress=False)
    first = GANConfig(**{**cfg.__dict__, "steps": 5})
    train_gan(x, y, class_names=NAMES, cfg=first, out=tmp_path / "half", progress=False)
    resumed = train_gan(x, y, class_names=NAMES, cfg=cfg, out=tmp_path / "half", resume=True, progress=False)
    assert resumed.step == full.step == 9
    assert json.loads((tmp_path / "half" / "config.json").read_text())["gan"]["class_balanced"] is balanced
    for key, net in full.model.networks().items():
        for a, b in zip(net.get_weights(), resumed.model.networks()[key].get_weights()):
            np.testing.assert_array_equal(a, b)
