"""The generator contract of docs/design.md in one place: ``(class_id, seed) -> image``, the same in any batch.

Everything that samples a generator (``ConditionalGAN.sample``, ``synthesis.KerasGenerator``, the exported
SavedModel signatures) goes through these functions, so an image made in training, in a study and by TF Serving
is the same image:

- :func:`latent_from_seeds` draws each latent with a stateless RNG keyed by its own seed;
- :func:`generator_images` runs a generator on those latents in inference mode (graph-safe);
- :func:`validate_requests` checks a request before anything runs (one-sentence TfaugErrors).
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfaug.errors import TfaugError

# Second word of the stateless seed pair: fixes the latent stream so that seed s always maps to one latent.
_LATENT_STREAM = 0x7FA0


def _latents(seeds: tf.Tensor, z_dim: int) -> tf.Tensor:
    stream = tf.constant(_LATENT_STREAM, tf.int64)

    def one(seed):
        return tf.random.stateless_normal([z_dim], seed=tf.stack([seed, stream]))

    return tf.map_fn(one, seeds, fn_output_signature=tf.TensorSpec([z_dim], tf.float32))


# Eager callers get the compiled loop instead of a Python-level map_fn (one retrace per z_dim).
_latents_graph = tf.function(_latents, reduce_retracing=True)


def latent_from_seeds(seeds, z_dim: int) -> tf.Tensor:
    """Standard-normal latents, one row per seed, each row a function of its own seed only.

    Args:
        seeds: int ``[N]`` (cast to int64); any N, including unknown inside ``tf.function``.
        z_dim: latent size.

    Returns:
        float32 ``[N, z_dim]``; ``latent_from_seeds([5], d)[0] == latent_from_seeds([1, 5, 9], d)[1]`` exactly.
    """
    seeds = tf.reshape(tf.cast(seeds, tf.int64), [-1])
    if tf.executing_eagerly():
        return _latents_graph(seeds, int(z_dim))
    return _latents(seeds, int(z_dim))


def generator_images(model, z_dim: int, class_id, seed, truncation=None):
    """Generator output for (class_id, seed) pairs; graph-safe (used inside tf.function).

    Args:
        model: functional generator, inputs ``[z float32 [N, z_dim], class_id int32 [N]]``, or ``[z]`` only
            (unconditional generators, which ignore class ids), or ``[z, class_id, truncation float32 [N]]``
            (style-based generators that truncate in their own latent space, e.g. ``stylegan``).
        z_dim: latent size.
        class_id: int32 [N].
        seed: int64 [N]; latent i is keyed by seed i only.
        truncation: optional float32 [N] (or scalar) truncation psi in [0, 1]; 1 (or None) means none.
            A three-input model receives it; any other model gets ``psi * z`` (truncation towards the mean of
            z's prior, the only latent mean such a model has). psi = 0 gives each class's "average" image.

    Returns:
        float32 [N, H, W, C] in [-1, 1].
    """
    z = latent_from_seeds(seed, z_dim)
    if truncation is not None:
        # A scalar or [1] psi applies to every row; an [N] psi is per row.
        psi = tf.reshape(tf.cast(truncation, tf.float32), [-1]) * tf.ones(tf.shape(z)[:1], tf.float32)
    if len(model.inputs) == 3:
        if truncation is None:
            psi = tf.ones(tf.shape(z)[:1], tf.float32)
        x = model([z, class_id, psi], training=False)
    else:
        if truncation is not None:
            z = z * psi[:, None]
        x = model(z, training=False) if len(model.inputs) == 1 else model([z, class_id], training=False)
    return tf.cast(x, tf.float32)


def takes_truncation(model) -> bool:
    """True when ``model`` (a sampling network) truncates in its own latent space (three inputs)."""
    return len(model.inputs) == 3


def validate_requests(class_ids, seeds, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Check and convert a request to ``(int32 [N], int64 [N])``; a scalar class id applies to every seed.

    Raises:
        TfaugError: non-integer or non-vector inputs, different lengths, or a class id out of range.
    """
    cls = np.asarray(class_ids)
    seeds = np.asarray(seeds)
    if seeds.ndim != 1:
        raise TfaugError(f"seeds must be a 1-D integer vector, got shape {seeds.shape}.")
    if cls.ndim == 0:
        cls = np.full(seeds.shape, cls)
    if cls.ndim != 1 or len(cls) != len(seeds):
        raise TfaugError(f"class_ids {cls.shape} and seeds {seeds.shape} must be 1-D vectors of the same length.")
    for what, arr in (("class_ids", cls), ("seeds", seeds)):
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            raise TfaugError(f"{what} must be integers, got dtype {arr.dtype}.")
    if cls.size and (cls.min() < 0 or cls.max() >= num_classes):
        bad = int(cls[(cls < 0) | (cls >= num_classes)][0])
        raise TfaugError(f"Class id {bad} is out of range; this generator has classes 0..{num_classes - 1}.")
    return cls.astype(np.int32), seeds.astype(np.int64)


def validate_truncation(truncation, n: int) -> np.ndarray | None:
    """Check a truncation request and convert it to float32 ``[n]`` (None stays None: no truncation).

    Args:
        truncation: None, one number for every row, or a vector of ``n`` numbers, each psi in [0, 1].
        n: number of rows of the request.

    Raises:
        TfaugError: non-numeric, wrong length, NaN or outside [0, 1].
    """
    if truncation is None:
        return None
    psi = np.asarray(truncation)
    if psi.dtype == object or not (np.issubdtype(psi.dtype, np.floating) or np.issubdtype(psi.dtype, np.integer)):
        raise TfaugError(f"truncation must be a number or a vector of numbers in [0, 1], got dtype {psi.dtype}.")
    if psi.ndim == 0:
        psi = np.full(int(n), psi)
    if psi.ndim != 1 or len(psi) != int(n):
        raise TfaugError(f"truncation {psi.shape} must be one number or a vector with one value per row ({n}).")
    psi = psi.astype(np.float32)
    bad = psi[~((psi >= 0.0) & (psi <= 1.0))]
    if bad.size:
        raise TfaugError(f"Truncation psi {float(bad[0]):g} is out of range; psi must be in [0, 1] (1 = none).")
    return psi


__all__ = ["generator_images", "latent_from_seeds", "takes_truncation", "validate_requests", "validate_truncation"]
