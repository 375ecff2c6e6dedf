"""How generated images enter a classifier's training: soft targets, weighted fixed-proportion batches, real-image
swapping and separate BatchNorm (the strategy blocks of ``tfaug.synthesis.strategies.mixing``).

- :func:`mix_kwargs`: a ``TrainingMix``'s ``train_classifier`` arguments (long-tail options, ``targets``,
  ``synthetic``, ``mixing``).
- :func:`mixed_dataset`: the batches. The real stream is exactly the real-only classifier's (same shuffle, same
  augmenter calls, one-hot targets); ``swap`` replaces each real image of a batch with probability P by a generated
  image of its class (stateless draws keyed by (seed, step), before augmentation), and ``weight`` / ``sepbn`` zip a
  second stream of ``b = round(B * G / R)`` generated images (>= 1; B the real batch, G and R the generated and real
  rows) shuffled and augmented on its own. Sample weights ``s`` on real rows and ``W s`` on generated rows, with
  ``s = (B + b) / (B + W b)``, make Keras' mean over the batch the weighted mean ``(sum_real + W sum_gen) / (B + W b)``:
  W = 1 is the plain mean over the whole batch, W = 0 the real batch's mean (the real-only loss).
- :func:`domain_models`: ``sepbn``'s pair model: the classifier (real images) and a twin sharing every layer but
  its BatchNormalization layers (generated images), concatenated along the batch; test images use the classifier.

TensorFlow is imported inside the functions.
"""
from __future__ import annotations

import numpy as np

from tfaug.errors import TfaugError
from tfaug.training.longtail import train_kwargs

__all__ = ["MIX_KEYS", "domain_models", "generated_batch", "mix_kwargs", "mixed_dataset"]

MIX_KEYS = ("soft_temperature", "generated_weight", "swap", "sepbn")
_GEN_SEED = 7919  # the generated stream's shuffle/augmentation seed offset (the real stream keeps the run's seed)


def mix_kwargs(mix, num_classes: int, rows=None) -> dict:
    """``train_classifier`` arguments of ``mix`` (its rows ``rows`` only when given): the long-tail options
    (``tfaug.training.longtail.train_kwargs``), ``targets`` when the mix carries soft targets, and ``synthetic`` +
    ``mixing`` (``{"weight": W, "swap": P, "sepbn": True}``, the keys present) for weight/swap/sepbn."""
    options = dict(mix.train_options or {})
    mine = {k: options.pop(k) for k in MIX_KEYS if k in options}
    sel = slice(None) if rows is None else rows
    out = train_kwargs(options, mix.labels[sel], num_classes)
    if getattr(mix, "targets", None) is not None:
        out["targets"] = mix.targets[sel]
    mixing = {name: mine[k] for k, name in (("generated_weight", "weight"), ("swap", "swap"), ("sepbn", "sepbn"))
              if k in mine}
    if mixing:
        out["synthetic"] = mix.synthetic[sel]
        out["mixing"] = mixing
    return out


def generated_batch(real_batch: int, n_real: int, n_generated: int) -> int:
    """Generated images per batch beside ``real_batch`` real ones: the mix's proportion, ``round(B * G / R)``, at
    least 1 when there is a generated image (0 without)."""
    if n_generated <= 0:
        return 0
    return max(1, int(np.floor(real_batch * n_generated / max(n_real, 1) + 0.5)))


