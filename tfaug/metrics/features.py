"""Feature extractors for the quality metrics: a cached domain classifier, or InceptionV3 from local weights.

Metric maths (FID, KID, PRDC, ...) never touches a network: it takes the arrays a :class:`FeatureExtractor`
returns. Two extractors exist:

* :func:`domain_extractor` (default): a classifier trained on the dataset's real images (as study S4 did with
  LeNet), its penultimate layer as features and its softmax as class probabilities. Training happens once; the
  network is cached under ``$TFAUG_CACHE`` (default ``~/.cache/tfaug``) ``/features/<key>``, where the key
  hashes the dataset spec, the split description, the images themselves, the classifier config and the tfaug
  version, and is published atomically.
* :func:`inception_extractor`: Keras' InceptionV3 with weights from a local file (2048-d pool features,
  1000-way softmax, 299x299 input, grayscale replicated to three channels). tfaug never downloads weights.

Images are float32 NHWC in [-1, 1]. When their size differs from the extractor's input, they are resized
bilinearly; :meth:`FeatureExtractor.protocol` records that, so every reported number says how it was measured.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np

from tfaug.config import ClassifierConfig
from tfaug.errors import TfaugError

__all__ = ["FeatureExtractor", "DEFAULT_DOMAIN_CONFIG", "cache_root", "domain_extractor", "domain_cache_key",
           "inception_extractor", "INCEPTION_WEIGHTS_HELP"]

# LeNet-5 as in S4: 84-d penultimate features keep FID's covariance estimable from a few hundred images.
DEFAULT_DOMAIN_CONFIG = ClassifierConfig(name="lenet5", steps=1500, batch_size=64, lr=1e-3, dropout=0.0, seed=0)
MODEL_FILE = "classifier.keras"
INFO_FILE = "extractor.json"
INCEPTION_SIZE = 299
INCEPTION_WEIGHTS_HELP = (
    "save ImageNet weights once on a machine with internet, e.g. `python -c \"import keras; "
    "keras.applications.InceptionV3(weights='imagenet').save_weights('inception_v3.weights.h5')\"`, "
    "then pass --extractor inception:PATH (tfaug never downloads weights at run time)"
)


class FeatureExtractor:
    """A network mapping images to (features [N, D], class probabilities [N, K]), batched with bounded memory.

    Args:
        name: ``domain`` or ``inception``.
        model: a Keras model ``images float32 [N, h, w, c] in [-1, 1] -> [features [N, D], probabilities [N, K]]``.
        info: protocol facts (weights source, cache key, training summary ...).
        batch_size: images per forward pass.
    """

    def __init__(self, name: str, model, info: dict | None = None, batch_size: int = 256):
        self.name = name
        self.model = model
        self.image_shape = tuple(int(d) for d in model.inputs[0].shape[1:])
        self.feature_dim = int(model.outputs[0].shape[-1])
        self.num_classes = int(model.outputs[1].shape[-1])
        self.info = dict(info or {})
        self.batch_size = int(batch_size)
        self._resized_from: set[tuple[int, int, int]] = set()

    def _prepare(self, images: np.ndarray):
        """float [-1, 1] [n, H, W, C] -> the extractor's input (bilinear resize, gray -> RGB)."""
        import tensorflow as tf

        x = tf.convert_to_tensor(np.asarray(images, np.float32))
        h, w, c = self.image_shape
        if x.shape[-1] != c:
            if x.shape[-1] == 1 and c == 3:
                x = tf.repeat(x, 3, axis=-1)  # grayscale replicated, as Inception expects RGB
            else:
                raise TfaugError(f"the {self.name} extractor takes {c}-channel images, got {x.shape[-1]} channels")
        if tuple(x.shape[1:3]) != (h, w):
            self._resized_from.add(tuple(int(d) for d in images.shape[1:]))
            x = tf.image.resize(x, (h, w), method="bilinear")
        return x

    def extract(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(features float32 [N, D], probabilities float32 [N, K]) of images float32 [N, H, W, C] in [-1, 1]."""
        images = np.asarray(images)
        if images.ndim != 4:
            raise TfaugError(f"expected images [N, H, W, C], got shape {images.shape}")
        if images.dtype == np.uint8:
            images = images.astype(np.float32) / 127.5 - 1.0
        feats = np.zeros((len(images), self.feature_dim), np.float32)
        probs = np.zeros((len(images), self.num_classes), np.float32)
        for start in range(0, len(images), self.batch_size):
            f, p = self._fn(self._prepare(images[start : start + self.batch_size]))
            feats[start : start + len(f)] = np.asarray(f)
            probs[start : start + len(p)] = np.asarray(p)
        return feats, probs

    @property
    def _fn(self):
        if not hasattr(self, "_compiled"):
            import tensorflow as tf

            self._compiled = tf.function(lambda x: self.model(x, training=False), reduce_retracing=True)
        return self._compiled

    def features(self, images: np.ndarray) -> np.ndarray:
        """float32 [N, D] features of images float32 [N, H, W, C] in [-1, 1]."""
        return self.extract(images)[0]

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """float32 [N, K] class probabilities (rows sum to 1) of images float32 [N, H, W, C] in [-1, 1]."""
        return self.extract(images)[1]

    def protocol(self) -> dict:
        """How features were measured: name, input shape, resize rule, feature size, weights source, cache key."""
        h, w, c = self.image_shape
        resized = sorted(self._resized_from)
        return {
            "name": self.name,
            "input_shape": [h, w, c],
            "feature_dim": self.feature_dim,
            "num_classes": self.num_classes,
            "resize": (f"bilinear from {', '.join('x'.join(map(str, s)) for s in resized)} to {h}x{w}" if resized
                       else f"none (images are {h}x{w})"),
            **self.info,
        }

    def __repr__(self) -> str:
        return f"FeatureExtractor({self.name!r}, input={self.image_shape}, D={self.feature_dim}, K={self.num_classes})"


def _two_headed(model, feature_layer: str, softmax: bool):
    """keras.Model: the classifier's inputs -> [``feature_layer`` output (or the logits' input), probabilities]."""
    import keras

    if feature_layer == "logits_input":
        feats = model.get_layer("logits").input
    else:
        feats = model.get_layer(feature_layer).output
    out = model.outputs[0]
    probs = keras.layers.Softmax(name="probabilities")(out) if softmax else out
    return keras.Model(model.inputs, [feats, probs], name=f"{model.name}_features")


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """``cache_dir``, else ``$TFAUG_CACHE``, else ``~/.cache/tfaug``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    return Path(os.environ.get("TFAUG_CACHE") or Path.home() / ".cache" / "tfaug").expanduser()


