"""DCGAN generators (conditional and unconditional), sized from the image shape.

``build_generator``: ``[z, class_id] -> image``: a class code is concatenated to ``z`` (as in the conditional
GAN of Mirza & Osindero 2014 and S4's conditional DCGAN; a learned embedding or S4's one-hot vector), projected by a Dense layer onto a small start grid
(4-8 px a side), then doubled by ``Conv2DTranspose`` blocks with BatchNorm + ReLU (Radford et al. 2016)
until it covers the image, and finished by a 3x3 convolution, a center crop to exactly ``H x W`` and tanh.

``build_dcgan_generator``: the unconditional DCGAN of Radford et al. 2016 as S1 used it (64x64 RGB: z=100,
ConvT 4x4 512->256->128->64->3, BN + ReLU, no bias, tanh): the last transposed convolution makes the image
itself. It takes the ``class_id`` input too (the zoo's sampling contract) and ignores it.
"""
from __future__ import annotations

import keras
from keras import layers

from tfaug.errors import TfaugError
from tfaug.models.networks.batchnorm import BatchNormalization
from tfaug.models.networks.common import (channel_plan, check_image_shape, check_num_classes, dcgan_init,
                                          plan_generator)

# Faster than Keras' 0.99 so that the moving statistics used for sampling (training=False) follow a generator
# that changes every step; short runs (a few hundred steps) would otherwise sample with stale statistics.
BN_MOMENTUM = 0.9


