"""The w space of a style-based generator: its parts, statistics, sampling and per-image optimisation.

Shared by :mod:`tfaug.fewshot.invert` (encoder inversion) and :mod:`tfaug.fewshot.age` (attribute-group editing).
A ``stylegan`` sampling network holds a ``mapping`` network ``[z, class_id] -> w [N, w_dim]`` (with an Embedding
``class_embedding``) and a ``synthesis`` network ``w -> images``; its discriminator's layer ``d_features`` gives
the "domain features" of an image. Images are float32 NHWC in [-1, 1]; pixel MSE is measured on that scale.

* :func:`style_parts` / :class:`StyleParts`: the networks, their sizes, inference-mode calls.
* :func:`sample_pairs`, :func:`sample_class_w`, :func:`class_centroids`: w (and images) of standard-normal z.
* :func:`latent_stats`: per-dimension variances of w and of the features (the losses' normalisers).
* :func:`refine_w`: per-image Adam on w, pixel + feature loss (Abdal et al. 2019, "Image2StyleGAN").
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import keras
import numpy as np
import tensorflow as tf

from tfaug.errors import TfaugError

FEATURE_LAYER = "d_features"
REFINE_FEATURE_WEIGHT = 0.1  # feature term of the per-image refinement (pixel term weight 1)
REFINE_LR = 0.05  # Adam step of the refinement, in units of w's per-dimension standard deviation
STATS_SAMPLES = 512  # generated images behind w's and the features' statistics
CHUNK = 256  # rows per forward pass
_STATS_STREAM = 0x57A7  # seed stream of the statistics and centroids (apart from training pairs')


@dataclass(eq=False)
class StyleParts:
    """The pieces of a style-based sampling network inversion uses (shared, not copied)."""

    mapping: keras.Model  # [z float32 [N, z_dim], class_id int32 [N]] -> w [N, w_dim]
    synthesis: keras.Model  # w -> images float32 [N, H, W, C] in [-1, 1]
    z_dim: int
    w_dim: int
    num_classes: int
    image_shape: tuple[int, int, int]
    features: object = None  # images -> domain features [N, F] (the discriminator's), or None
    compiled: dict = field(default_factory=dict, repr=False)  # traced functions, reused across calls

    def map(self, z, class_ids) -> tf.Tensor:
        """``mapping(z, class_ids)`` in inference mode, float32 ``[N, w_dim]``."""
        z, c = tf.convert_to_tensor(z, tf.float32), tf.convert_to_tensor(class_ids, tf.int32)
        return tf.cast(self.mapping([z, c], training=False), tf.float32)

    def synthesize(self, w) -> tf.Tensor:
        """``synthesis(w)`` in inference mode (fixed noise: deterministic), float32 ``[N, H, W, C]`` in [-1, 1]."""
        return tf.cast(self.synthesis(w, training=False), tf.float32)

    def feature(self, images) -> tf.Tensor:
        """The discriminator's ``d_features`` of ``images`` (inference mode), float32 ``[N, F]``."""
        return tf.cast(self.features(images, training=False), tf.float32)


def style_parts(sampling_network: keras.Model, discriminator: keras.Model | None = None) -> StyleParts:
    """Split a style generator's sampling network into mapping and synthesis (and D's features).

    Raises:
        TfaugError: the network has no ``mapping``/``synthesis`` layers (not a style-based generator), or the
            discriminator has no ``d_features`` layer.
    """
    try:
        mapping, synthesis = sampling_network.get_layer("mapping"), sampling_network.get_layer("synthesis")
        embedding = mapping.get_layer("class_embedding")
    except ValueError:
        raise TfaugError("inversion needs a style-based generator (mapping and synthesis networks, e.g. a "
                         "stylegan run); this generator has none") from None
    features = None
    if discriminator is not None:
        try:
            layer = discriminator.get_layer(FEATURE_LAYER)
        except ValueError:
            raise TfaugError(f"the discriminator has no {FEATURE_LAYER!r} layer; it is not a stylegan one") from None
        features = keras.Model(discriminator.inputs[0], layer.output, name="domain_features")
    return StyleParts(mapping, synthesis, int(mapping.inputs[0].shape[-1]), int(mapping.outputs[0].shape[-1]),
                      int(embedding.input_dim), tuple(int(v) for v in synthesis.outputs[0].shape[1:]), features)


