"""The contract every model of the zoo follows (docs/design.md "A generator"), so that one runner trains them all,
one exporter exports them all and ``sample(class_ids, seeds)`` means the same everywhere.

A zoo model is a ``keras.Model`` subclass with its own ``train_step`` that exposes:

* ``sampling_network``: a functional ``keras.Model`` ``[z float32 [N, z_dim], class_id int32 [N]] -> float32
  [N, H, W, C]`` in [-1, 1], where ``z ~ N(0, I)``. It is what ``checkpoints/generator.keras`` holds and what
  ``tfaug export`` turns into the serving signature; anything a model needs at sampling time (class-conditional
  latent statistics, a bank of per-class generators, ...) lives inside it, in layers registered with
  ``keras.saving.register_keras_serializable(package="tfaug")`` in ``tfaug.models.networks.layers``.
  Unconditional models take the class id input and ignore it.
* ``networks()``: every network with weights, by name (checkpointed and restored by the runner).
* ``optimizers()``: ``name -> (optimizer, variables it updates)`` (optimizer state is checkpointed too).
* ``prepare(images, labels)``: an optional one-off phase before the training loop (BAGAN's autoencoder
  pre-training and class statistics); whatever it computes must live in weights so checkpoints carry it.
* ``metrics``: ``keras.metrics.Mean`` trackers, reported by ``train_step`` (adversarial models append
  ``*self.augmentation_metrics`` so that ``ada_p`` is reported when ADA is on).

Adversarial helpers shared by the GANs (call ``configure_augmentation`` in ``__init__``):

* ``augment(images)``: DiffAugment (Zhao et al. 2020) with the configured policies, or, with ADA on (Karras et
  al. 2020), each policy op applied per image with the adaptive probability p. Use it on every D input, real
  and fake, in both the D and the G step; it is differentiable w.r.t. the images.
* ``observe_real_logits(real_logits)``: ADA bookkeeping, once per D step (no-op without ADA).
* ``make_ema(network)`` / ``update_ema(ema, network, decay)``: an exponential moving average copy of a network,
  BatchNorm moving statistics included.
* ``state_variables()``: non-network state a checkpoint must carry (noise stream state, ADA's p and sums).

Distribution and precision (issue 8, see ``tfaug.training.distribute``): ``train_step`` runs once per replica on
its shard of the global batch. Per-example noise comes from :meth:`GenerativeModel.batch_normal` /
:meth:`GenerativeModel.batch_uniform`, which slice one draw over the global batch, so replicas get different
noise and the draws do not depend on the replica count; augmentation seeds are folded with the replica id.
Gradients are taken with :func:`scaled_gradients` (of ``optimizer.scale_loss(loss)``) so that the
``LossScaleOptimizer`` that :meth:`GenerativeModel.build_optimizers` wraps around every optimizer under
``mixed_float16`` works.

``sample`` is implemented here once: latents from ``latent_from_seeds`` (one stateless stream per seed), the
sampling network in inference mode, so an image never depends on its batch.
"""
from __future__ import annotations

from typing import Any, ClassVar

import keras
import numpy as np
import tensorflow as tf

from tfaug.augment.diffaug import DEFAULT_ADA_KIMG, AdaController, adaptive_augment, diff_augment, parse_policy
from tfaug.errors import TfaugError
from tfaug.models.sampling import generator_images, validate_requests, validate_truncation

# Rows per sampling call (bounds memory; results do not depend on it).
SAMPLE_CHUNK = 512
# Optimizer attributes of the zoo models, wrapped in a LossScaleOptimizer under mixed_float16.
OPTIMIZER_ATTRIBUTES = ("d_optimizer", "g_optimizer", "c_optimizer", "vae_optimizer")
# Added (times the replica id) to the first seed word of augmentation draws: different draws per replica.
_REPLICA_SEED_STRIDE = 0x5851F42D


def replica_position() -> tuple:
    """``(replica id, replicas in sync)`` of the current replica context; ``(0, 1)`` outside one."""
    ctx = tf.distribute.get_replica_context()
    if ctx is None:  # cross-replica context: one draw for the whole batch
        return 0, 1
    return ctx.replica_id_in_sync_group, int(ctx.num_replicas_in_sync)


