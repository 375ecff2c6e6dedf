"""Conditional WGAN-GP (Gulrajani, Ahmed, Arjovsky, Dumoulin, Courville 2017, "Improved Training of Wasserstein
GANs", NeurIPS; Arjovsky et al. 2017, "Wasserstein GAN").

* Critic ``[images, class_id] -> score`` without BatchNorm (``build_critic``: layer norm or none, projection
  or one-hot-map concatenation conditioning), G the conditional generator of ``networks.generators``.
* Critic loss ``D(G(z)) - D(x) + gp_weight * (||grad D(x_hat)||_2 - 1)^2`` with ``x_hat`` a per-example
  uniform interpolation between a real and a fake (``losses.gradient_penalty``), G loss ``-D(G(z))``
  (plus the optional mode-seeking term).
* **n_critic.** One ``fit`` step = ``n_critic`` critic updates followed by one generator update. All critic
  updates of a step reuse the step's real batch (with fresh latents, fresh interpolation coefficients and a
  fresh DiffAugment draw each time) instead of consuming ``n_critic`` batches: the runner feeds one batch per
  step, tiny datasets have few distinct batches anyway, and the paper's critic-to-generator update ratio is
  what matters. So ``steps`` counts generator updates, and a step costs about ``n_critic + 1`` GAN steps.
* Adam as in the paper (Algorithm 1: lr 1e-4, beta_1 0, beta_2 0.9) by default (option ``adam="paper"``);
  ``adam="config"`` uses ``cfg.g_lr``, ``cfg.d_lr``, ``cfg.beta_1``, ``cfg.beta_2`` instead.

DiffAugment/ADA are applied to every critic input (the gradient penalty is taken at the augmented
interpolates, the critic's actual input); ADA reads the sign of the critic's scores on reals, which is a weaker
overfitting signal than for a logit (a Wasserstein critic's scores have no fixed zero: the loss is invariant to
a constant shift), so prefer plain DiffAugment with this model. R1 is not offered:
the gradient penalty already constrains the critic's gradients. The sampling network is an EMA copy of G.
"""
from __future__ import annotations

import keras
import tensorflow as tf

from tfaug.errors import TfaugError
from tfaug.models.base import AdversarialModel, scaled_gradients
from tfaug.models.losses import gradient_penalty, mode_seeking_loss, wgan_critic_loss, wgan_generator_loss

OPTIONS = {"n_critic": 5, "gp_weight": 10.0, "conditioning": "projection", "critic_norm": "layer",
           "adam": "paper"}
ADAM_CHOICES = ("paper", "config")
# Gulrajani et al. 2017, Algorithm 1 defaults.
PAPER_ADAM = {"learning_rate": 1e-4, "beta_1": 0.0, "beta_2": 0.9}


