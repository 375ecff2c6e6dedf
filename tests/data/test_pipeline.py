"""tf.data pipeline: scaling, batching, determinism and where augmentation applies."""
from __future__ import annotations

import numpy as np
import pytest

from tfaug.data.pipeline import make_pipeline, scale_images
from tfaug.errors import TfaugError


def _collect(ds):
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
    return xs, ys


def test_scale_images_range():
    x = np.array([0, 127, 255], np.uint8)
    np.testing.assert_allclose(scale_images(x).numpy(), [-1.0, 127 / 127.5 - 1.0, 1.0], atol=1e-6)
    f = np.array([-0.5, 0.5], np.float64)
    out = scale_images(f)
    assert out.dtype.name == "float32"
    np.testing.assert_allclose(out.numpy(), f)


def test_shapes_dtypes_ranges_and_batch_count(toy):
    images, labels = toy  # 60 images 8x8x1
    ds = make_pipeline(images, labels, 16, seed=0)
    xs, ys = _collect(ds)
    assert [len(b) for b in xs] == [16, 16, 16, 12]
    assert all(b.dtype == np.float32 and b.shape[1:] == (8, 8, 1) for b in xs)
    assert all(b.dtype == np.int32 for b in ys)
    allx = np.concatenate(xs)
    assert allx.min() >= -1.0 and allx.max() <= 1.0 and allx.min() < -0.5 and allx.max() > 0.5
    # a shuffle is a permutation: every (image, label) pair arrives exactly once
    np.testing.assert_array_equal(np.sort(np.concatenate(ys)), np.sort(labels))
    np.testing.assert_allclose(np.sort(allx.reshape(-1)), np.sort(images.reshape(-1) / 127.5 - 1.0), atol=1e-6)
    assert len(_collect(make_pipeline(images, labels, 16, drop_remainder=True))[0]) == 3


def test_batch_larger_than_dataset(toy):
    images, labels = toy
    xs, _ = _collect(make_pipeline(images, labels, 1000, drop_remainder=True))
    assert [len(b) for b in xs] == [60]


def test_no_shuffle_keeps_order(toy):
    images, labels = toy
    _, ys = _collect(make_pipeline(images, labels, 25, shuffle=False))
    np.testing.assert_array_equal(np.concatenate(ys), labels)


def test_deterministic_given_seed_and_reshuffles_each_epoch(toy):
    images, labels = toy
    first = np.concatenate(_collect(make_pipeline(images, labels, 60, seed=3))[1])
    again_ds = make_pipeline(images, labels, 60, seed=3)
    again = np.concatenate(_collect(again_ds)[1])
    np.testing.assert_array_equal(first, again)
    other = np.concatenate(_collect(make_pipeline(images, labels, 60, seed=4))[1])
    assert not np.array_equal(first, other)
    second_epoch = np.concatenate(_collect(again_ds)[1])
    assert not np.array_equal(first, second_epoch)
    assert not np.array_equal(first, labels)  # it does shuffle


def test_repeat_runs_past_one_epoch(toy):
    images, labels = toy
    batches = list(make_pipeline(images, labels, 32, repeat=True).take(5))
    assert len(batches) == 5 and all(len(y) == 32 for _, y in batches)


def test_augment_applied_only_when_passed_and_clipped(toy):
    images, labels = toy
    calls = []

    def double(x, training=False):
        calls.append(training)
        return x * 2.0 + 0.25  # would leave [-1, 1] without the clip

    plain = np.concatenate(_collect(make_pipeline(images, labels, 20, shuffle=False))[0])
    aug = np.concatenate(_collect(make_pipeline(images, labels, 20, shuffle=False, augment=double))[0])
    assert calls and all(calls)  # traced with training=True
    np.testing.assert_allclose(aug, np.clip(plain * 2.0 + 0.25, -1.0, 1.0), atol=1e-6)
    assert aug.min() >= -1.0 and aug.max() <= 1.0 and not np.allclose(aug, plain)


def test_augment_with_keras_layer_and_plain_callable(toy):
    import keras

    images, labels = toy
    flip = keras.layers.RandomFlip("horizontal_and_vertical", seed=1)
    xs, _ = _collect(make_pipeline(images, labels, 30, shuffle=False, augment=flip))
    plain = np.concatenate(_collect(make_pipeline(images, labels, 30, shuffle=False))[0])
    flipped = np.concatenate(xs)
    assert flipped.shape == plain.shape and not np.allclose(flipped, plain)
    neg = np.concatenate(_collect(make_pipeline(images, labels, 30, shuffle=False, augment=lambda x: -x))[0])
    np.testing.assert_allclose(neg, -plain)


