"""Style-based generator and ResNet discriminator networks (``stylegan`` in the zoo), after StyleGAN2 (Karras et
al. 2020, "Analyzing and Improving the Image Quality of StyleGAN") at CPU size.

Networks (builders):

* :func:`build_mapping`: ``[z float32 [N, z_dim], class_id int32 [N]] -> w float32 [N, w_dim]``: pixel-normalised
  z and a pixel-normalised class embedding (an ``Embedding`` layer named ``class_embedding``, as in
  StyleGAN2-ADA's conditional mapping) concatenated, then ``layers`` Dense + LeakyReLU(0.2).
* :func:`build_synthesis`: ``w [N, w_dim] -> images float32 [N, H, W, C]`` in [-1, 1]: a learned constant on the
  generator's start grid (``common.plan_generator``), one modulated/demodulated 3x3 convolution per resolution
  (bilinear 2x upsampling between them) followed by per-pixel noise, bias and LeakyReLU(0.2), and a skip
  architecture: each resolution's modulated 1x1 ``to_rgb`` output is added to the upsampled sum of the coarser
  ones; center crop to ``H x W`` and tanh.
* :func:`build_resnet_discriminator`: ``[images, class_id] -> logits [N, 1]``: residual blocks (3x3 conv,
  average-pool downsampling, 3x3 conv; 1x1 skip; sum scaled by 1/sqrt(2)) down to a 4-7 px grid, a dense
  feature head whose output layer is named ``d_features`` ([N, F]) and the projection head of Miyato & Koyama
  2018 with an ``Embedding`` named ``d_class_embedding`` (projection term only: ``logit = embed(c) . h / sqrt(F)``, as
  StyleGAN2-ADA's conditional D). No normalisation across the batch (R1 is per example).

Registered layers (saved inside ``checkpoints/generator.keras``; imported by ``tfaug.models.networks.layers``):

* :class:`PixelNorm` - ``x / sqrt(mean(x^2) + eps)`` over the last axis.
* :class:`ConstantInput` - the learned start tensor, repeated over the batch of its input.
* :class:`ModulatedConv2D` - StyleGAN2's modulated convolution, with demodulation optional. Computed as
  "modulate the activations, convolve with the shared kernel, scale the output" (StyleGAN2's non-fused form),
  which equals a per-example kernel ``w'_{k,i,o} = s_i w_{k,i,o}`` demodulated by
  ``1 / sqrt(sum_{k,i} w'^2 + eps)``, and costs one ordinary convolution.
* :class:`NoiseInjection` - adds ``strength[c] * noise`` with noise [N, H, W, 1]: fresh N(0, 1) draws when
  ``training=True`` (one draw over the global batch sliced at the replica's rows, like
  ``GenerativeModel.batch_normal``, from the layer's own seed stream) and a fixed stored buffer
  (non-trainable weight ``noise_buffer`` [H, W, 1]) otherwise, so inference is a pure function of w.
* :class:`ClassTruncation` - ``[w, class_id, psi] -> w_avg[c] + psi * (w - w_avg[c])`` with a non-trainable
  ``w_avg`` [num_classes, w_dim] (the per-class centre of w, maintained by the model during training).
"""
from __future__ import annotations

import math

import keras
import tensorflow as tf
from keras import layers, ops

from tfaug.errors import TfaugError
from tfaug.models.networks.common import (channel_plan, check_image_shape, check_num_classes, num_resamplings,
                                          plan_generator)

LRELU_SLOPE = 0.2
DEMOD_EPS = 1e-8
# Offset of a noise layer's training-noise seed from its buffer's seed (distinct streams).
TRAINING_NOISE_OFFSET = 1_000_003


@keras.saving.register_keras_serializable(package="tfaug")
class PixelNorm(layers.Layer):
    """``x / sqrt(mean(x^2, last axis) + epsilon)``: unit mean square per row (Karras et al. 2018)."""

    def __init__(self, epsilon: float = 1e-8, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)

    def call(self, x):
        return x * ops.rsqrt(ops.mean(ops.square(x), axis=-1, keepdims=True) + self.epsilon)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="tfaug")
