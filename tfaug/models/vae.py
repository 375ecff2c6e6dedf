"""VAE and CVAE (Kingma & Welling 2014, "Auto-Encoding Variational Bayes"; Sohn, Lee, Yan 2015, "Learning
Structured Output Representation using Deep Conditional Generative Models").

* Encoder ``images (, class_id) -> [mean, log_var]`` of q(z | x (, y)), decoder ``[z, class_id] -> images in
  [-1, 1]`` of p(x | z (, y)) (``tfaug.models.networks.encoders``); the VAE's decoder accepts and ignores the
  class id, the CVAE's encoder and decoder both see it.
* Reparameterisation ``z = mean + exp(log_var / 2) * e``, ``e ~ N(0, I)`` from the model's seed stream.
* Loss per image = reconstruction + ``beta`` * KL (``beta`` option, default 1 = the ELBO; beta > 1 is beta-VAE).
  The reconstruction term (``reconstruction`` option) is ``bce`` by default: a Bernoulli likelihood on images
  rescaled to [0, 1], summed over pixels and channels (the paper's MNIST decoder; it suits the mostly
  black/white digit and small greyscale sets tfaug targets), or ``mse``: the per-pixel squared error on [-1, 1]
  images, summed per image (a Gaussian likelihood of fixed variance 1/2; better for natural RGB images).
  Both are summed per image, never averaged, so the balance with the KL does not depend on the image size.
* Sampling network = the decoder on ``z ~ N(0, I)`` (+ class for the CVAE). There is no EMA copy: a VAE's
  objective is a likelihood bound, not a game, so its weights do not oscillate the way a GAN generator's do.
  Nor is there DiffAugment/ADA (those regularise a discriminator, which a VAE does not have).

Public APIs reused by metrics and filters (e.g. the latent-sphere filter): :meth:`VAE.encode` and
:meth:`VAE.decode`.
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from tfaug.errors import TfaugError
from tfaug.models.base import GenerativeModel, scaled_gradients
from tfaug.models.losses import RECONSTRUCTIONS, kl_normal, reconstruction_loss

OPTIONS = {"beta": 1.0, "reconstruction": "bce"}
# Rows per encode/decode call (bounds memory; results do not depend on it).
_CHUNK = 512


class VAE(GenerativeModel):
    """Variational autoencoder; conditional (CVAE) when ``conditional=True``.

    Attributes:
        encoder: ``images (, class_id) -> [mean [N, z_dim], log_var [N, z_dim]]``.
        decoder: ``[z [N, z_dim], class_id int32 [N]] -> images float32 [N, H, W, C] in [-1, 1]``; the
            sampling network.
        conditional: whether the encoder and decoder use the class.
    """

    kind = "vae"

    def __init__(self, encoder: keras.Model, decoder: keras.Model, num_classes: int, z_dim: int, *,
                 conditional: bool = False, beta: float = 1.0, reconstruction: str = "bce", seed: int = 0,
                 **kwargs):
        """
        Args:
            encoder: built functional encoder; inputs ``images`` (VAE) or ``[images, class_id]`` (CVAE).
            decoder: built functional ``[z, class_id] -> images``.
            num_classes: number of classes, >= 1 (the VAE only uses it to validate requests).
            z_dim: latent size (the encoder's output and the decoder's input size).
            conditional: CVAE (True) or VAE (False).
            beta: weight of the KL term, > 0.
            reconstruction: ``bce`` or ``mse`` (see the module docstring).
            seed: seed of the reparameterisation noise.
        """
        super().__init__(num_classes, z_dim, seed=seed, **kwargs)
        if not beta > 0.0:
            raise TfaugError(f"beta must be > 0, got {beta!r}")
        if reconstruction not in RECONSTRUCTIONS:
            raise TfaugError(f"unknown reconstruction loss {reconstruction!r}; choose one of: "
                             f"{', '.join(RECONSTRUCTIONS)}")
        want_inputs = 2 if conditional else 1
        if len(encoder.inputs) != want_inputs:
            raise TfaugError(f"a {'CVAE' if conditional else 'VAE'} encoder takes {want_inputs} input(s), "
                             f"this one takes {len(encoder.inputs)}")
        if int(decoder.inputs[0].shape[-1]) != self.z_dim or int(encoder.outputs[0].shape[-1]) != self.z_dim:
            raise TfaugError(f"encoder output and decoder input must both have z_dim={z_dim} values")
        self.encoder = encoder
        self.decoder = decoder
        self.conditional = bool(conditional)
        self.beta = float(beta)
        self.reconstruction = str(reconstruction)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.rec_tracker = keras.metrics.Mean(name="reconstruction")
        self.kl_tracker = keras.metrics.Mean(name="kl")
        self.built = True

    # -- contract ----------------------------------------------------------------------------------------
    @property
    def sampling_network(self) -> keras.Model:
        return self.decoder

    def networks(self) -> dict[str, keras.Model]:
        return {"encoder": self.encoder, "decoder": self.decoder}

    def optimizers(self):
        return {"vae": (self.vae_optimizer, self.encoder.trainable_variables + self.decoder.trainable_variables)}

    @property
    def metrics(self):
        return [self.loss_tracker, self.rec_tracker, self.kl_tracker]

    def compile(self, optimizer: keras.optimizers.Optimizer, **kwargs):
        """Attach the optimizer of encoder and decoder and build its variables."""
        super().compile(optimizer=None, **kwargs)
        self.vae_optimizer = optimizer
        self.build_optimizers()

    # -- maths -------------------------------------------------------------------------------------------
    def _posterior(self, images, class_ids, training: bool):
        if self.conditional:
            return self.encoder([images, class_ids], training=training)
        return self.encoder(images, training=training)

    def losses_per_example(self, images, class_ids, training: bool = False):
        """``(reconstruction [N], kl [N])`` of a batch (one reparameterised sample per image).

        Args:
            images: float32 ``[N, H, W, C]`` in [-1, 1].
            class_ids: int32 ``[N]``.
            training: passed to the networks.
        """
        mean, log_var = self._posterior(images, class_ids, training)
        e = self.batch_normal(tf.shape(mean)[0], self.z_dim)
        z = mean + tf.exp(0.5 * log_var) * e
        rec = self.decoder([z, class_ids], training=training)
        return reconstruction_loss(images, rec, self.reconstruction), kl_normal(mean, log_var)

    def train_step(self, data):
        """One ELBO step on ``data = (images float32 [N,H,W,C] in [-1, 1], labels int32 [N])``.

        Reported: ``loss`` (reconstruction + beta * KL per image), ``reconstruction``, ``kl`` (per-image means).
        """
        images, labels, _ = keras.utils.unpack_x_y_sample_weight(data)
        images = tf.cast(images, tf.float32)
        n = tf.shape(images)[0]
        labels = tf.zeros([n], tf.int32) if labels is None else tf.reshape(tf.cast(labels, tf.int32), [-1])
        variables = self.encoder.trainable_variables + self.decoder.trainable_variables
        with tf.GradientTape() as tape:
            rec, kl = self.losses_per_example(images, labels, training=True)
            per = rec + self.beta * kl
            loss = tf.nn.compute_average_loss(per)
        self.vae_optimizer.apply(scaled_gradients(tape, self.vae_optimizer, loss, variables), variables)
        self.loss_tracker.update_state(per)
        self.rec_tracker.update_state(rec)
        self.kl_tracker.update_state(kl)
        return {m.name: m.result() for m in self.metrics}

    # -- public encode / decode --------------------------------------------------------------------------
    def _check_ids(self, class_ids, n: int) -> np.ndarray:
        if class_ids is None:
            if self.conditional:
                raise TfaugError("a CVAE needs the class ids of the images it encodes")
            return np.zeros(n, np.int32)
        ids = np.asarray(class_ids)
        if ids.ndim == 0:
            ids = np.full(n, ids)
        if ids.shape != (n,) or (ids.size and not np.issubdtype(ids.dtype, np.integer)):
            raise TfaugError(f"class_ids must be {n} integers, got shape {ids.shape} and dtype {ids.dtype}")
        if ids.size and (ids.min() < 0 or ids.max() >= self.num_classes):
            raise TfaugError(f"class ids must be in 0..{self.num_classes - 1}")
        return ids.astype(np.int32)

    def encode(self, images, class_ids=None, *, sample: bool = False, seed: int = 0) -> np.ndarray:
        """Latent codes of images.

        Args:
            images: float32 ``[N, H, W, C]`` in [-1, 1].
            class_ids: int ``[N]`` (or a scalar for all); required by the CVAE, ignored by the VAE.
            sample: False: the posterior mean (deterministic); True: ``mean + std * e`` with ``e`` drawn from
                a stateless RNG keyed by ``seed`` (the same seed gives the same latents).
            seed: seed of the draw when ``sample`` is True.

        Returns:
            float32 ``[N, z_dim]``.

        Raises:
            TfaugError: images of the wrong shape, or bad/missing class ids.
        """
        x = np.asarray(images, np.float32)
        if x.ndim != 4 or tuple(x.shape[1:]) != self.image_shape:
            raise TfaugError(f"images must have shape [N, {', '.join(map(str, self.image_shape))}], got {x.shape}")
        ids = self._check_ids(class_ids, len(x))
        out = []
        for i in range(0, len(x), _CHUNK):
            mean, log_var = self._posterior(tf.constant(x[i:i + _CHUNK]), tf.constant(ids[i:i + _CHUNK]), False)
            if sample:
                e = tf.random.stateless_normal(tf.shape(mean), seed=tf.constant([int(seed), i], tf.int64))
                mean = mean + tf.exp(0.5 * log_var) * e
            out.append(np.asarray(mean, np.float32))
        return np.concatenate(out) if out else np.zeros((0, self.z_dim), np.float32)

    def decode(self, z, class_ids=None) -> np.ndarray:
        """Images from latent codes (decoder in inference mode).

        Args:
            z: float ``[N, z_dim]``.
            class_ids: int ``[N]`` (or a scalar); required by the CVAE, ignored by the VAE.

        Returns:
            float32 ``[N, H, W, C]`` in [-1, 1].
        """
        z = np.asarray(z, np.float32)
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise TfaugError(f"z must have shape [N, {self.z_dim}], got {z.shape}")
        ids = self._check_ids(class_ids, len(z))
        out = [np.asarray(self.decoder([tf.constant(z[i:i + _CHUNK]), tf.constant(ids[i:i + _CHUNK])],
                                       training=False), np.float32) for i in range(0, len(z), _CHUNK)]
        return np.concatenate(out) if out else np.zeros((0, *self.image_shape), np.float32)

    def reconstruct(self, images, class_ids=None) -> np.ndarray:
        """``decode(encode(images))`` with the posterior mean: float32 ``[N, H, W, C]`` in [-1, 1]."""
        return self.decode(self.encode(images, class_ids), class_ids)


class CVAE(VAE):
    """Conditional VAE: a :class:`VAE` whose encoder and decoder both take the class (``conditional=True``)."""

    kind = "cvae"

    def __init__(self, encoder: keras.Model, decoder: keras.Model, num_classes: int, z_dim: int, **kwargs):
        kwargs.setdefault("conditional", True)
        super().__init__(encoder, decoder, num_classes, z_dim, **kwargs)


def _build(image_shape, num_classes: int, cfg, conditional: bool) -> VAE:
    from tfaug.models.networks.encoders import build_decoder, build_encoder
    from tfaug.models.zoo import take_options

    name = "cvae" if conditional else "vae"
    opts = take_options(name, cfg.options, OPTIONS)
    cond = num_classes if conditional else None
    encoder = build_encoder(image_shape, cfg.z_dim, num_classes=cond, width=cfg.width)
    decoder = build_decoder(image_shape, cfg.z_dim, num_classes=cond, width=cfg.width)
    model = (CVAE if conditional else VAE)(encoder, decoder, num_classes, cfg.z_dim, conditional=conditional,
                                           beta=opts["beta"],
                reconstruction=opts["reconstruction"], seed=cfg.seed, name=name)
    model.compile(keras.optimizers.Adam(cfg.g_lr, beta_1=cfg.beta_1, beta_2=cfg.beta_2))
    return model


def build_vae(image_shape: tuple[int, int, int], num_classes: int, cfg) -> VAE:
    """Build and compile a VAE (Adam with ``cfg.g_lr``, ``cfg.beta_1``, ``cfg.beta_2``).

    Call ``keras.utils.set_random_seed(cfg.seed)`` first for reproducible weights.

    Args:
        image_shape: ``(H, W, C)``, H and W in [8, 128].
        num_classes: number of classes, >= 1 (class ids are accepted and ignored).
        cfg: ``GANConfig`` (z_dim, width, g_lr, beta_1, beta_2, seed); options: ``beta`` (1.0),
            ``reconstruction`` (``bce`` | ``mse``).
    """
    return _build(image_shape, num_classes, cfg, conditional=False)


def build_cvae(image_shape: tuple[int, int, int], num_classes: int, cfg) -> VAE:
    """Build and compile a conditional VAE (same settings as :func:`build_vae`)."""
    return _build(image_shape, num_classes, cfg, conditional=True)


__all__ = ["CVAE", "OPTIONS", "VAE", "build_cvae", "build_vae"]
