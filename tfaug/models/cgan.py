"""Conditional DCGAN training wrapper (keras-io style: networks in, ``compile(d_optimizer, g_optimizer)``,
``train_step``), with an EMA generator for sampling and optional DiffAugment.

Training (one ``fit`` step = one D update then one G update):
  * non-saturating GAN loss (Goodfellow et al. 2014) with one-sided label smoothing (Salimans et al. 2016);
  * fake labels are the real batch's labels, so the class balance of G's training follows the data;
  * DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training") applied to
    every input of D, real and fake, in both steps, so D cannot memorise a tiny training set;
  * a mode-seeking regulariser on G (Mao et al. 2019) so that G keeps using its noise on tiny data instead of
    drawing one image per class;
  * an exponential moving average of G's weights (Karras et al. 2018; Yazici et al. 2019) is the
    generator that ``sample`` uses;
  * optional ADA (Karras et al. 2020: the DiffAugment ops applied with an adaptive probability p) and R1 penalty
    on the (augmented) reals (Mescheder et al. 2018), through ``GenerativeModel``'s adversarial helpers.

S4's variants are zoo options (``--option KEY=VALUE``): ``conditioning=embedding`` (default: learned class
embedding in G, projection discriminator) or ``onehot`` (one-hot class concatenated to z in G and tiled as extra
image channels in D); ``label_smoothing=true`` (default: real target ``cfg.real_label``) or ``false`` (target 1).

Sampling is a pure function of ``(class_id, seed)``: latents come from ``latent_from_seeds`` (stateless RNG
keyed per row, ``tfaug.models.sampling``) and the generator runs in inference mode, so an image never depends on its batch.
"""
from __future__ import annotations

import keras
import tensorflow as tf

from tfaug.errors import TfaugError
from tfaug.models.base import AdversarialModel, scaled_gradients
from tfaug.models.losses import d_loss_nonsaturating, g_loss_nonsaturating, mode_seeking_loss, r1_penalty

# Weight of the mode-seeking term. 100 MNIST images, 28x28, width 32, translation/cutout/colour, 1,500-1,800 steps,
# within-class pixel std of real images 0.257: without it G drew one image per class (std 0.06, consistency
# 0.99); 0.05 -> std 0.245, consistency 0.93; 0.1 -> 0.275, 0.86; 0.2 -> 0.31, 0.81 (one seed each).
DEFAULT_MODE_SEEKING = 0.05
# Model-specific options of ``cdcgan`` (``cfg.options``) and their defaults.
OPTIONS = {"conditioning": "embedding", "label_smoothing": True}
CONDITIONINGS = ("embedding", "onehot")