class ConstantInput(layers.Layer):
    """A learned tensor ``const`` [height, width, channels] (N(0, 1) init) repeated over the batch of the input.

    ``call(w [N, ...]) -> float [N, height, width, channels]`` (the input only gives the batch size).
    """

    def __init__(self, height: int, width: int, channels: int, **kwargs):
        super().__init__(**kwargs)
        self.height, self.width, self.channels = int(height), int(width), int(channels)
        self.const = self.add_weight(shape=(1, self.height, self.width, self.channels),
                                     initializer=keras.initializers.RandomNormal(0.0, 1.0), name="const")
        self.built = True

    def call(self, w):
        n = ops.shape(w)[0]
        return ops.tile(ops.cast(self.const, self.compute_dtype), [n, 1, 1, 1])

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.height, self.width, self.channels)

    def get_config(self):
        return {**super().get_config(), "height": self.height, "width": self.width, "channels": self.channels}


@keras.saving.register_keras_serializable(package="tfaug")
class ModulatedConv2D(layers.Layer):
    """StyleGAN2 modulated convolution: ``[x [N, H, W, Cin], w [N, w_dim]] -> [N, H, W, filters]`` ('same').

    The style ``s = affine(w)`` [N, Cin] (a dense layer, bias initialised to 1 so that ``s`` starts near 1)
    scales the input channels; with ``demodulate`` each output channel of each example is divided by the norm of
    its effective kernel, ``sqrt(sum_{k,i} (s_i w_{k,i,o})^2 + 1e-8)``, so unit-variance i.i.d. inputs give
    unit-variance outputs whatever ``w`` is. A bias (zeros) is added last.

    Args:
        filters: output channels, >= 1.
        kernel_size: odd square kernel size (3 for convolutions, 1 for ``to_rgb``).
        demodulate: divide by the effective kernel's norm (False for ``to_rgb``).
        use_bias: add a per-channel bias.
    """

    def __init__(self, filters: int, kernel_size: int = 3, demodulate: bool = True, use_bias: bool = True,
                 **kwargs):
        super().__init__(**kwargs)
        if int(filters) < 1 or int(kernel_size) < 1 or int(kernel_size) % 2 == 0:
            raise TfaugError(f"ModulatedConv2D needs filters >= 1 and an odd kernel_size, got {filters!r}, "
                             f"{kernel_size!r}")
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.demodulate = bool(demodulate)
        self.use_bias = bool(use_bias)

    def build(self, input_shape):
        x_shape, w_shape = input_shape
        cin, w_dim = int(x_shape[-1]), int(w_shape[-1])
        k = self.kernel_size
        self.affine_kernel = self.add_weight(
            shape=(w_dim, cin), name="affine_kernel",
            initializer=keras.initializers.RandomNormal(0.0, 1.0 / math.sqrt(w_dim)))
        self.affine_bias = self.add_weight(shape=(cin,), initializer="ones", name="affine_bias")
        self.kernel = self.add_weight(
            shape=(k, k, cin, self.filters), name="kernel",
            initializer=keras.initializers.RandomNormal(0.0, 1.0 / math.sqrt(k * k * cin)))
        self.bias = self.add_weight(shape=(self.filters,), initializer="zeros", name="bias") if self.use_bias else None

    def styles(self, w):
        """``s = w @ affine_kernel + affine_bias``, float [N, Cin]."""
        return ops.matmul(ops.cast(w, self.compute_dtype), self.affine_kernel) + self.affine_bias

    def call(self, inputs):
        x, w = inputs
        s = self.styles(w)
        x = ops.cast(x, self.compute_dtype) * s[:, None, None, :]
        y = ops.conv(x, self.kernel, strides=1, padding="same")
        if self.demodulate:
            # sum_{k,i} (s_i W_kio)^2 = sum_i s_i^2 (sum_k W_kio^2): [N, Cin] @ [Cin, Cout].
            energy = ops.matmul(ops.square(s), ops.sum(ops.square(self.kernel), axis=(0, 1)))
            y = y * ops.rsqrt(energy + DEMOD_EPS)[:, None, None, :]
        if self.bias is not None:
            y = y + self.bias
        return y

    def compute_output_shape(self, input_shape):
        return (*input_shape[0][:-1], self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "demodulate": self.demodulate, "use_bias": self.use_bias}


