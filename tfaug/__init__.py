"""tfaug: enrich small or imbalanced image datasets, measure whether it helped, serve the generators.

Importing tfaug is cheap: it only pins Keras to the TensorFlow backend and turns oneDNN kernels on (before
TensorFlow or Keras is imported anywhere; both are defaults an environment variable overrides) and exposes the public API lazily, so ``import tfaug`` does not load TensorFlow until a name is used.

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
# TensorFlow turns its oneDNN kernels on by default only on CPUs with AVX-512 VNNI/BF16 or AMX; on an AVX2-only CPU
# (this project's 2-core AMD EPYC) they made cDCGAN training 1.7x faster than TensorFlow's default kernels (260 vs
# 149 images/s, benchmarks/results/train_throughput.md and train_throughput_onednn_off.md). Set TF_ENABLE_ONEDNN_OPTS=0 to keep TensorFlow's choice. Only takes
# effect when tfaug is imported before TensorFlow (the CLI, the server and study workers always are).
_os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

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