class WGANGP(AdversarialModel):
    """Conditional WGAN-GP training wrapper.

    Attributes:
        generator: ``[z float32 [N, z_dim], class_id int32 [N]] -> images float32 [N, H, W, C] in [-1, 1]``.
        critic: ``[images, class_id] -> scores float32 [N, 1]`` (no BatchNorm).
        ema_generator: EMA of ``generator``'s weights; the sampling network.
    """

    kind = "wgan-gp"

    def __init__(self, generator: keras.Model, critic: keras.Model, num_classes: int, z_dim: int, *,
                 n_critic: int = 5, gp_weight: float = 10.0, ema_decay: float = 0.99, mode_seeking: float = 0.0,
                 diffaugment: str = "", ada_target: float = 0.0, ada_interval: int = 4, ada_kimg: float = 100.0,
                 seed: int = 0, **kwargs):
        """
        Args:
            generator: built functional ``[z, class_id] -> images``.
            critic: built functional ``[images, class_id] -> scores``; must not use BatchNorm.
            num_classes: number of classes, >= 1.
            z_dim: latent size.
            n_critic: critic updates per generator update, >= 1.
            gp_weight: gradient-penalty weight (lambda), >= 0.
            ema_decay: EMA decay of the sampling generator, in [0, 1).
            mode_seeking: weight of the mode-seeking term in G's loss, >= 0.
            diffaugment, ada_target, ada_interval, ada_kimg: see ``GenerativeModel.configure_augmentation``.
            seed: seed of the training noise stream.
        """
        super().__init__(num_classes, z_dim, seed=seed, **kwargs)
        if int(n_critic) < 1:
            raise TfaugError(f"n_critic must be >= 1, got {n_critic!r}")
        if not gp_weight >= 0.0:
            raise TfaugError(f"gp_weight must be >= 0, got {gp_weight!r}")
        if not 0.0 <= ema_decay < 1.0:
            raise TfaugError(f"ema_decay must be in [0, 1), got {ema_decay!r}")
        if not mode_seeking >= 0.0:
            raise TfaugError(f"mode_seeking must be >= 0, got {mode_seeking!r}")
        if any(isinstance(layer, keras.layers.BatchNormalization) for layer in critic.layers):
            raise TfaugError("the WGAN-GP critic must not use BatchNormalization (the gradient penalty is per example)")
        self.generator = generator
        self.critic = critic
        self.ema_generator = self.make_ema(generator)
        self.n_critic = int(n_critic)
        self.gp_weight = float(gp_weight)
        self.ema_decay = float(ema_decay)
        self.mode_seeking = float(mode_seeking)
        self.configure_augmentation(diffaugment, ada_target, ada_interval, ada_kimg)
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.gp_tracker = keras.metrics.Mean(name="gp")
        self.w_dist_tracker = keras.metrics.Mean(name="w_distance")
        self.built = True

    # -- contract ----------------------------------------------------------------------------------------
    def networks(self) -> dict[str, keras.Model]:
        return {"generator": self.generator, "critic": self.critic, "ema_generator": self.ema_generator}

    def optimizers(self):
        return {"d": (self.d_optimizer, self.critic.trainable_variables),
                "g": (self.g_optimizer, self.generator.trainable_variables)}

    @property
    def metrics(self):
        return [self.d_loss_tracker, self.g_loss_tracker, self.gp_tracker, self.w_dist_tracker,
                *self.augmentation_metrics]

    def _critic_step(self, real, labels, n):
        """One critic update; returns (per-example critic loss, penalty, real scores, fake scores)."""
        z = self.batch_normal(n, self.z_dim)
        fake = self.generator([z, labels], training=True)
        d_vars = self.critic.trainable_variables
        with tf.GradientTape() as tape:
            d_in = self.augment(tf.concat([real, tf.stop_gradient(fake)], axis=0))
            scores = self.critic([d_in, tf.concat([labels, labels], axis=0)], training=True)
            real_scores, fake_scores = scores[:n], scores[n:]
            gp = gradient_penalty(lambda x: self.critic([x, labels], training=True), d_in[:n], d_in[n:],
                                  eps=self.batch_uniform(n))
            per = wgan_critic_loss(real_scores, fake_scores) + self.gp_weight * gp
            loss = tf.nn.compute_average_loss(per)
        self.d_optimizer.apply(scaled_gradients(tape, self.d_optimizer, loss, d_vars), d_vars)
        self.observe_real_logits(real_scores)
        return per, gp, real_scores, fake_scores

    def train_step(self, data):
        """``n_critic`` critic updates, then one generator update, on ``data = (images in [-1, 1], labels)``.

        Reported (last critic update of the step): ``d_loss`` (critic loss incl. penalty), ``gp`` (unweighted
        penalty), ``w_distance`` (``mean D(real) - mean D(fake)``, the critic's Wasserstein estimate), ``g_loss``
        (``-mean D(G(z))``, without mode seeking), and ``ada_p`` with ADA.
        """
        real, labels, _ = keras.utils.unpack_x_y_sample_weight(data)
        if labels is None:
            raise TfaugError("WGANGP needs (images, labels) batches")
        real = tf.cast(real, tf.float32)
        labels = tf.reshape(tf.cast(labels, tf.int32), [-1])
        n = tf.shape(real)[0]
        for _ in range(self.n_critic):  # static count: unrolled in the traced step
            d_per, gp, real_scores, fake_scores = self._critic_step(real, labels, n)

        g_vars = self.generator.trainable_variables
        z = self.batch_normal(n, self.z_dim)
        with tf.GradientTape() as tape:
            fake = self.generator([z, labels], training=True)
            scores = self.critic([self.augment(fake), labels], training=True)
            g_loss = tf.nn.compute_average_loss(wgan_generator_loss(scores))
            g_total = g_loss
            if self.mode_seeking > 0:
                g_total = g_loss + tf.nn.scale_regularization_loss(
                    self.mode_seeking * mode_seeking_loss(fake, z, labels))
        self.g_optimizer.apply(scaled_gradients(tape, self.g_optimizer, g_total, g_vars), g_vars)
        self.update_ema(self.ema_generator, self.generator, self.ema_decay)

        replicas = tf.cast(tf.distribute.get_strategy().num_replicas_in_sync, tf.float32)
        self.d_loss_tracker.update_state(d_per)
        self.g_loss_tracker.update_state(g_loss * replicas)
        self.gp_tracker.update_state(gp)
        self.w_dist_tracker.update_state(tf.reduce_mean(real_scores) - tf.reduce_mean(fake_scores))
        return {m.name: m.result() for m in self.metrics}


