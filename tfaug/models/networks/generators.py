"""Conditional DCGAN generator, sized from the image shape.

``[z, class_id] -> image``: a class embedding is concatenated to ``z`` (as in the conditional GAN of
Mirza & Osindero 2014 and S4's conditional DCGAN), projected by a Dense layer onto a small start grid
(4-8 px a side), then doubled by ``Conv2DTranspose`` blocks with BatchNorm + ReLU (Radford et al. 2016)
until it covers the image, and finished by a 3x3 convolution, a center crop to exactly ``H x W`` and tanh.
"""
from __future__ import annotations

import keras
from keras import layers

from tfaug.models.networks.common import (channel_plan, check_image_shape, check_num_classes, dcgan_init,
                                          plan_generator)

# Faster than Keras' 0.99 so that the moving statistics used for sampling (training=False) follow a generator
# that changes every step; short runs (a few hundred steps) would otherwise sample with stale statistics.
BN_MOMENTUM = 0.9


def build_generator(image_shape: tuple[int, int, int], num_classes: int, z_dim: int = 64, width: int = 32,
                    name: str = "generator", *, embed_dim: int = 32) -> keras.Model:
    """Build a conditional DCGAN generator.

    Args:
        image_shape: ``(H, W, C)`` of the images to generate; H, W in [8, 128] (square or not), C in {1, 3}.
        num_classes: number of classes (>= 1).
        z_dim: latent size; latents are standard normal.
        width: base channel count; the start grid has ``4 * width`` channels, halving per upsampling block
            down to ``width``.
        name: model name.
        embed_dim: size of the learned class embedding concatenated to ``z``.

    Returns:
        A functional model with inputs ``[z float32 [N, z_dim], class_id int32 [N]]`` and output
        float32 ``[N, H, W, C]`` in [-1, 1].
    """
    h, w, c = check_image_shape(image_shape)
    num_classes = check_num_classes(num_classes)
    start_h, start_w, n_up = plan_generator(h, w)
    chans = channel_plan(width, n_up + 1)  # [start grid, block 1, ..., block n_up]

    z = keras.Input(shape=(z_dim,), dtype="float32", name="z")
    class_id = keras.Input(shape=(), dtype="int32", name="class_id")
    # N(0, 1) embedding so that the class code starts on the same scale as z.
    emb = layers.Embedding(num_classes, embed_dim, embeddings_initializer=keras.initializers.RandomNormal(0.0, 1.0),
                           name="class_embedding")(class_id)
    x = layers.Concatenate(name="z_and_class")([z, emb])
    x = layers.Dense(start_h * start_w * chans[0], use_bias=False, kernel_initializer=dcgan_init(), name="project")(x)
    x = layers.Reshape((start_h, start_w, chans[0]), name="start_grid")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, gamma_initializer=dcgan_init(1.0), name="project_bn")(x)
    x = layers.ReLU(name="project_relu")(x)
    for i, ch in enumerate(chans[1:], start=1):
        # Bias is redundant before BatchNorm.
        x = layers.Conv2DTranspose(ch, 4, strides=2, padding="same", use_bias=False, kernel_initializer=dcgan_init(),
                                   name=f"up{i}_convT")(x)
        x = layers.BatchNormalization(momentum=BN_MOMENTUM, gamma_initializer=dcgan_init(1.0),
                                      name=f"up{i}_bn")(x)
        x = layers.ReLU(name=f"up{i}_relu")(x)
    x = layers.Conv2D(c, 3, padding="same", kernel_initializer=dcgan_init(), name="to_image")(x)
    extra_h, extra_w = start_h * 2**n_up - h, start_w * 2**n_up - w
    if extra_h or extra_w:
        x = layers.Cropping2D(((extra_h // 2, extra_h - extra_h // 2), (extra_w // 2, extra_w - extra_w // 2)),
                              name="center_crop")(x)
    # float32 output even under a mixed-precision policy.
    images = layers.Activation("tanh", dtype="float32", name="tanh")(x)
    return keras.Model([z, class_id], images, name=name)


__all__ = ["build_generator"]