def scaled_gradients(tape: tf.GradientTape, optimizer, loss, variables) -> list:
    """Gradients of ``optimizer.scale_loss(loss)`` w.r.t. ``variables``, taken after ``tape`` has closed.

    A ``LossScaleOptimizer`` (mixed precision) needs the gradients of the scaled loss; multiplying ``loss`` outside
    the tape would not be recorded, so the scale enters as the upstream gradient instead (the same values).
    Any other optimizer gets ``tape.gradient(loss, variables)`` unchanged.
    """
    if not isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return tape.gradient(loss, variables)
    scale = tf.cast(optimizer.scale_loss(tf.ones_like(loss)), loss.dtype)
    return tape.gradient(loss, variables, output_gradients=scale)


class _ReplicaSeeds(keras.random.SeedGenerator):
    """A view of a SeedGenerator whose draws differ per replica: the same state (advanced identically on every
    replica) with the replica id folded into each seed. Holds no variable of its own."""

    def __init__(self, base: keras.random.SeedGenerator, replica_id):  # noqa: D107 - no super(): no new state
        self._base = base
        self._replica_id = replica_id

    def next(self, ordered=True):
        seed = self._base.next(ordered)
        offset = tf.cast(self._replica_id, seed.dtype) * _REPLICA_SEED_STRIDE
        return seed + tf.stack([offset, tf.zeros_like(offset)])


class _Samplers:
    """Plain holder of compiled sampling functions (kept out of Keras/TF object tracking)."""

    def __init__(self):
        self.fns: dict[int, Any] = {}