def test_float_input_passes_through(toy):
    images, labels = toy
    f = images.astype(np.float32) / 127.5 - 1.0
    xs, _ = _collect(make_pipeline(f, labels, 60, shuffle=False))
    np.testing.assert_allclose(xs[0], f, atol=1e-6)


@pytest.mark.parametrize(
    "images, labels, batch",
    [
        (np.zeros((4, 8, 8), np.uint8), np.zeros(4), 2),
        (np.zeros((4, 8, 8, 1), np.uint8), np.zeros(3), 2),
        (np.zeros((4, 8, 8, 1), np.uint8), np.zeros(4), 0),
        (np.zeros((0, 8, 8, 1), np.uint8), np.zeros(0), 2),
    ],
)
def test_bad_inputs(images, labels, batch):
    with pytest.raises(TfaugError):
        make_pipeline(images, labels, batch)


def test_step_pipeline_batches_depend_only_on_seed_and_step():
    """Issue 19.5: batch k is the same whether the stream starts at 0 or at k; each epoch is a permutation."""
    from tfaug.data.pipeline import make_step_pipeline

    x = np.arange(10, dtype=np.uint8).reshape(10, 1, 1, 1)
    y = np.arange(10, dtype=np.int32)
    full = [lab.numpy() for _, lab in make_step_pipeline(x, y, 4, seed=7).take(8)]
    for start in (1, 3, 5):
        later = [lab.numpy() for _, lab in make_step_pipeline(x, y, 4, seed=7, start_step=start).take(8 - start)]
        for a, b in zip(full[start:], later):
            np.testing.assert_array_equal(a, b)
    stream = np.concatenate(full)  # 32 positions = 3 whole epochs + 2
    for e in range(3):
        assert sorted(stream[10 * e:10 * e + 10].tolist()) == list(range(10))
    assert not np.array_equal(stream[:10], stream[10:20])  # reshuffled each epoch
    images, _ = next(iter(make_step_pipeline(x, y, 4, seed=7)))
    np.testing.assert_allclose(images.numpy().reshape(-1), full[0] / 127.5 - 1.0, rtol=1e-6)
    other = np.concatenate([lab.numpy() for _, lab in make_step_pipeline(x, y, 4, seed=8).take(8)])
    assert not np.array_equal(other, stream)
    with pytest.raises(TfaugError, match="batch size"):
        make_step_pipeline(x, y, 11, seed=0)
    with pytest.raises(TfaugError, match="start step"):
        make_step_pipeline(x, y, 2, seed=0, start_step=-1)


def test_balanced_step_pipeline_draws_classes_uniformly_and_resumes():
    """Class-balanced GAN batches: a 2-image tail class is drawn as often as a 200-image head class; batch k
    depends only on (seed, k); each image's pixels match its label."""
    from tfaug.data.pipeline import make_step_pipeline

    y = np.concatenate([np.zeros(200), np.ones(40), np.full(2, 5)]).astype(np.int32)  # classes 0, 1, 5 present
    x = (y * 20).astype(np.uint8).reshape(-1, 1, 1, 1)
    stream = list(make_step_pipeline(x, y, 50, seed=3, balanced=True).take(60))
    labels = np.concatenate([lab.numpy() for _, lab in stream])
    share = np.array([np.mean(labels == c) for c in (0, 1, 5)])
    assert set(np.unique(labels)) == {0, 1, 5}
    np.testing.assert_allclose(share, 1 / 3, atol=0.03)  # 3000 draws: binomial sd 0.009
    pixels = np.concatenate([im.numpy().reshape(-1) for im, _ in stream])
    np.testing.assert_allclose(pixels, (labels * 20) / 127.5 - 1.0, rtol=1e-6)
    later = [lab.numpy() for _, lab in make_step_pipeline(x, y, 50, seed=3, start_step=40, balanced=True).take(20)]
    np.testing.assert_array_equal(np.concatenate(later), labels[40 * 50:])
    other = np.concatenate([lab.numpy() for _, lab in make_step_pipeline(x, y, 50, seed=4, balanced=True).take(4)])
    assert not np.array_equal(other, labels[:200])
    plain = np.concatenate([lab.numpy() for _, lab in make_step_pipeline(x, y, 50, seed=3).take(60)])
    assert np.mean(plain == 5) < 0.02  # the unbalanced stream keeps the data's frequencies (2 / 242)
