"""Dataset sources: turn a spec string into a :class:`Dataset` of uint8 images and int32 labels.

Specs (see :func:`load_dataset`):
    ``digits``                 scikit-learn's 8x8 digits, 1797 images, 10 classes.
    ``lfw_subset``             scikit-image's 25x25 LFW crops, 200 images, classes ("non-face", "face").
    ``tfds:NAME[:split]``      a prepared TensorFlow Datasets dataset (split defaults to "train").
    ``npz:PATH``               arrays ``x`` (images) and ``y`` (labels), optional ``class_names``.
    ``folder:PATH``            one sub-folder per class holding image files.

Everything returned is at the library's edge format: images uint8 NHWC in [0, 255] with C in {1, 3}.
"""
from __future__ import annotations

import os
import warnings
from collections import Counter
from dataclasses import dataclass

import numpy as np

from tfaug.errors import TfaugError

VALID_SPECS = "digits, lfw_subset, tfds:NAME[:split], npz:PATH, folder:PATH"
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
_GRAY_MODES = frozenset({"1", "L", "LA", "La", "F"})


@dataclass(frozen=True, eq=False)
class Dataset:
    """A labelled image set (eq=False: datasets compare by identity, arrays have no truth value).

    Attributes:
        images: uint8 [N, H, W, C] in [0, 255], C in {1, 3}.
        labels: int32 [N] class indices in [0, K).
        class_names: K names; ``class_names[i]`` names label ``i``.
        spec: the spec string the dataset was loaded from.
        skipped: files skipped as unreadable (``folder:`` sources only), relative to the folder.
    """

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    spec: str
    skipped: tuple[str, ...] = ()

    def __post_init__(self):
        images, labels = np.asarray(self.images), np.asarray(self.labels).astype(np.int32).reshape(-1)
        if images.ndim != 4 or images.shape[-1] not in (1, 3) or images.dtype != np.uint8:
            raise TfaugError(f"dataset images must be uint8 [N, H, W, 1 or 3], got {images.dtype} {images.shape}")
        if len(images) != len(labels):
            raise TfaugError(f"dataset has {len(images)} images but {len(labels)} labels; give one label per image")
        object.__setattr__(self, "images", images)
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "class_names", tuple(str(c) for c in self.class_names))
        object.__setattr__(self, "skipped", tuple(self.skipped))

    @property
    def num_classes(self) -> int:
        """K, the number of classes (some may have no images in a subset)."""
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of every image."""
        return tuple(int(s) for s in self.images.shape[1:])

    def __len__(self) -> int:
        return int(len(self.labels))

    def counts(self) -> np.ndarray:
        """int64 [K] number of images per class."""
        return np.bincount(self.labels, minlength=self.num_classes).astype(np.int64)

    def subset(self, idx) -> Dataset:
        """The images/labels at integer (or boolean) index ``idx``; class names, spec and skipped are kept."""
        idx = np.asarray(idx)
        return Dataset(self.images[idx], self.labels[idx], self.class_names, self.spec, self.skipped)


def parse_spec(spec: str) -> tuple[str, str | None, str | None]:
    """Split a spec into ``(kind, arg, split)``, e.g. ``"tfds:mnist:test"`` -> ``("tfds", "mnist", "test")``.

    ``arg`` is the tfds name or the path (``None`` for embedded sets); ``split`` is only set for tfds.
    """
    text = str(spec).strip()
    kind, sep, rest = text.partition(":")
    kind = kind.strip().lower()
    if not sep and kind in ("digits", "lfw_subset"):
        return kind, None, None
    if sep and kind == "tfds":
        name, _, split = rest.partition(":")
        if name.strip():
            return "tfds", name.strip(), split.strip() or "train"
    elif sep and kind in ("npz", "folder") and rest.strip():
        return kind, os.path.expanduser(rest.strip()), None
    raise TfaugError(f"unknown dataset spec {spec!r}; use one of: {VALID_SPECS}")


def load_dataset(spec: str, data_dir: str | None = None) -> Dataset:
    """Load the dataset named by ``spec`` (see the module docstring for the forms).

    Args:
        spec: e.g. ``"digits"``, ``"tfds:mnist:test"``, ``"npz:data/x.npz"``, ``"folder:~/pets"``.
        data_dir: TensorFlow Datasets directory (tfds specs only); defaults to ``$TFDS_DATA_DIR`` or
            ``~/tensorflow_datasets``.

    Returns:
        A :class:`Dataset` with images uint8 [N, H, W, C] in [0, 255] and labels int32 in [0, K).

    Raises:
        TfaugError: the spec is malformed or the data is missing, unreadable or inconsistent.
    """
    kind, arg, split = parse_spec(spec)
    if kind == "digits":
        from sklearn.datasets import load_digits

        digits = load_digits()
        images = np.rint(digits.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)[..., None]
        return Dataset(images, digits.target, tuple(str(i) for i in range(10)), spec)
    if kind == "lfw_subset":
        from skimage.data import lfw_subset

        # skimage: the first 100 images are faces, the next 100 background crops (non-faces).
        images = _to_uint8_images(np.asarray(lfw_subset()), "lfw_subset")
        labels = np.concatenate([np.ones(100, np.int32), np.zeros(len(images) - 100, np.int32)])
        return Dataset(images, labels, ("non-face", "face"), spec)
    if kind == "tfds":
        return _load_tfds(spec, arg, split, data_dir)
    if kind == "npz":
        return _load_npz(spec, arg)
    return _load_folder(spec, arg)


def _to_uint8_images(x: np.ndarray, source: str) -> np.ndarray:
    """[N, H, W] or [N, H, W, C] uint8 / uint8-range ints / floats in [0, 1] -> uint8 [N, H, W, C]."""
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] not in (1, 3) or len(x) == 0:
        raise TfaugError(f"{source}: images must be a non-empty [N, H, W] or [N, H, W, 1 or 3] array, got {x.shape}")
    if x.dtype == np.uint8:
        return x
    if np.issubdtype(x.dtype, np.integer) or x.dtype == np.bool_:
        if x.min() < 0 or x.max() > 255:
            raise TfaugError(f"{source}: integer images must lie in [0, 255], got [{x.min()}, {x.max()}]; rescale them")
        return x.astype(np.uint8)
    if np.issubdtype(x.dtype, np.floating):
        if not np.isfinite(x).all() or x.min() < 0 or x.max() > 1:
            raise TfaugError(f"{source}: float images must lie in [0, 1] (they are scaled by 255); rescale them")
        return np.rint(x * 255.0).astype(np.uint8)
    raise TfaugError(f"{source}: images have unsupported dtype {x.dtype}; save them as uint8 in [0, 255]")


def _load_tfds(spec: str, name: str, split: str, data_dir: str | None) -> Dataset:
    """A prepared TensorFlow Datasets split; downloads only when TFAUG_NO_DOWNLOAD is unset."""
    import tensorflow_datasets as tfds

    root = os.path.expanduser(data_dir or os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets")
    offline = (
        f"dataset '{name}' is not available offline under {root}; prepare it on a machine with internet "
        f"(`python -m tensorflow_datasets.scripts.download_and_prepare --datasets={name} --data_dir={root}` or "
        f"`tfds build {name} --data_dir {root}`), copy {root} here and pass --data-dir {root}"
    )
    try:
        builder = tfds.builder(name, data_dir=root)
    except tfds.core.registered.DatasetNotFoundError:
        raise TfaugError(
            f"'{name}' is not a TensorFlow Datasets name; pick one from "
            "https://www.tensorflow.org/datasets/catalog/overview (e.g. tfds:mnist)"
        ) from None
    except Exception as err:  # a dataset whose builder cannot even be created here (missing extras, ...)
        raise TfaugError(f"{offline} (opening it failed: {type(err).__name__})") from err
    if not builder.is_prepared():
        if os.environ.get("TFAUG_NO_DOWNLOAD", "").strip().lower() not in ("", "0", "false", "no"):
            raise TfaugError(offline)
        try:
            builder.download_and_prepare()
        except Exception as err:  # no network, quota, checksum ... all mean the same thing to the user
            raise TfaugError(f"{offline} (download failed: {type(err).__name__})") from err
    features = builder.info.features
    if "image" not in features or "label" not in features:
        raise TfaugError(f"tfds dataset '{name}' has no 'image' and 'label' features; use an image classification set")
    try:  # batches rather than batch_size=-1: works when split sizes are unknown
        pairs = builder.as_dataset(split=split).map(lambda ex: (ex["image"], ex["label"])).batch(4096)
        chunks = list(tfds.as_numpy(pairs))
    except Exception as err:  # bad split name, or images of differing sizes that cannot be batched
        splits, why = ", ".join(sorted(builder.info.splits)) or "none", str(err).strip().split("\n")[0][:160]
        raise TfaugError(f"cannot read split '{split}' of '{name}' (available splits: {splits}; {why})") from err
    if not chunks:
        raise TfaugError(f"split '{split}' of tfds dataset '{name}' is empty; choose another split")
    labels = np.concatenate([c[1] for c in chunks])
    names = getattr(features["label"], "names", None) or [str(i) for i in range(int(labels.max()) + 1)]
    images = _to_uint8_images(np.concatenate([c[0] for c in chunks]), f"tfds:{name}")
    return Dataset(images, labels, tuple(names), spec)


def _load_npz(spec: str, path: str) -> Dataset:
    """Arrays ``x``, ``y`` and optional ``class_names`` from an .npz; labels remapped to 0..K-1 in sorted order."""
    if not os.path.isfile(path):
        raise TfaugError(f"npz file '{path}' does not exist; check the path after 'npz:'")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except Exception as err:
        raise TfaugError(f"cannot read '{path}' as an .npz of plain arrays ({err}); save it with np.savez") from err
    for key, what in (("x", "images"), ("y", "labels")):
        if key not in arrays:
            found = ", ".join(sorted(arrays)) or "nothing"
            raise TfaugError(f"npz file '{path}' has no array '{key}' (found: {found}); save {what} as {key}=...")
    x, y = arrays["x"], np.asarray(arrays["y"]).reshape(-1)
    if len(x) != len(y):
        raise TfaugError(f"npz file '{path}' has {len(x)} images in x but {len(y)} labels in y; give one per image")
    integral = np.issubdtype(y.dtype, np.integer) or (np.issubdtype(y.dtype, np.floating) and np.all(y == np.rint(y)))
    if not integral or len(y) == 0:
        raise TfaugError(f"npz file '{path}': labels y must be a non-empty array of integers, got {y.dtype} {y.shape}")
    images = _to_uint8_images(x, f"npz file '{path}'")
    values, labels = np.unique(y.astype(np.int64), return_inverse=True)
    names = [str(v) for v in values]
    if "class_names" in arrays:
        given = [v.decode() if isinstance(v, bytes) else str(v) for v in np.asarray(arrays["class_names"]).reshape(-1)]
        if values.min() >= 0 and len(given) > values.max():  # names indexed by the original label value
            names = [given[v] for v in values]
        elif len(given) == len(values):  # one name per distinct label, in sorted label order
            names = given
        else:
            raise TfaugError(
                f"npz file '{path}' has {len(given)} class_names for {len(values)} classes; give one name per class"
            )
    return Dataset(images, labels.astype(np.int32), tuple(names), spec)


def _read_image(path: str) -> np.ndarray:
    """One image file -> uint8 [H, W] (grayscale) or [H, W, 3] (colour); transparency composited on white."""
    from PIL import Image

    with Image.open(path) as im:
        im.load()
        mode = im.mode
        if mode.startswith("I"):  # 16/32-bit grey: scale 16-bit range down (PIL's convert("L") would clip)
            arr = np.asarray(im, np.float64).clip(0, 65535)
            wide = mode.startswith("I;16") or arr.max() > 255
            return np.rint(arr * (255.0 / 65535.0) if wide else arr).astype(np.uint8)
        if mode == "F":
            return np.rint(np.asarray(im, np.float64).clip(0, 255)).astype(np.uint8)
        if mode in ("RGBA", "LA", "La", "PA", "RGBa") or "transparency" in im.info:
            flat = Image.alpha_composite(Image.new("RGBA", im.size, (255, 255, 255, 255)), im.convert("RGBA"))
            im = flat.convert("L" if mode in _GRAY_MODES else "RGB")
        elif mode in _GRAY_MODES:
            im = im.convert("L")
        else:  # RGB, P, CMYK, YCbCr ...
            im = im.convert("RGB")
        return np.asarray(im, np.uint8)


def _visible(names) -> list[str]:
    return sorted(n for n in names if not n.startswith("."))


def _load_folder(spec: str, root: str) -> Dataset:
    """One sub-folder per class (sorted names); unreadable files are skipped and reported, never fatal."""
    from PIL import Image

    if not os.path.isdir(root):
        raise TfaugError(f"folder '{root}' does not exist; check the path after 'folder:'")
    classes = [d for d in _visible(os.listdir(root)) if os.path.isdir(os.path.join(root, d))]
    if not classes:
        raise TfaugError(f"folder '{root}' has no class sub-folders; put images in one sub-folder per class")
    arrays, labels, skipped = [], [], []
    for label, name in enumerate(classes):
        before = len(arrays)
        for dirpath, dirnames, filenames in os.walk(os.path.join(root, name)):
            dirnames[:] = _visible(dirnames)  # prune hidden directories in place
            for fname in _visible(filenames):
                path = os.path.join(dirpath, fname)
                rel = os.path.relpath(path, root)
                if os.path.splitext(fname)[1].lower() not in IMAGE_EXTENSIONS:
                    skipped.append(rel)
                    continue
                try:
                    arrays.append(_read_image(path))
                    labels.append(label)
                except Exception:  # corrupt, truncated, unsupported: skip it, report it below
                    skipped.append(rel)
        if len(arrays) == before:
            raise TfaugError(f"class folder '{os.path.join(root, name)}' has no readable images; add some or remove it")
    if skipped:
        shown = ", ".join(skipped[:20]) + (f" and {len(skipped) - 20} more" if len(skipped) > 20 else "")
        warnings.warn(f"skipped {len(skipped)} unreadable or non-image files in '{root}': {shown}", stacklevel=3)
    gray = all(a.ndim == 2 for a in arrays)
    arrays = [a[..., None] if gray else (np.repeat(a[..., None], 3, -1) if a.ndim == 2 else a) for a in arrays]
    (h, w), _ = Counter(a.shape[:2] for a in arrays).most_common(1)[0]
    n_resized = 0
    for i, a in enumerate(arrays):
        if a.shape[:2] != (h, w):
            im = Image.fromarray(a[..., 0] if gray else a).resize((w, h), Image.Resampling.BILINEAR)
            arrays[i] = np.asarray(im, np.uint8).reshape(h, w, -1)
            n_resized += 1
    if n_resized:
        msg = f"resized {n_resized} of {len(arrays)} images in '{root}' to the most common size {h}x{w}"
        warnings.warn(msg, stacklevel=3)
    return Dataset(np.stack(arrays), np.asarray(labels, np.int32), tuple(classes), spec, tuple(skipped))
