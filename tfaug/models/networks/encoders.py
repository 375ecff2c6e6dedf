"""Encoders, decoders, critics and auxiliary-classifier discriminators, sized from the image shape.

All downsampling networks share one convolutional trunk (:func:`conv_trunk`): a 3x3 stem at full resolution,
then ``num_resamplings(H, W)`` strided 4x4 convolutions with LeakyReLU 0.2 down to a 4-8 px grid, channels
``width .. 4 * width`` (the discriminator's plan), flattened into a dense feature vector of ``4 * width``.
No BatchNorm anywhere: each output depends only on its own example (required by the WGAN-GP gradient
penalty, Gulrajani et al. 2017 sec. 4, and by ``encode`` being batch-independent).

* :func:`build_encoder` — ``images (, class_id) -> [mean, log_var]`` (VAE/CVAE, Kingma & Welling 2014;
  Sohn et al. 2015) or ``-> features`` (for models that put their own heads on top, e.g. BAGAN, CVAE-GAN).
* :func:`build_decoder` — ``[z, class_id] -> images in [-1, 1]``: the generator's upsampling plan
  (``plan_generator``: start grid, 2x transposed convolutions, center crop, tanh) without BatchNorm; the class
  is an embedding concatenated to ``z`` when ``num_classes`` is given and ignored otherwise.
* :func:`build_critic` — WGAN-GP critic ``[images, class_id] -> score [N, 1]`` with layer norm or no norm,
  conditioned by projection (Miyato & Koyama 2018) or by one-hot class maps concatenated to the image.
* :func:`build_acgan_discriminator` — ``images -> [logit [N, 1], class_logits [N, K]]`` (Odena et al. 2017).
"""
from __future__ import annotations

import keras
from keras import layers

from tfaug.errors import TfaugError
from tfaug.models.networks.common import (channel_plan, check_image_shape, check_num_classes, dcgan_init,
                                          num_resamplings, plan_generator)

NORMS = ("layer", "none")
CONDITIONINGS = ("projection", "concat")
ENCODER_OUTPUTS = ("gaussian", "features")


