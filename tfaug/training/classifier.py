"""Train a classifier on a data mix (real, duplicated, generated) and score it on real test data.

Training is step-based (``ClassifierConfig.steps``) rather than epoch-based, so that a strategy that adds
duplicates or generated images gets the same optimisation budget as the baseline and differences come from the
data, not from more gradient steps. Classic augmentation runs on the fly inside ``tf.data`` and never touches test
data.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfaug.config import ClassifierConfig
from tfaug.errors import TfaugError
from tfaug.metrics.classification import classification_metrics
from tfaug.utils.images import to_float


@dataclass
class ClassifierResult:
    """A trained classifier, its scores on the test set (``metrics``) and its loss history."""

    model: object
    metrics: dict
    history: dict


def as_float_images(images: np.ndarray) -> np.ndarray:
    """uint8 [0, 255] or float [-1, 1] images -> float32 [-1, 1]."""
    images = np.asarray(images)
    return to_float(images) if images.dtype == np.uint8 else images.astype(np.float32)


def train_classifier(
    x_train: np.ndarray,
    y_train: np.ndarray,
    *,
    num_classes: int,
    cfg: ClassifierConfig,
    x_test: np.ndarray | None = None,
    y_test: np.ndarray | None = None,
    augment: str | None = None,
    minority: int | None = None,
    progress: bool = False,
) -> ClassifierResult:
    """Train ``cfg.name`` on (x_train, y_train) and evaluate on (x_test, y_test).

    Args:
        x_train: [N, H, W, C] uint8 or float32 in [-1, 1]; N >= 1.
        y_train: int [N] class ids in [0, num_classes).
        num_classes: K >= 2.
        cfg: classifier configuration (network, steps, batch size, lr, seed).
        x_test, y_test: real held-out test data (never augmented); metrics are empty without it.
        augment: classic augmentation spec for training batches (``classic``, ``classic:PRESET`` ...) or None.
        minority: class id whose F1 is reported as ``minority_f1``.
        progress: show a progress bar over steps.
    """
    import keras

    from tfaug.augment.classic import build_augmenter
    from tfaug.data.pipeline import make_pipeline
    from tfaug.models.networks.classifiers import build_classifier

    x_train = as_float_images(x_train)
    y_train = np.asarray(y_train, np.int32)
    if len(x_train) == 0:
        raise TfaugError("no training images for the classifier")
    if y_train.min() < 0 or y_train.max() >= num_classes:
        raise TfaugError(f"training labels must be in [0, {num_classes})")
    keras.utils.set_random_seed(cfg.seed)
    model = build_classifier(cfg.name, x_train.shape[1:], num_classes, width=cfg.width, dropout=cfg.dropout)
    model.compile(
        optimizer=keras.optimizers.Adam(cfg.lr),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    augmenter = build_augmenter(augment, seed=cfg.seed) if augment else None
    batch = min(cfg.batch_size, len(x_train))
    ds = make_pipeline(x_train, y_train, batch, shuffle=True, seed=cfg.seed, augment=augmenter, repeat=True,
                       drop_remainder=True)
    callbacks = [_tqdm_callback(cfg.steps)] if progress else []
    fit = model.fit(ds, epochs=1, steps_per_epoch=cfg.steps, verbose=0, callbacks=callbacks, shuffle=False)
    metrics = {}
    if x_test is not None and y_test is not None and len(x_test):
        pred = predict_classes(model, x_test)
        metrics = classification_metrics(y_test, pred, num_classes, minority=minority)
    return ClassifierResult(model=model, metrics=metrics, history={k: [float(v) for v in vs] for k, vs in fit.history.items()})


def predict_classes(model, images: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """argmax class ids int64 [N] for uint8 or [-1, 1] float images."""
    # Direct calls instead of model.predict: predict builds a new tf.function per model, which floods the log
    # with retracing warnings when a study trains many classifiers.
    x = as_float_images(images)
    out = [np.argmax(np.asarray(model(x[i : i + batch_size], training=False)), axis=-1)
           for i in range(0, len(x), batch_size)]
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def save_classifier(model, path: str | os.PathLike) -> Path:
    """Save a classifier as a .keras file atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    model.save(str(tmp))
    os.replace(tmp, path)
    return path


def _tqdm_callback(total: int):
    """A Keras callback showing a tqdm bar over training batches (keras imported lazily)."""
    import keras
    from tqdm.auto import tqdm

    class TqdmSteps(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.bar = tqdm(total=total, desc="train-classifier", unit="step", dynamic_ncols=True)

        def on_train_batch_end(self, batch, logs=None):
            self.bar.update(1)
            if logs and "loss" in logs:
                self.bar.set_postfix(loss=f"{float(logs['loss']):.3f}")

        def on_train_end(self, logs=None):
            self.bar.close()

    return TqdmSteps()
