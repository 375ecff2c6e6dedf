"""A compact conditional StyleGAN2 (``stylegan`` in the zoo): style-based generator, ResNet projection
discriminator, non-saturating loss + lazy R1, DiffAugment/ADA, EMA generator and per-class truncation.

After Karras et al. 2019/2020 (StyleGAN, StyleGAN2, StyleGAN2-ADA) at CPU size (networks in
``tfaug.models.networks.style``): a mapping network turns (z, class) into a style vector w; the synthesis network
draws the image from a learned constant through modulated/demodulated convolutions (one per resolution), per-pixel
noise and skip ``to_rgb`` outputs. Networks and their names (other tools rely on them):

* ``generator`` ``[z, class_id] -> images``: layers ``mapping`` (``[z, class_id] -> w [N, w_dim]``, with the
  ``class_embedding`` Embedding) and ``synthesis`` (``w -> images``; random noise when ``training=True``, the
  stored buffers otherwise);
* ``discriminator`` ``[images, class_id] -> logits [N, 1]`` (layers ``d_features`` and ``d_class_embedding``);
* ``sampling_network`` (= ``ema_generator``) ``[z, class_id, truncation float32 [N]] -> images``: EMA copies
  named ``mapping`` and ``synthesis`` around the registered ``truncation`` layer
  (``ClassTruncation``, non-trainable ``w_avg`` [num_classes, w_dim]).

Training (one step = one D update then one G update, as ``tfaug.models.cgan``):

* non-saturating loss, one-sided label smoothing ``real_label``, optional mode-seeking term on G;
* R1 on D's (augmented) reals, lazily every ``r1_interval`` D steps with the weight multiplied by the interval
  (StyleGAN2's lazy regularisation: the same expected penalty at a fraction of the double-backprop cost);
* ``w_avg[c]``: for each class present in the batch, an average of the batch's mean w of that class (raw mapping,
  all replicas' rows): the plain running mean over the first updates, then an EMA with ``w_avg_decay``;
* EMA of G's trainable weights (the noise buffers are fixed and equal in both copies).

Sampling (``sample``) is a pure function of (class_id, seed): z from ``latent_from_seeds``, the sampling network
in inference mode (stored noise), truncation psi = 1 unless given.
"""
from __future__ import annotations

import keras
import tensorflow as tf

from tfaug.errors import TfaugError
from tfaug.models.base import AdversarialModel, scaled_gradients
from tfaug.models.losses import d_loss_nonsaturating, g_loss_nonsaturating, mode_seeking_loss, r1_penalty

# R1 weight used when the config's ``r1`` is 0 (R1 is part of this model; ``--option default_r1=0`` disables it).
DEFAULT_R1 = 0.1
# Model-specific options of ``stylegan`` (``cfg.options``) and their defaults.
OPTIONS = {"w_dim": 64, "mapping_layers": 3, "r1_interval": 4, "default_r1": DEFAULT_R1, "w_avg_decay": 0.995}