def sample_pairs(parts: StyleParts, class_ids, seed: int, stream: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(w [N, w_dim], images [N, H, W, C])`` of ``z ~ N(0, I)`` drawn from ``(seed, stream)`` for ``class_ids``."""
    class_ids = np.asarray(class_ids, np.int32)
    z = tf.random.stateless_normal([len(class_ids), parts.z_dim], seed=[int(seed), int(stream)])
    ws, xs = [], []
    for i in range(0, len(class_ids), CHUNK):
        w = parts.map(z[i : i + CHUNK], class_ids[i : i + CHUNK])
        ws.append(np.asarray(w))
        xs.append(np.asarray(parts.synthesize(w)))
    return np.concatenate(ws), np.concatenate(xs)


def sample_class_w(parts: StyleParts, n_per_class: int, seed: int) -> np.ndarray:
    """``w = mapping(z, c)`` for ``n_per_class`` standard-normal z per class: float32 ``[K, n_per_class, w_dim]``."""
    ids = np.repeat(np.arange(parts.num_classes, dtype=np.int32), n_per_class)
    z = tf.random.stateless_normal([len(ids), parts.z_dim], seed=[int(seed), _STATS_STREAM])
    w = np.concatenate([np.asarray(parts.map(z[i : i + CHUNK], ids[i : i + CHUNK])) for i in range(0, len(ids), CHUNK)])
    return w.reshape(parts.num_classes, n_per_class, parts.w_dim).astype(np.float32)


@dataclass
class LatentStats:
    """Per-dimension statistics of w and of the domain features, over generated images."""

    w_mean: np.ndarray  # [w_dim]
    w_var: np.ndarray  # [w_dim], > 0
    feature_var: np.ndarray | None  # [F], > 0, or None without features


def latent_stats(parts: StyleParts, seed: int = 0, n: int = STATS_SAMPLES) -> LatentStats:
    """Mean and variance of w, and the features' variance, over ``n`` generated images (uniform classes)."""
    ids = np.arange(n, dtype=np.int32) % parts.num_classes
    w, x = sample_pairs(parts, ids, seed, _STATS_STREAM)
    fvar = None
    if parts.features is not None:
        f = np.concatenate([np.asarray(parts.feature(x[i : i + CHUNK])) for i in range(0, n, CHUNK)])
        fvar = f.var(0) + 1e-6 * (f.var(0).mean() + 1e-12)
    return LatentStats(w.mean(0), w.var(0) + 1e-6 * (w.var(0).mean() + 1e-12), fvar)


def normalised_sq(a, b, var) -> tf.Tensor:
    """Mean over the last axis of ``(a - b)^2 / var``: ``[N]``."""
    return tf.reduce_mean(tf.square(a - b) / tf.cast(var, tf.float32), axis=-1)


def pixel_sq(a, b) -> tf.Tensor:
    """Per-image mean squared difference of two image batches ``[N, H, W, C]``: ``[N]``."""
    return tf.reduce_mean(tf.square(a - b), axis=[1, 2, 3])


def feature_distance(parts: StyleParts, x, x_hat, stats: LatentStats) -> float | None:
    """Mean normalised squared distance of the domain features of ``x`` and ``x_hat`` (None without features)."""
    if parts.features is None:
        return None
    d = [normalised_sq(parts.feature(x_hat[i : i + CHUNK]), parts.feature(x[i : i + CHUNK]), stats.feature_var)
         for i in range(0, len(x), CHUNK)]
    return float(np.mean(np.concatenate([np.asarray(v) for v in d])))


def check_images(images, image_shape) -> np.ndarray:
    """float32 ``[N, H, W, C]`` in [-1, 1] (uint8 is converted) at ``image_shape``, N >= 1, or TfaugError."""
    x = np.asarray(images)
    if x.dtype == np.uint8:
        x = x.astype(np.float32) / 127.5 - 1.0
    x = x.astype(np.float32)
    if x.ndim != 4 or len(x) == 0 or tuple(x.shape[1:]) != tuple(image_shape):
        raise TfaugError(f"images must be [N >= 1, {', '.join(map(str, image_shape))}] for this generator, got "
                         f"shape {x.shape}")
    if not np.isfinite(x).all() or x.min() < -1.001 or x.max() > 1.001:
        raise TfaugError("images must be finite floats in [-1, 1] (or uint8)")
    return np.clip(x, -1.0, 1.0)


def synthesize_all(parts: StyleParts, w: np.ndarray) -> np.ndarray:
    """``synthesis(w)`` in chunks of ``CHUNK`` rows, float32 ``[N, H, W, C]``."""
    return np.concatenate([np.asarray(parts.synthesize(w[i : i + CHUNK])) for i in range(0, len(w), CHUNK)])


def progress_bar(enabled: bool, total: int, desc: str):
    """A tqdm bar of ``total`` steps, or None when disabled."""
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="step", dynamic_ncols=True)


