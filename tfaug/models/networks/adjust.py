"""The post-hoc logit-adjustment layer (Menon et al., "Long-Tail Learning via Logit Adjustment", ICLR 2021, eq. 9).

Registered with Keras (and imported by ``tfaug.models.networks.layers``) so that a classifier wrapped by
``tfaug.training.longtail.posthoc_model`` saves and loads as a ``.keras`` file.
"""
from __future__ import annotations

import keras
import numpy as np


@keras.saving.register_keras_serializable(package="tfaug")
class LogitAdjustment(keras.layers.Layer):
    """Subtracts a fixed per-class offset from logits: [B, K] -> [B, K].

    Args:
        offset: K floats, ``tau * log(pi_c)`` for the class prior pi (all <= 0 for tau >= 0).
    """

    def __init__(self, offset, **kwargs):
        super().__init__(**kwargs)
        self.offset = [float(v) for v in np.asarray(offset, np.float64).reshape(-1)]

    def call(self, logits):
        return logits - keras.ops.cast(keras.ops.convert_to_tensor(self.offset), logits.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "offset": list(self.offset)}
