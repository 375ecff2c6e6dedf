"""A seed-taking Keras model around a sampling network: ``{class_id, seed} -> images uint8``, as served.

A run's ``checkpoints/generator.keras`` is the *sampling network*: it takes latents ``z`` (float32 [N, z_dim]),
not seeds. Served images come from seeds through :func:`tfaug.models.sampling.latent_from_seeds`:

* ``z[i] = tf.random.stateless_normal([z_dim], seed=[seed[i], 0x7FA0])`` (seed cast to int64);
* ``x = network([z, class_id])`` (or ``network(z)`` for unconditional ones, or ``network([z, class_id, psi])``
  for three-input, style-based ones with psi = 1 when no truncation is asked for; two-input ones get ``psi * z``);
* ``images = uint8(clip(round((x + 1) * 127.5), 0, 255))``.

:func:`seeded_generator` builds exactly that as a plain functional Keras model, so a Keras application can
reproduce every served image bit for bit, and save it as ``.keras`` (loading it needs ``import tfaug``, which
registers these layers).
"""
from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers

from tfaug.errors import TfaugError
from tfaug.models.sampling import latent_from_seeds

__all__ = ["SeedLatent", "RowScale", "RowOnes", "ToUint8", "seeded_generator"]


@keras.saving.register_keras_serializable(package="tfaug")
class SeedLatent(layers.Layer):
    """int seeds ``[N]`` (int32 or int64) -> standard-normal latents float32 ``[N, z_dim]``, row i from seed i only."""

    def __init__(self, z_dim: int, **kwargs):
        super().__init__(**kwargs)
        if int(z_dim) < 1:
            raise TfaugError(f"z_dim must be >= 1, got {z_dim!r}")
        self.z_dim = int(z_dim)

    def call(self, seeds):
        return latent_from_seeds(seeds, self.z_dim)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.z_dim)

    def get_config(self):
        return {**super().get_config(), "z_dim": self.z_dim}


@keras.saving.register_keras_serializable(package="tfaug")
class RowScale(layers.Layer):
    """``[z [N, d], psi [N]] -> psi[:, None] * z`` (truncation of a two-input network's latent)."""

    def call(self, inputs):
        z, psi = inputs
        return z * tf.cast(psi, z.dtype)[:, None]

    def compute_output_shape(self, input_shape):
        return input_shape[0]


@keras.saving.register_keras_serializable(package="tfaug")
class RowOnes(layers.Layer):
    """``x [N, ...] -> ones float32 [N]`` (psi = 1, no truncation, for a three-input network)."""

    def call(self, x):
        return tf.ones(tf.shape(x)[:1], tf.float32)

    def compute_output_shape(self, input_shape):
        return (input_shape[0],)


@keras.saving.register_keras_serializable(package="tfaug")
class ToUint8(layers.Layer):
    """float images in [-1, 1] -> uint8 ``clip(round((x + 1) * 127.5), 0, 255)`` (the export's encoding)."""

    def call(self, x):
        x = tf.cast(x, tf.float32)
        return tf.cast(tf.clip_by_value(tf.round((x + 1.0) * 127.5), 0.0, 255.0), tf.uint8)

    def compute_output_spec(self, x):
        return keras.KerasTensor(x.shape, dtype="uint8")


def seeded_generator(sampling_network, z_dim: int, *, truncation: bool = False,
                     name: str = "seeded_generator") -> keras.Model:
    """``{class_id int32 [N], seed int64 [N] (, truncation float32 [N])} -> {"images": uint8 [N, H, W, C]}``.

    Gives the images of the exported ``serving_default`` (or, with ``truncation=True``, ``truncated``)
    signature for the same inputs, bit for bit on the same machine.

    Args:
        sampling_network: a run's ``generator.keras`` (inputs ``[z]``, ``[z, class_id]`` or
            ``[z, class_id, truncation]``; output float32 [N, H, W, C] in [-1, 1]).
        z_dim: latent size (the run's ``gan.z_dim``, the network's first input size).
        truncation: add a ``truncation`` input (psi in [0, 1], 1 = none; not range-checked here).
        name: the model's name.
    """
    n_inputs = len(sampling_network.inputs)
    if n_inputs not in (1, 2, 3):
        raise TfaugError(f"a sampling network takes [z], [z, class_id] or [z, class_id, truncation]; "
                         f"this one takes {n_inputs} inputs")
    class_id = keras.Input((), dtype="int32", name="class_id")
    seed = keras.Input((), dtype="int64", name="seed")
    inputs = {"class_id": class_id, "seed": seed}
    z = SeedLatent(z_dim, name="seed_latent")(seed)
    psi = None
    if truncation:
        psi = inputs["truncation"] = keras.Input((), dtype="float32", name="truncation")
    if n_inputs == 3:
        x = sampling_network([z, class_id, psi if psi is not None else RowOnes(name="no_truncation")(seed)])
    else:
        if psi is not None:
            z = RowScale(name="truncate_z")([z, psi])
        x = sampling_network(z) if n_inputs == 1 else sampling_network([z, class_id])
    return keras.Model(inputs, {"images": ToUint8(name="images")(x)}, name=name)