def build_wgan_gp(image_shape: tuple[int, int, int], num_classes: int, cfg) -> WGANGP:
    """Build, wrap and compile a conditional WGAN-GP.

    Call ``keras.utils.set_random_seed(cfg.seed)`` first for reproducible weights.

    Args:
        image_shape: ``(H, W, C)``, H and W in [8, 128].
        num_classes: number of classes, >= 1.
        cfg: ``GANConfig``; options: ``n_critic`` (5), ``gp_weight`` (10.0), ``conditioning``
            (``projection`` | ``concat``), ``critic_norm`` (``layer`` | ``none``), ``adam`` (``paper``: Adam(1e-4,
            0.0, 0.9) for both networks, ignoring cfg's learning rates and betas | ``config``: use them).
            ``cfg.real_label`` and ``cfg.r1`` do not apply (no labels for a critic; the penalty is built in).

    Returns:
        A compiled ``WGANGP`` with optimizer variables built.
    """
    from tfaug.models.networks.encoders import build_critic
    from tfaug.models.networks.generators import build_generator
    from tfaug.models.zoo import take_options

    opts = take_options("wgan-gp", cfg.options, OPTIONS)
    if opts["adam"] not in ADAM_CHOICES:
        raise TfaugError(f"option 'adam' of model 'wgan-gp' must be one of {', '.join(ADAM_CHOICES)}, "
                         f"got {opts['adam']!r}")
    g = build_generator(image_shape, num_classes, z_dim=cfg.z_dim, width=cfg.width)
    critic = build_critic(image_shape, num_classes, width=cfg.width, norm=opts["critic_norm"],
                          conditioning=opts["conditioning"])
    model = WGANGP(g, critic, num_classes, cfg.z_dim, n_critic=opts["n_critic"], gp_weight=opts["gp_weight"],
                   ema_decay=cfg.ema_decay, mode_seeking=cfg.mode_seeking, diffaugment=cfg.diffaugment,
                   ada_target=cfg.ada_target, ada_interval=cfg.ada_interval, ada_kimg=cfg.ada_kimg, seed=cfg.seed,
                   name="wgan_gp")
    if opts["adam"] == "paper":
        d_opt, g_opt = keras.optimizers.Adam(**PAPER_ADAM), keras.optimizers.Adam(**PAPER_ADAM)
    else:
        d_opt = keras.optimizers.Adam(cfg.d_lr, beta_1=cfg.beta_1, beta_2=cfg.beta_2)
        g_opt = keras.optimizers.Adam(cfg.g_lr, beta_1=cfg.beta_1, beta_2=cfg.beta_2)
    model.compile(d_optimizer=d_opt, g_optimizer=g_opt)
    return model


__all__ = ["ADAM_CHOICES", "OPTIONS", "PAPER_ADAM", "WGANGP", "build_wgan_gp"]