def _refine_functions(parts: StyleParts):
    """The compiled refinement step and final check of ``parts`` (traced once per image batch shape)."""
    if "refine" not in parts.compiled:
        has_features = parts.features is not None

        def per_image(x, w, f_var):
            x_hat = parts.synthesize(w)
            loss = pixel_sq(x_hat, x)
            if has_features:
                loss += REFINE_FEATURE_WEIGHT * normalised_sq(parts.feature(x_hat), parts.feature(x), f_var)
            return loss

        @tf.function(reduce_retracing=True)
        def step(x, w, m, v, best_w, best, t, lr, f_var, steps):
            with tf.GradientTape() as tape:
                tape.watch(w)
                loss = per_image(x, w, f_var)
                total = tf.reduce_sum(loss)
            g = tape.gradient(total, w)
            better = loss < best
            best_w, best = tf.where(better[:, None], w, best_w), tf.where(better, loss, best)
            m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * tf.square(g)
            m_hat, v_hat = m / (1.0 - tf.pow(0.9, t)), v / (1.0 - tf.pow(0.999, t))
            rate = lr * 0.5 * (1.0 + tf.cos(math.pi * (t - 1.0) / steps))
            return w - rate * m_hat / (tf.sqrt(v_hat) + 1e-8), m, v, best_w, best

        @tf.function(reduce_retracing=True)
        def last(x, w, best_w, best, f_var):
            return tf.where((per_image(x, w, f_var) < best)[:, None], w, best_w)

        parts.compiled["refine"] = (step, last)
    return parts.compiled["refine"]


def refine_w(parts: StyleParts, images: np.ndarray, w0: np.ndarray, stats: LatentStats, *, steps: int,
             progress: bool = False) -> np.ndarray:
    """Per-image Adam on w from ``w0`` [N, w_dim]: loss = pixel MSE + ``REFINE_FEATURE_WEIGHT`` x normalised
    feature distance, step ``REFINE_LR`` x w's per-dimension std with a cosine ramp-down. The images are
    optimised together but independently (Adam is element-wise); each keeps its lowest-loss w. Returns
    float32 ``[N, w_dim]``."""
    w0 = np.asarray(w0, np.float32)
    if steps <= 0:
        return w0
    step, last = _refine_functions(parts)
    lr = tf.constant(REFINE_LR * np.sqrt(stats.w_var), tf.float32)
    f_var = tf.constant(stats.feature_var if stats.feature_var is not None else np.ones(1), tf.float32)
    total = tf.constant(float(steps))
    out, bar = [], progress_bar(progress, steps * math.ceil(len(w0) / CHUNK), "refine")
    try:
        for i in range(0, len(w0), CHUNK):
            x, w = tf.constant(images[i : i + CHUNK]), tf.constant(w0[i : i + CHUNK])
            m = v = tf.zeros_like(w)
            best_w, best = w, tf.fill([tf.shape(w)[0]], np.float32(np.inf))
            for t in range(1, steps + 1):
                w, m, v, best_w, best = step(x, w, m, v, best_w, best, tf.constant(float(t)), lr, f_var, total)
                if bar is not None:
                    bar.update(1)
            out.append(np.asarray(last(x, w, best_w, best, f_var)))
    finally:
        if bar is not None:
            bar.close()
    return np.concatenate(out)


def class_centroids(parts: StyleParts, n_per_class: int = 64, seed: int = 0) -> np.ndarray:
    """Mean w of each class over ``n_per_class`` standard-normal z: float32 ``[K, w_dim]``."""
    return sample_class_w(parts, n_per_class, seed).mean(1)


def nearest_centroids(parts: StyleParts, images: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """For each image, the class whose centroid's image is nearest in pixel MSE: int32 ``[N]``."""
    pics = synthesize_all(parts, np.asarray(centroids, np.float32))
    flat, ref = images.reshape(len(images), -1), pics.reshape(len(pics), -1)
    d = (flat**2).sum(1)[:, None] - 2.0 * flat @ ref.T + (ref**2).sum(1)[None, :]
    return np.argmin(d, axis=1).astype(np.int32)


__all__ = ["CHUNK", "FEATURE_LAYER", "LatentStats", "StyleParts", "check_images", "class_centroids",
           "feature_distance", "latent_stats", "nearest_centroids", "normalised_sq", "pixel_sq", "progress_bar",
           "refine_w", "sample_class_w", "sample_pairs", "style_parts", "synthesize_all"]
