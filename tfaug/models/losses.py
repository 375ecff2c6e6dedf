"""GAN losses as pure functions of discriminator logits, returning PER-EXAMPLE losses ``[N]``.

Callers reduce with ``tf.nn.compute_average_loss`` so that the same train step is correct under
``tf.distribute`` (the sum over replicas of per-replica averages over the *global* batch). Logits may be
``[N]`` or ``[N, 1]``; anything else is an error, never a silent broadcast.
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


__all__ = ["d_loss_nonsaturating", "g_loss_nonsaturating"]
