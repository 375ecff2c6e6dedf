"""Projection discriminator for conditional GANs, sized from the image shape.

``[image, class_id] -> logit``: strided convolutions with LeakyReLU 0.2 (Radford et al. 2016) and no
BatchNorm (batch statistics of tiny batches from tiny datasets are noise, and BN couples the real and fake
examples of a batch), global average pooling to a feature vector ``h``, and the projection head of
Miyato & Koyama 2018, "cGANs with Projection Discriminator": ``logit = w . h + b + embed(class) . h``.
"""
from __future__ import annotations

import keras
from keras import layers

from tfaug.models.networks.common import (channel_plan, check_image_shape, check_num_classes, dcgan_init,
                                          num_resamplings)


def build_discriminator(image_shape: tuple[int, int, int], num_classes: int, width: int = 32,
                        name: str = "discriminator", *, dropout: float = 0.0) -> keras.Model:
    """Build a conditional (projection) discriminator.

    Args:
        image_shape: ``(H, W, C)``; H, W in [8, 128] (square or not), C in {1, 3}.
        num_classes: number of classes (>= 1).
        width: base channel count; the last (coarsest) block has ``4 * width`` channels, halving towards the
            full-resolution stem down to ``width`` (the generator's plan in reverse).
        name: model name.
        dropout: dropout rate after each downsampling block, in [0, 1); 0 disables.

    Returns:
        A functional model with inputs ``[images float32 [N, H, W, C] in [-1, 1], class_id int32 [N]]`` and
        output logits float32 ``[N, 1]`` (real > 0).
    """
    h, w, c = check_image_shape(image_shape)
    num_classes = check_num_classes(num_classes)
    n_down = num_resamplings(h, w)
    # Mirror of the generator: narrow at full resolution (cheap on CPU), 4 * width at the coarsest grid.
    chans = channel_plan(width, n_down + 1)[::-1]  # [full-resolution conv, down 1, ..., down n]

    images = keras.Input(shape=(h, w, c), dtype="float32", name="images")
    class_id = keras.Input(shape=(), dtype="int32", name="class_id")
    x = layers.Conv2D(chans[0], 3, padding="same", kernel_initializer=dcgan_init(), name="stem_conv")(images)
    x = layers.LeakyReLU(0.2, name="stem_lrelu")(x)
    for i, ch in enumerate(chans[1:], start=1):
        x = layers.Conv2D(ch, 4, strides=2, padding="same", kernel_initializer=dcgan_init(), name=f"down{i}_conv")(x)
        x = layers.LeakyReLU(0.2, name=f"down{i}_lrelu")(x)
        if dropout > 0:
            x = layers.Dropout(dropout, name=f"down{i}_dropout")(x)
    import os
    head = os.environ.get("D_HEAD", "pool")
    if head == "pool":
        feats = layers.GlobalAveragePooling2D(name="pool")(x)
    elif head == "sum":
        feats = layers.GlobalAveragePooling2D(name="pool")(x)
        feats = layers.Rescaling(float(x.shape[1] * x.shape[2]))(feats)
    elif head == "flatten":
        feats = layers.Flatten(name="flatten")(x)
    else:
        feats = layers.Flatten(name="flatten")(x)
        feats = layers.Dense(chans[-1], kernel_initializer=dcgan_init(), name="features")(feats)
        feats = layers.LeakyReLU(0.2, name="features_lrelu")(feats)
    unconditional = layers.Dense(1, kernel_initializer=dcgan_init(), name="logit")(feats)
    class_vec = layers.Embedding(num_classes, feats.shape[-1], embeddings_initializer=dcgan_init(), name="class_projection")(class_id)
    # Projection term: inner product of the class embedding with the image features (one value per example).
    projection = layers.Dot(axes=1, name="projection")([class_vec, feats])
    logits = layers.Add(dtype="float32", name="logits")([unconditional, projection])
    return keras.Model([images, class_id], logits, name=name)


__all__ = ["build_discriminator"]
