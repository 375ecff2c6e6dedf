"""Image classifiers, sized from the image shape: a small residual BN CNN (the few-shot control's network), a
small VGG-style CNN and LeNet-5 (also S1's "dynamic LeNet").

Both take float32 images in [-1, 1] and return logits (no softmax) so that losses use
``from_logits=True`` and exported models add their own softmax.
"""
from __future__ import annotations

import keras
from keras import layers

from tfaug.errors import TfaugError
from tfaug.models.networks.batchnorm import BatchNormalization
from tfaug.models.networks.common import MIN_GRID, channel_plan, check_image_shape, check_num_classes

CLASSIFIERS = ("res_cnn", "small_cnn", "lenet5")
# Keras' default 0.99 leaves the moving statistics ~8% short of the batch statistics after 250 steps, which
# wrecks inference-mode accuracy of short runs on MNIST-like data (large activation means, small variances).
BN_MOMENTUM = 0.9


def _stages(x) -> int:
    """One pooled stage per halving of the smaller side while it is > MIN_GRID, plus a final unpooled stage."""
    side = min(int(x.shape[1]), int(x.shape[2]))
    stages = 1
    while side > MIN_GRID:
        side = (side + 1) // 2
        stages += 1
    return stages


def _head(x, num_classes: int, dropout: float):
    """GAP, dropout, float32 dense logits."""
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    if dropout > 0:
        x = layers.Dropout(dropout, name="dropout")(x)
    return layers.Dense(num_classes, dtype="float32", name="logits")(x)


def _small_cnn(x, num_classes: int, width: int, dropout: float):
    """conv-BN-ReLU x2 per stage, max-pool while the smaller side is > 4, then GAP, dropout, dense."""
    stages = _stages(x)
    for i, ch in enumerate(channel_plan(width, stages, grow=True), start=1):
        for j in (1, 2):
            x = layers.Conv2D(ch, 3, padding="same", use_bias=False, name=f"s{i}_conv{j}")(x)
            x = BatchNormalization(momentum=BN_MOMENTUM, name=f"s{i}_bn{j}")(x)
            x = layers.ReLU(name=f"s{i}_relu{j}")(x)
        if i < stages:
            x = layers.MaxPooling2D(2, padding="same", name=f"s{i}_pool")(x)
    return _head(x, num_classes, dropout)


def _residual(x, channels: int, name: str):
    """Two 3x3 conv-BN layers with an identity (or 1x1 conv-BN projection) shortcut, then ReLU (He et al. 2016)."""
    shortcut = x
    for j in (1, 2):
        x = layers.Conv2D(channels, 3, padding="same", use_bias=False, name=f"{name}_conv{j}")(x)
        x = BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn{j}")(x)
        if j == 1:
            x = layers.ReLU(name=f"{name}_relu1")(x)
    if shortcut.shape[-1] != channels:
        shortcut = layers.Conv2D(channels, 1, use_bias=False, name=f"{name}_proj")(shortcut)
        shortcut = BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_proj_bn")(shortcut)
    x = layers.Add(name=f"{name}_add")([x, shortcut])
    return layers.ReLU(name=f"{name}_out")(x)


