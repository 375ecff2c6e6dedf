"""Long-tail controls: class-balanced loss weights, the logit-adjusted loss and its post-hoc variant.

Pure functions, each citing its paper, plus the small glue :func:`train_loss` / :func:`posthoc_model` that
``tfaug.training.classifier.train_classifier`` calls. Class-balanced *sampling* is a data pipeline option
(``tfaug.data.pipeline.make_pipeline(balanced=True)``).

- Class-balanced weights (Cui, Jia, Lin, Song, Belongie, "Class-Balanced Loss Based on Effective Number of
  Samples", CVPR 2019, eq. 4-5): the effective number of a class with n_c images is ``E_c = (1 - beta^n_c) /
  (1 - beta)``; its weight is ``1 / E_c = (1 - beta) / (1 - beta^n_c)``, normalised so that the weights sum to K.
- Logit adjustment (Menon, Jayasumana, Rawat, Jain, Veit, Kumar, "Long-Tail Learning via Logit Adjustment",
  ICLR 2021): the logit-adjusted loss (eq. 10) is softmax cross-entropy on ``f(x) + tau * log(pi)``, with ``pi`` the
  class prior of the training labels; the post-hoc variant (eq. 9) trains plainly and predicts
  ``argmax_y f_y(x) - tau * log(pi_y)``. tau = 1 is the paper's default.

Logits and losses are float32; numpy in, numpy (weights, priors) or TensorFlow tensors (losses) out.
"""
from __future__ import annotations

import numbers

import numpy as np

from tfaug.errors import TfaugError

__all__ = ["class_counts", "class_prior", "effective_number_weights", "weighted_cross_entropy",
           "logit_adjusted_cross_entropy", "target_loss", "posthoc_adjusted_logits", "posthoc_predict", "train_loss",
           "posthoc_model"]


def class_counts(labels, num_classes: int) -> np.ndarray:
    """Images per class: int64 [K] from int labels [N] in [0, K)."""
    y = np.asarray(labels).reshape(-1).astype(np.int64)
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise TfaugError(f"labels must be class ids in [0, {num_classes}), got {y.min()}..{y.max()}")
    return np.bincount(y, minlength=num_classes)[:num_classes]


def class_prior(counts) -> np.ndarray:
    """The class prior pi_c = n_c / N: float64 [K] in (0, 1], summing to 1.

    Raises:
        TfaugError: a class has no image (log(pi) would be -inf: logit adjustment needs every class once).
    """
    n = np.asarray(counts, np.float64).reshape(-1)
    if n.size < 1 or np.any(n < 0):
        raise TfaugError("class counts must be a non-empty list of numbers >= 0")
    if np.any(n == 0):
        raise TfaugError(f"class {int(np.flatnonzero(n == 0)[0])} has no training image, so its prior is 0; logit "
                         "adjustment needs at least one image of every class")
    return n / n.sum()


def _tau(tau) -> float:
    if isinstance(tau, bool) or not isinstance(tau, numbers.Real) or not np.isfinite(tau) or tau < 0:
        raise TfaugError(f"the logit-adjustment tau must be a number >= 0 (1 is the paper's default), got {tau!r}")
    return float(tau)


def effective_number_weights(counts, beta: float = 0.999) -> np.ndarray:
    """Class-balanced loss weights from the effective number of samples (Cui et al., CVPR 2019).

    ``w_c = (1 - beta) / (1 - beta ** n_c)`` for every class with n_c >= 1 image, normalised so that the weights sum
    to K (the paper's normalisation); a class with no image gets weight 0 (it never appears as a label). beta = 0 gives
    all ones (no re-weighting); beta -> 1 approaches inverse class frequency. The paper uses beta in {0.9, 0.99, 0.999,
    0.9999}.

    Args:
        counts: images per class, K >= 1 numbers >= 0, at least one > 0.
        beta: in [0, 1).

    Returns:
        float64 [K] weights >= 0 summing to K.
    """
    n = np.asarray(counts, np.float64).reshape(-1)
    if isinstance(beta, bool) or not isinstance(beta, numbers.Real) or not 0.0 <= beta < 1.0:
        raise TfaugError(f"the class-balanced beta must be in [0, 1) (e.g. 0.999), got {beta!r}")
    if n.size < 1 or np.any(n < 0) or not np.any(n > 0):
        raise TfaugError("class counts must be numbers >= 0 with at least one class holding images")
    w = np.zeros_like(n)
    present = n > 0
    # 1 - beta^n via expm1/log1p stays exact for beta near 1 and large n
    w[present] = (1.0 - beta) / -np.expm1(n[present] * np.log1p(beta - 1.0)) if beta > 0 else 1.0
    return w * (len(n) / w.sum())


