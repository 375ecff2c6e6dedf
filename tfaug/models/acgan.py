"""AC-GAN: auxiliary-classifier GAN (Odena, Olah, Shlens 2017, "Conditional Image Synthesis with Auxiliary
Classifier GANs", ICML).

G is the conditional generator of ``tfaug.models.networks.generators`` (class embedding concatenated to z);
D has one trunk and two heads (``build_acgan_discriminator``): a real/fake logit and K class logits. With
``L_S`` the source (real/fake) loss and ``L_C`` the class negative log-likelihood (eq. 2 of the paper):

* D minimises ``L_S(real, fake) + aux_weight * (L_C(real) + L_C(fake))``; the fake term is on by default as in
  the paper and can be switched off (``fake_class_loss=False``) so that D's classifier learns from reals only
  (useful when early fakes are garbage that would pollute the class head);
* G minimises ``L_S^{non-saturating}(fake) + aux_weight * L_C(fake)``, plus the mode-seeking term.

``L_S`` is the non-saturating GAN loss with one-sided label smoothing (``real_label``). Fake classes are the
real batch's labels (the class balance of G's training follows the data, as in ``ConditionalGAN``).

**One class.** With K = 1 the class head's softmax is constantly 1 and ``L_C`` is identically 0 with zero
gradients: the model trains as an unconditional GAN. That is allowed (the zoo supports K >= 1); the
``class_acc`` metric is then trivially 1.

DiffAugment/ADA (``GenerativeModel.augment``) is applied to every D input, real and fake, in both steps; the
optional R1 penalty (``cfg.r1``) is on D's real/fake logit at the augmented reals; the sampling network is an
EMA copy of G. One ``fit`` step = one D update then one G update on the same generated batch.
"""
from __future__ import annotations

import keras
import tensorflow as tf

from tfaug.errors import TfaugError
from tfaug.models.base import AdversarialModel, scaled_gradients
from tfaug.models.losses import (auxiliary_class_loss, d_loss_nonsaturating, g_loss_nonsaturating,
                                 mode_seeking_loss, r1_penalty)

OPTIONS = {"aux_weight": 1.0, "fake_class_loss": True, "d_dropout": 0.0}


