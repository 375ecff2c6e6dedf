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
    one_hot: int = 0,
    balanced: bool = False,
    targets=None,
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
        one_hot: K >= 1 yields labels as float32 one-hot [B, K] targets (for losses with label smoothing or soft
            targets); 0 keeps int32 class ids.
        balanced: class-balanced sampling (needs ``repeat`` and ``shuffle``: an endless stream); deterministic given
            ``seed``.
        targets: optional float [N, K] per-image training targets (e.g. soft targets) yielded instead of the labels
            (``one_hot`` is then ignored; not with ``balanced``).

    Returns:
        A ``tf.data.Dataset`` yielding (float32 [B, H, W, C] in [-1, 1], int32 [B] or float32 [B, K]).

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
    if targets is not None:
        targets = np.asarray(targets, np.float32)
        if targets.ndim != 2 or len(targets) != n:
            raise TfaugError(f"pipeline targets must be [N, K] with N = {n} images, got shape {targets.shape}")
        if balanced:
            raise TfaugError("class-balanced sampling does not take per-image targets")

    if balanced:
        if not (repeat and shuffle):
            raise TfaugError("class-balanced sampling needs an endless shuffled stream (repeat=True, shuffle=True)")
        y32 = y.astype(np.int32)
        classes = np.unique(y32)
        streams = [_stream(tf, x[y32 == c], y32[y32 == c], cache, True, True, seed + int(c)) for c in classes]
        ds = tf.data.Dataset.sample_from_datasets(streams, weights=[1.0 / len(classes)] * len(classes), seed=seed)
    else:
        ds = _stream(tf, x, y.astype(np.int32) if targets is None else targets, cache, repeat, shuffle, seed)
    ds = ds.batch(int(batch_size) if repeat else min(int(batch_size), n), drop_remainder=drop_remainder)
    ds = map_augment(ds, augment)
    if one_hot and targets is None:
        ds = ds.map(lambda im, lab: (im, tf.one_hot(lab, int(one_hot), dtype=tf.float32)), num_parallel_calls=autotune)
    return ds.prefetch(autotune)


def map_augment(ds, augment: Callable[..., Any] | None):
    """``ds`` of (float32 image batches, anything) with ``augment`` applied to the images (``training=True`` when it
    accepts it) and clipped to [-1, 1]; sequential, so a stateful random augmenter draws in the same order every run.
    None returns ``ds`` unchanged."""
    if augment is None:
        return ds
    import tensorflow as tf

    kwargs = {"training": True} if _accepts_training(augment) else {}

    def _augment(im, lab):
        out = tf.cast(augment(im, **kwargs), tf.float32)
        return tf.clip_by_value(out, -1.0, 1.0), lab

    return ds.map(_augment)


def make_step_pipeline(images, labels, batch_size: int, *, seed: int, start_step: int = 0,
                       balanced: bool = False):
    """An endless ``tf.data.Dataset`` of training batches whose batch ``k`` depends only on (seed, k).

    The index stream is the concatenation of per-epoch permutations, epoch ``e`` shuffled by a stateless draw
    keyed by ``(seed, e)``; batch ``k`` holds stream positions ``[k * B, (k + 1) * B)``. A run resumed at step
    ``start_step`` therefore sees exactly the batches an uninterrupted run sees from that step on (a re-seeded
    ``shuffle`` would not), with no iterator state to checkpoint.

    With ``balanced`` (class-balanced sampling, for long-tailed sets: a tail class of 2 images is seen as often
    as a head class of 2,000) each of the B rows of batch ``k`` draws a class uniformly among the classes
    present, then one of that class's images uniformly, with replacement, from a stateless draw keyed by
    ``(seed, k)``: the same resume guarantee, but no epochs (an image may repeat within a batch).

    Args:
        images: uint8 [N, H, W, C] in [0, 255], or float [N, H, W, C] in [-1, 1]; N >= 1.
        labels: int [N] class ids.
        batch_size: images per batch, in [1, N].
        seed: any int in [-2**63, 2**63).
        start_step: index of the first batch yielded, >= 0.
        balanced: class-balanced rows instead of epochs of permutations (see above).

    Returns:
        A ``tf.data.Dataset`` yielding (float32 [B, H, W, C] in [-1, 1], int32 [B]) forever.

    Raises:
        TfaugError: shapes disagree, the set is empty, or batch_size/start_step is out of range.
    """
    import tensorflow as tf

    x = np.asarray(images)
    y = np.asarray(labels).reshape(-1)
    if x.ndim != 4 or len(x) != len(y) or len(x) == 0:
        raise TfaugError(f"pipeline needs [N, H, W, C] images with one label each, got {x.shape} and {y.shape}")
    n = len(x)
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or not 1 <= batch_size <= n:
        raise TfaugError(f"batch size must be an integer in [1, {n}], got {batch_size!r}")
    if isinstance(start_step, bool) or not isinstance(start_step, (int, np.integer)) or start_step < 0:
        raise TfaugError(f"start step must be an integer >= 0, got {start_step!r}")
    if x.dtype != np.uint8 and not np.issubdtype(x.dtype, np.floating):
        raise TfaugError(f"pipeline images must be uint8 or float in [-1, 1], got {x.dtype}")
    xs = scale_images(x)
    ys = tf.constant(y.astype(np.int32))
    if balanced:
        return _balanced_steps(tf, xs, ys, y, int(batch_size), int(seed), int(start_step))
    first_epoch, offset = divmod(int(start_step) * int(batch_size), n)

    def permutation(epoch):
        key = tf.stack([tf.constant(int(seed), tf.int64), epoch])
        return tf.data.Dataset.from_tensor_slices(tf.argsort(tf.random.stateless_uniform([n], key), stable=True))

    positions = tf.data.Dataset.counter(start=first_epoch).flat_map(permutation).skip(offset)
    batches = positions.batch(int(batch_size), drop_remainder=True)
    return batches.map(lambda i: (tf.gather(xs, i), tf.gather(ys, i))).prefetch(tf.data.AUTOTUNE)


def _balanced_steps(tf, xs, ys, y: np.ndarray, batch_size: int, seed: int, start_step: int):
    """Batch k of class-balanced rows: class ~ U(classes present), image ~ U(that class), keyed by (seed, k)."""
    order = np.argsort(y, kind="stable")                        # image indices grouped by class
    classes, starts, sizes = np.unique(y[order], return_index=True, return_counts=True)
    order_t, starts_t = tf.constant(order.astype(np.int64)), tf.constant(starts.astype(np.int64))
    sizes_t = tf.constant(sizes.astype(np.int64))
    k_classes = len(classes)

    def rows(step):
        key = tf.stack([tf.constant(seed, tf.int64), step])
        u = tf.random.stateless_uniform([batch_size, 2], key, dtype=tf.float64)
        c = tf.minimum(tf.cast(u[:, 0] * k_classes, tf.int64), k_classes - 1)
        size = tf.gather(sizes_t, c)
        j = tf.minimum(tf.cast(u[:, 1] * tf.cast(size, tf.float64), tf.int64), size - 1)
        i = tf.gather(order_t, tf.gather(starts_t, c) + j)
        return tf.gather(xs, i), tf.gather(ys, i)

    return tf.data.Dataset.counter(start=start_step).map(rows).prefetch(tf.data.AUTOTUNE)


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
