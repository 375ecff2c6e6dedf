"""Small helpers shared by tests (importable because tests/ is on sys.path via conftest's rootdir)."""
import numpy as np


def toy_split(toy, test_every: int = 3):
    """Split the toy set: every ``test_every``-th image is test."""
    x, y = toy
    idx = np.arange(len(x))
    te = idx % test_every == 0
    return (x[~te], y[~te]), (x[te], y[te])


def toy_images(n_per_class: int = 20, num_classes: int = 3, size: int = 8, channels: int = 1, seed: int = 0):
    """A trivially separable image set: class c lights up horizontal band c. Returns uint8 [N,H,W,C], int32 [N]."""
    rng = np.random.default_rng(seed)
    band = size // num_classes
    xs, ys = [], []
    for c in range(num_classes):
        img = np.zeros((n_per_class, size, size, channels), np.float32)
        img[:, c * band : (c + 1) * band] = 1.0
        img += rng.normal(0, 0.08, img.shape)
        xs.append(np.clip(img * 255, 0, 255).astype(np.uint8))
        ys.append(np.full(n_per_class, c, np.int32))
    return np.concatenate(xs), np.concatenate(ys)


def check_sampling_contract(model, num_classes: int):
    """Zoo contract of ``model.sample``: shape, float32 range [-1, 1], determinism per (class, seed), batch
    independence and class-id checking. Returns the sampled images of classes ``0..K-1`` x seeds ``(3, 11)``."""
    import pytest

    from tfaug.errors import TfaugError

    ids = np.repeat(np.arange(num_classes, dtype=np.int32), 2)
    seeds = np.tile(np.array([3, 11], np.int64), num_classes)
    imgs = model.sample(ids, seeds)
    assert imgs.shape == (len(ids), *model.image_shape) and imgs.dtype == np.float32
    assert imgs.min() >= -1.0 and imgs.max() <= 1.0 and np.isfinite(imgs).all()
    np.testing.assert_array_equal(model.sample(ids, seeds), imgs)  # deterministic
    alone = model.sample(ids[-1:], seeds[-1:])  # batch-independent
    np.testing.assert_allclose(alone[0], imgs[-1], rtol=1e-5, atol=1e-5)
    assert not np.allclose(imgs[0], imgs[1])  # the seed matters
    with pytest.raises(TfaugError):
        model.sample([num_classes], [0])
    return imgs


def check_run_round_trip(tmp_path, images, labels, cfg):
    """Train ``cfg.model`` briefly with the runner, then check that ``checkpoints/generator.keras`` loads with
    ``load_generator`` and exports with ``export_run``, both giving the images of ``model.sample``.
    Returns the ``GANRun``."""
    from tfaug.export.savedmodel import export_run
    from tfaug.synthesis.loader import load_generator
    from tfaug.training.gan_runner import train_gan

    num_classes = int(labels.max()) + 1
    run = train_gan(images, labels, class_names=[f"c{i}" for i in range(num_classes)], cfg=cfg,
                    out=tmp_path / "run", progress=False)
    assert run.step == cfg.steps and (run.run_dir / "checkpoints" / "generator.keras").is_file()
    ids = np.arange(num_classes, dtype=np.int32)
    seeds = np.arange(num_classes, dtype=np.int64) + 5
    want = run.model.sample(ids, seeds)
    np.testing.assert_allclose(load_generator(run.run_dir).sample(ids, seeds), want, rtol=1e-5, atol=1e-5)
    exported = export_run(run.run_dir, "m", base=tmp_path / "sm")
    # The SavedModel returns uint8 images: equal up to the quantisation step.
    np.testing.assert_allclose(load_generator(exported).sample(ids, seeds), want, atol=1.0 / 127.5 + 1e-6)
    return run


TINY_Z_DIM, TINY_K, TINY_SHAPE = 6, 3, (8, 8, 1)
TINY_NAMES = ["zero", "one", "two"]


def tiny_generator(seed: int = 0):
    """A tiny sampling network ``[z (6), class_id] -> [N, 8, 8, 1]`` in [-1, 1] of standard layers only (export and
    serving tests)."""
    import keras

    keras.utils.set_random_seed(seed)
    z = keras.Input((TINY_Z_DIM,), name="z")
    c = keras.Input((), dtype="int32", name="class_id")
    h = keras.layers.Concatenate()([z, keras.layers.Embedding(TINY_K, 4)(c)])
    h = keras.layers.Reshape((4, 4, 2))(keras.layers.Dense(32)(h))
    h = keras.layers.UpSampling2D()(h)
    h = keras.layers.Conv2D(1, 3, padding="same", activation="tanh")(h)
    return keras.Model([z, c], h)