@keras.saving.register_keras_serializable(package="tfaug")
class StyleGAN(AdversarialModel):
    """Conditional StyleGAN2: ``generator([z, class_id])`` (mapping + synthesis) vs ``discriminator``.

    Attributes:
        generator: the trained generator ``[z float32 [N, z_dim], class_id int32 [N]] -> images [-1, 1]`` with
            nested models ``mapping`` and ``synthesis``.
        mapping, synthesis: those two nested models.
        discriminator: ``[images, class_id] -> logits [N, 1]``.
        truncation: the ``ClassTruncation`` layer holding ``w_avg`` (shared by both sampling networks).
        ema_generator: the sampling network ``[z, class_id, truncation] -> images`` made of EMA copies of
            ``mapping`` and ``synthesis``; what ``sample`` uses by default.
        w_dim: style size.
    """

    kind = "stylegan"

    def __init__(self, generator: keras.Model, discriminator: keras.Model, num_classes: int, z_dim: int, *,
                 ema_decay: float = 0.99, real_label: float = 1.0, diffaugment: str = "", seed: int = 0,
                 mode_seeking: float = 0.0, ada_target: float = 0.0, ada_interval: int = 4, ada_kimg: float = 100.0,
                 r1: float = DEFAULT_R1, r1_interval: int = 4, w_avg_decay: float = 0.995, **kwargs):
        """
        Args:
            generator: built functional ``[z, class_id] -> images`` with layers ``mapping`` and ``synthesis``
                (``tfaug.models.networks.style.build_style_generator``).
            discriminator: built functional ``[images, class_id] -> logits`` without cross-batch layers.
            num_classes: number of classes; class ids are in ``[0, num_classes)``.
            z_dim: latent size (the mapping network's first input).
            ema_decay: EMA decay of the sampling copies in [0, 1).
            real_label: one-sided label smoothing target for reals in (0, 1].
            diffaugment: DiffAugment policies (comma-separated), empty disables.
            seed: seed of the latent and augmentation random stream.
            mode_seeking: weight of the mode-seeking term on G (Mao et al. 2019), >= 0.
            ada_target, ada_interval, ada_kimg: ADA settings (0 target disables ADA).
            r1: R1 weight gamma >= 0 (0 disables).
            r1_interval: D steps between R1 evaluations (lazy regularisation), >= 1.
            w_avg_decay: EMA decay of the per-class centres ``w_avg``, in [0, 1).
            **kwargs: ``keras.Model`` arguments.
        """
        super().__init__(num_classes, z_dim, seed=seed, **kwargs)
        from tfaug.models.networks.style import ClassTruncation, build_truncated_generator

        checks = ((0.0 <= ema_decay < 1.0, f"ema_decay must be in [0, 1), got {ema_decay!r}"),
                  (0.0 < real_label <= 1.0, f"real_label must be in (0, 1], got {real_label!r}"),
                  (mode_seeking >= 0.0, f"mode_seeking must be >= 0, got {mode_seeking!r}"),
                  (r1 >= 0.0, f"r1 must be >= 0, got {r1!r}"),
                  (int(r1_interval) >= 1, f"r1_interval must be >= 1, got {r1_interval!r}"),
                  (0.0 <= w_avg_decay < 1.0, f"w_avg_decay must be in [0, 1), got {w_avg_decay!r}"))
        for ok, message in checks:
            if not ok:
                raise TfaugError(message)
        try:
            mapping, synthesis = generator.get_layer("mapping"), generator.get_layer("synthesis")
        except ValueError:
            raise TfaugError("a StyleGAN generator needs nested models named 'mapping' and 'synthesis'") from None
        g_z_dim = mapping.inputs[0].shape[-1]
        if g_z_dim is not None and int(g_z_dim) != int(z_dim):
            raise TfaugError(f"z_dim={z_dim} does not match the mapping network's latent input of size {g_z_dim}")
        self.generator, self.discriminator = generator, discriminator
        self.mapping, self.synthesis = mapping, synthesis
        self.w_dim = int(mapping.output_shape[-1])
        self.truncation = ClassTruncation(self._num_classes, self.w_dim, name="truncation")
        self.ema_mapping = self.make_ema(mapping)
        self.ema_synthesis = self.make_ema(synthesis)
        self.ema_generator = build_truncated_generator(self.ema_mapping, self.truncation, self.ema_synthesis)
        self.raw_generator = build_truncated_generator(mapping, self.truncation, synthesis,
                                                       name="raw_sampling_network")
        # Per-class count of w_avg updates (for the running-mean start); checkpointed as model state.
        self.w_avg_updates = keras.Variable(tf.zeros([self._num_classes]), trainable=False,
                                            aggregation="only_first_replica", name="w_avg_updates")
        self.ema_decay = float(ema_decay)
        self.real_label = float(real_label)
        self.diffaugment = str(diffaugment or "")
        self.mode_seeking = float(mode_seeking)
        self.ada_target, self.ada_interval, self.ada_kimg = float(ada_target), int(ada_interval), float(ada_kimg)
        self.r1, self.r1_interval = float(r1), int(r1_interval)
        self.w_avg_decay = float(w_avg_decay)
        self.configure_augmentation(self.diffaugment, self.ada_target, self.ada_interval, self.ada_kimg)
        self.make_gan_trackers(r1=self.r1 > 0)
        self.built = True

    # -- zoo contract --------------------------------------------------------------------------------------
    @property
    def raw_sampling_network(self) -> keras.Model:
        """``[z, class_id, truncation] -> images`` with the raw (non-averaged) mapping and synthesis."""
        return self.raw_generator

    @property
    def metrics(self):
        extra = [self.r1_tracker] if self.r1_tracker is not None else []
        return [self.d_loss_tracker, self.g_loss_tracker, self.d_real_tracker, self.d_fake_tracker, *extra,
                *self.augmentation_metrics]

    def state_variables(self) -> dict:
        return {**super().state_variables(), "w_avg_updates": self.w_avg_updates,
                **{f"noise_seed.{layer.name}": layer.seed_generator.state for layer in self._noise_layers()}}

    def _noise_layers(self) -> list:
        from tfaug.models.networks.style import NoiseInjection

        return [layer for layer in self.synthesis.layers if isinstance(layer, NoiseInjection)]

    # -- training --------------------------------------------------------------------------------------
    def _r1_term(self, real_in, labels, n):
        """Per-example R1 penalty ``[n]`` scaled by the interval on the steps it is evaluated, and the weight
        (1 or 0) of this step in the reported ``r1``."""
        def penalty():
            return r1_penalty(real_in, lambda x: self.discriminator([x, labels], training=True), self.r1)

        if self.r1_interval == 1:
            return penalty(), tf.ones([])
        due = tf.equal(self.d_optimizer.iterations % self.r1_interval, 0)
        term = tf.cond(due, lambda: penalty() * float(self.r1_interval), lambda: tf.zeros([n]))
        return term, tf.cast(due, tf.float32)

    def _update_w_avg(self, w, labels) -> None:
        """Move ``w_avg[c]`` towards the batch's mean w of class c, for every class in the (global) batch."""
        k = self._num_classes
        sums = tf.math.unsorted_segment_sum(tf.cast(w, tf.float32), labels, k)  # float32 under mixed precision
        counts = tf.math.unsorted_segment_sum(tf.ones_like(labels, tf.float32), labels, k)
        ctx = tf.distribute.get_replica_context()
        if ctx is not None and ctx.num_replicas_in_sync > 1:
            sums, counts = ctx.all_reduce(tf.distribute.ReduceOp.SUM, [sums, counts])
        present = counts > 0
        mean = sums / tf.maximum(counts, 1.0)[:, None]
        seen = self.w_avg_updates.value
        decay = tf.minimum(self.w_avg_decay, seen / (seen + 1.0))[:, None]
        old = self.truncation.w_avg.value
        self.truncation.w_avg.assign(tf.where(present[:, None], decay * old + (1.0 - decay) * mean, old))
        self.w_avg_updates.assign(seen + tf.cast(present, tf.float32))

    def _update_ema(self) -> None:
        """EMA of the trainable weights of mapping and synthesis (the noise buffers are fixed)."""
        d = self.ema_decay
        for ema, net in ((self.ema_mapping, self.mapping), (self.ema_synthesis, self.synthesis)):
            for ema_w, w in zip(ema.weights, net.weights):
                if w.trainable:
                    ema_w.assign(d * ema_w.value + (1.0 - d) * w.value)

    @tf.autograph.experimental.do_not_convert  # plain Python control flow only; autograph doubles tracing time
    def train_step(self, data):
        """One D step then one G step on ``data = (real_images float [-1, 1] [N,H,W,C], labels int [N])``.

        As ``ConditionalGAN.train_step``: G runs forward once; D is updated on that batch (with lazy R1), then
        the updated D scores it for G's loss. Then the EMA copies and ``w_avg`` are updated. The reported ``r1``
        averages the penalty over the steps that evaluated it (0 in a log window without one).
        """
        real, labels, n = self.labelled_batch(data)
        z = self.batch_normal(n, self._z_dim)
        g_vars = self.generator.trainable_variables
        d_vars = self.discriminator.trainable_variables

        with tf.GradientTape() as g_tape:
            w = self.mapping([z, labels], training=True)
            fake = self.synthesis(w, training=True)
            with g_tape.stop_recording():
                with tf.GradientTape() as d_tape:
                    d_in = self.augment(tf.concat([real, tf.stop_gradient(fake)], axis=0))
                    logits = self.discriminator([d_in, tf.concat([labels, labels], axis=0)], training=True)
                    real_logits, fake_logits = logits[:n], logits[n:]
                    adversarial = d_loss_nonsaturating(real_logits, fake_logits, self.real_label)
                    if self.r1 > 0:
                        r1, r1_weight = self._r1_term(d_in[:n], labels, n)
                        per_example = adversarial + r1
                    else:
                        per_example = adversarial
                    d_loss = tf.nn.compute_average_loss(per_example)
                self.d_optimizer.apply(scaled_gradients(d_tape, self.d_optimizer, d_loss, d_vars), d_vars)
                self.observe_real_logits(real_logits)
            g_logits = self.discriminator([self.augment(fake), labels], training=True)
            g_loss = tf.nn.compute_average_loss(g_loss_nonsaturating(g_logits))
            if self.mode_seeking > 0:
                g_total = g_loss + tf.nn.scale_regularization_loss(
                    self.mode_seeking * mode_seeking_loss(fake, z, labels))
            else:
                g_total = g_loss
        self.g_optimizer.apply(scaled_gradients(g_tape, self.g_optimizer, g_total, g_vars), g_vars)
        self._update_ema()
        self._update_w_avg(tf.stop_gradient(w), labels)

        if self.r1 > 0:
            # The penalty itself (not times the interval), on the steps it was evaluated.
            self.r1_tracker.update_state(r1 / float(max(self.r1_interval, 1)), sample_weight=r1_weight * tf.ones([n]))
        return self.report_gan_losses(tf.nn.compute_average_loss(adversarial), g_loss, real_logits, fake_logits)

    # -- serialization ---------------------------------------------------------------------------------
    def get_config(self) -> dict:
        """Scalar constructor arguments; the networks are saved and passed separately."""
        return {"name": self.name, "trainable": self.trainable, "num_classes": self._num_classes,
                "z_dim": self._z_dim, "ema_decay": self.ema_decay, "real_label": self.real_label,
                "diffaugment": self.diffaugment, "seed": self.seed, "mode_seeking": self.mode_seeking,
                "ada_target": self.ada_target, "ada_interval": self.ada_interval, "ada_kimg": self.ada_kimg,
                "r1": self.r1, "r1_interval": self.r1_interval, "w_avg_decay": self.w_avg_decay}


