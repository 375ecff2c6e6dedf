"""DiffAugment: differentiable augmentation for data-efficient GAN training.

Zhao, Liu, Lin, Zhu, Han (2020), "Differentiable Augmentation for Data-Efficient GAN Training", NeurIPS.
The same random, differentiable transforms are applied to the discriminator's real *and* fake inputs
(fresh randomness per call), so D cannot memorise a tiny training set while G still receives gradients
through the augmentation.

This follows the authors' TensorFlow reference (``DiffAugment_tf.py``), which works on images in [-1, 1]:

- ``color``: brightness ``x + U(-0.5, 0.5)``; saturation ``(x - mean_c) * U(0, 2) + mean_c`` (RGB only; a
  no-op for one channel, so it is skipped); contrast ``(x - mean) * U(0.5, 1.5) + mean``. All shifts are in
  [-1, 1] units as in the reference, and results are not clipped (clipping would stop gradients).
- ``translation``: an integer shift of up to 1/8 of the height and width (rounded; at least one pixel for
  images of 4+ pixels), uncovered pixels filled with 0, the mid-grey of [-1, 1], as the reference's zero
  padding does.
- ``cutout``: one square of half the height and width (rounded), centred at a uniformly random position
  (it may hang over the border), set to 0 (mid-grey) by multiplying with a mask, as in the reference.

Everything is batched tensor arithmetic (gather and masks, no Python loops over the batch), works inside
``tf.function`` with an unknown batch size, and draws randomness from ``keras.random`` with a
``keras.random.SeedGenerator``.
"""
from __future__ import annotations

import keras
import tensorflow as tf

from tfaug.errors import TfaugError

POLICIES = ("color", "translation", "cutout")


def parse_policy(policy: str | tuple | list | None) -> tuple[str, ...]:
    """Parse a DiffAugment policy into an ordered tuple of policy names.

    Args:
        policy: comma-separated names (``"translation,cutout"``), a tuple/list of names, or ``""``/``"none"``/
            ``None`` for no augmentation. Repeated names are kept once.

    Returns:
        E.g. ``("translation", "cutout")``; ``()`` when empty.

    Raises:
        TfaugError: an unknown policy name.
    """
    if policy is None:
        return ()
    items = policy.split(",") if isinstance(policy, str) else list(policy)
    names = [str(p).strip().lower() for p in items]
    names = [n for n in names if n and n != "none"]
    unknown = [n for n in names if n not in POLICIES]
    if unknown:
        raise TfaugError(f"unknown DiffAugment policy {unknown[0]!r}; valid policies: {', '.join(POLICIES)}")
    return tuple(dict.fromkeys(names))


def _batch_hw(x: tf.Tensor):
    """Batch size (tensor) and height/width (Python ints when static, else scalar tensors)."""
    dyn = tf.shape(x)
    h = x.shape[1] if x.shape[1] is not None else dyn[1]
    w = x.shape[2] if x.shape[2] is not None else dyn[2]
    return dyn[0], h, w


def _fraction(size, ratio: float):
    """``int(size * ratio + 0.5)`` for a Python int or an int32 tensor, as in the reference."""
    if isinstance(size, int):
        return int(size * ratio + 0.5)
    return tf.cast(tf.cast(size, tf.float32) * ratio + 0.5, tf.int32)


def _uniform(x: tf.Tensor, seed, minval: float, maxval: float) -> tf.Tensor:
    """One U(minval, maxval) draw per image, shaped [B, 1, 1, 1] to broadcast over the image."""
    shape = (tf.shape(x)[0], 1, 1, 1)
    return keras.random.uniform(shape, minval=minval, maxval=maxval, dtype=x.dtype, seed=seed)


def rand_color(x: tf.Tensor, seed=None) -> tf.Tensor:
    """Random brightness, saturation (C == 3 only) and contrast; float images [B, H, W, C] in ~[-1, 1]."""
    x = x + _uniform(x, seed, -0.5, 0.5)
    if x.shape[-1] != 1:
        mean_c = tf.reduce_mean(x, axis=3, keepdims=True)
        x = (x - mean_c) * _uniform(x, seed, 0.0, 2.0) + mean_c
    mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
    return (x - mean) * _uniform(x, seed, 0.5, 1.5) + mean


def _shift_axis(x: tf.Tensor, shift: tf.Tensor, size, axis: int) -> tf.Tensor:
    """Shift every image along ``axis`` (1 = rows, 2 = columns) by its own ``shift`` [B, 1], zero-filled."""
    src = tf.range(size, dtype=tf.int32)[None, :] + shift  # [B, size]: the source row/column of each output
    valid = tf.logical_and(src >= 0, src < size)
    out = tf.gather(x, tf.clip_by_value(src, 0, size - 1), axis=axis, batch_dims=1)
    mask = tf.cast(valid, x.dtype)
    mask = mask[:, :, None, None] if axis == 1 else mask[:, None, :, None]
    return out * mask


