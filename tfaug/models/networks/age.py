"""Registered Keras layers of AGE-style new-class networks (centroid + shared directions in w).

Attribute group editing (Ding et al. 2022, "Attribute Group Editing for Reliable Few-shot Image Generation")
describes a class by its centroid in a style generator's w space and its variation by directions shared by all
classes. :class:`AGELatent` holds one class's centroid with the shared directions and maps a standard-normal
``z`` to ``w = centroid + psi * sum_j z_j * scales_j * directions_j`` (the first ``m`` entries of ``z``), so
``psi = 0`` gives the centroid and ``psi = 1`` the full within-class spread the directions describe.
:func:`build_age_network` puts the layer in front of a style generator's synthesis network.

Imported by ``tfaug.models.networks.layers`` so that saved networks containing the layer load.
"""
from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from tfaug.errors import TfaugError


@keras.saving.register_keras_serializable(package="tfaug")
class AGELatent(layers.Layer):
    """``[z float32 [N, z_dim], truncation float32 [N]] -> w float32 [N, w_dim]``.

    ``w = centroid + truncation[:, None] * (z[:, :m] * scales) @ directions``.

    Args:
        z_dim: size of ``z`` (>= m); entries beyond the first ``m`` are ignored.
        w_dim: size of ``w`` (>= 1).
        num_directions: m in [1, z_dim].

    Weights (non-trainable, set with :meth:`set_values`): ``centroid`` [w_dim], ``directions`` [m, w_dim]
    (orthonormal rows), ``scales`` [m] (standard deviation along each direction).
    """

    def __init__(self, z_dim: int, w_dim: int, num_directions: int, **kwargs):
        super().__init__(**kwargs)
        self.z_dim, self.w_dim, self.num_directions = int(z_dim), int(w_dim), int(num_directions)
        if self.w_dim < 1 or not 1 <= self.num_directions <= self.z_dim:
            raise TfaugError(f"an AGE latent needs w_dim >= 1 and 1 <= directions <= z_dim ({self.z_dim}), got "
                             f"w_dim {w_dim!r} and {num_directions!r} directions")
        m, d = self.num_directions, self.w_dim
        self.centroid = self.add_weight(shape=(d,), initializer="zeros", trainable=False, name="centroid")
        self.directions = self.add_weight(shape=(m, d), initializer="zeros", trainable=False, name="directions")
        self.scales = self.add_weight(shape=(m,), initializer="zeros", trainable=False, name="scales")
        self.built = True

    def call(self, inputs):
        z, psi = inputs
        z = ops.cast(z, "float32")[:, : self.num_directions]
        psi = ops.reshape(ops.cast(psi, "float32"), (-1, 1))
        offset = ops.matmul(z * self.scales[None, :], self.directions)
        return self.centroid[None, :] + psi * offset

    def compute_output_shape(self, input_shapes):
        return (input_shapes[0][0], self.w_dim)

    def set_values(self, centroid: np.ndarray, directions: np.ndarray, scales: np.ndarray) -> None:
        """Store the centroid ``[w_dim]``, directions ``[m, w_dim]`` and scales ``[m]`` (finite floats).

        Raises:
            TfaugError: wrong shapes or non-finite values.
        """
        m, d = self.num_directions, self.w_dim
        arrays = [np.asarray(a, np.float32) for a in (centroid, directions, scales)]
        want = [(d,), (m, d), (m,)]
        if [a.shape for a in arrays] != want or not all(np.isfinite(a).all() for a in arrays):
            raise TfaugError(f"AGE values must be finite arrays of shapes {want}, got {[a.shape for a in arrays]}")
        for var, value in zip((self.centroid, self.directions, self.scales), arrays):
            var.assign(value)

    def get_config(self) -> dict:
        return {**super().get_config(), "z_dim": self.z_dim, "w_dim": self.w_dim,
                "num_directions": self.num_directions}


def build_age_network(synthesis: keras.Model, z_dim: int, centroid: np.ndarray, directions: np.ndarray,
                      scales: np.ndarray, name: str = "age_class") -> keras.Model:
    """A new-class generator ``[z float32 [N, z_dim], truncation float32 [N]] -> images`` from a synthesis network.

    Args:
        synthesis: functional ``w [N, w_dim] -> images [N, H, W, C]`` in [-1, 1] (used as is: weights shared).
        z_dim: size of ``z`` (>= number of directions).
        centroid, directions, scales: see :class:`AGELatent`.
        name: model name.

    Returns:
        A functional model; its layer ``age_latent`` is the :class:`AGELatent`; images depend only on their row.
    """
    directions = np.asarray(directions, np.float32)
    if directions.ndim != 2:
        raise TfaugError(f"AGE directions must be [m, w_dim], got shape {directions.shape}")
    z = keras.Input(shape=(int(z_dim),), dtype="float32", name="z")
    psi = keras.Input(shape=(), dtype="float32", name="truncation")
    latent = AGELatent(int(z_dim), directions.shape[1], directions.shape[0], name="age_latent")
    latent.set_values(centroid, directions, scales)
    images = synthesis(latent([z, psi]))
    return keras.Model([z, psi], images, name=name)


__all__ = ["AGELatent", "build_age_network"]