def _check_choice(what: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise TfaugError(f"unknown {what} {value!r}; choose one of: {', '.join(choices)}")
    return value


def conv_trunk(x, width: int, *, norm: str = "none", dropout: float = 0.0, prefix: str = ""):
    """Downsampling trunk shared by every network here.

    Args:
        x: image tensor ``[N, H, W, C]`` (a KerasTensor), H and W >= 8.
        width: base channel count (>= 1); the coarsest block has ``4 * width`` channels.
        norm: ``none`` or ``layer`` (LayerNormalization over H, W and C of each example, after each strided conv).
        dropout: dropout rate after each strided block, in [0, 1).
        prefix: layer-name prefix.

    Returns:
        Feature tensor ``[N, 4 * width]`` (after Dense + LeakyReLU 0.2).
    """
    _check_choice("norm", norm, NORMS)
    if not 0.0 <= dropout < 1.0:
        raise TfaugError(f"dropout must be in [0, 1), got {dropout!r}")
    n_down = num_resamplings(int(x.shape[1]), int(x.shape[2]))
    chans = channel_plan(width, n_down + 1)[::-1]  # narrow at full resolution, 4 * width at the coarsest grid
    x = layers.Conv2D(chans[0], 3, padding="same", kernel_initializer=dcgan_init(), name=f"{prefix}stem_conv")(x)
    x = layers.LeakyReLU(0.2, name=f"{prefix}stem_lrelu")(x)
    for i, ch in enumerate(chans[1:], start=1):
        x = layers.Conv2D(ch, 4, strides=2, padding="same", kernel_initializer=dcgan_init(),
                          name=f"{prefix}down{i}_conv")(x)
        if norm == "layer":
            x = layers.LayerNormalization(axis=[1, 2, 3], name=f"{prefix}down{i}_ln")(x)
        x = layers.LeakyReLU(0.2, name=f"{prefix}down{i}_lrelu")(x)
        if dropout > 0:
            x = layers.Dropout(dropout, name=f"{prefix}down{i}_dropout")(x)
    x = layers.Flatten(name=f"{prefix}flatten")(x)
    x = layers.Dense(4 * width, kernel_initializer=dcgan_init(), name=f"{prefix}features")(x)
    return layers.LeakyReLU(0.2, name=f"{prefix}features_lrelu")(x)


def build_encoder(image_shape: tuple[int, int, int], latent_dim: int, *, num_classes: int | None = None,
                  width: int = 32, name: str = "encoder", outputs: str = "gaussian") -> keras.Model:
    """Build a (conditional) convolutional encoder.

    Args:
        image_shape: ``(H, W, C)``; H, W in [8, 128], any C >= 1.
        latent_dim: size of the latent (``gaussian``); ignored for ``features``.
        num_classes: when given (>= 1), the model takes a second input ``class_id`` int32 ``[N]`` whose learned
            embedding is concatenated to the image features (q(z | x, y) of a CVAE); None: images only.
        width: base channel count; features have ``4 * width`` values.
        name: model name.
        outputs: ``gaussian`` -> ``[mean [N, latent_dim], log_var [N, latent_dim]]`` (log_var starts near 0,
            i.e. unit variance); ``features`` -> one tensor ``[N, 4 * width]``.

    Returns:
        A functional model; inputs ``images float32 [N, H, W, C] in [-1, 1]`` (and ``class_id``).
    """
    h, w, c = check_image_shape(image_shape)
    _check_choice("encoder outputs", outputs, ENCODER_OUTPUTS)
    if outputs == "gaussian" and int(latent_dim) < 1:
        raise TfaugError(f"latent_dim must be >= 1, got {latent_dim!r}")
    images = keras.Input(shape=(h, w, c), dtype="float32", name="images")
    inputs = [images]
    feats = conv_trunk(images, width)
    if num_classes is not None:
        class_id = keras.Input(shape=(), dtype="int32", name="class_id")
        inputs.append(class_id)
        emb = layers.Embedding(check_num_classes(num_classes), 4 * width, name="class_embedding")(class_id)
        feats = layers.Concatenate(name="features_and_class")([feats, emb])
    if outputs == "features":
        return keras.Model(inputs if len(inputs) > 1 else images, feats, name=name)
    mean = layers.Dense(int(latent_dim), dtype="float32", name="mean")(feats)
    # Small kernel, zero bias: the posterior starts at unit variance instead of a random one.
    log_var = layers.Dense(int(latent_dim), kernel_initializer=dcgan_init(), dtype="float32", name="log_var")(feats)
    return keras.Model(inputs if len(inputs) > 1 else images, [mean, log_var], name=name)


def build_decoder(image_shape: tuple[int, int, int], latent_dim: int, *, num_classes: int | None = None,
                  width: int = 32, name: str = "decoder", embed_dim: int = 32) -> keras.Model:
    """Build a decoder ``[z, class_id] -> images`` (the generator's upsampling plan, no BatchNorm).

    Args:
        image_shape: ``(H, W, C)`` of the decoded images; H, W in [8, 128], any C >= 1.
        latent_dim: size of ``z``.
        num_classes: None: ``class_id`` is accepted and ignored (VAE); else (>= 1) its embedding of ``embed_dim``
            values is concatenated to ``z`` (CVAE decoder p(x | z, y)).
        width: base channel count; the start grid has ``4 * width`` channels.
        name: model name.
        embed_dim: size of the class embedding.

    Returns:
        A functional model with inputs ``[z float32 [N, latent_dim], class_id int32 [N]]`` and output float32
        ``[N, H, W, C]`` in [-1, 1]; each image depends only on its own row.
    """
    h, w, c = check_image_shape(image_shape)
    if int(latent_dim) < 1:
        raise TfaugError(f"latent_dim must be >= 1, got {latent_dim!r}")
    start_h, start_w, n_up = plan_generator(h, w)
    chans = channel_plan(width, n_up + 1)
    z = keras.Input(shape=(int(latent_dim),), dtype="float32", name="z")
    class_id = keras.Input(shape=(), dtype="int32", name="class_id")
    x = z
    if num_classes is not None:
        emb = layers.Embedding(check_num_classes(num_classes), embed_dim,
                               embeddings_initializer=keras.initializers.RandomNormal(0.0, 1.0),
                               name="class_embedding")(class_id)
        x = layers.Concatenate(name="z_and_class")([z, emb])
    x = layers.Dense(start_h * start_w * chans[0], name="project")(x)
    x = layers.Reshape((start_h, start_w, chans[0]), name="start_grid")(x)
    x = layers.LeakyReLU(0.2, name="project_lrelu")(x)
    for i, ch in enumerate(chans[1:], start=1):
        x = layers.Conv2DTranspose(ch, 4, strides=2, padding="same", name=f"up{i}_convT")(x)
        x = layers.LeakyReLU(0.2, name=f"up{i}_lrelu")(x)
    x = layers.Conv2D(c, 3, padding="same", name="to_image")(x)
    extra_h, extra_w = start_h * 2**n_up - h, start_w * 2**n_up - w
    if extra_h or extra_w:
        x = layers.Cropping2D(((extra_h // 2, extra_h - extra_h // 2), (extra_w // 2, extra_w - extra_w // 2)),
                              name="center_crop")(x)
    images = layers.Activation("tanh", dtype="float32", name="tanh")(x)
    return keras.Model([z, class_id], images, name=name)


def build_critic(image_shape: tuple[int, int, int], num_classes: int, *, width: int = 32, norm: str = "layer",
                 conditioning: str = "projection", name: str = "critic") -> keras.Model:
    """Build a conditional WGAN critic (no BatchNorm, so the gradient penalty is per example).

    Args:
        image_shape: ``(H, W, C)``; H, W in [8, 128], any C >= 1.
        num_classes: number of classes (>= 1).
        width: base channel count.
        norm: ``layer`` (layer normalisation, as Gulrajani et al. 2017 recommend) or ``none``.
        conditioning: ``projection`` (score = w.h + b + embed(y).h) or ``concat`` (one-hot class maps
            concatenated to the image channels, as S4's conditional DCGAN; adds K input channels, so projection
            is the cheaper choice for many classes).
        name: model name.

    Returns:
        Functional model ``[images float32 [N, H, W, C] in [-1, 1], class_id int32 [N]] -> score float32 [N, 1]``
        (unbounded; higher = more real).
    """
    h, w, c = check_image_shape(image_shape)
    num_classes = check_num_classes(num_classes)
    _check_choice("conditioning", conditioning, CONDITIONINGS)
    images = keras.Input(shape=(h, w, c), dtype="float32", name="images")
    class_id = keras.Input(shape=(), dtype="int32", name="class_id")
    x = images
    if conditioning == "concat":
        # A fixed one-hot "embedding" broadcast over the image: class maps as extra input channels.
        onehot = layers.Embedding(num_classes, num_classes, embeddings_initializer="identity", trainable=False,
                                  name="class_onehot")(class_id)
        maps = layers.Reshape((1, 1, num_classes), name="class_maps")(onehot)
        maps = layers.UpSampling2D((h, w), name="tile_class_maps")(maps)
        x = layers.Concatenate(name="image_and_class")([images, maps])
    feats = conv_trunk(x, width, norm=norm)
    score = layers.Dense(1, kernel_initializer=dcgan_init(), name="score")(feats)
    if conditioning == "projection":
        class_vec = layers.Embedding(num_classes, 4 * width, embeddings_initializer=dcgan_init(),
                                     name="class_projection")(class_id)
        score = layers.Add(name="score_plus_projection")([score, layers.Dot(axes=1, name="projection")([class_vec,
                                                                                                        feats])])
    score = layers.Activation("linear", dtype="float32", name="scores")(score)
    return keras.Model([images, class_id], score, name=name)


def build_acgan_discriminator(image_shape: tuple[int, int, int], num_classes: int, *, width: int = 32,
                              dropout: float = 0.0, name: str = "discriminator") -> keras.Model:
    """Build an auxiliary-classifier discriminator (Odena et al. 2017, "Conditional Image Synthesis with
    Auxiliary Classifier GANs"): one trunk, a real/fake head and a K-way class head.

    Args:
        image_shape: ``(H, W, C)``; H, W in [8, 128], any C >= 1.
        num_classes: K >= 1 (with K = 1 the class head is a constant softmax and its loss is 0).
        width: base channel count.
        dropout: dropout after each strided block, in [0, 1) (the paper uses 0.5).
        name: model name.

    Returns:
        Functional model ``images float32 [N, H, W, C] in [-1, 1] -> [logit float32 [N, 1],
        class_logits float32 [N, K]]``.
    """
    h, w, c = check_image_shape(image_shape)
    num_classes = check_num_classes(num_classes)
    images = keras.Input(shape=(h, w, c), dtype="float32", name="images")
    feats = conv_trunk(images, width, dropout=dropout)
    logit = layers.Dense(1, kernel_initializer=dcgan_init(), dtype="float32", name="logit")(feats)
    class_logits = layers.Dense(num_classes, dtype="float32", name="class_logits")(feats)
    return keras.Model(images, [logit, class_logits], name=name)


__all__ = ["CONDITIONINGS", "ENCODER_OUTPUTS", "NORMS", "build_acgan_discriminator", "build_critic",
           "build_decoder", "build_encoder", "conv_trunk"]