class GenerativeModel(keras.Model):
    """Base class of zoo models; subclasses set ``kind`` and implement the abstract members below.

    Args:
        num_classes: number of classes, >= 1 (1 for a purely unconditional use).
        z_dim: latent size of ``sampling_network``, >= 1.
        seed: seed of the model's training noise stream (``self.seed_generator``).
        **kwargs: ``keras.Model`` arguments (``name`` ...).
    """

    kind: ClassVar[str] = "generative"

    def __init__(self, num_classes: int, z_dim: int, *, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        if int(num_classes) < 1:
            raise TfaugError(f"num_classes must be >= 1, got {num_classes!r}")
        if int(z_dim) < 1:
            raise TfaugError(f"z_dim must be >= 1, got {z_dim!r}")
        self._num_classes = int(num_classes)
        self._z_dim = int(z_dim)
        self.seed = int(seed)
        self.seed_generator = keras.random.SeedGenerator(self.seed, name=f"{self.kind}_seed_generator")
        self._samplers = _Samplers()
        self._policy: tuple[str, ...] = ()
        self.ada = None
        self.ada_p_tracker = None

    # -- contract ----------------------------------------------------------------------------------------
    @property
    def sampling_network(self) -> keras.Model:
        """Functional ``[z, class_id] -> images in [-1, 1]`` used by ``sample``, checkpoints and export."""
        raise NotImplementedError

    def networks(self) -> dict[str, keras.Model]:
        """Every network with weights, by name (checkpoint file names)."""
        raise NotImplementedError

    def optimizers(self) -> dict[str, tuple[keras.optimizers.Optimizer, list]]:
        """``name -> (optimizer, the variables it updates)``."""
        raise NotImplementedError

    def prepare(self, images: np.ndarray, labels: np.ndarray, *, progress: bool = False) -> None:
        """One-off phase before the first training step (default: nothing).

        Args:
            images: float32 [N, H, W, C] in [-1, 1].
            labels: int32 [N] in [0, num_classes).
            progress: show a progress bar for long phases.
        """

    # -- common properties -------------------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return self._num_classes

    @property
    def z_dim(self) -> int:
        return self._z_dim

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(H, W, C)`` of generated images."""
        return tuple(int(v) for v in self.sampling_network.output_shape[1:])

    def build_optimizers(self) -> None:
        """Create every optimizer's variables now, so a checkpoint can restore them before the first step.

        Under the ``mixed_float16`` global policy every optimizer attribute (``OPTIMIZER_ATTRIBUTES``) is first
        wrapped in a ``keras.optimizers.LossScaleOptimizer`` (dynamic loss scaling; train steps differentiate
        ``optimizer.scale_loss(loss)``).
        """
        if keras.mixed_precision.global_policy().name == "mixed_float16":
            for attr in OPTIMIZER_ATTRIBUTES:
                opt = getattr(self, attr, None)
                if isinstance(opt, keras.optimizers.Optimizer) and not isinstance(
                        opt, keras.optimizers.LossScaleOptimizer):
                    setattr(self, attr, keras.optimizers.LossScaleOptimizer(opt))
        for opt, variables in self.optimizers().values():
            if not opt.built:
                opt.build(variables)

    def labelled_batch(self, data):
        """``(images float32 [N, H, W, C], labels int32 [N], N)`` from a ``(images, labels)`` training batch.

        Raises:
            TfaugError: the batch has no labels (conditional models train on labelled data only).
        """
        real, labels, _ = keras.utils.unpack_x_y_sample_weight(data)
        if labels is None:
            raise TfaugError(f"{type(self).__name__} needs (images, labels) batches")
        real = tf.cast(real, tf.float32)
        return real, tf.reshape(tf.cast(labels, tf.int32), [-1]), tf.shape(real)[0]

    # -- randomness (correct under tf.distribute) ---------------------------------------------------------
    def batch_normal(self, n, *dims):
        """Standard-normal noise ``[n, *dims]`` float32 for this replica's ``n`` rows of the global batch.

        One draw of ``[n * replicas, *dims]`` from ``self.seed_generator`` (the same on every replica), sliced at
        this replica's position: replicas get different rows, and under ``MirroredStrategy`` (contiguous shards)
        row i of the global batch gets the same noise as on one device.
        """
        return self._global_slice(lambda shape: keras.random.normal(shape, seed=self.seed_generator), n, dims)

    def batch_uniform(self, n, *dims):
        """Uniform ``[0, 1)`` noise ``[n, *dims]`` float32, sliced from a global-batch draw like :meth:`batch_normal`."""
        return self._global_slice(lambda shape: keras.random.uniform(shape, seed=self.seed_generator), n, dims)

    @staticmethod
    def _global_slice(draw, n, dims):
        rid, replicas = replica_position()
        if replicas == 1:
            return draw((n, *dims))
        start = tf.cast(rid, tf.int32) * tf.cast(n, tf.int32)
        return draw((n * replicas, *dims))[start:start + n]

    def replica_seeds(self) -> keras.random.SeedGenerator:
        """``self.seed_generator``, or under several replicas a view of it with the replica id folded into each
        seed (for draws that must differ between replicas, e.g. augmentation parameters)."""
        rid, replicas = replica_position()
        return self.seed_generator if replicas == 1 else _ReplicaSeeds(self.seed_generator, rid)

    # -- adversarial helpers -----------------------------------------------------------------------------
    def configure_augmentation(self, diffaugment: str = "", ada_target: float = 0.0, ada_interval: int = 4,
                               ada_kimg: float = DEFAULT_ADA_KIMG) -> None:
        """Set up what :meth:`augment` does (call once in ``__init__``).

        Args:
            diffaugment: comma-separated DiffAugment policies (``color``, ``translation``, ``cutout``); empty
                disables DiffAugment (and means "all policies" as ADA's pipeline when ADA is on).
            ada_target: ADA's target for ``E[sign(D(real))]`` in (0, 1); 0 disables ADA (then the policies are
                always applied).
            ada_interval: D steps between ADA adjustments of p, >= 1.
            ada_kimg: ADA speed: thousands of images for p to move by 1, > 0.

        Raises:
            TfaugError: an unknown policy or an out-of-range ADA setting.
        """
        self._policy = tuple(parse_policy(diffaugment))
        if ada_target and float(ada_target) > 0:
            self.ada = AdaController(float(ada_target), int(ada_interval), float(ada_kimg))
            self.ada_p_tracker = keras.metrics.Mean(name="ada_p")
        elif ada_target is not None and float(ada_target) < 0:
            raise TfaugError(f"ada_target must be in [0, 1) (0 disables ADA), got {ada_target!r}")

    @property
    def augmentation_metrics(self) -> list:
        """``[ada_p tracker]`` when ADA is on, else ``[]``; adversarial models add these to ``metrics``."""
        return [self.ada_p_tracker] if self.ada is not None else []

    @property
    def ada_p(self) -> float | None:
        """Current ADA probability in [0, 1], or None when ADA is off."""
        return None if self.ada is None else float(np.asarray(self.ada.p))

    def augment(self, images):
        """Augment D's input (float32 [N, H, W, C] in [-1, 1]); identity when nothing is configured.

        Differentiable w.r.t. ``images``; randomness from ``self.seed_generator`` (different on each replica).
        """
        if self.ada is not None:
            return adaptive_augment(images, self._policy, self.ada.p.value, seed_generator=self.replica_seeds())
        if not self._policy:
            return images
        return diff_augment(images, self._policy, seed_generator=self.replica_seeds())

    def observe_real_logits(self, real_logits) -> None:
        """ADA bookkeeping: call once per D step with D's logits on the (augmented) reals (no-op without ADA)."""
        if self.ada is None:
            return
        self.ada_p_tracker.update_state(self.ada.observe(real_logits))

    @staticmethod
    def make_ema(network: keras.Model) -> keras.Model:
        """A non-trainable copy of ``network`` with the same weights, to be averaged by :meth:`update_ema`."""
        ema = keras.models.clone_model(network)
        ema.set_weights(network.get_weights())
        ema.trainable = False
        return ema

    @staticmethod
    def update_ema(ema: keras.Model, network: keras.Model, decay: float) -> None:
        """``ema = decay * ema + (1 - decay) * w`` for every weight, BatchNorm moving statistics included.

        Args:
            decay: in [0, 1); 0 copies ``network``.
        """
        for ema_w, w in zip(ema.weights, network.weights):
            ema_w.assign(decay * ema_w.value + (1.0 - decay) * w.value)

    def state_variables(self) -> dict[str, Any]:
        """Non-network state a checkpoint carries: the noise stream's state and ADA's variables."""
        out = {"seed_state": self.seed_generator.state}
        if self.ada is not None:
            out.update(self.ada.variables())
        return out

    # -- sampling ----------------------------------------------------------------------------------------
    def _sampler(self, net: keras.Model):
        key = id(net)
        if key not in self._samplers.fns:
            z_dim = self._z_dim

            @tf.function(input_signature=[tf.TensorSpec([None], tf.int32), tf.TensorSpec([None], tf.int64),
                                          tf.TensorSpec([None], tf.float32)])
            def fn(class_ids, seeds, truncation):
                # psi = 1 everywhere is exactly "no truncation" (w_avg + 1 * (w - w_avg) = w, 1 * z = z): one trace.
                return generator_images(net, z_dim, class_ids, seeds, truncation)

            self._samplers.fns[key] = fn
        return self._samplers.fns[key]

    def sample(self, class_ids, seeds, use_ema: bool = True, truncation=None) -> np.ndarray:
        """One image per ``(class_id, seed)`` pair, optionally truncated.

        Args:
            class_ids: int ``[N]`` in ``[0, num_classes)`` (ignored by unconditional models but still checked).
            seeds: int ``[N]`` (int64 range); the same (class, seed) always gives the same image.
            use_ema: models with an EMA generator sample from it (default) or, with False, from the raw one
                (``raw_sampling_network``).
            truncation: None (no truncation), one psi for every row or float ``[N]``, each in [0, 1].
                A sampling network with a third ``truncation`` input (stylegan) truncates its w towards the
                class's average w; any other network gets ``psi * z`` (see ``generator_images``). psi = 1 is
                exactly no truncation; psi = 0 gives each class's "average" image whatever the seed.

        Returns:
            float32 ``[N, H, W, C]`` in [-1, 1].

        Raises:
            TfaugError: non-integer or non-vector inputs, length mismatch, class id out of range, truncation
                of the wrong length or outside [0, 1].
        """
        c, s = validate_requests(class_ids, seeds, self._num_classes)
        psi = validate_truncation(truncation, len(c))
        if psi is None:
            psi = np.ones(len(c), np.float32)
        if len(c) == 0:
            return np.zeros((0, *self.image_shape), np.float32)
        net = self.sampling_network if use_ema else self.raw_sampling_network
        fn = self._sampler(net)
        out = [fn(c[i:i + SAMPLE_CHUNK], s[i:i + SAMPLE_CHUNK], psi[i:i + SAMPLE_CHUNK]).numpy()
               for i in range(0, len(c), SAMPLE_CHUNK)]
        return np.concatenate(out).astype(np.float32, copy=False)

    @property
    def raw_sampling_network(self) -> keras.Model:
        """The non-averaged generator where a model keeps an EMA copy (default: ``sampling_network``)."""
        return self.sampling_network

    def call(self, inputs, training=False):
        """``[z, class_id] -> images`` with the sampling network."""
        return self.sampling_network(inputs, training=False)


class AdversarialModel(GenerativeModel):
    """A generator/discriminator pair with an EMA generator for sampling (the keras-io GAN shape).

    Subclasses set ``generator``, ``discriminator`` and ``ema_generator`` (``make_ema(generator)``) in
    ``__init__``; ``compile(d_optimizer, g_optimizer)`` attaches the optimizers. Models with more networks or
    other checkpoint names override ``networks()`` / ``optimizers()``.
    """

    @property
    def sampling_network(self) -> keras.Model:
        return self.ema_generator

    @property
    def raw_sampling_network(self) -> keras.Model:
        return self.generator

    def networks(self) -> dict[str, keras.Model]:
        return {"generator": self.generator, "discriminator": self.discriminator,
                "ema_generator": self.ema_generator}

    def optimizers(self) -> dict:
        return {"d": (self.d_optimizer, self.discriminator.trainable_variables),
                "g": (self.g_optimizer, self.generator.trainable_variables)}

    def make_gan_trackers(self, r1: bool) -> None:
        """The loss trackers of a non-saturating GAN: ``d_loss``, ``g_loss``, ``d_real``, ``d_fake`` (mean
        sigmoid of D on reals / fakes, in [0, 1]) and, when ``r1``, ``r1`` (else ``self.r1_tracker`` is None)."""
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.d_real_tracker = keras.metrics.Mean(name="d_real")
        self.d_fake_tracker = keras.metrics.Mean(name="d_fake")
        self.r1_tracker = keras.metrics.Mean(name="r1") if r1 else None

    def report_gan_losses(self, d_loss, g_loss, real_logits, fake_logits) -> dict:
        """Update the :meth:`make_gan_trackers` trackers and return every metric's result (a ``train_step``'s logs).

        Args:
            d_loss, g_loss: scalar losses averaged over the GLOBAL batch (``compute_average_loss``); they are
                reported as this replica's mean (times the replica count).
            real_logits, fake_logits: D's logits ``[N, 1]`` on this replica's reals and fakes.
        """
        replicas = tf.cast(tf.distribute.get_strategy().num_replicas_in_sync, tf.float32)
        self.d_loss_tracker.update_state(d_loss * replicas)
        self.g_loss_tracker.update_state(g_loss * replicas)
        self.d_real_tracker.update_state(tf.sigmoid(real_logits))
        self.d_fake_tracker.update_state(tf.sigmoid(fake_logits))
        return {m.name: m.result() for m in self.metrics}

    @classmethod
    def from_config(cls, config: dict, custom_objects=None):
        """Rebuild from ``get_config()`` (scalar constructor arguments) plus ``generator`` and ``discriminator``
        entries (models or their serialized configs)."""
        config = dict(config)
        nets = {}
        for key in ("generator", "discriminator"):
            if key not in config:
                raise TfaugError(f"{cls.__name__}.from_config needs the {key!r} network in the config")
            net = config.pop(key)
            if isinstance(net, dict):
                net = keras.saving.deserialize_keras_object(net, custom_objects=custom_objects)
            nets[key] = net
        return cls(nets["generator"], nets["discriminator"], **config)

    def compile(self, d_optimizer: keras.optimizers.Optimizer, g_optimizer: keras.optimizers.Optimizer, **kwargs):
        """Attach D's and G's optimizers and build their variables now, so a checkpoint can restore them before
        the first step. ``kwargs`` go to ``keras.Model.compile`` (e.g. ``jit_compile``)."""
        kwargs.pop("optimizer", None)
        super().compile(optimizer=None, **kwargs)
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer
        self.build_optimizers()


__all__ = ["AdversarialModel", "GenerativeModel", "OPTIMIZER_ATTRIBUTES", "SAMPLE_CHUNK", "replica_position",
           "scaled_gradients"]
