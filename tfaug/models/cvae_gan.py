"""CVAE-GAN (Bao, Chen, Wen, Li, Hua 2017, "CVAE-GAN: Fine-Grained Image Generation through Asymmetric
Training"; S5 in docs/studies.md): a conditional VAE whose decoder is also a GAN generator, with a classifier.

Networks: encoder E ``[x, c] -> (mu, log_var)``, generator G ``[z, c] -> x`` (the conditional DCGAN generator),
discriminator D ``x -> (logit, f_D)`` and classifier C ``x -> (class logits, f_C)``, where f_D, f_C are the
last hidden features (4 * width values) of each.

Losses per step (x real of class c, ``x' = G(z ~ E(x, c), c)`` its reconstruction, ``x_p = G(z ~ N(0, I), c)``):

* D: ``L_D`` = BCE(D(x), real) + 1/2 [BCE(D(x'), fake) + BCE(D(x_p), fake)]  (weight 1).
* C: ``L_C`` = cross-entropy of C on the real images (weight 1; the paper trains C on reals only).
* E and G minimise ``kl * L_KL + recon * L_G + fm_d * L_GD + fm_c * L_GC + adv * L_adv + cls * L_cls``:

  - ``L_KL`` = KL(q(z | x, c) || N(0, I)) (:func:`~tfaug.models.losses.kl_normal`), default weight ``kl`` = 3;
  - ``L_G`` = 1/2 (||x - x'||^2 + ||f_D(x) - f_D(x')||^2 + ||f_C(x) - f_C(x')||^2), pixel reconstruction plus
    pairwise feature matching (:func:`~tfaug.models.losses.pairwise_feature_loss`), default ``recon`` = 1;
  - ``L_GD`` = mean feature matching of D's features between x and x_p
    (:func:`~tfaug.models.losses.mean_feature_matching`), default ``fm_d`` = 1e-3;
  - ``L_GC`` = class-wise mean feature matching of C's features between x and x_p
    (:func:`~tfaug.models.losses.class_mean_feature_matching`), default ``fm_c`` = 1e-3;
  - ``L_adv`` = non-saturating adversarial loss of x_p against D, default ``adv`` = 0 (the paper replaces it by
    ``L_GD``: the "asymmetric" training);
  - ``L_cls`` = cross-entropy of C on x_p for its requested class, default ``cls`` = 0 (the paper uses ``L_GC``).

  The defaults are the paper's (sec. 4: lambda_1 = 3, lambda_2 = 1, lambda_3 = lambda_4 = 1e-3); E only
  receives the KL and L_G gradients because the other terms do not depend on E.

DiffAugment/ADA (``augment``) is applied to D's inputs in its real/fake decisions (D step and ``L_adv``), never
to the feature-matching terms (they compare an image with its own reconstruction). The sampling network is the
EMA copy of G on ``z ~ N(0, I)`` and the class.
"""
from __future__ import annotations

import keras
import tensorflow as tf

from tfaug.errors import TfaugError
from tfaug.models.base import AdversarialModel, scaled_gradients
from tfaug.models.losses import (auxiliary_class_loss, class_mean_feature_matching, d_loss_nonsaturating,
                                 g_loss_nonsaturating, kl_normal, mean_feature_matching, pairwise_feature_loss,
                                 r1_penalty)

DEFAULTS = {"kl": 3.0, "recon": 1.0, "fm_d": 1e-3, "fm_c": 1e-3, "adv": 0.0, "cls": 0.0}


def _feature_net(image_shape, width: int, outputs: int, name: str) -> keras.Model:
    """``images -> [head [N, outputs], features [N, 4 * width]]`` on the shared convolutional trunk."""
    from tfaug.models.networks.encoders import conv_trunk

    images = keras.Input(shape=image_shape, dtype="float32", name="images")
    feats = conv_trunk(images, width)
    head = keras.layers.Dense(outputs, dtype="float32", name="head")(feats)
    feats = keras.layers.Activation("linear", dtype="float32", name="feature_out")(feats)
    return keras.Model(images, [head, feats], name=name)