@keras.saving.register_keras_serializable(package="tfaug")
class NoiseInjection(layers.Layer):
    """``x [N, H, W, C] -> x + strength * noise`` with ``strength`` [C] (trainable, starts at 0).

    ``noise`` [N, H, W, 1] is N(0, 1): drawn afresh from the layer's seed stream when ``training=True`` (one draw
    of the global batch sliced at this replica's rows, so replicas differ), the stored ``noise_buffer`` [H, W, 1]
    (non-trainable, N(0, 1) from ``seed``) for every example otherwise.

    Args:
        seed: seed of the buffer's values and of the training noise stream.
    """

    def __init__(self, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.seed = int(seed)
        # Another stream than the buffer's (whose initializer is seeded with ``seed``).
        self.seed_generator = keras.random.SeedGenerator(self.seed + TRAINING_NOISE_OFFSET)

    def build(self, input_shape):
        h, w, c = (int(v) for v in input_shape[1:])
        self.strength = self.add_weight(shape=(c,), initializer="zeros", name="strength")
        self.noise_buffer = self.add_weight(shape=(h, w, 1), trainable=False, name="noise_buffer",
                                            initializer=keras.initializers.RandomNormal(0.0, 1.0, seed=self.seed))

    def call(self, x, training=None):
        if training:
            from tfaug.models.base import replica_position  # models.base imports no network module

            n = ops.shape(x)[0]
            dims = tuple(self.noise_buffer.shape)
            rid, replicas = replica_position()
            if replicas == 1:
                noise = keras.random.normal((n, *dims), seed=self.seed_generator)
            else:
                start = tf.cast(rid, tf.int32) * tf.cast(n, tf.int32)
                noise = keras.random.normal((n * replicas, *dims), seed=self.seed_generator)[start:start + n]
        else:
            noise = self.noise_buffer[None]
        return x + ops.cast(noise, self.compute_dtype) * self.strength

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


@keras.saving.register_keras_serializable(package="tfaug")
class ClassTruncation(layers.Layer):
    """Per-class truncation in w: ``[w [N, w_dim], class_id int [N], psi float [N]] -> w_avg[c] + psi (w - w_avg[c])``.

    ``w_avg`` float32 [num_classes, w_dim] is a non-trainable weight (zeros until the model updates it during
    training); psi = 1 returns ``w`` unchanged, psi = 0 the class centre.
    """

    def __init__(self, num_classes: int, w_dim: int, **kwargs):
        super().__init__(**kwargs)
        if int(num_classes) < 1 or int(w_dim) < 1:
            raise TfaugError(f"num_classes and w_dim must be >= 1, got {num_classes!r} and {w_dim!r}")
        self.num_classes, self.w_dim = int(num_classes), int(w_dim)
        # Every replica computes the same update (from all-reduced batch statistics): keep the first's.
        self.w_avg = self.add_weight(shape=(self.num_classes, self.w_dim), initializer="zeros", trainable=False,
                                     aggregation="only_first_replica", name="w_avg")
        self.built = True

    def call(self, inputs):
        w, class_id, psi = inputs
        c = ops.cast(ops.reshape(class_id, (-1,)), "int32")
        center = ops.cast(ops.take(self.w_avg, c, axis=0), w.dtype)
        psi = ops.cast(ops.reshape(psi, (-1, 1)), w.dtype)
        return center + psi * (w - center)

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "w_dim": self.w_dim}


# -- builders ------------------------------------------------------------------------------------------------

def build_mapping(num_classes: int, z_dim: int, w_dim: int = 64, n_layers: int = 3,
                  name: str = "mapping") -> keras.Model:
    """Mapping network ``[z float32 [N, z_dim], class_id int32 [N]] -> w float32 [N, w_dim]``.

    Args:
        num_classes: K >= 1 (rows of the ``class_embedding`` layer, ``w_dim`` wide, N(0, 1) init).
        z_dim: latent size >= 1.
        w_dim: style size >= 1.
        n_layers: Dense(w_dim) + LeakyReLU(0.2) layers, >= 1.
    """
    num_classes = check_num_classes(num_classes)
    if int(n_layers) < 1 or int(w_dim) < 1 or int(z_dim) < 1:
        raise TfaugError(f"the mapping network needs z_dim, w_dim and layers >= 1, got {z_dim}, {w_dim}, {n_layers}")
    z = keras.Input(shape=(int(z_dim),), dtype="float32", name="z")
    class_id = keras.Input(shape=(), dtype="int32", name="class_id")
    emb = layers.Embedding(num_classes, int(w_dim), embeddings_initializer=keras.initializers.RandomNormal(0.0, 1.0),
                           name="class_embedding")(class_id)
    x = layers.Concatenate(name="z_and_class")([PixelNorm(name="z_norm")(z), PixelNorm(name="class_norm")(emb)])
    for i in range(int(n_layers)):
        x = layers.Dense(int(w_dim), kernel_initializer="he_normal", name=f"fc{i}")(x)
        x = layers.LeakyReLU(LRELU_SLOPE, name=f"fc{i}_lrelu")(x)
    return keras.Model([z, class_id], x, name=name)


