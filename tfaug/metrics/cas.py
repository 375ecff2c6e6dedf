"""Classification Accuracy Score (CAS): how useful generated images are as training data for a classifier.

Ravuri & Vinyals 2019, "Classification Accuracy Score for Conditional Generative Models": train a classifier
only on generated images (with the labels they were generated for) and report its accuracy on real test
images. A generator that captures each class well scores close to a classifier trained on the same number of
real images; a generator that ignores the class or produces garbage scores near chance (1 / K). When real
training images are given, the same classifier and optimisation budget is also trained on real images only
and on real + generated images, which is the comparison a data-enrichment study cares about.
"""
from __future__ import annotations

import numpy as np

from tfaug.config import ClassifierConfig
from tfaug.errors import TfaugError
from tfaug.training.classifier import train_classifier
from tfaug.utils.images import as_float_images


def classification_accuracy_score(
    gen_images,
    gen_labels,
    test_images,
    test_labels,
    *,
    num_classes: int,
    train_images=None,
    train_labels=None,
    steps: int = 300,
    batch_size: int = 32,
    seed: int = 0,
    classifier: str = "small_cnn",
    progress: bool = False,
    width: int = 32,
) -> dict:
    """Train on generated images, test on real ones (and optionally compare with real / real + generated).

    Args:
        gen_images: generated images [N, H, W, C], uint8 [0, 255] or float [-1, 1]; N >= 1.
        gen_labels: int [N] classes the images were generated for, in [0, num_classes).
        test_images, test_labels: real test images (same shape) and labels; never seen by the generator.
        num_classes: K >= 2.
        train_images, train_labels: optional real training images; when given, ``real_only`` and
            ``real_plus_generated`` are also measured with the same classifier, steps and seed.
        steps: optimisation steps per classifier (the same budget for every variant).
        batch_size: images per step.
        seed: classifier seed (weights, shuffling).
        classifier: network name understood by ``tfaug.training.classifier`` (``small_cnn``, ``lenet5``).
        progress: show progress bars.
        width: base filters of ``small_cnn``.

    Returns:
        dict with ``cas`` (accuracy in [0, 1]) and ``cas_macro_f1``; ``real_only``, ``real_only_macro_f1``,
        ``real_plus_generated``, ``real_plus_generated_macro_f1`` and ``n_train`` when real training images are
        given; ``n_generated``, ``n_test``, ``num_classes``, ``steps``, ``batch_size``, ``seed`` and
        ``classifier`` (the protocol).
    """
    if num_classes < 2:
        raise TfaugError(f"CAS needs at least 2 classes, got num_classes={num_classes}")
    x_gen, y_gen = _pair(gen_images, gen_labels, "generated", num_classes)
    x_test, y_test = _pair(test_images, test_labels, "test", num_classes)
    if x_gen.shape[1:] != x_test.shape[1:]:
        raise TfaugError(f"generated images {x_gen.shape[1:]} and test images {x_test.shape[1:]} differ in shape")
    if (train_images is None) != (train_labels is None):
        raise TfaugError("give both train_images and train_labels for the real-data comparison, or neither")
    if train_images is not None:
        x_real, y_real = _pair(train_images, train_labels, "real training", num_classes)
        if x_real.shape[1:] != x_gen.shape[1:]:
            raise TfaugError(f"real training images {x_real.shape[1:]} and generated images {x_gen.shape[1:]} "
                             "differ in shape")
    cfg = ClassifierConfig(name=classifier, steps=steps, batch_size=batch_size, seed=seed, width=width)
    out = {}
    gen_only = _score(x_gen, y_gen, x_test, y_test, num_classes, cfg, progress)
    out["cas"], out["cas_macro_f1"] = gen_only["accuracy"], gen_only["macro_f1"]
    if train_images is not None:
        real = _score(x_real, y_real, x_test, y_test, num_classes, cfg, progress)
        mixed = _score(np.concatenate([x_real, x_gen]), np.concatenate([y_real, y_gen]), x_test, y_test,
                       num_classes, cfg, progress)
        out.update(real_only=real["accuracy"], real_only_macro_f1=real["macro_f1"],
                   real_plus_generated=mixed["accuracy"], real_plus_generated_macro_f1=mixed["macro_f1"],
                   n_train=int(len(x_real)))
    out.update(n_generated=int(len(x_gen)), n_test=int(len(x_test)), num_classes=int(num_classes), steps=int(steps),
               batch_size=int(batch_size), seed=int(seed), classifier=str(classifier))
    return out


def _pair(images, labels, what: str, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Validate one (images, labels) set; images -> float32 [-1, 1], labels -> int32."""
    x = np.asarray(images)
    y = np.asarray(labels).reshape(-1)
    if x.ndim != 4 or len(x) == 0:
        raise TfaugError(f"{what} images must be a non-empty array [N, H, W, C], got shape {x.shape}")
    if len(x) != len(y):
        raise TfaugError(f"{len(x)} {what} images but {len(y)} labels; give one label per image")
    if y.min() < 0 or y.max() >= num_classes:
        raise TfaugError(f"{what} labels must be class ids in [0, {num_classes})")
    return as_float_images(x), y.astype(np.int32)


def _score(x_train, y_train, x_test, y_test, num_classes: int, cfg: ClassifierConfig, progress: bool) -> dict:
    result = train_classifier(x_train, y_train, num_classes=num_classes, cfg=cfg, x_test=x_test, y_test=y_test,
                              progress=progress)
    return result.metrics