class CVAEGAN(AdversarialModel):
    """CVAE-GAN. Attributes: ``encoder``, ``generator``, ``ema_generator``, ``discriminator`` and ``classifier``
    (both ``images -> [head, features]``)."""

    kind = "cvae-gan"

    def __init__(self, image_shape, num_classes: int, cfg, options: dict, **kwargs):
        super().__init__(num_classes, cfg.z_dim, seed=cfg.seed, **kwargs)
        from tfaug.models.networks.encoders import build_encoder
        from tfaug.models.networks.generators import build_generator

        bad = sorted(k for k, v in options.items() if v < 0)
        if bad:
            raise TfaugError(f"cvae-gan loss weights must be >= 0, got negative {', '.join(bad)}")
        self.cfg = cfg
        self.term_weights = dict(options)
        image_shape = tuple(image_shape)
        self.encoder = build_encoder(image_shape, cfg.z_dim, num_classes=num_classes, width=cfg.width)
        self.generator = build_generator(image_shape, num_classes, z_dim=cfg.z_dim, width=cfg.width)
        self.discriminator = _feature_net(image_shape, cfg.width, 1, "discriminator")
        self.classifier = _feature_net(image_shape, cfg.width, num_classes, "classifier")
        self.ema_generator = self.make_ema(self.generator)
        self.ema_generator.name = "ema_generator"
        self.configure_augmentation(cfg.diffaugment, cfg.ada_target, cfg.ada_interval)
        adam = {"beta_1": cfg.beta_1, "beta_2": cfg.beta_2}
        self.d_optimizer = keras.optimizers.Adam(cfg.d_lr, **adam)
        self.c_optimizer = keras.optimizers.Adam(cfg.d_lr, **adam)
        self.g_optimizer = keras.optimizers.Adam(cfg.g_lr, **adam)
        self.trackers = [keras.metrics.Mean(name=n) for n in
                         ("d_loss", "c_loss", "g_loss", "kl", "recon", "d_real", "d_fake")]
        self.built = True

    # -- contract ----------------------------------------------------------------------------------------
    def networks(self) -> dict[str, keras.Model]:
        return {"encoder": self.encoder, "generator": self.generator, "ema_generator": self.ema_generator,
                "discriminator": self.discriminator, "classifier": self.classifier}

    def optimizers(self):
        return {"d": (self.d_optimizer, self.discriminator.trainable_variables),
                "c": (self.c_optimizer, self.classifier.trainable_variables),
                "g": (self.g_optimizer, self.encoder.trainable_variables + self.generator.trainable_variables)}

    @property
    def metrics(self):
        return [*self.trackers, *self.augmentation_metrics]

    # -- training ----------------------------------------------------------------------------------------
    # Plain Python control flow only (loops over classes, Python flags): skipping AutoGraph's conversion
    # saves seconds of tracing per run.
    @tf.autograph.experimental.do_not_convert
    def train_step(self, data):
        """D and C steps, then one E+G step, on ``data = (images [N,H,W,C] in [-1, 1], labels int32 [N])``.

        ``g_loss`` reports the weighted E+G objective; ``kl`` and ``recon`` its two VAE terms (per example).
        """
        real, labels, _ = keras.utils.unpack_x_y_sample_weight(data)
        if labels is None:
            raise TfaugError("CVAE-GAN needs (images, labels) batches")
        real = tf.cast(real, tf.float32)
        labels = tf.reshape(tf.cast(labels, tf.int32), [-1])
        n = tf.shape(real)[0]
        w = self.term_weights
        eps = self.batch_normal(n, self.z_dim)
        z_p = self.batch_normal(n, self.z_dim)
        d_vars = self.discriminator.trainable_variables
        c_vars = self.classifier.trainable_variables
        g_vars = self.optimizers()["g"][1]

        with tf.GradientTape() as g_tape:
            mean, log_var = self.encoder([real, labels], training=True)
            z = mean + tf.exp(0.5 * log_var) * eps
            fakes = self.generator([tf.concat([z, z_p], 0), tf.concat([labels, labels], 0)], training=True)
            rec, prior = fakes[:n], fakes[n:]
            with g_tape.stop_recording():
                with tf.GradientTape() as d_tape:
                    real_in = self.augment(real)
                    logits = self.discriminator(tf.concat([real_in, self.augment(tf.stop_gradient(fakes))], 0),
                                                training=True)[0]
                    real_logits, rec_logits, prior_logits = logits[:n], logits[n:2 * n], logits[2 * n:]
                    # Reals once, each kind of fake at half weight: d_loss_nonsaturating(real, rec) covers
                    # real + rec; the prior fakes add their own fake term.
                    per_example = 0.5 * (d_loss_nonsaturating(real_logits, rec_logits, self.cfg.real_label)
                                         + d_loss_nonsaturating(real_logits, prior_logits, self.cfg.real_label))
                    d_loss = tf.nn.compute_average_loss(per_example)
                    d_total = d_loss
                    if self.cfg.r1 > 0:
                        d_fn = lambda x: self.discriminator(x, training=True)[0]  # noqa: E731
                        d_total += tf.nn.compute_average_loss(r1_penalty(real_in, d_fn, self.cfg.r1))
                self.d_optimizer.apply(scaled_gradients(d_tape, self.d_optimizer, d_total, d_vars), d_vars)
                self.observe_real_logits(real_logits)
                with tf.GradientTape() as c_tape:
                    c_loss = tf.nn.compute_average_loss(
                        auxiliary_class_loss(self.classifier(real, training=True)[0], labels))
                self.c_optimizer.apply(scaled_gradients(c_tape, self.c_optimizer, c_loss, c_vars), c_vars)
            # E + G against the updated D and C.
            _, fd = self.discriminator(tf.concat([real, fakes], 0), training=True)
            c_logits, fc = self.classifier(tf.concat([real, fakes], 0), training=True)
            fd_real, fd_rec, fd_prior = fd[:n], fd[n:2 * n], fd[2 * n:]
            fc_real, fc_rec, fc_prior = fc[:n], fc[n:2 * n], fc[2 * n:]
            kl = kl_normal(mean, log_var)
            recon = pairwise_feature_loss(real, rec)
            l_g = recon + pairwise_feature_loss(fd_real, fd_rec) + pairwise_feature_loss(fc_real, fc_rec)
            per_example = w["kl"] * kl + w["recon"] * l_g
            if w["adv"] > 0:
                per_example += w["adv"] * g_loss_nonsaturating(self.discriminator(self.augment(prior),
                                                                                  training=True)[0])
            if w["cls"] > 0:
                per_example += w["cls"] * auxiliary_class_loss(c_logits[2 * n:], labels)
            batch_terms = (w["fm_d"] * mean_feature_matching(fd_real, fd_prior)
                           + w["fm_c"] * class_mean_feature_matching(fc_real, labels, fc_prior, labels,
                                                                     self.num_classes))
            g_loss = tf.nn.compute_average_loss(per_example) + tf.nn.scale_regularization_loss(batch_terms)
        self.g_optimizer.apply(scaled_gradients(g_tape, self.g_optimizer, g_loss, g_vars), g_vars)
        self.update_ema(self.ema_generator, self.generator, self.cfg.ema_decay)

        replicas = tf.cast(tf.distribute.get_strategy().num_replicas_in_sync, tf.float32)
        d_loss_t, c_loss_t, g_loss_t, kl_t, recon_t, d_real_t, d_fake_t = self.trackers
        d_loss_t.update_state(d_loss * replicas)
        c_loss_t.update_state(c_loss * replicas)
        g_loss_t.update_state(g_loss * replicas)
        kl_t.update_state(kl)
        recon_t.update_state(recon)
        d_real_t.update_state(tf.sigmoid(real_logits))
        d_fake_t.update_state(tf.sigmoid(prior_logits))
        return {t.name: t.result() for t in self.metrics}


def build_cvae_gan(image_shape: tuple[int, int, int], num_classes: int, cfg) -> CVAEGAN:
    """Build a CVAE-GAN from a ``GANConfig``.

    Uses z_dim, width, g_lr (E and G), d_lr (D and C), beta_1, beta_2, real_label, ema_decay, diffaugment,
    ada_target, ada_interval, r1 and seed (``mode_seeking`` is not used: the encoder already ties images to
    latents). Options: loss weights ``kl`` (3.0), ``recon`` (1.0), ``fm_d`` (1e-3), ``fm_c`` (1e-3), ``adv`` (0.0),
    ``cls`` (0.0), each >= 0 (see the module docstring).

    Returns:
        A compiled ``CVAEGAN`` with optimizer variables built.
    """
    from tfaug.models.zoo import take_options

    opts = take_options("cvae-gan", cfg.options, DEFAULTS)
    model = CVAEGAN(tuple(image_shape), num_classes, cfg, opts, name="cvae_gan")
    model.compile(model.d_optimizer, model.g_optimizer)  # made in __init__ from cfg; builds every optimizer
    model.build_optimizers()
    return model


__all__ = ["CVAEGAN", "DEFAULTS", "build_cvae_gan"]
