"""Unconditional DCGAN (Radford, Metz, Chintala 2016, "Unsupervised Representation Learning with Deep
Convolutional Generative Adversarial Networks"), the zoo's ``dcgan``.

S1's 64x64 RGB configuration is the preset ``gan/dcgan64`` (z=100, width=64 with the default options: G ConvT 4x4
512->256->128->64->3 with BN + ReLU and tanh, D Conv 4x4 64->128->256->512->1 with BN on the middle layers and
LeakyReLU 0.2, N(0, 0.02) init, lr 5e-4, batch 128). The networks are sized from the image shape, so the same
model trains on 8x8 or 28x28 data.

Labels: the model is unconditional. On a labelled dataset it trains on all images and ignores the labels, and
``sample(class_ids, seeds)`` ignores the class ids (the image depends on the seed only), so its class consistency
is that of a random draw from the data. For one unconditional GAN per class (S3), use the ``gan-bank`` model.

Training: non-saturating loss (optional one-sided label smoothing ``cfg.real_label``), D sees reals and fakes
as separate batches (its BatchNorm statistics would otherwise mix them, as in the PyTorch reference),
DiffAugment/ADA on every D input, optional R1 (needs ``d_norm=none``), optional mode-seeking term over the whole
batch, and an EMA generator for sampling.

Options (``--option KEY=VALUE``): ``widest`` (channel multiplier of G's start grid and D's last block, default
8), ``kernel`` (4), ``d_norm`` (``batch`` or ``none``).
"""
from __future__ import annotations

import keras
import tensorflow as tf

from tfaug.errors import TfaugError
from tfaug.models.base import AdversarialModel, scaled_gradients
from tfaug.models.losses import d_loss_nonsaturating, g_loss_nonsaturating, mode_seeking_loss, r1_penalty

OPTIONS = {"widest": 8, "kernel": 4, "d_norm": "batch"}


@keras.saving.register_keras_serializable(package="tfaug")
class DCGAN(AdversarialModel):
    """Unconditional DCGAN: ``generator([z, class_id])`` (class ignored) vs ``discriminator([images, class_id])``.

    Attributes:
        generator, discriminator: the trained networks (functional; both take and ignore ``class_id``).
        ema_generator: EMA of ``generator`` (BatchNorm statistics included): the sampling network.
    """

    kind = "dcgan"

    def __init__(self, generator: keras.Model, discriminator: keras.Model, num_classes: int, z_dim: int, *,
                 ema_decay: float = 0.99, real_label: float = 1.0, mode_seeking: float = 0.0, diffaugment: str = "",
                 ada_target: float = 0.0, ada_interval: int = 4, ada_kimg: float = 100.0, r1: float = 0.0,
                 seed: int = 0, **kwargs):
        """
        Args:
            generator: ``[z, class_id] -> images in [-1, 1]``.
            discriminator: ``[images, class_id] -> logits [N, 1]``.
            num_classes: classes of the dataset (>= 1; only for the sampling contract's range checks).
            z_dim: latent size (G's first input).
            ema_decay: in [0, 1); 0 samples from a copy of G.
            real_label: real target in D's loss, in (0, 1].
            mode_seeking: weight of the mode-seeking term over the whole batch (Mao et al. 2019), >= 0.
            diffaugment, ada_target, ada_interval, ada_kimg: see ``GenerativeModel.configure_augmentation``.
            r1: R1 weight gamma (>= 0); needs a discriminator without BatchNorm.
            seed: noise/augmentation stream seed.
        """
        super().__init__(num_classes, z_dim, seed=seed, **kwargs)
        if not 0.0 <= ema_decay < 1.0:
            raise TfaugError(f"ema_decay must be in [0, 1), got {ema_decay!r}")
        if not 0.0 < real_label <= 1.0:
            raise TfaugError(f"real_label must be in (0, 1], got {real_label!r}")
        if not (mode_seeking >= 0.0 and r1 >= 0.0):
            raise TfaugError("mode_seeking and r1 must be >= 0")
        if r1 > 0 and any(isinstance(layer, keras.layers.BatchNormalization) for layer in discriminator.layers):
            raise TfaugError("the R1 penalty needs a discriminator without BatchNorm: use --option d_norm=none")
        self.generator, self.discriminator = generator, discriminator
        self.ema_generator = self.make_ema(generator)
        self.ema_decay, self.real_label = float(ema_decay), float(real_label)
        self.mode_seeking, self.r1 = float(mode_seeking), float(r1)
        self.configure_augmentation(diffaugment, ada_target, ada_interval, ada_kimg)
        self.make_gan_trackers(r1=self.r1 > 0)
        self.built = True

    @property
    def metrics(self):
        extra = [self.r1_tracker] if self.r1_tracker is not None else []
        return [self.d_loss_tracker, self.g_loss_tracker, self.d_real_tracker, self.d_fake_tracker, *extra,
                *self.augmentation_metrics]

    def train_step(self, data):
        """One D step then one G step on ``(images float32 [N, H, W, C] in [-1, 1], labels)``; labels ignored."""
        real, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        real = tf.cast(real, tf.float32)
        n = tf.shape(real)[0]
        ids = tf.zeros([n], tf.int32)  # unconditional: one pseudo-class
        z = self.batch_normal(n, self._z_dim)
        g_vars, d_vars = self.generator.trainable_variables, self.discriminator.trainable_variables
        with tf.GradientTape() as g_tape:
            fake = self.generator([z, ids], training=True)
            with g_tape.stop_recording():
                with tf.GradientTape() as d_tape:
                    real_in = self.augment(real)
                    real_logits = self.discriminator([real_in, ids], training=True)
                    fake_logits = self.discriminator([self.augment(tf.stop_gradient(fake)), ids], training=True)
                    per_example = d_loss_nonsaturating(real_logits, fake_logits, self.real_label)
                    if self.r1 > 0:
                        r1 = r1_penalty(real_in, lambda x: self.discriminator([x, ids], training=True), self.r1)
                        per_example = per_example + r1
                    d_loss = tf.nn.compute_average_loss(per_example)
                self.d_optimizer.apply(scaled_gradients(d_tape, self.d_optimizer, d_loss, d_vars), d_vars)
                self.observe_real_logits(real_logits)
            g_loss = tf.nn.compute_average_loss(
                g_loss_nonsaturating(self.discriminator([self.augment(fake), ids], training=True)))
            g_total = g_loss
            if self.mode_seeking > 0:
                g_total += tf.nn.scale_regularization_loss(self.mode_seeking * mode_seeking_loss(fake, z, ids))
        self.g_optimizer.apply(scaled_gradients(g_tape, self.g_optimizer, g_total, g_vars), g_vars)
        self.update_ema(self.ema_generator, self.generator, self.ema_decay)

        if self.r1 > 0:
            self.r1_tracker.update_state(r1)
            d_loss = tf.nn.compute_average_loss(per_example - r1)
        return self.report_gan_losses(d_loss, g_loss, real_logits, fake_logits)