def mixed_dataset(x, targets, synthetic, batch_size: int, *, seed: int, mixing: dict, augment=None,
                  augment_generated=None):
    """The endless training batches of a mix with generated rows under ``mixing`` (see the module docstring).

    Args:
        x: float32 [-1, 1] [N, H, W, C] images of the mix.
        targets: float32 [N, K] targets (one-hot on real rows).
        synthetic: bool [N], True on generated rows; at least one real row.
        batch_size: the real batch B, in [1, R] (the real-only classifier's).
        seed: the run's seed (the real stream's shuffle seed, as without mixing).
        mixing: ``weight`` W >= 0, ``swap`` P in [0, 1], ``sepbn`` (keys optional).
        augment, augment_generated: augmenters of the real and generated batches (None: none).

    Returns:
        A ``tf.data.Dataset`` of (images, targets, sample weights); images are ``(real, generated)`` pairs with
        ``sepbn``; without weight/sepbn (swap only) plain (images [B, ...], targets [B, K]).
    """
    import tensorflow as tf

    from tfaug.data.pipeline import make_pipeline, map_augment

    synthetic = np.asarray(synthetic, bool)
    x, targets = np.asarray(x, np.float32), np.asarray(targets, np.float32)
    xr, tr, xg, tg = x[~synthetic], targets[~synthetic], x[synthetic], targets[synthetic]
    if len(xr) == 0:
        raise TfaugError("weight, swap and sepbn need real images in the mix")
    labels_r = np.argmax(tr, axis=1)
    real = make_pipeline(xr, labels_r, batch_size, seed=seed, repeat=True, drop_remainder=True, targets=tr)
    swap = float(mixing.get("swap", 0.0))
    if "swap" in mixing and len(xg):
        real = _swap(tf, real, xg, tg, swap, seed, batch_size)
    real = map_augment(real, augment)
    if "weight" not in mixing and not mixing.get("sepbn"):
        return real
    n_gen = generated_batch(batch_size, len(xr), len(xg))
    if n_gen == 0:
        raise TfaugError("weight and sepbn need generated images in the mix (the generator added none)")
    gen = map_augment(make_pipeline(xg, np.argmax(tg, axis=1), n_gen, seed=seed + _GEN_SEED, repeat=True,
                                    drop_remainder=True, targets=tg), augment_generated)
    w = float(mixing.get("weight", 1.0))
    scale = (batch_size + n_gen) / (batch_size + w * n_gen)  # Keras divides by B + b: this makes a weighted mean
    weights = tf.constant(np.concatenate([np.full(batch_size, scale), np.full(n_gen, w * scale)]).astype(np.float32))
    sepbn = bool(mixing.get("sepbn"))

    def join(r, g):
        t = tf.concat([r[1], g[1]], axis=0)
        images = (r[0], g[0]) if sepbn else tf.concat([r[0], g[0]], axis=0)
        return images, t, weights

    return tf.data.Dataset.zip((real, gen)).map(join).prefetch(tf.data.AUTOTUNE)


def _swap(tf, real, xg, tg, p: float, seed: int, batch_size: int):
    """Replace each real image (and its target) with probability ``p`` by a generated image of its class."""
    yg = np.argmax(tg, axis=1)
    order = np.argsort(yg, kind="stable")
    k = tg.shape[1]
    counts = np.bincount(yg, minlength=k)[:k]
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
    pool_x, pool_t = tf.constant(xg[order]), tf.constant(tg[order])
    cnt, off = tf.constant(counts.astype(np.int32)), tf.constant(offsets.astype(np.int32))
    last = len(yg) - 1

    def swap(step, batch):
        images, t = batch
        lab = tf.cast(tf.argmax(t, axis=1), tf.int32)
        u = tf.random.stateless_uniform([2, batch_size], seed=tf.stack([tf.constant(seed, tf.int64), step]))
        n = tf.gather(cnt, lab)
        pick = tf.gather(off, lab) + tf.minimum(tf.cast(u[1] * tf.cast(n, tf.float32), tf.int32),
                                                tf.maximum(n - 1, 0))
        pick = tf.minimum(pick, last)
        mask = (u[0] < p) & (n > 0)
        images = tf.where(mask[:, None, None, None], tf.gather(pool_x, pick), images)
        return images, tf.where(mask[:, None], tf.gather(pool_t, pick), t)

    return tf.data.Dataset.zip((tf.data.Dataset.counter(), real)).map(swap)


def domain_models(model):
    """``sepbn``: (pair model taking ``[real, generated]`` batches -> concatenated logits, the generated twin).

    The twin shares every layer of ``model`` except its ``BatchNormalization`` layers, which are fresh copies (own
    moving statistics, gamma and beta), so generated batches never touch the statistics test images use.

    Raises:
        TfaugError: ``model`` has no BatchNormalization layer (sepbn needs a BN network such as ``res_cnn``).
    """
    import keras

    bn = keras.layers.BatchNormalization
    if not any(isinstance(layer, bn) for layer in model._flatten_layers()):
        raise TfaugError(f"sepbn needs a classifier with BatchNormalization (e.g. res_cnn); {model.name} has none")

    def twin(layer):
        if isinstance(layer, bn):
            cfg = layer.get_config()
            cfg["name"] = f"{cfg['name']}_generated"
            return type(layer).from_config(cfg)  # tfaug's BatchNormalization stays tfaug's
        return layer

    gen = keras.models.clone_model(model, clone_function=twin)
    gen.name = f"{model.name}_generated"
    shape = model.input_shape[1:]
    xr, xg = keras.Input(shape=shape, name="real"), keras.Input(shape=shape, name="generated")
    out = keras.layers.Concatenate(axis=0, name="domains")([model(xr), gen(xg)])
    return keras.Model([xr, xg], out, name=f"{model.name}_sepbn"), gen
