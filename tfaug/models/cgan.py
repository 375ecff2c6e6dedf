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
    generator that ``sample`` uses.

Sampling is a pure function of ``(class_id, seed)``: latents come from ``latent_from_seeds`` (stateless RNG
keyed per row, ``tfaug.models.sampling``) and the generator runs in inference mode, so an image never depends on its batch.
"""
from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from tfaug.errors import TfaugError
from tfaug.models.losses import d_loss_nonsaturating, g_loss_nonsaturating, mode_seeking_loss
from tfaug.models.sampling import generator_images, validate_requests

# Weight of the mode-seeking term. 100 MNIST images, 28x28, width 32, translation/cutout/colour, 1,500-1,800 steps,
# within-class pixel std of real images 0.257: without it G drew one image per class (std 0.06, consistency
# 0.99); 0.05 -> std 0.245, consistency 0.93; 0.1 -> 0.275, 0.86; 0.2 -> 0.31, 0.81 (one seed each).
DEFAULT_MODE_SEEKING = 0.05
# Rows per generator call in ``sample`` (bounds memory; results do not depend on it).
_SAMPLE_CHUNK = 512


class _Samplers:
    """Plain holder of compiled sampling functions (kept out of Keras/TF object tracking)."""

    def __init__(self):
        self.fns: dict[bool, Any] = {}


@keras.saving.register_keras_serializable(package="tfaug")
class ConditionalGAN(keras.Model):
    """Conditional DCGAN: ``generator([z, class_id])`` vs ``discriminator([images, class_id])``.

    Attributes:
        generator: the trained generator, inputs ``[z [N, z_dim], class_id int32 [N]]`` -> images in [-1, 1].
        discriminator: inputs ``[images, class_id]`` -> logits ``[N, 1]``.
        ema_generator: exponential moving average of ``generator``'s weights (incl. BatchNorm statistics);
            what ``sample`` uses by default.
    """

    def __init__(self, generator: keras.Model, discriminator: keras.Model, num_classes: int, z_dim: int, *,
                 ema_decay: float = 0.99, real_label: float = 0.9, diffaugment: str = "", seed: int = 0,
                 mode_seeking: float = DEFAULT_MODE_SEEKING, **kwargs):
        """
        Args:
            generator: built functional model ``[z, class_id] -> images``.
            discriminator: built functional model ``[images, class_id] -> logits``.
            num_classes: number of classes; class ids are in ``[0, num_classes)``.
            z_dim: latent size (must match ``generator``'s first input).
            ema_decay: EMA decay in [0, 1); 0 makes ``ema_generator`` a copy of G after every step.
            real_label: one-sided label smoothing target for reals, in (0, 1].
            diffaugment: comma-separated DiffAugment policies (``color``, ``translation``, ``cutout``);
                empty disables.
            seed: seed of the latent-noise and DiffAugment random stream.
            mode_seeking: weight of the mode-seeking regulariser in G's loss (Mao et al. 2019), >= 0; 0
                disables it. Without it, on 10 images per class G learned one image per class.
            **kwargs: ``keras.Model`` arguments (``name`` ...).
        """
        super().__init__(**kwargs)
        if not 0.0 <= ema_decay < 1.0:
            raise TfaugError(f"ema_decay must be in [0, 1), got {ema_decay!r}")
        if not 0.0 < real_label <= 1.0:
            raise TfaugError(f"real_label must be in (0, 1], got {real_label!r}")
        if not mode_seeking >= 0.0:
            raise TfaugError(f"mode_seeking must be >= 0, got {mode_seeking!r}")
        if int(num_classes) < 1:
            raise TfaugError(f"num_classes must be >= 1, got {num_classes!r}")
        g_z_dim = generator.inputs[0].shape[-1]
        if g_z_dim is not None and int(g_z_dim) != int(z_dim):
            raise TfaugError(f"z_dim={z_dim} does not match the generator's latent input of size {g_z_dim}")
        self.generator = generator
        self.discriminator = discriminator
        self.ema_generator = keras.models.clone_model(generator)
        self.ema_generator.set_weights(generator.get_weights())
        self.ema_generator.trainable = False
        self._num_classes = int(num_classes)
        self._z_dim = int(z_dim)
        self.ema_decay = float(ema_decay)
        self.real_label = float(real_label)
        self.diffaugment = str(diffaugment or "")
        self.seed = int(seed)
        self.mode_seeking = float(mode_seeking)
        self._policy = ()
        if self.diffaugment.strip():
            from tfaug.augment.diffaug import parse_policy  # lazy: only GANs that augment need it

            self._policy = tuple(parse_policy(self.diffaugment))
        self.seed_generator = keras.random.SeedGenerator(self.seed, name="gan_seed_generator")
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.d_real_tracker = keras.metrics.Mean(name="d_real")
        self.d_fake_tracker = keras.metrics.Mean(name="d_fake")
        self._samplers = _Samplers()
        # The wrapped networks are built functional models, so fit() need not trace ``call`` to build.
        self.built = True

    # -- properties ------------------------------------------------------------------------------------
    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(H, W, C)`` of generated images."""
        return tuple(int(v) for v in self.generator.output_shape[1:])

    @property
    def num_classes(self) -> int:
        return self._num_classes

    @property
    def z_dim(self) -> int:
        return self._z_dim

    @property
    def metrics(self):
        return [self.d_loss_tracker, self.g_loss_tracker, self.d_real_tracker, self.d_fake_tracker]

    # -- training --------------------------------------------------------------------------------------
    def compile(self, d_optimizer: keras.optimizers.Optimizer, g_optimizer: keras.optimizers.Optimizer, **kwargs):
        """Attach the two optimizers (and build their variables now, so checkpoints can restore them before
        the first step). ``kwargs`` go to ``keras.Model.compile`` (e.g. ``jit_compile``, ``steps_per_execution``).
        """
        kwargs.pop("optimizer", None)
        super().compile(optimizer=None, **kwargs)
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer
        for opt, net in ((d_optimizer, self.discriminator), (g_optimizer, self.generator)):
            if not opt.built:
                opt.build(net.trainable_variables)

    def call(self, inputs, training=False):
        """``[z, class_id] -> images`` with the EMA generator (the sampling network)."""
        return self.ema_generator(inputs, training=False)

    def _augment(self, images: tf.Tensor) -> tf.Tensor:
        if not self._policy:
            return images
        from tfaug.augment.diffaug import diff_augment

        return diff_augment(images, self._policy, seed_generator=self.seed_generator)

    def train_step(self, data):
        """One D step then one G step on ``data = (real_images float [-1, 1] [N,H,W,C], labels int [N])``.

        Both steps use the same generated batch (as the PyTorch DCGAN reference does): G runs forward once,
        D is updated on it with G's gradient recording paused, then the updated D scores it for G's loss.
        The reported ``g_loss`` is the adversarial part only (comparable whatever ``mode_seeking`` is).
        """
        real, labels, _ = keras.utils.unpack_x_y_sample_weight(data)
        if labels is None:
            raise TfaugError("ConditionalGAN needs (images, labels) batches")
        real = tf.cast(real, tf.float32)
        labels = tf.reshape(tf.cast(labels, tf.int32), [-1])
        n = tf.shape(real)[0]
        z = keras.random.normal((n, self._z_dim), seed=self.seed_generator)
        g_vars = self.generator.trainable_variables
        d_vars = self.discriminator.trainable_variables

        with tf.GradientTape() as g_tape:
            fake = self.generator([z, labels], training=True)
            with g_tape.stop_recording():
                # D step: reals and fakes through D as one batch (exact: D has no BatchNorm; and faster).
                with tf.GradientTape() as d_tape:
                    d_in = self._augment(tf.concat([real, tf.stop_gradient(fake)], axis=0))
                    logits = self.discriminator([d_in, tf.concat([labels, labels], axis=0)], training=True)
                    real_logits, fake_logits = logits[:n], logits[n:]
                    d_loss = tf.nn.compute_average_loss(
                        d_loss_nonsaturating(real_logits, fake_logits, self.real_label))
                self.d_optimizer.apply(d_tape.gradient(d_loss, d_vars), d_vars)
            # G step against the updated D, with a fresh augmentation of the same fakes.
            g_logits = self.discriminator([self._augment(fake), labels], training=True)
            g_loss = tf.nn.compute_average_loss(g_loss_nonsaturating(g_logits))
            if self.mode_seeking > 0:
                # Batch-level term: scale_regularization_loss divides by the replica count, as the
                # per-example terms are divided by the global batch.
                g_total = g_loss + tf.nn.scale_regularization_loss(
                    self.mode_seeking * mode_seeking_loss(fake, z, labels))
            else:
                g_total = g_loss
        self.g_optimizer.apply(g_tape.gradient(g_total, g_vars), g_vars)
        self._update_ema()

        # compute_average_loss divides by the global batch; report the per-replica mean instead.
        replicas = tf.cast(tf.distribute.get_strategy().num_replicas_in_sync, tf.float32)
        self.d_loss_tracker.update_state(d_loss * replicas)
        self.g_loss_tracker.update_state(g_loss * replicas)
        self.d_real_tracker.update_state(tf.sigmoid(real_logits))
        self.d_fake_tracker.update_state(tf.sigmoid(fake_logits))
        return {m.name: m.result() for m in self.metrics}

    def _update_ema(self) -> None:
        """ema = decay * ema + (1 - decay) * w for every weight of G, BatchNorm moving statistics included."""
        decay = self.ema_decay
        for ema_w, w in zip(self.ema_generator.weights, self.generator.weights):
            ema_w.assign(decay * ema_w.value + (1.0 - decay) * w.value)

    # -- sampling --------------------------------------------------------------------------------------
    def _sampler(self, use_ema: bool):
        key = bool(use_ema)
        if key not in self._samplers.fns:
            net = self.ema_generator if key else self.generator
            z_dim = self._z_dim

            @tf.function(input_signature=[tf.TensorSpec([None], tf.int32), tf.TensorSpec([None], tf.int64)])
            def fn(class_ids, seeds):
                return generator_images(net, z_dim, class_ids, seeds)

            self._samplers.fns[key] = fn
        return self._samplers.fns[key]

    def sample(self, class_ids, seeds, use_ema: bool = True) -> np.ndarray:
        """Generate one image per ``(class_id, seed)`` pair.

        Args:
            class_ids: int ``[N]`` in ``[0, num_classes)``.
            seeds: int ``[N]`` (int64 range); the same (class, seed) always gives the same image.
            use_ema: sample from ``ema_generator`` (default) or the raw ``generator``.

        Returns:
            float32 ``[N, H, W, C]`` in [-1, 1].

        Raises:
            TfaugError: non-integer or non-vector inputs, length mismatch, class id out of range.
        """
        c, s = validate_requests(class_ids, seeds, self._num_classes)
        if len(c) == 0:
            return np.zeros((0, *self.image_shape), np.float32)
        fn = self._sampler(use_ema)
        out = [fn(c[i:i + _SAMPLE_CHUNK], s[i:i + _SAMPLE_CHUNK]).numpy() for i in range(0, len(c), _SAMPLE_CHUNK)]
        return np.concatenate(out).astype(np.float32, copy=False)

    # -- serialization ---------------------------------------------------------------------------------
    def get_config(self) -> dict:
        """Scalar constructor arguments; the networks are saved and passed separately."""
        return {"name": self.name, "trainable": self.trainable, "num_classes": self._num_classes,
                "z_dim": self._z_dim, "ema_decay": self.ema_decay, "real_label": self.real_label,
                "diffaugment": self.diffaugment, "seed": self.seed, "mode_seeking": self.mode_seeking}

    @classmethod
    def from_config(cls, config: dict, custom_objects=None):
        """Rebuild from ``get_config()`` plus ``generator`` and ``discriminator`` entries (models or their
        serialized configs)."""
        config = dict(config)
        nets = {}
        for key in ("generator", "discriminator"):
            if key not in config:
                raise TfaugError(f"ConditionalGAN.from_config needs the {key!r} network in the config")
            net = config.pop(key)
            if isinstance(net, dict):
                net = keras.saving.deserialize_keras_object(net, custom_objects=custom_objects)
            nets[key] = net
        return cls(nets["generator"], nets["discriminator"], **config)


def build_conditional_gan(image_shape: tuple[int, int, int], num_classes: int, cfg) -> ConditionalGAN:
    """Build G and D for ``image_shape``, wrap them and compile with Adam.

    Weight initialisation draws from Keras' global RNG: call ``keras.utils.set_random_seed(cfg.seed)``
    first for a reproducible run.

    Args:
        image_shape: ``(H, W, C)``.
        num_classes: number of classes.
        cfg: a ``tfaug.config.GANConfig`` (uses z_dim, width, ema_decay, real_label, diffaugment, seed,
            mode_seeking, g_lr, d_lr, beta_1, beta_2).

    Returns:
        A compiled ``ConditionalGAN`` whose optimizer variables already exist.
    """
    from tfaug.models.networks.discriminators import build_discriminator
    from tfaug.models.networks.generators import build_generator

    g = build_generator(image_shape, num_classes, z_dim=cfg.z_dim, width=cfg.width)
    d = build_discriminator(image_shape, num_classes, width=cfg.width)
    gan = ConditionalGAN(g, d, num_classes, cfg.z_dim, ema_decay=cfg.ema_decay, real_label=cfg.real_label,
                         diffaugment=cfg.diffaugment, seed=cfg.seed,
                         mode_seeking=cfg.mode_seeking, name="conditional_gan")
    gan.compile(d_optimizer=keras.optimizers.Adam(cfg.d_lr, beta_1=cfg.beta_1, beta_2=cfg.beta_2),
                g_optimizer=keras.optimizers.Adam(cfg.g_lr, beta_1=cfg.beta_1, beta_2=cfg.beta_2))
    return gan


__all__ = ["ConditionalGAN", "build_conditional_gan"]