def _cross_entropy(labels, logits, label_smoothing: float = 0.0):
    """Softmax cross-entropy per example, float32 [B]; with label smoothing eps the target is ``(1 - eps) * one_hot +
    eps / K`` (Keras' ``CategoricalCrossentropy(label_smoothing=eps)``)."""
    import tensorflow as tf

    labels = tf.cast(tf.reshape(labels, [-1]), tf.int32)
    logp = tf.nn.log_softmax(tf.cast(logits, tf.float32), axis=-1)
    nll = -tf.gather(logp, labels, axis=1, batch_dims=1)
    if not label_smoothing:
        return nll
    return (1.0 - label_smoothing) * nll - label_smoothing * tf.reduce_mean(logp, axis=-1)


def weighted_cross_entropy(labels, logits, class_weights, label_smoothing: float = 0.0):
    """Per-example softmax cross-entropy times the weight of the true class (Cui et al. 2019, eq. 5 for softmax).

    Args:
        labels: int [B] class ids in [0, K).
        logits: float [B, K].
        class_weights: K weights >= 0 (e.g. :func:`effective_number_weights`).
        label_smoothing: eps in [0, 1) (0 = none).

    Returns:
        float32 [B] losses >= 0 (Keras averages them over the batch).
    """
    import tensorflow as tf

    labels = tf.cast(tf.reshape(labels, [-1]), tf.int32)
    ce = _cross_entropy(labels, logits, label_smoothing)
    return ce * tf.gather(tf.constant(np.asarray(class_weights, np.float32)), labels)


def logit_adjusted_cross_entropy(labels, logits, prior, tau: float = 1.0, label_smoothing: float = 0.0):
    """The logit-adjusted softmax cross-entropy (Menon et al., ICLR 2021, eq. 10).

    ``loss(y, f(x)) = -log( exp(f_y(x) + tau log pi_y) / sum_y' exp(f_y'(x) + tau log pi_y') )``.

    Args:
        labels: int [B] class ids in [0, K).
        logits: float [B, K] (the model's unadjusted logits; at test time predict with them as they are).
        prior: K class probabilities > 0 (:func:`class_prior` of the training labels).
        tau: temperature >= 0 (0 = plain cross-entropy; 1 = the paper's default).
        label_smoothing: eps in [0, 1) applied to the targets of the adjusted softmax (0 = the paper's loss).

    Returns:
        float32 [B] losses >= 0.
    """
    import tensorflow as tf

    offset = _tau(tau) * np.log(class_prior(prior))
    adjusted = tf.cast(logits, tf.float32) + tf.constant(offset.astype(np.float32))
    return _cross_entropy(labels, adjusted, label_smoothing)


def target_loss(targets, logits, *, class_weights=None, prior=None, tau: float = 0.0, label_smoothing: float = 0.0):
    """The long-tail losses on target distributions instead of class ids (soft targets of a teacher, or one-hot).

    Per row: ``-sum_k t'_k log softmax(f(x) + tau log pi)_k`` with ``t' = (1 - eps) t + eps / K`` (Menon et al.
    2021, eq. 10, with the class id replaced by a distribution; tau = 0 or no prior: plain cross-entropy), times the
    row's class-balanced weight ``sum_k t_k w_k`` (Cui et al. 2019; the weight of the true class for a one-hot row).
    For one-hot targets this equals :func:`logit_adjusted_cross_entropy` / :func:`weighted_cross_entropy`.

    Args:
        targets: float [B, K] rows >= 0 summing to 1.
        logits: float [B, K].
        class_weights: optional K weights >= 0.
        prior: optional K class probabilities > 0 (with ``tau``).
        tau: >= 0.
        label_smoothing: eps in [0, 1).

    Returns:
        float32 [B] losses >= 0.
    """
    import tensorflow as tf

    t = tf.cast(targets, tf.float32)
    z = tf.cast(logits, tf.float32)
    if prior is not None and tau:
        z = z + tf.constant((_tau(tau) * np.log(class_prior(prior))).astype(np.float32))
    k = int(t.shape[-1])
    smoothed = t if not label_smoothing else (1.0 - label_smoothing) * t + label_smoothing / k
    per = -tf.reduce_sum(smoothed * tf.nn.log_softmax(z, axis=-1), axis=-1)
    if class_weights is None:
        return per
    return per * tf.linalg.matvec(t, tf.constant(np.asarray(class_weights, np.float32)))


def posthoc_adjusted_logits(logits, prior, tau: float = 1.0) -> np.ndarray:
    """Post-hoc logit adjustment (Menon et al. 2021, eq. 9): ``f(x) - tau * log(pi)``; float32 [N, K]."""
    offset = _tau(tau) * np.log(class_prior(prior))
    return (np.asarray(logits, np.float32) - offset.astype(np.float32)).astype(np.float32)


