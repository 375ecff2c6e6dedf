"""tfaug's ``BatchNormalization``: Keras' layer that runs TensorFlow's fused kernel under mixed precision.

Under a ``mixed_bfloat16`` / ``mixed_float16`` policy, Keras 3's BatchNormalization casts its input to float32,
computes the moments and the normalisation with separate element-wise ops and casts back: on a 2-core AMX Xeon its
forward + backward on a [64, 28, 28, 32] bf16 batch took 5.8 ms against 2.2 ms for TensorFlow's fused kernel
(``FusedBatchNormV3``, oneDNN), and the three BatchNorms of the cDCGAN generator were half of its bf16
forward + backward (issue 21; ``benchmarks/results/train_throughput_xeon_bf16_idle.md``).

This layer takes the fused kernel where it is exact to Keras' definition and the same otherwise:

- only for 4-D channels-last inputs (``axis`` -1 or 3) under a bf16/fp16 compute dtype, with no mask, no
  ``synchronized`` (cross-replica) statistics and no renorm, on the TensorFlow backend; everything else, and every
  float32 model, runs Keras' own ``call`` unchanged (float32 results are bit-identical to Keras');
- the kernel normalises in float32 internally (float32 gamma, beta and statistics; the bf16/fp16 input and
  output are the policy's), so the numerics the mixed-precision guides ask for are kept;
- in training the kernel returns the batch variance with Bessel's correction ``n / (n - 1)``; the moving variance
  is updated with the biased variance Keras uses, ``moving = momentum * moving + (1 - momentum) * batch``.

The class keeps Keras' name on purpose: Keras 3 stores a network's weights under paths made from its layers'
class names, so checkpoints and ``.keras`` files written with Keras' BatchNormalization load into networks built
with this one and back (it is registered as ``tfaug>BatchNormalization``).

Values: inputs any float [N, H, W, C]; outputs the compute dtype, same shape.
"""
from __future__ import annotations

import keras

__all__ = ["BatchNormalization"]

_MIXED = ("bfloat16", "float16")
_MIN_EPSILON = 1.001e-5  # the fused kernel's floor (cuDNN's); smaller epsilons take Keras' path


@keras.saving.register_keras_serializable(package="tfaug")
class BatchNormalization(keras.layers.BatchNormalization):
    """``keras.layers.BatchNormalization`` with the fused kernel under mixed precision (module docstring)."""

    def _fused(self, inputs, mask) -> bool:
        return (keras.backend.backend() == "tensorflow" and mask is None and not self.synchronized
                and not getattr(self, "renorm", False) and self.compute_dtype in _MIXED
                and len(inputs.shape) == 4 and self.axis in (-1, 3) and self.epsilon >= _MIN_EPSILON)

    def call(self, inputs, training=None, mask=None):
        if not self._fused(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        x = tf.cast(inputs, self.compute_dtype)
        channels = x.shape[-1]
        scale = tf.cast(self.gamma, tf.float32) if self.scale else tf.ones([channels], tf.float32)
        offset = tf.cast(self.beta, tf.float32) if self.center else tf.zeros([channels], tf.float32)
        if training and self.trainable:
            y, mean, unbiased = tf.compat.v1.nn.fused_batch_norm(x, scale, offset, epsilon=self.epsilon,
                                                                  data_format="NHWC", is_training=True)
            n = tf.cast(tf.reduce_prod(tf.shape(x)[:3]), tf.float32)
            variance = unbiased * tf.maximum(n - 1.0, 0.0) / tf.maximum(n, 1.0)
            m = self.momentum
            self.moving_mean.assign(tf.cast(self.moving_mean, tf.float32) * m + mean * (1.0 - m))
            self.moving_variance.assign(tf.cast(self.moving_variance, tf.float32) * m + variance * (1.0 - m))
        else:
            y, _, _ = tf.compat.v1.nn.fused_batch_norm(
                x, scale, offset, mean=tf.cast(self.moving_mean, tf.float32),
                variance=tf.cast(self.moving_variance, tf.float32), epsilon=self.epsilon, data_format="NHWC",
                is_training=False)
        return tf.cast(y, self.compute_dtype)