def build_synthesis(image_shape: tuple[int, int, int], w_dim: int = 64, width: int = 32, *, seed: int = 0,
                    name: str = "synthesis") -> keras.Model:
    """Synthesis network ``w float32 [N, w_dim] -> images float32 [N, H, W, C]`` in [-1, 1].

    Args:
        image_shape: ``(H, W, C)``, H and W in [8, 128], C >= 1.
        w_dim: style size.
        width: base channels: ``4 * width`` on the start grid, halving per resolution down to ``width``.
        seed: seed of the noise layers (layer i uses ``seed + i``): their stored inference buffers and training
            noise streams.

    Layers: ``const``, then per resolution r = 0..n_up: ``conv{r}`` (ModulatedConv2D 3x3, after ``up{r}``
    bilinear upsampling for r >= 1), ``noise{r}``, ``lrelu{r}``, ``to_rgb{r}`` (ModulatedConv2D 1x1, no
    demodulation) summed into the upsampled skip image; ``center_crop`` when needed; ``tanh``.
    """
    h, w, c = check_image_shape(image_shape)
    start_h, start_w, n_up = plan_generator(h, w)
    chans = channel_plan(int(width), n_up + 1)
    w_in = keras.Input(shape=(int(w_dim),), dtype="float32", name="w")
    x = ConstantInput(start_h, start_w, chans[0], name="const")(w_in)
    rgb = None
    for r, ch in enumerate(chans):
        if r > 0:
            x = layers.UpSampling2D(2, interpolation="bilinear", name=f"up{r}")(x)
        x = ModulatedConv2D(ch, 3, name=f"conv{r}")([x, w_in])
        x = NoiseInjection(seed=int(seed) + r, name=f"noise{r}")(x)
        x = layers.LeakyReLU(LRELU_SLOPE, name=f"lrelu{r}")(x)
        y = ModulatedConv2D(c, 1, demodulate=False, name=f"to_rgb{r}")([x, w_in])
        if rgb is None:
            rgb = y
        else:
            rgb = layers.Add(name=f"skip{r}")(
                [layers.UpSampling2D(2, interpolation="bilinear", name=f"rgb_up{r}")(rgb), y])
    extra_h, extra_w = start_h * 2**n_up - h, start_w * 2**n_up - w
    if extra_h or extra_w:
        rgb = layers.Cropping2D(((extra_h // 2, extra_h - extra_h // 2), (extra_w // 2, extra_w - extra_w // 2)),
                                name="center_crop")(rgb)
    images = layers.Activation("tanh", dtype="float32", name="tanh")(rgb)
    return keras.Model(w_in, images, name=name)


def build_style_generator(mapping: keras.Model, synthesis: keras.Model, name: str = "generator") -> keras.Model:
    """``[z, class_id] -> synthesis(mapping([z, class_id]))``, with the two nested models as layers
    ``mapping`` and ``synthesis``."""
    z = keras.Input(shape=mapping.inputs[0].shape[1:], dtype="float32", name="z")
    class_id = keras.Input(shape=(), dtype="int32", name="class_id")
    return keras.Model([z, class_id], synthesis(mapping([z, class_id])), name=name)


def build_truncated_generator(mapping: keras.Model, truncation: ClassTruncation, synthesis: keras.Model,
                              name: str = "sampling_network") -> keras.Model:
    """``[z, class_id, truncation float32 [N]] -> synthesis(truncation([mapping([z, class_id]), class_id, psi]))``,
    the three-input sampling network of ``tfaug.models.sampling.generator_images``."""
    z = keras.Input(shape=mapping.inputs[0].shape[1:], dtype="float32", name="z")
    class_id = keras.Input(shape=(), dtype="int32", name="class_id")
    psi = keras.Input(shape=(), dtype="float32", name="psi")  # the layer is "truncation"
    w = truncation([mapping([z, class_id]), class_id, psi])
    return keras.Model([z, class_id, psi], synthesis(w), name=name)


def _residual_block(x, ch: int, i: int):
    """3x3 conv + LeakyReLU, average-pool down, 3x3 conv to ``ch`` + LeakyReLU (the second conv at half
    resolution: a quarter of the cost of StyleGAN2's full-resolution one, which matters on a CPU); 1x1 conv of
    the pooled input as skip; sum / sqrt(2)."""
    cin = int(x.shape[-1])
    skip = layers.AveragePooling2D(2, padding="same", name=f"block{i}_skip_pool")(x)
    skip = layers.Conv2D(ch, 1, use_bias=False, name=f"block{i}_skip_conv")(skip)
    y = layers.Conv2D(cin, 3, padding="same", name=f"block{i}_conv1")(x)
    y = layers.LeakyReLU(LRELU_SLOPE, name=f"block{i}_lrelu1")(y)
    y = layers.AveragePooling2D(2, padding="same", name=f"block{i}_pool")(y)
    y = layers.Conv2D(ch, 3, padding="same", name=f"block{i}_conv2")(y)
    y = layers.LeakyReLU(LRELU_SLOPE, name=f"block{i}_lrelu2")(y)
    out = layers.Add(name=f"block{i}_add")([skip, y])
    return layers.Rescaling(1.0 / math.sqrt(2.0), name=f"block{i}_scale")(out)


def build_resnet_discriminator(image_shape: tuple[int, int, int], num_classes: int, width: int = 32,
                               name: str = "discriminator") -> keras.Model:
    """ResNet projection discriminator ``[images float32 [N, H, W, C] in [-1, 1], class_id int32 [N]] -> logits
    float32 [N, 1]`` (real > 0); each logit depends only on its own example.

    ``from_rgb`` 1x1 conv to ``width`` channels, residual blocks to ``2 * width``, ``4 * width`` ... (capped at
    ``4 * width``) down to a 4-7 px grid, a 3x3 conv, then ``flatten -> Dense(F) -> LeakyReLU`` whose
    layer ``d_features`` gives the features h [N, F] (F = the last block's channels, ``min(4, 2**n_down) * width``);
    ``logit = d_class_embedding(c) . h / sqrt(F)`` (projection only, as StyleGAN2-ADA's conditional D).
    """
    h, w, c = check_image_shape(image_shape)
    num_classes = check_num_classes(num_classes)
    n_down = num_resamplings(h, w)
    chans = channel_plan(int(width), n_down + 1, grow=True)  # [w, 2w, 4w, 4w ...]
    images = keras.Input(shape=(h, w, c), dtype="float32", name="images")
    class_id = keras.Input(shape=(), dtype="int32", name="class_id")
    x = layers.Conv2D(chans[0], 1, name="from_rgb")(images)
    x = layers.LeakyReLU(LRELU_SLOPE, name="from_rgb_lrelu")(x)
    for i, ch in enumerate(chans[1:], start=1):
        x = _residual_block(x, ch, i)
    x = layers.Conv2D(chans[-1], 3, padding="same", name="final_conv")(x)
    x = layers.LeakyReLU(LRELU_SLOPE, name="final_lrelu")(x)
    feats = layers.Flatten(name="flatten")(x)
    feats = layers.Dense(chans[-1], name="d_features_dense")(feats)
    feats = layers.LeakyReLU(LRELU_SLOPE, name="d_features")(feats)
    # Projection only (StyleGAN2-ADA's conditional D): with no class-blind logit term, D must judge each image
    # as an image of its class.
    class_vec = layers.Embedding(num_classes, chans[-1], name="d_class_embedding",
                                 embeddings_initializer=keras.initializers.RandomNormal(0.0, 1.0))(class_id)
    projection = layers.Dot(axes=1, name="projection")([class_vec, feats])
    logits = layers.Rescaling(1.0 / math.sqrt(chans[-1]), dtype="float32", name="logits")(projection)
    return keras.Model([images, class_id], logits, name=name)


__all__ = ["ClassTruncation", "ConstantInput", "ModulatedConv2D", "NoiseInjection", "PixelNorm",
           "build_mapping", "build_resnet_discriminator", "build_style_generator", "build_synthesis",
           "build_truncated_generator"]
