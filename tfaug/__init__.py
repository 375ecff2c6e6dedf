"""tfaug: enrich small or imbalanced image datasets, measure whether it helped, serve the generators.

Importing tfaug is cheap: it only pins Keras to the TensorFlow backend (before Keras is imported anywhere)
and exposes the public API lazily, so ``import tfaug`` does not load TensorFlow until a name is used.

Public API (see ``__all__``):
    load_dataset, Dataset          -- data sources from a spec string ("digits", "npz:PATH", "tfds:mnist", ...)
    per_class_subset, imbalance_subset, stratified_split
    make_pipeline                  -- tf.data pipeline (scale to [-1, 1], cache, shuffle, batch, prefetch)
    build_augmenter, bootstrap     -- classic augmentation presets, duplication
    ConditionalGAN, build_generator, build_discriminator, build_classifier
    train_gan, train_classifier    -- run-directory based training
    load_generator                 -- any generator (run dir or SavedModel) behind sample(class_ids, seeds)
    export_generator               -- SavedModel with the serving signatures
    TfaugError                     -- the one exception type users see for bad input
"""
import os as _os

_os.environ.setdefault("KERAS_BACKEND", "tensorflow")

__version__ = "0.1.0"

_LAZY = {
    "Dataset": "tfaug.data.sources",
    "load_dataset": "tfaug.data.sources",
    "per_class_subset": "tfaug.data.subsets",
    "imbalance_subset": "tfaug.data.subsets",
    "stratified_split": "tfaug.data.subsets",
    "make_pipeline": "tfaug.data.pipeline",
    "build_augmenter": "tfaug.augment.classic",
    "bootstrap": "tfaug.augment.bootstrap",
    "ConditionalGAN": "tfaug.models.cgan",
    "build_generator": "tfaug.models.networks.generators",
    "build_discriminator": "tfaug.models.networks.discriminators",
    "build_classifier": "tfaug.models.networks.classifiers",
    "train_gan": "tfaug.training.gan_runner",
    "train_classifier": "tfaug.training.classifier",
    "load_generator": "tfaug.synthesis.loader",
    "export_generator": "tfaug.export.savedmodel",
    "TfaugError": "tfaug.errors",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name):
    """Import public names on first use (PEP 562) so that ``import tfaug`` stays fast."""
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tfaug' has no attribute {name!r}")
