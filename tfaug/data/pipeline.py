"""tf.data input pipelines: scale to [-1, 1], cache, (repeat), shuffle, batch, (augment), prefetch.

TensorFlow is imported inside the functions so that importing :mod:`tfaug.data` stays cheap.
Augmentation runs on whole float batches after batching, never on evaluation data: callers pass
``augment=None`` for validation and test pipelines.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable

import numpy as np

from tfaug.errors import TfaugError


def scale_images(x):
    """uint8 images in [0, 255] -> float32 in [-1, 1]; float input is assumed to be in [-1, 1] already.

    Args:
        x: a tensor or array of any shape, uint8 or floating.

    Returns:
        A float32 tensor of the same shape with values in [-1, 1].
    """
    import tensorflow as tf

    x = tf.convert_to_tensor(x)
    if x.dtype == tf.uint8:
        return tf.cast(x, tf.float32) / 127.5 - 1.0
    return tf.cast(x, tf.float32)


def _accepts_training(fn: Callable) -> bool:
    """Whether ``fn`` can be called with ``training=...`` (Keras layers and models can)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # builtins without a signature: don't guess
        return False
    return any(p.name == "training" or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def make_pipeline(
    images,
    labels,
    batch_size: int,
    *,
    shuffle: bool = True,
    seed: int = 0,
    augment: Callable[..., Any] | None = None,
    repeat: bool = False,
    cache: bool = True,
    drop_remainder: bool = False,
    balanced: bool = False,
):
    """Build a batched ``tf.data.Dataset`` of (images, labels).

    Order: from_tensor_slices -> scale -> cache -> repeat -> shuffle -> batch -> augment -> prefetch.
    With ``balanced`` every class present gets its own such stream (cache -> repeat -> shuffle) and
    ``tf.data.Dataset.sample_from_datasets`` picks the class of each image uniformly at random (seeded): class-balanced
    sampling, in which a class of 12 images is seen as often as one of 500 (its images repeat more often).

    Args:
        images: uint8 [N, H, W, C] in [0, 255], or float [N, H, W, C] already in [-1, 1].
        labels: int [N] class ids.
        batch_size: images per batch, >= 1; capped at N when not repeating (so N < batch_size gives one batch).
        shuffle: shuffle with a buffer of N (a full shuffle), reshuffled each epoch.
        seed: shuffle seed; the same seed gives the same order (unless the program sets a different global
            TensorFlow seed, which tf.data combines with it).
        augment: optional callable (e.g. a Keras layer) applied to each float batch with ``training=True``
            when it accepts that argument; its output is clipped to [-1, 1]. Leave None for evaluation data.
        repeat: repeat forever (before shuffling, so epochs blend at their boundaries).
        cache: cache the scaled images in memory after the first pass.
        drop_remainder: drop a last, smaller batch.
        balanced: class-balanced sampling (needs ``repeat`` and ``shuffle``: an endless stream); deterministic given
            ``seed``.

    Returns:
        A ``tf.data.Dataset`` yielding (float32 [B, H, W, C] in [-1, 1], int32 [B]).

    Raises:
        TfaugError: shapes disagree, the set is empty, batch_size < 1, or ``balanced`` without repeat/shuffle.
    """
    import tensorflow as tf

    x = np.asarray(images)
    y = np.asarray(labels).reshape(-1)
    if x.ndim != 4:
        raise TfaugError(f"pipeline images must be [N, H, W, C], got shape {x.shape}")
    if len(x) != len(y) or len(x) == 0:
        raise TfaugError(f"pipeline needs one label per image and at least one image, got {len(x)} and {len(y)}")
    if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) or batch_size < 1:
        raise TfaugError(f"batch size must be an integer >= 1, got {batch_size!r}")
    if x.dtype != np.uint8:
        if not np.issubdtype(x.dtype, np.floating):
            raise TfaugError(f"pipeline images must be uint8 or float in [-1, 1], got {x.dtype}")
        x = x.astype(np.float32)
    n = len(x)
    autotune = tf.data.AUTOTUNE

    if balanced:
        if not (repeat and shuffle):
            raise TfaugError("class-balanced sampling needs an endless shuffled stream (repeat=True, shuffle=True)")
        y32 = y.astype(np.int32)
        classes = np.unique(y32)
        streams = [_stream(tf, x[y32 == c], y32[y32 == c], cache, True, True, seed + int(c)) for c in classes]
        ds = tf.data.Dataset.sample_from_datasets(streams, weights=[1.0 / len(classes)] * len(classes), seed=seed)
    else:
        ds = _stream(tf, x, y.astype(np.int32), cache, repeat, shuffle, seed)
    ds = ds.batch(int(batch_size) if repeat else min(int(batch_size), n), drop_remainder=drop_remainder)
    if augment is not None:
        kwargs = {"training": True} if _accepts_training(augment) else {}

        def _augment(im, lab):
            out = tf.cast(augment(im, **kwargs), tf.float32)
            return tf.clip_by_value(out, -1.0, 1.0), lab

        # sequential on purpose: a stateful random augmenter then draws in the same order every run
        ds = ds.map(_augment)
    return ds.prefetch(autotune)


def _stream(tf, x: np.ndarray, y: np.ndarray, cache: bool, repeat: bool, shuffle: bool, seed: int):
    """from_tensor_slices -> scale -> cache -> repeat -> shuffle (a full-size buffer) of one image set."""
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    ds = ds.map(lambda im, lab: (scale_images(im), lab), num_parallel_calls=tf.data.AUTOTUNE)
    if cache:
        ds = ds.cache()
    if repeat:
        ds = ds.repeat()
    if shuffle:
        ds = ds.shuffle(buffer_size=len(x), seed=seed, reshuffle_each_iteration=True)
    return ds