def posthoc_predict(logits, prior, tau: float = 1.0) -> np.ndarray:
    """Class ids int64 [N]: ``argmax_y f_y(x) - tau * log(pi_y)`` (Menon et al. 2021, eq. 9)."""
    return np.argmax(posthoc_adjusted_logits(logits, prior, tau), axis=-1).astype(np.int64)


def train_loss(y_train, num_classes: int, *, class_weights=None, logit_adjust_tau: float | None = None,
               posthoc: bool = False, label_smoothing: float = 0.0):
    """The Keras loss of a long-tail control, or None for the plain cross-entropy.

    Args:
        y_train: int [N] training labels (their prior drives logit adjustment).
        num_classes: K >= 2.
        class_weights: optional K loss weights >= 0 (class-balanced loss).
        logit_adjust_tau: optional tau >= 0; with ``posthoc`` False the loss is logit-adjusted (eq. 10).
        posthoc: True = train plainly and adjust at prediction (:func:`posthoc_model`); the loss ignores tau.
        label_smoothing: eps in [0, 1) for the targets (so a recipe with label smoothing keeps it under a control).

    Returns:
        A callable ``loss(y_true, logits) -> [B]`` for ``model.compile``, or None when no control is asked for.
    """
    weights = None
    if class_weights is not None:
        weights = np.asarray(class_weights, np.float64).reshape(-1)
        if weights.shape != (num_classes,) or not np.all(np.isfinite(weights)) or np.any(weights < 0):
            raise TfaugError(f"class_weights must be {num_classes} finite numbers >= 0, one per class")
    prior = None
    if logit_adjust_tau is not None and not posthoc:
        _tau(logit_adjust_tau)
        prior = class_prior(class_counts(y_train, num_classes))
    if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, numbers.Real) \
            or not 0.0 <= label_smoothing < 1.0:
        raise TfaugError(f"label_smoothing must be in [0, 1), got {label_smoothing!r}")
    if weights is None and prior is None:
        return None
    eps = float(label_smoothing)

    def loss(y_true, logits):
        import tensorflow as tf

        shape = tuple(y_true.shape)
        if len(shape) == 2 and shape[-1] == num_classes and num_classes > 1:
            # target rows (one-hot, or a teacher's soft targets): the same losses on a target distribution
            return target_loss(y_true, logits, class_weights=weights,
                               prior=prior, tau=logit_adjust_tau if prior is not None else 0.0,
                               label_smoothing=eps)
        labels = tf.cast(tf.reshape(y_true, [-1]), tf.int32)
        if prior is not None:
            per = logit_adjusted_cross_entropy(labels, logits, prior, logit_adjust_tau, label_smoothing=eps)
        else:
            per = _cross_entropy(labels, logits, eps)
        return per if weights is None else per * tf.gather(tf.constant(weights.astype(np.float32)), labels)

    loss.__name__ = "longtail_loss"
    return loss


def posthoc_model(model, y_train, num_classes: int, tau: float = 1.0):
    """Wrap a trained classifier so that its logits are post-hoc adjusted: ``f(x) - tau * log(pi)``.

    Args:
        model: a Keras model, images -> logits [B, K].
        y_train: int [N] training labels (the prior pi).
        num_classes: K.
        tau: >= 0.

    Returns:
        A Keras model with the same input whose output is the adjusted logits (argmax = eq. 9's prediction; it saves
        and loads as a ``.keras`` file).
    """
    import keras

    from tfaug.models.networks.adjust import LogitAdjustment

    offset = _tau(tau) * np.log(class_prior(class_counts(y_train, num_classes)))
    inputs = keras.Input(shape=model.input_shape[1:])
    outputs = LogitAdjustment(offset, name="posthoc_logit_adjustment")(model(inputs))
    return keras.Model(inputs, outputs, name=f"{model.name}_posthoc")


def train_kwargs(options: dict, labels, num_classes: int) -> dict:
    """``train_classifier`` arguments of a strategy's long-tail ``train_options`` (see
    ``tfaug.synthesis.strategies.longtail``): ``reweight`` beta -> ``class_weights`` from the class counts of
    ``labels`` (the training mix), ``logit_adjust`` tau (+ ``posthoc``) -> ``logit_adjust_tau``/``posthoc``,
    ``balanced`` -> ``balanced``. Empty options give ``{}`` (plain training)."""
    options = dict(options or {})
    unknown = sorted(set(options) - {"reweight", "logit_adjust", "posthoc", "balanced"})
    if unknown:
        raise TfaugError(f"unknown training option(s) {', '.join(unknown)}")
    out: dict = {}
    if "reweight" in options:
        out["class_weights"] = effective_number_weights(class_counts(labels, num_classes), options["reweight"])
    if "logit_adjust" in options:
        out["logit_adjust_tau"] = float(options["logit_adjust"])
        out["posthoc"] = bool(options.get("posthoc", False))
    if options.get("balanced"):
        out["balanced"] = True
    return out
