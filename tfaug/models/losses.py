"""GAN losses as pure functions.

The adversarial losses take discriminator logits and return PER-EXAMPLE losses ``[N]``: callers reduce with
``tf.nn.compute_average_loss`` so that the same train step is correct under ``tf.distribute`` (the sum over
replicas of per-replica averages over the *global* batch). Logits may be ``[N]`` or ``[N, 1]``; anything
else is an error, never a silent broadcast. The mode-seeking regulariser compares pairs of examples, so it
returns one scalar per (replica) batch; reduce it with ``tf.nn.scale_regularization_loss``.
"""
from __future__ import annotations

import tensorflow as tf


def _per_example(logits) -> tf.Tensor:
    """``[N]`` or ``[N, 1]`` logits -> float32 ``[N]``."""
    logits = tf.convert_to_tensor(logits)
    logits = tf.cast(logits, tf.float32)
    return tf.reshape(logits, [tf.shape(logits)[0]])


def d_loss_nonsaturating(real_logits, fake_logits, real_label: float = 1.0) -> tf.Tensor:
    """Discriminator binary cross-entropy of the standard GAN (Goodfellow et al. 2014, "Generative
    Adversarial Nets", eq. 1), with optional one-sided label smoothing (Salimans et al. 2016, "Improved
    Techniques for Training GANs", sec. 3.4): real targets are ``real_label`` (e.g. 0.9), fake targets stay 0.

    ``loss_i = BCE(real_label, sigmoid(real_i)) + BCE(0, sigmoid(fake_i))``.

    Args:
        real_logits: D's logits on real images, ``[N]`` or ``[N, 1]``.
        fake_logits: D's logits on generated images, same batch size as ``real_logits``.
        real_label: target for real images, in (0, 1]; 1.0 disables smoothing.

    Returns:
        float32 ``[N]``, >= 0 when ``real_label`` is 1.
    """
    real = _per_example(real_logits)
    fake = _per_example(fake_logits)
    real_term = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.fill(tf.shape(real), float(real_label)),
                                                        logits=real)
    fake_term = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.zeros_like(fake), logits=fake)
    return real_term + fake_term


def g_loss_nonsaturating(fake_logits) -> tf.Tensor:
    """Non-saturating generator loss ``-log sigmoid(D(G(z)))`` (Goodfellow et al. 2014, sec. 3): G maximises
    the log-probability of D being wrong, which gives strong gradients early in training when D easily
    rejects G's samples (the minimax form ``log(1 - sigmoid)`` saturates there).

    Args:
        fake_logits: D's logits on generated images, ``[N]`` or ``[N, 1]``.

    Returns:
        float32 ``[N]`` = ``softplus(-fake_logits)`` (a numerically stable ``-log sigmoid``), >= 0.
    """
    return tf.nn.softplus(-_per_example(fake_logits))


def _pairwise_rms(x: tf.Tensor) -> tf.Tensor:
    """Root-mean-square distance between all rows of ``x`` [N, D] -> [N, N] (via a Gram matrix, O(N^2 + N D))."""
    sq = tf.reduce_sum(tf.square(x), axis=1)
    d2 = sq[:, None] + sq[None, :] - 2.0 * tf.matmul(x, x, transpose_b=True)
    # The floor keeps sqrt's gradient finite for (near-)identical rows, e.g. the masked diagonal.
    return tf.sqrt(tf.maximum(d2, 1e-8) / tf.cast(tf.shape(x)[1], x.dtype))


def mode_seeking_loss(images, latents, class_ids, eps: float = 1e-5) -> tf.Tensor:
    """Mode-seeking regulariser of Mao et al. 2019, "Mode Seeking Generative Adversarial Networks for
    Diverse Image Synthesis" (CVPR): conditional generators tend to ignore their noise and produce one image
    per class; this term rewards image distance per unit of latent distance between samples of the same class.

    ``loss = 1 / (mean over same-class pairs i != j of d(G_i, G_j) / d(z_i, z_j) + eps)`` with root-mean-square
    distances (the paper uses mean absolute distances of one pair per condition; all same-class pairs of a
    batch are used here, so no extra generator pass is needed).

    Args:
        images: generated images ``[N, ...]`` (any float range; [-1, 1] in tfaug).
        latents: the latents that produced them, ``[N, z_dim]``.
        class_ids: their classes, int ``[N]``.
        eps: keeps the loss finite when the generator has fully collapsed.

    Returns:
        float32 scalar >= 0; 0 when the batch has no same-class pair (nothing to compare).
    """
    images = tf.cast(images, tf.float32)
    n = tf.shape(images)[0]
    flat = tf.reshape(images, [n, -1])
    z = tf.reshape(tf.cast(latents, tf.float32), [n, -1])
    ids = tf.reshape(class_ids, [-1])
    pairs = tf.cast(tf.equal(ids[:, None], ids[None, :]), tf.float32) * (1.0 - tf.eye(n))
    count = tf.reduce_sum(pairs)
    ratio = tf.reduce_sum(_pairwise_rms(flat) / _pairwise_rms(z) * pairs) / tf.maximum(count, 1.0)
    return tf.where(count > 0, 1.0 / (ratio + eps), 0.0)


__all__ = ["d_loss_nonsaturating", "g_loss_nonsaturating", "mode_seeking_loss"]