def build_stylegan(image_shape: tuple[int, int, int], num_classes: int, cfg) -> StyleGAN:
    """Build mapping, synthesis and discriminator for ``image_shape``, wrap them and compile with Adam.

    Weight initialisation draws from Keras' global RNG: call ``keras.utils.set_random_seed(cfg.seed)`` first.

    Args:
        image_shape: ``(H, W, C)``, H and W in [8, 128].
        num_classes: number of classes.
        cfg: a ``tfaug.config.GANConfig``: z_dim, width (G: 4w on the start grid down to w; D: w up to 4w),
            ema_decay, real_label, diffaugment, seed, mode_seeking, ada_*, r1 (0 -> option ``default_r1``),
            g_lr, d_lr, beta_1, beta_2, and the options ``w_dim`` (64), ``mapping_layers`` (3), ``r1_interval``
            (4), ``default_r1`` (R1 weight when ``cfg.r1`` is 0; 0 disables R1; default 0.1) and
            ``w_avg_decay`` (0.995).

    Returns:
        A compiled ``StyleGAN`` whose optimizer variables already exist.

    Raises:
        TfaugError: an unknown option or an out-of-range value.
    """
    from tfaug.models.networks.style import (build_mapping, build_resnet_discriminator, build_style_generator,
                                             build_synthesis)
    from tfaug.models.zoo import take_options

    opts = take_options("stylegan", getattr(cfg, "options", None), OPTIONS)
    for key in ("w_dim", "mapping_layers", "r1_interval"):
        if opts[key] < 1:
            raise TfaugError(f"option {key} of model 'stylegan' must be >= 1, got {opts[key]!r}")
    if opts["default_r1"] < 0:
        raise TfaugError(f"option default_r1 of model 'stylegan' must be >= 0, got {opts['default_r1']!r}")
    mapping = build_mapping(num_classes, cfg.z_dim, opts["w_dim"], opts["mapping_layers"])
    synthesis = build_synthesis(image_shape, opts["w_dim"], cfg.width, seed=cfg.seed)
    generator = build_style_generator(mapping, synthesis)
    discriminator = build_resnet_discriminator(image_shape, num_classes, cfg.width)
    gan = StyleGAN(generator, discriminator, num_classes, cfg.z_dim, ema_decay=cfg.ema_decay,
                   real_label=cfg.real_label, diffaugment=cfg.diffaugment, seed=cfg.seed,
                   mode_seeking=cfg.mode_seeking, ada_target=cfg.ada_target, ada_interval=cfg.ada_interval,
                   ada_kimg=cfg.ada_kimg, r1=cfg.r1 if cfg.r1 > 0 else opts["default_r1"],
                   r1_interval=opts["r1_interval"], w_avg_decay=opts["w_avg_decay"], name="stylegan")
    gan.compile(d_optimizer=keras.optimizers.Adam(cfg.d_lr, beta_1=cfg.beta_1, beta_2=cfg.beta_2),
                g_optimizer=keras.optimizers.Adam(cfg.g_lr, beta_1=cfg.beta_1, beta_2=cfg.beta_2))
    return gan


__all__ = ["DEFAULT_R1", "OPTIONS", "StyleGAN", "build_stylegan"]