def build_dcgan(image_shape: tuple[int, int, int], num_classes: int, cfg) -> DCGAN:
    """Build, wrap and compile an unconditional DCGAN from a ``GANConfig`` (options: widest, kernel, d_norm).

    Call ``keras.utils.set_random_seed(cfg.seed)`` first for reproducible weights.

    Raises:
        TfaugError: an unknown option or value.
    """
    from tfaug.models.networks.discriminators import build_dcgan_discriminator
    from tfaug.models.networks.generators import build_dcgan_generator
    from tfaug.models.zoo import take_options

    opts = take_options("dcgan", getattr(cfg, "options", None), OPTIONS)
    if opts["widest"] < 1 or opts["kernel"] < 1:
        raise TfaugError("options widest and kernel of model 'dcgan' must be >= 1")
    g = build_dcgan_generator(image_shape, z_dim=cfg.z_dim, width=cfg.width, widest=opts["widest"],
                              kernel=opts["kernel"])
    d = build_dcgan_discriminator(image_shape, width=cfg.width, widest=opts["widest"], kernel=opts["kernel"],
                                  norm=opts["d_norm"])
    gan = DCGAN(g, d, num_classes, cfg.z_dim, ema_decay=cfg.ema_decay, real_label=cfg.real_label,
                mode_seeking=cfg.mode_seeking, diffaugment=cfg.diffaugment, ada_target=cfg.ada_target,
                ada_interval=cfg.ada_interval, ada_kimg=cfg.ada_kimg, r1=cfg.r1, seed=cfg.seed, name="dcgan")
    gan.compile(d_optimizer=keras.optimizers.Adam(cfg.d_lr, beta_1=cfg.beta_1, beta_2=cfg.beta_2),
                g_optimizer=keras.optimizers.Adam(cfg.g_lr, beta_1=cfg.beta_1, beta_2=cfg.beta_2))
    return gan


__all__ = ["DCGAN", "OPTIONS", "build_dcgan"]