class ACGAN(AdversarialModel):
    """AC-GAN training wrapper.

    Attributes:
        generator: ``[z float32 [N, z_dim], class_id int32 [N]] -> images float32 [N, H, W, C] in [-1, 1]``.
        discriminator: ``images -> [logit [N, 1], class_logits [N, K]]``.
        ema_generator: EMA of ``generator``'s weights; the sampling network.
    """

    kind = "acgan"

    def __init__(self, generator: keras.Model, discriminator: keras.Model, num_classes: int, z_dim: int, *,
                 aux_weight: float = 1.0, fake_class_loss: bool = True, real_label: float = 0.9,
                 ema_decay: float = 0.99, mode_seeking: float = 0.0, r1: float = 0.0, diffaugment: str = "",
                 ada_target: float = 0.0, ada_interval: int = 4, ada_kimg: float = 100.0, seed: int = 0, **kwargs):
        """
        Args:
            generator: built functional ``[z, class_id] -> images``.
            discriminator: built functional ``images -> [logit, class_logits]`` with K class logits.
            num_classes: K >= 1 (K = 1 trains as an unconditional GAN, see the module docstring).
            z_dim: latent size (matches the generator's first input).
            aux_weight: weight of the class loss in both D's and G's objectives, >= 0.
            fake_class_loss: include the class loss on fakes in D's objective (the paper does).
            real_label: one-sided label smoothing target for reals, in (0, 1].
            ema_decay: EMA decay of the sampling generator, in [0, 1).
            mode_seeking: weight of the mode-seeking term in G's loss, >= 0.
            r1: R1 penalty weight on reals, >= 0 (0 disables).
            diffaugment, ada_target, ada_interval, ada_kimg: see ``GenerativeModel.configure_augmentation``.
            seed: seed of the training noise stream.
        """
        super().__init__(num_classes, z_dim, seed=seed, **kwargs)
        if not aux_weight >= 0.0:
            raise TfaugError(f"aux_weight must be >= 0, got {aux_weight!r}")
        if not 0.0 < real_label <= 1.0:
            raise TfaugError(f"real_label must be in (0, 1], got {real_label!r}")
        if not 0.0 <= ema_decay < 1.0:
            raise TfaugError(f"ema_decay must be in [0, 1), got {ema_decay!r}")
        if not (mode_seeking >= 0.0 and r1 >= 0.0):
            raise TfaugError(f"mode_seeking and r1 must be >= 0, got {mode_seeking!r} and {r1!r}")
        k = discriminator.outputs[1].shape[-1]
        if k is not None and int(k) != self.num_classes:
            raise TfaugError(f"the discriminator's class head has {k} outputs but num_classes is {num_classes}")
        self.generator = generator
        self.discriminator = discriminator
        self.ema_generator = self.make_ema(generator)
        self.aux_weight = float(aux_weight)
        self.fake_class_loss = bool(fake_class_loss)
        self.real_label = float(real_label)
        self.ema_decay = float(ema_decay)
        self.mode_seeking = float(mode_seeking)
        self.r1 = float(r1)
        self.configure_augmentation(diffaugment, ada_target, ada_interval, ada_kimg)
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.aux_loss_tracker = keras.metrics.Mean(name="aux_loss")
        self.class_acc_tracker = keras.metrics.Mean(name="class_acc")
        self.d_real_tracker = keras.metrics.Mean(name="d_real")
        self.d_fake_tracker = keras.metrics.Mean(name="d_fake")
        self.r1_tracker = keras.metrics.Mean(name="r1") if self.r1 > 0 else None
        self.built = True

    # -- contract ----------------------------------------------------------------------------------------
    @property
    def metrics(self):
        extra = [self.r1_tracker] if self.r1_tracker is not None else []
        return [self.d_loss_tracker, self.g_loss_tracker, self.aux_loss_tracker, self.class_acc_tracker,
                self.d_real_tracker, self.d_fake_tracker, *extra, *self.augmentation_metrics]

    def classify(self, images) -> tf.Tensor:
        """D's class logits ``[N, K]`` for images float32 ``[N, H, W, C]`` in [-1, 1] (inference mode)."""
        return self.discriminator(tf.convert_to_tensor(images, tf.float32), training=False)[1]

    def train_step(self, data):
        """One D step then one G step on ``data = (images float32 [N,H,W,C] in [-1, 1], labels int32 [N])``.

        Reported: ``d_loss`` (adversarial + class terms of D, without R1), ``g_loss`` (adversarial + class terms
        of G, without mode seeking), ``aux_loss`` (D's class loss on reals), ``class_acc`` (D's class accuracy
        on the augmented reals), ``d_real``/``d_fake`` (mean sigmoid of D's logits), ``r1`` when R1 is on and
        ``ada_p`` with ADA.
        """
        real, labels, _ = keras.utils.unpack_x_y_sample_weight(data)
        if labels is None:
            raise TfaugError("ACGAN needs (images, labels) batches")
        real = tf.cast(real, tf.float32)
        labels = tf.reshape(tf.cast(labels, tf.int32), [-1])
        n = tf.shape(real)[0]
        z = self.batch_normal(n, self.z_dim)
        g_vars = self.generator.trainable_variables
        d_vars = self.discriminator.trainable_variables
        both = tf.concat([labels, labels], axis=0)

        with tf.GradientTape() as g_tape:
            fake = self.generator([z, labels], training=True)
            with g_tape.stop_recording():
                with tf.GradientTape() as d_tape:
                    d_in = self.augment(tf.concat([real, tf.stop_gradient(fake)], axis=0))
                    logits, class_logits = self.discriminator(d_in, training=True)
                    real_logits, fake_logits = logits[:n], logits[n:]
                    aux_all = auxiliary_class_loss(class_logits, both)
                    aux_real, aux_fake = aux_all[:n], aux_all[n:]
                    d_per = d_loss_nonsaturating(real_logits, fake_logits, self.real_label)
                    d_aux = aux_real + aux_fake if self.fake_class_loss else aux_real
                    d_per = d_per + self.aux_weight * d_aux
                    d_total = d_per
                    if self.r1 > 0:
                        r1 = r1_penalty(d_in[:n], lambda x: self.discriminator(x, training=True)[0], gamma=self.r1)
                        d_total = d_per + r1
                    d_loss = tf.nn.compute_average_loss(d_total)
                self.d_optimizer.apply(scaled_gradients(d_tape, self.d_optimizer, d_loss, d_vars), d_vars)
                self.observe_real_logits(real_logits)
            g_logits, g_class_logits = self.discriminator(self.augment(fake), training=True)
            g_per = g_loss_nonsaturating(g_logits) + self.aux_weight * auxiliary_class_loss(g_class_logits, labels)
            g_loss = tf.nn.compute_average_loss(g_per)
            g_total = g_loss
            if self.mode_seeking > 0:
                g_total = g_loss + tf.nn.scale_regularization_loss(
                    self.mode_seeking * mode_seeking_loss(fake, z, labels))
        self.g_optimizer.apply(scaled_gradients(g_tape, self.g_optimizer, g_total, g_vars), g_vars)
        self.update_ema(self.ema_generator, self.generator, self.ema_decay)

        # compute_average_loss divides by the global batch; report the per-replica mean instead.
        replicas = tf.cast(tf.distribute.get_strategy().num_replicas_in_sync, tf.float32)
        self.d_loss_tracker.update_state(tf.nn.compute_average_loss(d_per) * replicas)  # without R1
        if self.r1 > 0:
            self.r1_tracker.update_state(r1)
        self.g_loss_tracker.update_state(g_loss * replicas)
        self.aux_loss_tracker.update_state(aux_real)
        predicted = tf.argmax(class_logits[:n], axis=-1, output_type=tf.int32)
        self.class_acc_tracker.update_state(tf.cast(tf.equal(predicted, labels), tf.float32))
        self.d_real_tracker.update_state(tf.sigmoid(real_logits))
        self.d_fake_tracker.update_state(tf.sigmoid(fake_logits))
        return {m.name: m.result() for m in self.metrics}