def rand_translation(x: tf.Tensor, seed=None, ratio: float = 0.125) -> tf.Tensor:
    """Shift each image by integers in [-r, r] (r = round(ratio * size)) per axis; uncovered pixels = 0."""
    b, h, w = _batch_hw(x)
    sh, sw = _fraction(h, ratio), _fraction(w, ratio)
    ty = keras.random.randint((b, 1), -sh, sh + 1, dtype="int32", seed=seed)
    tx = keras.random.randint((b, 1), -sw, sw + 1, dtype="int32", seed=seed)
    return _shift_axis(_shift_axis(x, ty, h, axis=1), tx, w, axis=2)


def rand_cutout(x: tf.Tensor, seed=None, ratio: float = 0.5) -> tf.Tensor:
    """Zero one square of ``round(ratio * size)`` pixels per side at a random centre in each image."""
    b, h, w = _batch_hw(x)
    ch, cw = _fraction(h, ratio), _fraction(w, ratio)
    # Centre range as in the reference: [0, size + 1 - cut % 2), so the square may hang over any edge.
    cy = keras.random.randint((b, 1), 0, h + 1 - ch % 2, dtype="int32", seed=seed)
    cx = keras.random.randint((b, 1), 0, w + 1 - cw % 2, dtype="int32", seed=seed)
    rows = tf.range(h, dtype=tf.int32)[None, :] - (cy - ch // 2)  # [B, H]: row offset inside the square
    cols = tf.range(w, dtype=tf.int32)[None, :] - (cx - cw // 2)
    in_rows = tf.logical_and(rows >= 0, rows < ch)
    in_cols = tf.logical_and(cols >= 0, cols < cw)
    inside = tf.logical_and(in_rows[:, :, None], in_cols[:, None, :])  # [B, H, W]
    return x * (1.0 - tf.cast(inside, x.dtype))[..., None]


_OPS = {"color": rand_color, "translation": rand_translation, "cutout": rand_cutout}


def diff_augment(x, policy: str | tuple, seed_generator: keras.random.SeedGenerator | None = None) -> tf.Tensor:
    """Apply DiffAugment to a batch; differentiable with respect to ``x``.

    Args:
        x: float images [B, H, W, C] in [-1, 1] (C = 1 or 3; B may be unknown inside ``tf.function``).
        policy: anything :func:`parse_policy` accepts; applied in the given order.
        seed_generator: a ``keras.random.SeedGenerator``, required for reproducibility and for use inside
            ``tf.function``/``train_step`` (create it once, e.g. in the model's ``__init__``). ``None`` uses
            Keras' global generator (eager use only).

    Returns:
        A tensor of ``x``'s shape and dtype; the input itself when the policy is empty. ``color`` may leave
        [-1, 1] (by at most ±0.5 brightness and 1.5x contrast/2x saturation around the mean); translation
        and cutout only fill with 0.
    """
    names = parse_policy(policy)
    x = tf.convert_to_tensor(x)
    if not names:
        return x
    if x.shape.rank != 4:
        raise TfaugError(f"diff_augment needs a batch of images [B, H, W, C], got shape {x.shape}")
    for name in names:
        x = _OPS[name](x, seed_generator)
    return x


# -- ADA: adaptive discriminator augmentation ------------------------------------------------------------
# Karras, Aittala, Hellsten, Laine, Lehtinen, Aila (2020), "Training Generative Adversarial Networks with
# Limited Data", NeurIPS. The augmentation pipeline here is DiffAugment's policies, each applied per image
# with probability p; p follows the overfitting heuristic r_t = E[sign(D(real))].

# Images (in thousands) over which p may move from 0 to 1. Karras et al. use 500 for runs of 10^4 kimg; tfaug's
# small-data runs see 10^1-10^2 kimg, so p must be able to move faster to matter within one run.
DEFAULT_ADA_KIMG = 100.0


def ada_update(p, r_t, target: float, n_images, ada_kimg: float = DEFAULT_ADA_KIMG):
    """One ADA adjustment of the augmentation probability (Karras et al. 2020, sec. 3, "adaptive augmentation").

    ``p <- clip(p + sign(r_t - target) * n_images / (ada_kimg * 1000), 0, 1)``: D looks overconfident on reals
    (``r_t`` above ``target``) -> augment more, otherwise less.

    Args:
        p: current probability in [0, 1] (float or tensor).
        r_t: ``E[sign(D(real))]`` over the images seen since the last adjustment, in [-1, 1].
        target: the desired ``r_t`` in (0, 1) (0.6 in the paper).
        n_images: images seen since the last adjustment (``batch * interval``), >= 0.
        ada_kimg: speed: thousands of images for p to move by 1, > 0.

    Returns:
        The new probability in [0, 1] (same kind as the inputs: NumPy/Python or tensor).
    """
    if isinstance(p, tf.Tensor) or isinstance(r_t, tf.Tensor) or isinstance(n_images, tf.Tensor):
        p = tf.cast(p, tf.float32)
        step = tf.sign(tf.cast(r_t, tf.float32) - target) * tf.cast(n_images, tf.float32) / (ada_kimg * 1000.0)
        return tf.clip_by_value(p + step, 0.0, 1.0)
    import numpy as np

    return float(np.clip(p + np.sign(r_t - target) * n_images / (ada_kimg * 1000.0), 0.0, 1.0))


def adaptive_augment(x, policy, p, seed_generator: keras.random.SeedGenerator | None = None) -> tf.Tensor:
    """DiffAugment's ``policy`` ops, each applied to each image independently with probability ``p``.

    Differentiable with respect to ``x`` (a per-image select between the op's output and its input).

    Args:
        x: float images [B, H, W, C] in [-1, 1].
        policy: anything :func:`parse_policy` accepts; empty means all of :data:`POLICIES`.
        p: probability in [0, 1] (scalar float or tensor); 0 returns ``x`` unchanged, 1 is :func:`diff_augment`
            (up to random draws).
        seed_generator: a ``keras.random.SeedGenerator`` (required inside ``tf.function``).

    Returns:
        A tensor of ``x``'s shape and dtype.
    """
    names = parse_policy(policy) or POLICIES
    x = tf.convert_to_tensor(x)
    if x.shape.rank != 4:
        raise TfaugError(f"adaptive_augment needs a batch of images [B, H, W, C], got shape {x.shape}")
    p = tf.cast(p, x.dtype)
    for name in names:
        apply = keras.random.uniform((tf.shape(x)[0], 1, 1, 1), dtype=x.dtype, seed=seed_generator) < p
        x = tf.where(apply, _OPS[name](x, seed_generator), x)
    return x


class AdaController:
    """ADA's state and update as variables, usable inside a compiled ``train_step`` and under ``tf.distribute``.

    Holds ``p`` (augmentation probability), the running sum of ``sign(D(real))``, the images counted since the
    last adjustment and a step counter, all non-trainable ``keras.Variable``s (``variables()``; a checkpoint that
    saves them resumes with the same p). :meth:`observe` is called once per D step; every ``interval`` steps
    it applies :func:`ada_update` and clears the sums. Under ``tf.distribute`` each replica's sign sum and image
    count are all-reduced before they are accumulated, so every replica holds (and writes) the same values.

    Args:
        target: desired ``E[sign(D(real))]``, in (0, 1).
        interval: D steps between adjustments, >= 1 (4 in the paper).
        ada_kimg: adjustment speed (see :func:`ada_update`), > 0.
        initial_p: starting probability in [0, 1].
    """

    def __init__(self, target: float = 0.6, interval: int = 4, ada_kimg: float = DEFAULT_ADA_KIMG,
                 initial_p: float = 0.0):
        if not 0.0 < float(target) < 1.0:
            raise TfaugError(f"ADA target must be in (0, 1), got {target!r}")
        if int(interval) < 1:
            raise TfaugError(f"ADA interval must be >= 1, got {interval!r}")
        if not float(ada_kimg) > 0:
            raise TfaugError(f"ADA speed ada_kimg must be > 0, got {ada_kimg!r}")
        self.target, self.interval, self.ada_kimg = float(target), int(interval), float(ada_kimg)
        # Replicas all hold the same values (sums are all-reduced in observe), so the first replica's write is kept.
        first = "only_first_replica"
        self.p = keras.Variable(float(initial_p), dtype="float32", trainable=False, name="ada_p", aggregation=first)
        self.sign_sum = keras.Variable(0.0, dtype="float32", trainable=False, name="ada_sign_sum", aggregation=first)
        self.count = keras.Variable(0.0, dtype="float32", trainable=False, name="ada_count", aggregation=first)
        self.steps = keras.Variable(0, dtype="int64", trainable=False, name="ada_steps", aggregation=first)

    def variables(self) -> dict[str, keras.Variable]:
        """Every state variable by name (checkpoint keys)."""
        return {"ada_p": self.p, "ada_sign_sum": self.sign_sum, "ada_count": self.count, "ada_steps": self.steps}

    def observe(self, real_logits) -> tf.Tensor:
        """Account one D step's logits on (augmented) reals ``[N]``/``[N, 1]``; returns p after the step."""
        logits = tf.reshape(tf.cast(real_logits, tf.float32), [-1])
        local = tf.stack([tf.reduce_sum(tf.sign(logits)), tf.cast(tf.size(logits), tf.float32)])
        ctx = tf.distribute.get_replica_context()
        if ctx is not None:  # None in a cross-replica context; the default context's all_reduce is the identity
            local = ctx.all_reduce(tf.distribute.ReduceOp.SUM, local)
        sign_sum, count = self.sign_sum.value + local[0], self.count.value + local[1]
        steps = self.steps.value + 1
        due = tf.equal(steps % self.interval, 0)
        r_t = sign_sum / tf.maximum(count, 1.0)
        self.p.assign(tf.where(due, ada_update(self.p.value, r_t, self.target, count, self.ada_kimg), self.p.value))
        self.sign_sum.assign(tf.where(due, 0.0, sign_sum))
        self.count.assign(tf.where(due, 0.0, count))
        self.steps.assign(steps)
        return self.p.value


__all__ = ["POLICIES", "parse_policy", "diff_augment", "rand_color", "rand_translation", "rand_cutout",
           "DEFAULT_ADA_KIMG", "ada_update", "adaptive_augment", "AdaController"]