def build_generator(image_shape: tuple[int, int, int], num_classes: int, z_dim: int = 64, width: int = 32,
                    name: str = "generator", *, embed_dim: int = 32, conditioning: str = "embedding") -> keras.Model:
    """Build a conditional DCGAN generator.

    Args:
        image_shape: ``(H, W, C)`` of the images to generate; H, W in [8, 128] (square or not), C in {1, 3}.
        num_classes: number of classes (>= 1).
        z_dim: latent size; latents are standard normal.
        width: base channel count; the start grid has ``4 * width`` channels, halving per upsampling block
            down to ``width``.
        name: model name.
        embed_dim: size of the learned class embedding concatenated to ``z`` (``conditioning="embedding"``).
        conditioning: ``embedding`` (a learned N(0, 1)-initialised embedding) or ``onehot`` (the one-hot class
            vector, as in S4's conditional DCGAN).

    Returns:
        A functional model with inputs ``[z float32 [N, z_dim], class_id int32 [N]]`` and output
        float32 ``[N, H, W, C]`` in [-1, 1].
    """
    h, w, c = check_image_shape(image_shape)
    num_classes = check_num_classes(num_classes)
    if conditioning not in CONDITIONINGS:
        raise TfaugError(f"unknown generator conditioning {conditioning!r}; known: {', '.join(CONDITIONINGS)}")
    start_h, start_w, n_up = plan_generator(h, w)
    chans = channel_plan(width, n_up + 1)  # [start grid, block 1, ..., block n_up]

    z = keras.Input(shape=(z_dim,), dtype="float32", name="z")
    class_id = keras.Input(shape=(), dtype="int32", name="class_id")
    if conditioning == "onehot":
        emb = layers.CategoryEncoding(num_classes, output_mode="one_hot", name="class_onehot")(class_id)
    else:
        # N(0, 1) embedding so that the class code starts on the same scale as z.
        emb = layers.Embedding(num_classes, embed_dim,
                               embeddings_initializer=keras.initializers.RandomNormal(0.0, 1.0),
                               name="class_embedding")(class_id)
    x = layers.Concatenate(name="z_and_class")([z, emb])
    x = layers.Dense(start_h * start_w * chans[0], use_bias=False, kernel_initializer=dcgan_init(), name="project")(x)
    x = layers.Reshape((start_h, start_w, chans[0]), name="start_grid")(x)
    x = BatchNormalization(momentum=BN_MOMENTUM, gamma_initializer=dcgan_init(1.0), name="project_bn")(x)
    x = layers.ReLU(name="project_relu")(x)
    for i, ch in enumerate(chans[1:], start=1):
        # Bias is redundant before BatchNorm.
        x = layers.Conv2DTranspose(ch, 4, strides=2, padding="same", use_bias=False, kernel_initializer=dcgan_init(),
                                   name=f"up{i}_convT")(x)
        x = BatchNormalization(momentum=BN_MOMENTUM, gamma_initializer=dcgan_init(1.0), name=f"up{i}_bn")(x)
        x = layers.ReLU(name=f"up{i}_relu")(x)
    x = layers.Conv2D(c, 3, padding="same", kernel_initializer=dcgan_init(), name="to_image")(x)
    extra_h, extra_w = start_h * 2**n_up - h, start_w * 2**n_up - w
    if extra_h or extra_w:
        x = layers.Cropping2D(((extra_h // 2, extra_h - extra_h // 2), (extra_w // 2, extra_w - extra_w // 2)),
                              name="center_crop")(x)
    # float32 output even under a mixed-precision policy.
    images = layers.Activation("tanh", dtype="float32", name="tanh")(x)
    return keras.Model([z, class_id], images, name=name)


def build_dcgan_generator(image_shape: tuple[int, int, int], z_dim: int = 100, width: int = 64,
                          name: str = "dcgan_generator", *, widest: int = 8, kernel: int = 4) -> keras.Model:
    """Build an unconditional DCGAN generator (Radford et al. 2016).

    ``z -> Dense (= ConvT on a 1x1 input) -> start grid with widest * width channels -> ConvT(kernel, stride 2)
    blocks halving the channels (BN + ReLU, no bias) -> a last ConvT(kernel, stride 2) to C channels -> center
    crop -> tanh``. For 64x64x3, z_dim=100, width=64, widest=8, kernel=4 this is S1's 512->256->128->64->3.

    Args:
        image_shape: ``(H, W, C)``; H, W in [8, 128], C >= 1.
        z_dim: latent size, >= 1.
        width: channels of the last hidden block (the start grid has ``widest * width``), >= 1.
        name: model name.
        widest: multiplier of the start grid's channel count.
        kernel: transposed-convolution kernel size.

    Returns:
        A functional model ``[z float32 [N, z_dim], class_id int32 [N]] -> float32 [N, H, W, C]`` in [-1, 1];
        ``class_id`` is ignored.
    """
    h, w, c = check_image_shape(image_shape)
    start_h, start_w, n_up = plan_generator(h, w)
    n_up = max(n_up, 1)
    start_h, start_w = -(-h // 2**n_up), -(-w // 2**n_up)
    # Hidden channels: start grid then every block but the last, halving from widest * width.
    chans = [max(width, (widest * width) // 2**i) for i in range(n_up)]

    z = keras.Input(shape=(z_dim,), dtype="float32", name="z")
    class_id = keras.Input(shape=(), dtype="int32", name="class_id")  # unconditional: unused
    x = layers.Dense(start_h * start_w * chans[0], use_bias=False, kernel_initializer=dcgan_init(), name="project")(z)
    x = layers.Reshape((start_h, start_w, chans[0]), name="start_grid")(x)
    x = BatchNormalization(momentum=BN_MOMENTUM, gamma_initializer=dcgan_init(1.0), name="project_bn")(x)
    x = layers.ReLU(name="project_relu")(x)
    for i, ch in enumerate(chans[1:], start=1):
        x = layers.Conv2DTranspose(ch, kernel, strides=2, padding="same", use_bias=False,
                                   kernel_initializer=dcgan_init(), name=f"up{i}_convT")(x)
        x = BatchNormalization(momentum=BN_MOMENTUM, gamma_initializer=dcgan_init(1.0), name=f"up{i}_bn")(x)
        x = layers.ReLU(name=f"up{i}_relu")(x)
    x = layers.Conv2DTranspose(c, kernel, strides=2, padding="same", use_bias=False, kernel_initializer=dcgan_init(),
                               name="to_image")(x)
    extra_h, extra_w = start_h * 2**n_up - h, start_w * 2**n_up - w
    if extra_h or extra_w:
        x = layers.Cropping2D(((extra_h // 2, extra_h - extra_h // 2), (extra_w // 2, extra_w - extra_w // 2)),
                              name="center_crop")(x)
    images = layers.Activation("tanh", dtype="float32", name="tanh")(x)
    return keras.Model([z, class_id], images, name=name)


CONDITIONINGS = ("embedding", "onehot")

__all__ = ["CONDITIONINGS", "build_generator", "build_dcgan_generator"]