def build_acgan(image_shape: tuple[int, int, int], num_classes: int, cfg) -> ACGAN:
    """Build, wrap and compile an AC-GAN (Adam with ``cfg``'s learning rates and betas).

    Call ``keras.utils.set_random_seed(cfg.seed)`` first for reproducible weights.

    Args:
        image_shape: ``(H, W, C)``, H and W in [8, 128].
        num_classes: K >= 1.
        cfg: ``GANConfig``; options (``cfg.options``): ``aux_weight`` (1.0), ``fake_class_loss`` (True),
            ``d_dropout`` (0.0; the paper uses 0.5).

    Returns:
        A compiled ``ACGAN`` with optimizer variables built.
    """
    from tfaug.models.networks.encoders import build_acgan_discriminator
    from tfaug.models.networks.generators import build_generator
    from tfaug.models.zoo import take_options

    opts = take_options("acgan", cfg.options, OPTIONS)
    g = build_generator(image_shape, num_classes, z_dim=cfg.z_dim, width=cfg.width)
    d = build_acgan_discriminator(image_shape, num_classes, width=cfg.width, dropout=opts["d_dropout"])
    model = ACGAN(g, d, num_classes, cfg.z_dim, aux_weight=opts["aux_weight"],
                  fake_class_loss=opts["fake_class_loss"], real_label=cfg.real_label, ema_decay=cfg.ema_decay,
                  mode_seeking=cfg.mode_seeking, r1=cfg.r1, diffaugment=cfg.diffaugment,
                  ada_target=cfg.ada_target, ada_interval=cfg.ada_interval, ada_kimg=cfg.ada_kimg, seed=cfg.seed,
                  name="acgan")
    model.compile(d_optimizer=keras.optimizers.Adam(cfg.d_lr, beta_1=cfg.beta_1, beta_2=cfg.beta_2),
                  g_optimizer=keras.optimizers.Adam(cfg.g_lr, beta_1=cfg.beta_1, beta_2=cfg.beta_2))
    return model


__all__ = ["ACGAN", "OPTIONS", "build_acgan"]