@keras.saving.register_keras_serializable(package="tfaug")
class ConditionalGAN(AdversarialModel):
    """Conditional DCGAN: ``generator([z, class_id])`` vs ``discriminator([images, class_id])``.

    Attributes:
        generator: the trained generator, inputs ``[z [N, z_dim], class_id int32 [N]]`` -> images in [-1, 1].
        discriminator: inputs ``[images, class_id]`` -> logits ``[N, 1]``.
        ema_generator: exponential moving average of ``generator``'s weights (incl. BatchNorm statistics);
            the sampling network, what ``sample`` uses by default.
    """

    kind = "cdcgan"

    def __init__(self, generator: keras.Model, discriminator: keras.Model, num_classes: int, z_dim: int, *,
                 ema_decay: float = 0.99, real_label: float = 0.9, diffaugment: str = "", seed: int = 0,
                 mode_seeking: float = DEFAULT_MODE_SEEKING, ada_target: float = 0.0, ada_interval: int = 4,
                 ada_kimg: float = 100.0, r1: float = 0.0, **kwargs):
        """
        Args:
            generator: built functional model ``[z, class_id] -> images``.
            discriminator: built functional model ``[images, class_id] -> logits``; without BatchNorm (each
                logit depends only on its own image: reals and fakes share one D call, and R1 is per example).
            num_classes: number of classes; class ids are in ``[0, num_classes)``.
            z_dim: latent size (must match ``generator``'s first input).
            ema_decay: EMA decay in [0, 1); 0 makes ``ema_generator`` a copy of G after every step.
            real_label: one-sided label smoothing target for reals, in (0, 1].
            diffaugment: comma-separated DiffAugment policies (``color``, ``translation``, ``cutout``);
                empty disables.
            seed: seed of the latent-noise and augmentation random stream.
            mode_seeking: weight of the mode-seeking regulariser in G's loss (Mao et al. 2019), >= 0; 0
                disables it. Without it, on 10 images per class G learned one image per class.
            ada_target, ada_interval, ada_kimg: ADA settings (``GenerativeModel.configure_augmentation``);
                ``ada_target`` 0 disables ADA.
            r1: R1 penalty weight gamma on D's (augmented) real inputs, >= 0; 0 disables it.
            **kwargs: ``keras.Model`` arguments (``name`` ...).
        """
        super().__init__(num_classes, z_dim, seed=seed, **kwargs)
        if not 0.0 <= ema_decay < 1.0:
            raise TfaugError(f"ema_decay must be in [0, 1), got {ema_decay!r}")
        if not 0.0 < real_label <= 1.0:
            raise TfaugError(f"real_label must be in (0, 1], got {real_label!r}")
        if not mode_seeking >= 0.0:
            raise TfaugError(f"mode_seeking must be >= 0, got {mode_seeking!r}")
        if not r1 >= 0.0:
            raise TfaugError(f"r1 must be >= 0, got {r1!r}")
        g_z_dim = generator.inputs[0].shape[-1]
        if g_z_dim is not None and int(g_z_dim) != int(z_dim):
            raise TfaugError(f"z_dim={z_dim} does not match the generator's latent input of size {g_z_dim}")
        self.generator = generator
        self.discriminator = discriminator
        self.ema_generator = self.make_ema(generator)
        self.ema_decay = float(ema_decay)
        self.real_label = float(real_label)
        self.diffaugment = str(diffaugment or "")
        self.mode_seeking = float(mode_seeking)
        self.ada_target, self.ada_interval, self.ada_kimg = float(ada_target), int(ada_interval), float(ada_kimg)
        self.r1 = float(r1)
        self.configure_augmentation(self.diffaugment, self.ada_target, self.ada_interval, self.ada_kimg)
        self.make_gan_trackers(r1=self.r1 > 0)
        # The wrapped networks are built functional models, so fit() need not trace ``call`` to build.
        self.built = True

    # -- zoo contract --------------------------------------------------------------------------------------
    @property
    def metrics(self):
        extra = [self.r1_tracker] if self.r1_tracker is not None else []
        return [self.d_loss_tracker, self.g_loss_tracker, self.d_real_tracker, self.d_fake_tracker, *extra,
                *self.augmentation_metrics]

    # -- training --------------------------------------------------------------------------------------
    def train_step(self, data):
        """One D step then one G step on ``data = (real_images float [-1, 1] [N,H,W,C], labels int [N])``.

        Both steps use the same generated batch (as the PyTorch DCGAN reference does): G runs forward once,
        D is updated on it with G's gradient recording paused, then the updated D scores it for G's loss.
        The reported ``g_loss`` is the adversarial part only (comparable whatever ``mode_seeking`` is).
        """
        real, labels, n = self.labelled_batch(data)
        z = self.batch_normal(n, self._z_dim)
        g_vars = self.generator.trainable_variables
        d_vars = self.discriminator.trainable_variables

        with tf.GradientTape() as g_tape:
            fake = self.generator([z, labels], training=True)
            with g_tape.stop_recording():
                # D step: reals and fakes through D as one batch (exact: D has no BatchNorm; and faster).
                with tf.GradientTape() as d_tape:
                    d_in = self.augment(tf.concat([real, tf.stop_gradient(fake)], axis=0))
                    logits = self.discriminator([d_in, tf.concat([labels, labels], axis=0)], training=True)
                    real_logits, fake_logits = logits[:n], logits[n:]
                    per_example = d_loss_nonsaturating(real_logits, fake_logits, self.real_label)
                    if self.r1 > 0:
                        r1 = r1_penalty(d_in[:n], lambda x: self.discriminator([x, labels], training=True), self.r1)
                        per_example = per_example + r1
                    d_loss = tf.nn.compute_average_loss(per_example)
                self.d_optimizer.apply(scaled_gradients(d_tape, self.d_optimizer, d_loss, d_vars), d_vars)
                self.observe_real_logits(real_logits)
            # G step against the updated D, with a fresh augmentation of the same fakes.
            g_logits = self.discriminator([self.augment(fake), labels], training=True)
            g_loss = tf.nn.compute_average_loss(g_loss_nonsaturating(g_logits))
            if self.mode_seeking > 0:
                # Batch-level term: scale_regularization_loss divides by the replica count, as the
                # per-example terms are divided by the global batch.
                g_total = g_loss + tf.nn.scale_regularization_loss(
                    self.mode_seeking * mode_seeking_loss(fake, z, labels))
            else:
                g_total = g_loss
        self.g_optimizer.apply(scaled_gradients(g_tape, self.g_optimizer, g_total, g_vars), g_vars)
        self.update_ema(self.ema_generator, self.generator, self.ema_decay)

        if self.r1 > 0:  # report the adversarial part of D's loss; R1 has its own tracker
            self.r1_tracker.update_state(r1)
            d_loss = tf.nn.compute_average_loss(per_example - r1)
        return self.report_gan_losses(d_loss, g_loss, real_logits, fake_logits)

    # -- serialization ---------------------------------------------------------------------------------
    def get_config(self) -> dict:
        """Scalar constructor arguments; the networks are saved and passed separately."""
        return {"name": self.name, "trainable": self.trainable, "num_classes": self._num_classes,
                "z_dim": self._z_dim, "ema_decay": self.ema_decay, "real_label": self.real_label,
                "diffaugment": self.diffaugment, "seed": self.seed, "mode_seeking": self.mode_seeking,
                "ada_target": self.ada_target, "ada_interval": self.ada_interval, "ada_kimg": self.ada_kimg,
                "r1": self.r1}


