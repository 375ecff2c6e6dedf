"""BAGAN (Mariani et al. 2018, "BAGAN: Data Augmentation with Balancing GAN"; S5 in docs/studies.md): a GAN meant to
generate the *minority* classes of an imbalanced set well, by learning from all classes first.

Three phases:

1. ``prepare`` trains an autoencoder (encoder E, decoder G) on the images of ALL classes (option ``ae_steps``,
   pixel MSE), so that the decoder knows what the majority classes share with the minority ones.
2. It then initialises the discriminator's body from E (D = E's architecture + a (K+1)-way dense head, where
   class K means "fake"), resets the EMA generator to the decoder, and fits one Gaussian ``N(mu_c, Sigma_c)``
   per class to E's codes of that class's training images (:func:`class_gaussians`, with shrinkage so that a
   class with 3 images still has a positive-definite covariance).
3. Adversarial training: latents come from the class Gaussians with classes drawn UNIFORMLY (class-balanced
   generator batches, whatever the data's class frequencies); D learns reals -> their class, fakes -> K
   (:func:`~tfaug.models.losses.d_loss_bagan`); G learns to make D predict the requested class
   (:func:`~tfaug.models.losses.g_loss_bagan`). DiffAugment/ADA (base-class ``augment``), optional R1 on reals
   and the mode-seeking term on G apply as in the other adversarial models.

Sampling network: ``[z ~ N(0, I), class_id] -> ClassConditionalGaussian (mu_c + L_c z) -> EMA generator``; the
class statistics are weights of that registered layer, so checkpoints, ``generator.keras`` and exports carry them.
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from tfaug.errors import TfaugError
from tfaug.models.base import GenerativeModel, scaled_gradients
from tfaug.models.losses import d_loss_bagan, g_loss_bagan, mode_seeking_loss, r1_penalty, realness_logit
from tfaug.models.networks.latent_layers import ClassConditionalGaussian

# Options (``cfg.options``) and their defaults.
DEFAULTS = {
    "ae_steps": 1000,       # autoencoder pre-training steps in prepare() (0 skips it)
    "ae_lr": 1e-3,          # Adam learning rate of the autoencoder
    "cov_shrinkage": 8.0,   # n0: pseudo-count of the pooled covariance in each class covariance (>= 0)
    "cov_ridge": 1e-3,      # ridge, relative to the mean pooled latent variance (> 0 keeps Sigma_c positive definite)
}


def class_gaussians(latents: np.ndarray, labels: np.ndarray, num_classes: int, *, shrinkage: float = 8.0,
                    ridge: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
    """Per-class Gaussian statistics of latent codes, regularised so every class gets a usable covariance.

    Rule (n_c = images of class c, S_c = their sample covariance with ddof 1, S_c = 0 when n_c <= 1; S = the
    pooled covariance of all codes, s2 = mean of its diagonal floored at 1e-6):

    ``mu_c = mean of class c``  (the pooled mean when n_c = 0)
    ``Sigma_c = (n_c / (n_c + n0)) S_c + (n0 / (n_c + n0)) S + ridge * s2 * I``  with ``n0 = shrinkage``

    A large class keeps (almost) its own covariance; a class with 3 images borrows the shape of the pooled
    covariance (shrinkage towards a pooled estimate, as in regularised discriminant analysis, Friedman 1989);
    the ridge makes every Sigma_c positive definite even when the latent size exceeds the number of images.

    Args:
        latents: float ``[N, d]`` encoder codes.
        labels: int ``[N]`` in ``[0, num_classes)``.
        num_classes: K >= 1.
        shrinkage: n0 >= 0 (0 uses each class's own covariance only).
        ridge: >= 0 (0 gives exactly the shrunk covariance, which may be singular).

    Returns:
        ``(means float64 [K, d], covariances float64 [K, d, d])``.
    """
    x = np.asarray(latents, np.float64)
    y = np.asarray(labels).reshape(-1)
    if x.ndim != 2 or len(x) != len(y) or len(x) == 0:
        raise TfaugError(f"latents must be [N, d] with N >= 1 matching labels, got {x.shape} and {y.shape}")
    if shrinkage < 0 or ridge < 0:
        raise TfaugError(f"shrinkage and ridge must be >= 0, got {shrinkage!r} and {ridge!r}")
    d = x.shape[1]
    pooled_mean = x.mean(axis=0)
    pooled = np.cov(x, rowvar=False).reshape(d, d) if len(x) > 1 else np.zeros((d, d))
    s2 = max(float(np.mean(np.diag(pooled))), 1e-6)
    means = np.zeros((num_classes, d))
    covs = np.zeros((num_classes, d, d))
    for c in range(num_classes):
        xc = x[y == c]
        n = len(xc)
        means[c] = xc.mean(axis=0) if n else pooled_mean
        own = np.cov(xc, rowvar=False).reshape(d, d) if n > 1 else np.zeros((d, d))
        a = 1.0 if n + shrinkage == 0 else n / (n + shrinkage)
        covs[c] = a * own + (1.0 - a) * pooled + ridge * s2 * np.eye(d)
    return means, covs


def _bagan_networks(image_shape, num_classes: int, z_dim: int, width: int):
    """Encoder ``images -> code [N, z_dim]``, decoder/generator ``[code, class_id] -> images``, and the
    (K+1)-way discriminator whose body has the encoder's architecture (layer ``body``)."""
    from tfaug.models.networks.encoders import build_decoder, build_encoder

    def encoder(name):
        trunk = build_encoder(image_shape, z_dim, width=width, outputs="features", name=f"{name}_trunk")
        images = keras.Input(shape=image_shape, dtype="float32", name="images")
        code = keras.layers.Dense(z_dim, dtype="float32", name="code")(trunk(images))
        return keras.Model(images, code, name=name)

    enc = encoder("encoder")
    gen = build_decoder(image_shape, z_dim, width=width, name="generator")  # class id accepted, ignored
    body = encoder("body")
    images = keras.Input(shape=image_shape, dtype="float32", name="images")
    feats = keras.layers.LeakyReLU(0.2, name="code_lrelu")(body(images))
    logits = keras.layers.Dense(num_classes + 1, dtype="float32", name="class_or_fake")(feats)
    disc = keras.Model(images, logits, name="discriminator")
    return enc, gen, disc


class BAGAN(GenerativeModel):
    """Balancing GAN. Attributes: ``encoder``, ``generator`` (the decoder), ``ema_generator``, ``discriminator``
    (``images -> logits [N, K + 1]``, last = fake), ``latent_stats`` (:class:`ClassConditionalGaussian`)."""

    kind = "bagan"

    def __init__(self, image_shape, num_classes: int, cfg, options: dict, **kwargs):
        super().__init__(num_classes, cfg.z_dim, seed=cfg.seed, **kwargs)
        self.cfg = cfg
        self.options = dict(options)
        if self.options["ae_steps"] < 0 or self.options["ae_lr"] <= 0:
            raise TfaugError("bagan options ae_steps must be >= 0 and ae_lr > 0")
        if self.options["cov_shrinkage"] < 0 or self.options["cov_ridge"] < 0:
            raise TfaugError("bagan options cov_shrinkage and cov_ridge must be >= 0")
        self.encoder, self.generator, self.discriminator = _bagan_networks(
            tuple(image_shape), num_classes, cfg.z_dim, cfg.width)
        self.ema_generator = self.make_ema(self.generator)
        self.latent_stats = ClassConditionalGaussian(num_classes, cfg.z_dim, name="class_latents")
        z = keras.Input(shape=(cfg.z_dim,), dtype="float32", name="z")
        class_id = keras.Input(shape=(), dtype="int32", name="class_id")
        code = self.latent_stats([z, class_id])
        self._stats_net = keras.Model([z, class_id], code, name="latent_stats")
        self._sampler_net = keras.Model([z, class_id], self.ema_generator([code, class_id]), name="bagan_sampler")
        self._raw_net = keras.Model([z, class_id], self.generator([code, class_id]), name="bagan_raw_sampler")
        self.configure_augmentation(cfg.diffaugment, cfg.ada_target, cfg.ada_interval)
        self.d_optimizer = keras.optimizers.Adam(cfg.d_lr, beta_1=cfg.beta_1, beta_2=cfg.beta_2)
        self.g_optimizer = keras.optimizers.Adam(cfg.g_lr, beta_1=cfg.beta_1, beta_2=cfg.beta_2)
        self.trackers = [keras.metrics.Mean(name=n) for n in ("d_loss", "g_loss", "d_real", "d_fake")]
        self.built = True

    # -- contract ----------------------------------------------------------------------------------------
    @property
    def sampling_network(self) -> keras.Model:
        return self._sampler_net

    @property
    def raw_sampling_network(self) -> keras.Model:
        return self._raw_net

    def networks(self) -> dict[str, keras.Model]:
        return {"encoder": self.encoder, "generator": self.generator, "ema_generator": self.ema_generator,
                "discriminator": self.discriminator, "latent_stats": self._stats_net}

    def optimizers(self):
        return {"d": (self.d_optimizer, self.discriminator.trainable_variables),
                "g": (self.g_optimizer, self.generator.trainable_variables)}

    @property
    def metrics(self):
        return [*self.trackers, *self.augmentation_metrics]

    # -- phase 1 and 2 -------------------------------------------------------------------------------------
    def prepare(self, images: np.ndarray, labels: np.ndarray, *, progress: bool = False) -> None:
        """Autoencoder pre-training on all classes, D/G initialisation and per-class latent Gaussians.

        Args:
            images: float32 ``[N, H, W, C]`` in [-1, 1] (N >= 1).
            labels: int ``[N]`` in ``[0, num_classes)``.
            progress: show a progress bar over the autoencoder steps.
        """
        x = np.asarray(images, np.float32)
        y = np.asarray(labels, np.int32).reshape(-1)
        if len(x) == 0 or len(x) != len(y):
            raise TfaugError(f"bagan.prepare needs N >= 1 images with one label each, got {len(x)} and {len(y)}")
        if y.min() < 0 or y.max() >= self.num_classes:
            raise TfaugError(f"labels must be in [0, {self.num_classes}), got {y.min()}..{y.max()}")
        steps = int(self.options["ae_steps"])
        if steps:
            self._train_autoencoder(x, steps, progress)
        # D's body <- E; the EMA generator restarts from the pre-trained decoder.
        self.discriminator.get_layer("body").set_weights(self.encoder.get_weights())
        self.ema_generator.set_weights(self.generator.get_weights())
        codes = np.concatenate([self.encoder(x[i:i + 256], training=False).numpy() for i in range(0, len(x), 256)])
        means, covs = class_gaussians(codes, y, self.num_classes, shrinkage=self.options["cov_shrinkage"],
                                      ridge=self.options["cov_ridge"])
        self.latent_stats.set_statistics(means, covs)

    def _train_autoencoder(self, x: np.ndarray, steps: int, progress: bool) -> None:
        opt = keras.optimizers.Adam(self.options["ae_lr"], beta_1=0.9, beta_2=0.999)
        if keras.mixed_precision.global_policy().name == "mixed_float16":
            opt = keras.optimizers.LossScaleOptimizer(opt)
        variables = self.encoder.trainable_variables + self.generator.trainable_variables
        opt.build(variables)

        @tf.function
        def step(batch):
            with tf.GradientTape() as tape:
                code = self.encoder(batch, training=True)
                rec = self.generator([code, tf.zeros([tf.shape(batch)[0]], tf.int32)], training=True)
                loss = tf.reduce_mean(tf.square(rec - batch))
            opt.apply(scaled_gradients(tape, opt, loss, variables), variables)
            return loss

        rng = np.random.default_rng(self.seed)
        batch = min(self.cfg.batch_size, len(x))
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=steps, desc="bagan autoencoder", unit="step", dynamic_ncols=True)
        try:
            for i in range(steps):
                loss = step(tf.constant(x[rng.choice(len(x), batch, replace=False)]))
                if bar is not None:
                    bar.update(1)
                    if (i + 1) % 50 == 0:
                        bar.set_postfix({"mse": f"{float(loss):.4f}"})
        finally:
            if bar is not None:
                bar.close()

    # -- phase 3 -----------------------------------------------------------------------------------------
    # Plain Python control flow only (loops over classes, Python flags): skipping AutoGraph's conversion
    # saves seconds of tracing per run.
    @tf.autograph.experimental.do_not_convert
    def train_step(self, data):
        """One D step then one G step on ``data = (images float32 [N,H,W,C] in [-1, 1], labels int32 [N])``.

        Fake classes are drawn uniformly from ``[0, K)`` (class-balanced G batches), not from the batch's labels.
        """
        real, labels, _ = keras.utils.unpack_x_y_sample_weight(data)
        if labels is None:
            raise TfaugError("BAGAN needs (images, labels) batches")
        real = tf.cast(real, tf.float32)
        labels = tf.reshape(tf.cast(labels, tf.int32), [-1])
        n = tf.shape(real)[0]
        z = self.batch_normal(n, self.z_dim)
        fake_cls = tf.minimum(tf.cast(self.batch_uniform(n) * self.num_classes, tf.int32), self.num_classes - 1)
        g_vars = self.generator.trainable_variables
        d_vars = self.discriminator.trainable_variables

        with tf.GradientTape() as g_tape:
            code = self.latent_stats([z, fake_cls])
            fake = self.generator([code, fake_cls], training=True)
            with g_tape.stop_recording():
                with tf.GradientTape() as d_tape:
                    real_in = self.augment(real)
                    logits = self.discriminator(tf.concat([real_in, self.augment(tf.stop_gradient(fake))], 0),
                                                training=True)
                    real_logits, fake_logits = logits[:n], logits[n:]
                    d_loss = tf.nn.compute_average_loss(d_loss_bagan(real_logits, labels, fake_logits))
                    d_total = d_loss
                    if self.cfg.r1 > 0:
                        d_fn = lambda x: realness_logit(self.discriminator(x, training=True))  # noqa: E731
                        d_total += tf.nn.compute_average_loss(r1_penalty(real_in, d_fn, self.cfg.r1))
                self.d_optimizer.apply(scaled_gradients(d_tape, self.d_optimizer, d_total, d_vars), d_vars)
                self.observe_real_logits(realness_logit(real_logits))
            g_logits = self.discriminator(self.augment(fake), training=True)
            g_loss = tf.nn.compute_average_loss(g_loss_bagan(g_logits, fake_cls))
            g_total = g_loss
            if self.cfg.mode_seeking > 0:
                g_total += tf.nn.scale_regularization_loss(self.cfg.mode_seeking * mode_seeking_loss(fake, z, fake_cls))
        self.g_optimizer.apply(scaled_gradients(g_tape, self.g_optimizer, g_total, g_vars), g_vars)
        self.update_ema(self.ema_generator, self.generator, self.cfg.ema_decay)

        replicas = tf.cast(tf.distribute.get_strategy().num_replicas_in_sync, tf.float32)
        d_loss_t, g_loss_t, d_real_t, d_fake_t = self.trackers
        d_loss_t.update_state(d_loss * replicas)
        g_loss_t.update_state(g_loss * replicas)
        d_real_t.update_state(tf.sigmoid(realness_logit(real_logits)))
        d_fake_t.update_state(tf.sigmoid(realness_logit(fake_logits)))
        return {m.name: m.result() for m in self.metrics}


def build_bagan(image_shape: tuple[int, int, int], num_classes: int, cfg) -> BAGAN:
    """Build a BAGAN for ``image_shape`` and ``num_classes`` from a ``GANConfig``.

    Uses z_dim (latent = autoencoder code size), width, g_lr, d_lr, beta_1, beta_2, ema_decay, mode_seeking,
    diffaugment, ada_target, ada_interval, r1, batch_size (autoencoder batches) and seed; options (``cfg.options``):
    ``ae_steps`` (1000), ``ae_lr`` (1e-3), ``cov_shrinkage`` (8.0), ``cov_ridge`` (1e-3), see :data:`DEFAULTS`.

    Returns:
        A ``BAGAN`` with optimizer variables built; call ``prepare(images, labels)`` before training.
    """
    from tfaug.models.zoo import take_options

    opts = take_options("bagan", cfg.options, DEFAULTS)
    model = BAGAN(image_shape, num_classes, cfg, opts, name="bagan")
    model.compile(optimizer=None)
    model.build_optimizers()
    return model


__all__ = ["BAGAN", "DEFAULTS", "build_bagan", "class_gaussians"]
