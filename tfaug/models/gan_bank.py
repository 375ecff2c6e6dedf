"""The per-class GAN bank of S3 (docs/studies.md): one small unconditional fully connected GAN per class, trained
together in one command and sampled as one conditional generator.

Networks (``tfaug.models.networks.bank``): G_k ``z -> 256 -> 512 -> 1024 -> H*W*C`` with BatchNorm, LeakyReLU
0.2 and tanh; D_k ``H*W*C -> 512 -> 256 -> 128 -> 1`` (S3's sizes, options ``g_units``/``d_units``); binary
cross-entropy (non-saturating G loss), Adam. The K generators (and the K discriminators) are stored as one
:class:`~tfaug.models.networks.latent_layers.MLPBank` whose weights have a leading class axis: network k is
slice k, every step runs all K as one batched matmul per layer, so 100 classes cost one graph, not 100.

Training (one ``train_step`` updates every class's GAN):

* D_k sees the batch's real images of class k (gathered into a zero-padded ``[K, max count, ...]`` block and
  masked) and ``fakes_per_class`` fresh images of G_k; its loss is the mean real term plus the mean fake term
  (:func:`~tfaug.models.losses.d_loss_nonsaturating`'s two halves).
* A class absent from the batch: D_k's loss is 0 for that step (both terms are multiplied by "class present"),
  so its gradient is 0; Adam's moment estimates still decay and move D_k by the remaining momentum (a fraction
  ``beta_1`` of its last step). G_k is updated every step against D_k either way. Use class-balanced batches
  (e.g. ``batch_size >= 4 K`` or a balanced sampler) so every D_k sees reals often; with K = 100 and batch 64
  most classes are absent from most batches.
* Every G_k generates ``fakes_per_class`` images per step (default ``max(4, ceil(batch_size / K))``), so
  BatchNorm always has several rows and G batches are class-balanced whatever the data's frequencies.
* One Adam optimizer for all generators and one for all discriminators. Adam's update is element-wise and the
  K losses share no weights, so this is exactly K independent optimizers with the same settings (and one
  variable list per role instead of 2K optimizers).
* DiffAugment/ADA (``augment``) on every D input, optional R1 on reals, mode-seeking on each G_k's fakes, and an
  EMA copy of every G_k (what sampling uses), as in the other adversarial models.

Sampling: the EMA generator bank sends row i to generator ``class_ids[i]`` only (one generator pass per row,
whatever K). ``discriminators`` is a list of K callables ``images -> logits [N, 1]`` (slice k of the bank) and
``discriminator_scores(images)`` gives ``sigmoid(D_k(x))`` for every k: S3's discriminator-bank classifier is
``argmax_k``.
"""
from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from tfaug.errors import TfaugError
from tfaug.models.base import AdversarialModel, scaled_gradients
from tfaug.models.losses import g_loss_nonsaturating, mode_seeking_loss, r1_penalty
from tfaug.models.networks.bank import build_discriminator_bank, build_generator_bank, parse_units

DEFAULTS = {
    "g_units": "256,512,1024",  # hidden sizes of each generator (S3)
    "d_units": "512,256,128",   # hidden sizes of each discriminator (S3)
    "fakes_per_class": 0,       # generated images per class and step; 0 = max(4, ceil(batch_size / K))
}


def _bce(labels_value: float, logits: tf.Tensor) -> tf.Tensor:
    """Element-wise binary cross-entropy of logits (any shape) against a constant target."""
    logits = tf.cast(logits, tf.float32)
    return tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.fill(tf.shape(logits), labels_value), logits=logits)


class _Member:
    """Network k of a bank as a callable: ``x -> slice k of the bank applied to x`` (inference mode)."""

    def __init__(self, bank, k: int, image_shape):
        self.bank, self.k, self.image_shape = bank, int(k), tuple(image_shape)

    def __call__(self, x, training: bool = False):
        x = tf.convert_to_tensor(x, tf.float32)
        flat = tf.reshape(x, [tf.shape(x)[0], -1])
        out = self.bank([flat, tf.fill([tf.shape(x)[0]], self.k)])
        return tf.reshape(out, [tf.shape(x)[0], *self.image_shape]) if len(self.image_shape) > 1 else out