def _res_cnn(x, num_classes: int, width: int, dropout: float):
    """conv-BN-ReLU stem, then one residual block per resolution (max-pool between them while the smaller side
    is > 4; channels w, 2w, 4w, 4w ...), GAP, dropout, dense. 28x28 -> blocks at 28, 14, 7, 4."""
    stages = _stages(x)
    x = layers.Conv2D(width, 3, padding="same", use_bias=False, name="stem_conv")(x)
    x = BatchNormalization(momentum=BN_MOMENTUM, name="stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    for i, ch in enumerate(channel_plan(width, stages, grow=True), start=1):
        x = _residual(x, ch, f"s{i}")
        if i < stages:
            x = layers.MaxPooling2D(2, padding="same", name=f"s{i}_pool")(x)
    return _head(x, num_classes, dropout)


def _lenet5(x, num_classes: int, dropout: float, kernel: int, fc1: int, fc2: int):
    """LeCun et al. 1998 with 'same' padding; pools only while the smaller side is >= 4 so 8x8 works.

    ``kernel``/``fc1``/``fc2`` = 5/120/84 is LeNet-5; S1's dynamic LeNet tunes them.
    """
    for i, ch in enumerate((6, 16), start=1):
        x = layers.Conv2D(ch, kernel, padding="same", activation="relu", name=f"conv{i}")(x)
        if min(int(x.shape[1]), int(x.shape[2])) >= 4:
            x = layers.MaxPooling2D(2, name=f"pool{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(fc1, activation="relu", name="fc1")(x)
    x = layers.Dense(fc2, activation="relu", name="fc2")(x)
    if dropout > 0:
        x = layers.Dropout(dropout, name="dropout")(x)
    return layers.Dense(num_classes, dtype="float32", name="logits")(x)


@keras.saving.register_keras_serializable(package="tfaug")
class MeanProbabilityLogits(layers.Layer):
    """Ensemble head: a list of member logits [N, K] -> ``log(mean_i softmax(logits_i))`` float32 [N, K].

    Its softmax is the members' mean probability, so an ensemble is used like any single classifier
    (argmax, ``from_logits`` losses, exported with a softmax)."""

    def call(self, inputs):
        probs = [keras.ops.softmax(keras.ops.cast(x, "float32"), axis=-1) for x in inputs]
        mean = keras.ops.mean(keras.ops.stack(probs, axis=0), axis=0)
        return keras.ops.log(keras.ops.maximum(mean, 1e-12))

    def compute_output_shape(self, input_shape):
        return input_shape[0]


def ensemble_classifier(members: list) -> keras.Model:
    """One model averaging the probabilities of ``members`` (functional classifiers with the same input shape
    and class count); its output is logits (see :class:`MeanProbabilityLogits`)."""
    if not members:
        raise TfaugError("an ensemble needs at least one member")
    images = keras.Input(shape=tuple(members[0].inputs[0].shape[1:]), dtype="float32", name="images")
    logits = MeanProbabilityLogits(dtype="float32", name="logits")([m(images) for m in members])
    return keras.Model(images, logits, name=f"ensemble_{len(members)}")


def build_classifier(name: str, image_shape: tuple[int, int, int], num_classes: int, width: int = 32,
                     dropout: float = 0.3, *, kernel: int = 5, fc1: int = 120, fc2: int = 84,
                     model_name: str | None = None) -> keras.Model:
    """Build an image classifier.

    Args:
        name: one of ``CLASSIFIERS``: ``res_cnn`` (stem + one residual BN block per resolution, width doubling
            per stage up to ``4 * width``), ``small_cnn`` (conv-BN-ReLU x2 per stage, width doubling per stage up
            to ``4 * width``) or ``lenet5`` (``width`` is ignored).
        image_shape: ``(H, W, C)``; H, W in [8, 128]; any C >= 1 (e.g. C + 1 with a source-flag channel).
        num_classes: number of classes K (>= 1).
        width: base filters of ``small_cnn``.
        dropout: dropout before the last layer, in [0, 1); 0 disables.
        kernel: ``lenet5`` only: convolution kernel size, odd, >= 1 (S1's dynamic LeNet: 3, 5 or 7).
        fc1, fc2: ``lenet5`` only: hidden dense widths, >= 1 (LeNet-5: 120 and 84; S1: {128, 256, 512} and
            {64, 128, 256}). ``res_cnn`` and ``small_cnn`` ignore all three.
        model_name: the Keras model's name (default ``name``; ensemble members need distinct ones).

    Returns:
        A functional model: images float32 ``[N, H, W, C]`` in [-1, 1] -> logits float32 ``[N, K]``.

    Raises:
        TfaugError: unknown ``name`` (the message lists the known names) or bad shape/class count.
    """
    if name not in CLASSIFIERS:
        raise TfaugError(f"unknown classifier {name!r}; known classifiers: {', '.join(CLASSIFIERS)}")
    if not 0.0 <= dropout < 1.0:
        raise TfaugError(f"dropout must be in [0, 1), got {dropout!r}")
    if int(kernel) != kernel or kernel < 1 or kernel % 2 != 1:
        raise TfaugError(f"kernel must be an odd integer >= 1, got {kernel!r}")
    if int(fc1) != fc1 or int(fc2) != fc2 or fc1 < 1 or fc2 < 1:
        raise TfaugError(f"fc1 and fc2 must be integers >= 1, got {fc1!r} and {fc2!r}")
    shape = check_image_shape(image_shape)
    num_classes = check_num_classes(num_classes)
    images = keras.Input(shape=shape, dtype="float32", name="images")
    if name == "res_cnn":
        logits = _res_cnn(images, num_classes, width, dropout)
    elif name == "small_cnn":
        logits = _small_cnn(images, num_classes, width, dropout)
    else:
        logits = _lenet5(images, num_classes, dropout, int(kernel), int(fc1), int(fc2))
    return keras.Model(images, logits, name=model_name or name)


__all__ = ["CLASSIFIERS", "MeanProbabilityLogits", "build_classifier", "ensemble_classifier"]