def build_conditional_gan(image_shape: tuple[int, int, int], num_classes: int, cfg) -> ConditionalGAN:
    """Build G and D for ``image_shape``, wrap them and compile with Adam.

    Weight initialisation draws from Keras' global RNG: call ``keras.utils.set_random_seed(cfg.seed)``
    first for a reproducible run.

    Args:
        image_shape: ``(H, W, C)``.
        num_classes: number of classes.
        cfg: a ``tfaug.config.GANConfig`` (uses z_dim, width, ema_decay, real_label, diffaugment, seed,
            mode_seeking, ada_*, r1, g_lr, d_lr, beta_1, beta_2 and the options ``conditioning``
            (``embedding``|``onehot``) and ``label_smoothing`` (bool; false trains with real target 1)).

    Returns:
        A compiled ``ConditionalGAN`` whose optimizer variables already exist.

    Raises:
        TfaugError: an unknown option or conditioning.
    """
    from tfaug.models.networks.discriminators import build_discriminator
    from tfaug.models.networks.generators import build_generator
    from tfaug.models.zoo import take_options

    opts = take_options("cdcgan", getattr(cfg, "options", None), OPTIONS)
    if opts["conditioning"] not in CONDITIONINGS:
        raise TfaugError(f"option conditioning of model 'cdcgan' must be one of {', '.join(CONDITIONINGS)}, "
                         f"got {opts['conditioning']!r}")
    onehot = opts["conditioning"] == "onehot"
    g = build_generator(image_shape, num_classes, z_dim=cfg.z_dim, width=cfg.width,
                        conditioning="onehot" if onehot else "embedding")
    d = build_discriminator(image_shape, num_classes, width=cfg.width,
                            conditioning="onehot" if onehot else "projection")
    gan = ConditionalGAN(g, d, num_classes, cfg.z_dim, ema_decay=cfg.ema_decay,
                         real_label=cfg.real_label if opts["label_smoothing"] else 1.0,
                         diffaugment=cfg.diffaugment, seed=cfg.seed, mode_seeking=cfg.mode_seeking,
                         ada_target=cfg.ada_target, ada_interval=cfg.ada_interval, ada_kimg=cfg.ada_kimg,
                         r1=cfg.r1, name="conditional_gan")
    gan.compile(d_optimizer=keras.optimizers.Adam(cfg.d_lr, beta_1=cfg.beta_1, beta_2=cfg.beta_2),
                g_optimizer=keras.optimizers.Adam(cfg.g_lr, beta_1=cfg.beta_1, beta_2=cfg.beta_2))
    return gan


__all__ = ["ConditionalGAN", "build_conditional_gan", "DEFAULT_MODE_SEEKING", "OPTIONS"]