class GANBank(AdversarialModel):
    """K independent unconditional GANs, one per class.

    Attributes:
        generator, ema_generator: ``[z, class_id] -> images`` banks of K generators (layer ``bank``).
        discriminator: ``[images, class_id] -> logits [N, 1]`` bank of K discriminators.
        generators, discriminators: lists of K callables (class k's network alone, inference mode).
    """

    kind = "gan-bank"

    def __init__(self, image_shape, num_classes: int, cfg, options: dict, **kwargs):
        super().__init__(num_classes, cfg.z_dim, seed=cfg.seed, **kwargs)
        self.cfg = cfg
        g_units = parse_units(options["g_units"], "gan-bank option g_units")
        d_units = parse_units(options["d_units"], "gan-bank option d_units")
        per_class = int(options["fakes_per_class"])
        if per_class < 0:
            raise TfaugError(f"gan-bank option fakes_per_class must be >= 0, got {per_class}")
        self.fakes_per_class = per_class or max(4, math.ceil(cfg.batch_size / num_classes))
        self._shape = tuple(int(v) for v in image_shape)
        self.generator = build_generator_bank(self._shape, num_classes, cfg.z_dim, g_units, name="generators")
        self.discriminator = build_discriminator_bank(self._shape, num_classes, d_units, name="discriminators")
        self.ema_generator = self.make_ema(self.generator)
        self.ema_generator.name = "ema_generators"
        self.g_bank = self.generator.get_layer("bank")
        self.d_bank = self.discriminator.get_layer("bank")
        self.configure_augmentation(cfg.diffaugment, cfg.ada_target, cfg.ada_interval)
        self.d_optimizer = keras.optimizers.Adam(cfg.d_lr, beta_1=cfg.beta_1, beta_2=cfg.beta_2)
        self.g_optimizer = keras.optimizers.Adam(cfg.g_lr, beta_1=cfg.beta_1, beta_2=cfg.beta_2)
        self.trackers = [keras.metrics.Mean(name=n) for n in ("d_loss", "g_loss", "d_real", "d_fake")]
        self.built = True

    # -- contract ----------------------------------------------------------------------------------------
    def networks(self) -> dict[str, keras.Model]:
        return {"generators": self.generator, "ema_generators": self.ema_generator,
                "discriminators": self.discriminator}

    def optimizers(self):
        return {"d": (self.d_optimizer, self.discriminator.trainable_variables),
                "g": (self.g_optimizer, self.generator.trainable_variables)}

    @property
    def metrics(self):
        return [*self.trackers, *self.augmentation_metrics]

    @property
    def generators(self) -> list:
        """K callables ``z [N, z_dim] -> images [N, H, W, C]``: class k's EMA generator alone."""
        return [_Member(self.ema_generator.get_layer("bank"), k, self._shape) for k in range(self.num_classes)]

    @property
    def discriminators(self) -> list:
        """K callables ``images [N, H, W, C] -> logits [N, 1]``: class k's discriminator alone."""
        return [_Member(self.d_bank, k, (1,)) for k in range(self.num_classes)]

    def discriminator_scores(self, images, batch_size: int = 256) -> np.ndarray:
        """``sigmoid(D_k(x))`` for every image and class: S3's discriminator bank (classify by ``argmax_k``).

        Args:
            images: float32 ``[N, H, W, C]`` in [-1, 1].
            batch_size: rows per call (results do not depend on it).

        Returns:
            float32 ``[N, K]`` in [0, 1].
        """
        x = np.asarray(images, np.float32)
        if x.ndim != 4 or tuple(x.shape[1:]) != self._shape:
            raise TfaugError(f"images must be [N, {', '.join(map(str, self._shape))}], got {x.shape}")
        out = np.zeros((len(x), self.num_classes), np.float32)
        for i in range(0, len(x), batch_size):
            flat = tf.constant(x[i:i + batch_size].reshape(len(x[i:i + batch_size]), -1))
            out[i:i + batch_size] = tf.sigmoid(tf.transpose(self.d_bank.all_networks(flat)[:, :, 0])).numpy()
        return out

    # -- training ----------------------------------------------------------------------------------------
    def _d_grouped(self, images, labels):
        """Real images through their own class's D: padded logits ``[K, P]``, mask ``[K, P]``, row index."""
        k = self.num_classes
        n = tf.shape(images)[0]
        flat = tf.reshape(images, [n, -1])
        counts = tf.math.bincount(labels, minlength=k, maxlength=k, dtype=tf.int32)
        order = tf.argsort(labels, stable=True)
        sorted_labels = tf.gather(labels, order)
        pos = tf.range(n) - tf.gather(tf.cumsum(counts, exclusive=True), sorted_labels)
        idx = tf.stack([sorted_labels, pos], axis=1)
        p = tf.maximum(tf.reduce_max(counts), 1)
        padded = tf.scatter_nd(idx, tf.gather(flat, order), [k, p, tf.shape(flat)[1]])
        mask = tf.scatter_nd(idx, tf.ones([n], tf.float32), [k, p])
        logits = self.d_bank.grouped(padded, training=True)[:, :, 0]
        return logits, mask, idx, counts

    # Plain Python control flow only (Python flags): skipping AutoGraph's conversion saves tracing time.
    @tf.autograph.experimental.do_not_convert
    def train_step(self, data):
        """One D step then one G step for every class on ``data = (images [N,H,W,C] in [-1, 1], labels [N])``.

        Reported ``d_loss``/``g_loss`` are means over classes (``d_loss`` over the classes present in the batch).
        """
        real, labels, _ = keras.utils.unpack_x_y_sample_weight(data)
        if labels is None:
            raise TfaugError("GANBank needs (images, labels) batches")
        real = tf.cast(real, tf.float32)
        labels = tf.reshape(tf.cast(labels, tf.int32), [-1])
        k, m = self.num_classes, self.fakes_per_class
        z = self.batch_normal(k, m, self.z_dim)
        g_vars = self.generator.trainable_variables
        d_vars = self.discriminator.trainable_variables
        pixels = int(np.prod(self._shape))

        with tf.GradientTape() as g_tape:
            fake = tf.reshape(self.g_bank.grouped(z, training=True), [k * m, *self._shape])
            with g_tape.stop_recording():
                with tf.GradientTape() as d_tape:
                    real_in = self.augment(real)
                    real_logits, mask, idx, counts = self._d_grouped(real_in, labels)
                    fake_in = tf.reshape(self.augment(tf.stop_gradient(fake)), [k, m, pixels])
                    fake_logits = self.d_bank.grouped(fake_in, training=True)[:, :, 0]
                    n_c = tf.cast(counts, tf.float32)
                    has = tf.cast(counts > 0, tf.float32)
                    real_term = tf.reduce_sum(mask * _bce(self.cfg.real_label, real_logits), 1) / tf.maximum(n_c, 1.0)
                    fake_term = tf.reduce_mean(_bce(0.0, fake_logits), 1)
                    # Independent GANs: sum the per-class losses; absent classes contribute nothing.
                    d_sum = tf.reduce_sum(has * (real_term + fake_term))
                    d_total = d_sum
                    if self.cfg.r1 > 0:
                        d_fn = lambda x: tf.gather_nd(self._d_grouped(x, labels)[0], idx)  # noqa: E731
                        d_total += tf.reduce_mean(r1_penalty(real_in, d_fn, self.cfg.r1)) * tf.reduce_sum(has)
                    d_total = tf.nn.scale_regularization_loss(d_total)
                self.d_optimizer.apply(scaled_gradients(d_tape, self.d_optimizer, d_total, d_vars), d_vars)
                real_rows = tf.gather_nd(real_logits, idx)
                self.observe_real_logits(real_rows)
            g_in = tf.reshape(self.augment(fake), [k, m, pixels])
            g_logits = self.d_bank.grouped(g_in, training=True)[:, :, 0]
            g_sum = tf.reduce_sum(tf.reduce_mean(tf.reshape(g_loss_nonsaturating(tf.reshape(g_logits, [-1])),
                                                            [k, m]), axis=1))
            g_total = g_sum
            if self.cfg.mode_seeking > 0 and m > 1:
                fake_cls = tf.repeat(tf.range(k, dtype=tf.int32), m)
                g_total += self.cfg.mode_seeking * mode_seeking_loss(fake, tf.reshape(z, [k * m, -1]), fake_cls)
            g_total = tf.nn.scale_regularization_loss(g_total)
        self.g_optimizer.apply(scaled_gradients(g_tape, self.g_optimizer, g_total, g_vars), g_vars)
        self.update_ema(self.ema_generator, self.generator, self.cfg.ema_decay)

        d_loss_t, g_loss_t, d_real_t, d_fake_t = self.trackers
        d_loss_t.update_state(d_sum / tf.maximum(tf.reduce_sum(has), 1.0))
        g_loss_t.update_state(g_sum / k)
        d_real_t.update_state(tf.sigmoid(real_rows))
        d_fake_t.update_state(tf.sigmoid(fake_logits))
        return {t.name: t.result() for t in self.metrics}


def build_gan_bank(image_shape: tuple[int, int, int], num_classes: int, cfg) -> GANBank:
    """Build a GAN bank (one fully connected GAN per class) from a ``GANConfig``.

    Uses z_dim (S3: 100), g_lr, d_lr, beta_1, beta_2, real_label, ema_decay, mode_seeking, diffaugment,
    ada_target, ada_interval, r1, batch_size and seed (``width`` is not used: layer sizes are options).
    Options: ``g_units`` ("256,512,1024"), ``d_units`` ("512,256,128"), ``fakes_per_class`` (0 = auto).

    Returns:
        A compiled ``GANBank`` with optimizer variables built.
    """
    from tfaug.models.zoo import take_options

    opts = take_options("gan-bank", cfg.options, DEFAULTS)
    model = GANBank(tuple(image_shape), num_classes, cfg, opts, name="gan_bank")
    model.compile(model.d_optimizer, model.g_optimizer)  # made in __init__ from cfg; builds every optimizer
    model.build_optimizers()
    return model


__all__ = ["DEFAULTS", "GANBank", "build_gan_bank"]
