"""Registered layers that carry sampling-time state inside a sampling network (BAGAN, gan-bank).

* :class:`ClassConditionalGaussian` — BAGAN's class-conditional latent (Mariani et al. 2018, sec. 3.2):
  ``z ~ N(0, I), class c -> mu_c + L_c z`` where ``L_c`` is the Cholesky factor of ``Sigma_c``, so the output is
  distributed ``N(mu_c, Sigma_c)``. The means and factors are (non-trainable) weights, so ``generator.keras``,
  checkpoints and an exported SavedModel all carry the fitted statistics.
* :class:`MLPBank` — K fully connected networks with their weights stacked on a class axis (S3's one GAN per
  class): row ``i`` goes through network ``class_ids[i]`` only, and training runs all K networks as one
  batched matmul per layer, so graph size and tracing time do not grow with K.

Both are imported by ``tfaug.models.networks.layers`` so that ``keras.models.load_model`` can rebuild them.
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

from tfaug.errors import TfaugError


@keras.saving.register_keras_serializable(package="tfaug")
class ClassConditionalGaussian(layers.Layer):
    """``[z float32 [N, d], class_id int32 [N]] -> mu[class_id] + L[class_id] @ z``, float32 ``[N, d]``.

    Args:
        num_classes: K >= 1.
        latent_dim: d >= 1.

    Weights (non-trainable): ``means`` float32 ``[K, d]`` (starts at 0) and ``cholesky`` float32 ``[K, d, d]``
    (lower-triangular, starts at the identity, i.e. N(0, I) for every class until :meth:`set_statistics`).
    """

    def __init__(self, num_classes: int, latent_dim: int, **kwargs):
        kwargs["dtype"] = "float32"  # fitted statistics and their Cholesky product stay float32 under mixed precision
        super().__init__(**kwargs)
        if int(num_classes) < 1 or int(latent_dim) < 1:
            raise TfaugError(f"num_classes and latent_dim must be >= 1, got {num_classes!r} and {latent_dim!r}")
        self.num_classes = int(num_classes)
        self.latent_dim = int(latent_dim)
        k, d = self.num_classes, self.latent_dim
        self.means = self.add_weight(shape=(k, d), initializer="zeros", trainable=False, name="means")
        self.cholesky = self.add_weight(
            shape=(k, d, d), trainable=False, name="cholesky",
            initializer=lambda shape, dtype=None: ops.broadcast_to(ops.eye(d, dtype="float32"), shape))
        self.built = True

    def call(self, inputs):
        z, class_id = inputs
        c = ops.cast(ops.reshape(class_id, (-1,)), "int32")
        mu = ops.take(self.means, c, axis=0)
        chol = ops.take(self.cholesky, c, axis=0)
        return mu + ops.einsum("nij,nj->ni", chol, ops.cast(z, "float32"))

    def compute_output_shape(self, input_shapes):
        return (input_shapes[0][0], self.latent_dim)

    def set_statistics(self, means: np.ndarray, covariances: np.ndarray) -> None:
        """Store class means ``[K, d]`` and covariances ``[K, d, d]`` (each symmetric positive definite).

        Raises:
            TfaugError: wrong shapes, or a covariance that is not positive definite.
        """
        means = np.asarray(means, np.float64)
        covs = np.asarray(covariances, np.float64)
        k, d = self.num_classes, self.latent_dim
        if means.shape != (k, d) or covs.shape != (k, d, d):
            raise TfaugError(f"class statistics must be means {(k, d)} and covariances {(k, d, d)}, "
                             f"got {means.shape} and {covs.shape}")
        try:
            chol = np.linalg.cholesky(0.5 * (covs + np.swapaxes(covs, 1, 2)))
        except np.linalg.LinAlgError:
            raise TfaugError("a class covariance is not positive definite; increase the ridge") from None
        self.means.assign(means.astype(np.float32))
        self.cholesky.assign(chol.astype(np.float32))

    def covariances(self) -> np.ndarray:
        """``L L^T`` per class, float64 ``[K, d, d]``."""
        chol = np.asarray(self.cholesky, np.float64)
        return chol @ np.swapaxes(chol, 1, 2)

    def get_config(self) -> dict:
        return {**super().get_config(), "num_classes": self.num_classes, "latent_dim": self.latent_dim}


def _glorot(fan_in: int, fan_out: int):
    """Glorot-uniform for one class's ``[fan_in, fan_out]`` slice (Keras' own would count K in the fans)."""
    limit = float(np.sqrt(6.0 / (fan_in + fan_out)))
    return keras.initializers.RandomUniform(-limit, limit)


@keras.saving.register_keras_serializable(package="tfaug")
class MLPBank(layers.Layer):
    """K fully connected networks of identical shape, weights stacked on a leading class axis.

    Network k: ``in -> [Dense(u) (-> BatchNorm) -> LeakyReLU 0.2] for u in units -> Dense(out) -> activation``.
    Stacking keeps the graph the same size for any K (2 or 100+ classes), and three ways to run it:

    * ``__call__([x [N, in], class_id int32 [N]])``: row i through network ``class_id[i]`` only (a
      ``tf.while_loop`` over the classes, each running on its own rows; inference-mode BatchNorm), so an output
      never depends on the rest of the batch. This is what sampling networks and exports use.
    * :meth:`grouped` ``x [K, M, in] -> [K, M, out]``: network k on group k (training; BatchNorm statistics
      per group).
    * :meth:`all_networks` ``x [N, in] -> [K, N, out]``: every network on every row (discriminator scores).

    Args:
        num_networks: K >= 1.
        input_dim, output_dim: sizes of a row in and out.
        units: hidden layer sizes.
        batch_norm: BatchNorm after each hidden Dense (the generators of S3) or a bias (the discriminators).
        activation: ``tanh`` or ``linear`` output.
        momentum: BatchNorm moving-average momentum.
    """

    def __init__(self, num_networks: int, input_dim: int, units, output_dim: int, *, batch_norm: bool = False,
                 activation: str = "linear", momentum: float = 0.9, epsilon: float = 1e-3, **kwargs):
        kwargs["dtype"] = "float32"  # its own BatchNorm statistics: float32 under mixed precision too
        super().__init__(**kwargs)
        if activation not in ("tanh", "linear"):
            raise TfaugError(f"MLPBank activation must be tanh or linear, got {activation!r}")
        self.num_networks, self.input_dim, self.output_dim = int(num_networks), int(input_dim), int(output_dim)
        self.units = [int(u) for u in units]
        self.batch_norm, self.activation, self.momentum, self.epsilon = bool(batch_norm), activation, float(
            momentum), float(epsilon)
        k = self.num_networks
        sizes = [self.input_dim, *self.units, self.output_dim]
        self.blocks = []
        for j, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            last = j == len(sizes) - 2
            block = {"kernel": self.add_weight(shape=(k, a, b), initializer=_glorot(a, b), name=f"kernel{j}")}
            if self.batch_norm and not last:
                block["gamma"] = self.add_weight(shape=(k, b), initializer="ones", name=f"gamma{j}")
                block["beta"] = self.add_weight(shape=(k, b), initializer="zeros", name=f"beta{j}")
                block["mean"] = self.add_weight(shape=(k, b), initializer="zeros", trainable=False,
                                                name=f"moving_mean{j}")
                block["var"] = self.add_weight(shape=(k, b), initializer="ones", trainable=False,
                                               name=f"moving_var{j}")
            else:
                block["bias"] = self.add_weight(shape=(k, b), initializer="zeros", name=f"bias{j}")
            self.blocks.append(block)
        self.built = True

    # -- the three ways to run the bank ---------------------------------------------------------------------
    def _run(self, h, take, training: bool):
        """``h [K', M, in]`` through the networks selected by ``take(weight [K, ...]) -> [K', ...]``."""
        for j, block in enumerate(self.blocks):
            h = tf.einsum("kmi,kio->kmo", h, take(block["kernel"]))
            if "gamma" in block:
                if training:
                    mean, var = tf.nn.moments(h, axes=[1])
                    m = self.momentum
                    block["mean"].assign(m * block["mean"] + (1.0 - m) * tf.stop_gradient(mean))
                    block["var"].assign(m * block["var"] + (1.0 - m) * tf.stop_gradient(var))
                else:
                    mean, var = take(block["mean"]), take(block["var"])
                h = (h - mean[:, None]) * tf.math.rsqrt(var[:, None] + self.epsilon)
                h = h * take(block["gamma"])[:, None] + take(block["beta"])[:, None]
            else:
                h = h + take(block["bias"])[:, None]
            if j < len(self.blocks) - 1:
                h = tf.nn.leaky_relu(h, 0.2)
        return tf.tanh(h) if self.activation == "tanh" else h

    def grouped(self, x, training: bool = False):
        """Network k on ``x[k]``: float ``[K, M, in] -> [K, M, out]`` (training: per-group batch statistics)."""
        return self._run(tf.cast(x, tf.float32), lambda w: tf.convert_to_tensor(w), training)

    def all_networks(self, x):
        """Every network on every row (inference mode): float ``[N, in] -> [K, N, out]``."""
        x = tf.cast(x, tf.float32)
        return self.grouped(tf.tile(x[None], [self.num_networks, 1, 1]), training=False)

    def call(self, inputs, training=None):
        x, class_id = inputs
        x = tf.cast(x, tf.float32)
        c = tf.cast(tf.reshape(class_id, [-1]), tf.int32)
        out0 = tf.zeros([tf.shape(x)[0], self.output_dim], tf.float32)

        def body(k, out):
            rows = tf.where(tf.equal(c, k))
            xk = tf.gather_nd(x, rows)[None]
            yk = self._run(xk, lambda w: tf.gather(tf.convert_to_tensor(w), [k]), training=False)[0]
            return k + 1, tf.tensor_scatter_nd_update(out, rows, yk)

        _, out = tf.while_loop(lambda k, _: k < self.num_networks, body, (tf.constant(0), out0))
        return out

    def compute_output_shape(self, input_shapes):
        return (input_shapes[0][0], self.output_dim)

    def get_config(self) -> dict:
        return {**super().get_config(), "num_networks": self.num_networks, "input_dim": self.input_dim,
                "units": list(self.units), "output_dim": self.output_dim, "batch_norm": self.batch_norm,
                "activation": self.activation, "momentum": self.momentum, "epsilon": self.epsilon}


__all__ = ["ClassConditionalGaussian", "MLPBank"]