def _digest(array: np.ndarray) -> str:
    a = np.ascontiguousarray(array)
    return hashlib.sha256(str((a.dtype.str, a.shape)).encode() + a.tobytes()).hexdigest()


def domain_cache_key(dataset_spec: str, images: np.ndarray, labels: np.ndarray, config: ClassifierConfig,
                     split_desc) -> str:
    """A 20-hex-digit key over (dataset spec, split description, image + label content, config, tfaug version)."""
    from tfaug import __version__

    payload = json.dumps({"spec": dataset_spec, "split": split_desc, "images": _digest(images),
                          "labels": _digest(np.asarray(labels, np.int64)), "config": dataclasses.asdict(config),
                          "version": __version__}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def domain_extractor(
    dataset_spec: str,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    num_classes: int | None = None,
    cache_dir: str | os.PathLike | None = None,
    config: ClassifierConfig | None = None,
    split_desc="all images",
    progress: bool = True,
) -> FeatureExtractor:
    """The dataset's own classifier as feature extractor, trained once and cached.

    Args:
        dataset_spec: the dataset spec string (part of the cache key).
        images: uint8 [N, H, W, C] or float32 in [-1, 1] real training images for the extractor.
        labels: int [N] class ids in [0, num_classes).
        num_classes: K (default ``labels.max() + 1``).
        cache_dir: cache root (default ``$TFAUG_CACHE`` or ``~/.cache/tfaug``); the network lives in
            ``<root>/features/<key>``.
        config: classifier config (default :data:`DEFAULT_DOMAIN_CONFIG`, LeNet-5).
        split_desc: JSON-able description of which images were used (e.g. ``{"indices": [...]}``).
        progress: show a progress bar while training.

    Returns:
        A :class:`FeatureExtractor` with penultimate-layer features and softmax probabilities.
    """
    import keras

    from tfaug.training.classifier import train_classifier
    from tfaug.utils.images import as_float_images

    config = config or DEFAULT_DOMAIN_CONFIG
    labels = np.asarray(labels, np.int32)
    if len(images) != len(labels) or len(labels) == 0:
        raise TfaugError(f"the domain extractor needs images and labels of one non-zero length, got {len(images)} "
                         f"and {len(labels)}")
    num_classes = int(num_classes or labels.max() + 1)
    key = domain_cache_key(dataset_spec, images, labels, config, split_desc)
    where = cache_root(cache_dir) / "features" / key
    if not (where / MODEL_FILE).is_file():
        start = time.perf_counter()
        # the bar says what runs and why it runs only once
        desc = f"training the feature extractor once; cached at {where}"
        res = train_classifier(as_float_images(images), labels, num_classes=num_classes, cfg=config,
                               progress=desc if progress else False)
        info = {"dataset": dataset_spec, "split": split_desc if isinstance(split_desc, str) else "see key",
                "n_train": int(len(labels)), "classifier": dataclasses.asdict(config),
                "final_loss": (res.history.get("loss") or [float("nan")])[-1],
                "train_seconds": round(time.perf_counter() - start, 2)}
        try:
            with _atomic_dir(where) as tmp:
                res.model.save(str(tmp / MODEL_FILE))
                (tmp / INFO_FILE).write_text(json.dumps(info, indent=2, sort_keys=True), encoding="utf-8")
        except FileExistsError:  # another process published the same key first: use theirs
            pass
    try:
        model = keras.models.load_model(where / MODEL_FILE, compile=False)
        info = json.loads((where / INFO_FILE).read_text(encoding="utf-8"))
    except Exception as exc:  # a corrupt cache entry must not be fatal forever: say how to clear it
        raise TfaugError(f"the cached feature extractor {where} is unreadable ({type(exc).__name__}); delete it and rerun") from None
    info = {"weights": f"trained on {info.get('n_train')} real images of {dataset_spec}",
            "classifier": info.get("classifier", {}).get("name"), "cache_key": key, "cache_dir": str(where),
            "features_from": "penultimate layer"}
    return FeatureExtractor("domain", _two_headed(model, "logits_input", softmax=True), info)


def _atomic_dir(final: Path):
    from tfaug.utils.io import atomic_directory

    return atomic_directory(final, overwrite=False)


def inception_extractor(weights_path: str | os.PathLike | None, batch_size: int = 32) -> FeatureExtractor:
    """InceptionV3 (include_top) with weights from a local ``.weights.h5`` file; never downloads.

    Features are the 2048-d global average pool, probabilities the 1000-way softmax. Inputs are resized
    bilinearly to 299x299 and grayscale is replicated to RGB; [-1, 1] is already Inception's input range.

    Raises:
        TfaugError: no path, a missing file, or a file that does not hold InceptionV3 weights.
    """
    if not weights_path:
        raise TfaugError(f"the inception extractor needs a local weights file: {INCEPTION_WEIGHTS_HELP}")
    path = Path(weights_path).expanduser()
    if not path.is_file():
        raise TfaugError(f"InceptionV3 weights file {path} not found: {INCEPTION_WEIGHTS_HELP}")
    import keras

    model = keras.applications.InceptionV3(include_top=True, weights=None,
                                           input_shape=(INCEPTION_SIZE, INCEPTION_SIZE, 3))
    try:
        model.load_weights(str(path))
    except Exception as exc:  # wrong format or another network's weights
        raise TfaugError(f"{path} does not hold InceptionV3 weights ({type(exc).__name__}): {INCEPTION_WEIGHTS_HELP}") from None
    info = {"weights": str(path), "weights_sha256": _file_digest(path), "features_from": "avg_pool (2048-d)",
            "channels": "grayscale replicated to RGB"}
    return FeatureExtractor("inception", _two_headed(model, "avg_pool", softmax=False), info, batch_size=batch_size)


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]
