"""Dataset sources: turn a spec string into a :class:`Dataset` of uint8 images and int32 labels.

Specs (see :func:`load_dataset`):
    ``digits``                 scikit-learn's 8x8 digits, 1797 images, 10 classes.
    ``lfw_subset``             scikit-image's 25x25 LFW crops, 200 images, classes ("non-face", "face").
    ``tfds:NAME[:split]``      a prepared TensorFlow Datasets dataset (split defaults to "train").
    ``npz:PATH``               arrays ``x`` (images) and ``y`` (labels), optional ``class_names``.
    ``folder:PATH``            one sub-folder per class holding image files; an optional ``manifest.csv`` at
                               the root (written by ``tfaug fill``) marks generated images (``Dataset.synthetic``).
                               Mixed sizes and channel counts are unified by :mod:`tfaug.data.conform` (aspect
                               ratio kept, then centre-cropped; ``image_size``/``channels`` choose the target).

Everything returned is at the library's edge format: images uint8 NHWC in [0, 255] with C in {1, 3}.
"""
from __future__ import annotations

import csv
import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfaug.data.conform import conform_images
from tfaug.errors import TfaugError

VALID_SPECS = "digits, lfw_subset, tfds:NAME[:split], npz:PATH, folder:PATH"
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
_GRAY_MODES = frozenset({"1", "L", "LA", "La", "F"})
MANIFEST_NAME = "manifest.csv"
MANIFEST_COLUMNS = ("path", "class", "synthetic", "class_id", "seed", "generator", "source")


@dataclass(frozen=True, eq=False)
class Dataset:
    """A labelled image set (eq=False: datasets compare by identity, arrays have no truth value).

    Attributes:
        images: uint8 [N, H, W, C] in [0, 255], C in {1, 3}.
        labels: int32 [N] class indices in [0, K).
        class_names: K names; ``class_names[i]`` names label ``i``.
        spec: the spec string the dataset was loaded from.
        skipped: files skipped as unreadable (``folder:`` sources only), relative to the folder.
        synthetic: bool [N], True for generated images (from a ``folder:`` source's ``manifest.csv``); all False
            when the source has no manifest. Splits keep these images out of test sets.
    """

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    spec: str
    skipped: tuple[str, ...] = ()
    synthetic: np.ndarray | None = None

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
        synthetic = np.zeros(len(labels), bool) if self.synthetic is None else np.asarray(self.synthetic)
        if synthetic.shape != labels.shape or not (synthetic.dtype == np.bool_ or np.isin(synthetic, (0, 1)).all()):
            raise TfaugError(f"dataset synthetic flags must be {len(labels)} booleans, one per image, "
                             f"got {synthetic.dtype} {synthetic.shape}")
        object.__setattr__(self, "synthetic", synthetic.astype(bool))

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
        """The images/labels/synthetic flags at integer (or boolean) index ``idx``; class names, spec and skipped
        are kept."""
        idx = np.asarray(idx)
        return Dataset(self.images[idx], self.labels[idx], self.class_names, self.spec, self.skipped,
                       self.synthetic[idx])


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


def load_dataset(spec: str, data_dir: str | None = None, *, image_size=None, channels: int | None = None) -> Dataset:
    """Load the dataset named by ``spec`` (see the module docstring for the forms).

    Args:
        spec: e.g. ``"digits"``, ``"tfds:mnist:test"``, ``"npz:data/x.npz"``, ``"folder:~/pets"``.
        data_dir: TensorFlow Datasets directory (tfds specs only); defaults to ``$TFDS_DATA_DIR`` or
            ``~/tensorflow_datasets``.
        image_size: ``(H, W)`` or ``"HxW"`` (sides in [8, 4096]) to bring every image to; None keeps the source's
            size (a folder of mixed sizes takes its most common size). Policy: :mod:`tfaug.data.conform` (aspect
            ratio kept, then centre-cropped).
        channels: 1 (greyscale) or 3 (RGB); None keeps the source's (a folder mixing greyscale and colour is RGB).

    Returns:
        A :class:`Dataset` with images uint8 [N, H, W, C] in [0, 255] and labels int32 in [0, K).

    Raises:
        TfaugError: the spec is malformed or the data is missing, unreadable or inconsistent.
    """
    kind, arg, split = parse_spec(spec)
    if kind == "folder":
        return _load_folder(spec, arg, image_size, channels)
    ds = _load_arrays(spec, kind, arg, split, data_dir)
    if image_size is None and channels is None:
        return ds
    images = conform_images(ds.images, image_size, channels, where=spec, stacklevel=3)
    return Dataset(images, ds.labels, ds.class_names, spec, ds.skipped, ds.synthetic)


def _load_arrays(spec: str, kind: str, arg: str | None, split: str | None, data_dir: str | None) -> Dataset:
    """The embedded, tfds and npz sources, at their own size."""
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
    return _load_npz(spec, arg)


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


def read_image(path: str | os.PathLike) -> np.ndarray:
    """One image file -> uint8 [H, W] (grayscale) or [H, W, 3] (colour); transparency composited on white.

    Raises whatever PIL raises for an unreadable file (callers skip such files)."""
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


@dataclass(frozen=True)
class FolderListing:
    """The candidate image files of a class-folder dataset, as :func:`load_dataset` reads them.

    Attributes:
        root: the dataset folder.
        classes: K class names = the visible sub-folders of ``root``, sorted; label ``i`` is ``classes[i]``.
        files: ``(relative path, label)`` of every visible file with an image extension, class by class, each class
            in walk order (sorted names, hidden files and folders skipped); paths use "/" separators.
        non_images: visible files under the class folders without an image extension (relative paths).
        walk_order: every visible file under the class folders (images and others), in walk order.
    """

    root: str
    classes: tuple[str, ...]
    files: tuple[tuple[str, int], ...]
    non_images: tuple[str, ...]
    walk_order: tuple[str, ...] = ()


def list_folder(root: str | os.PathLike) -> FolderListing:
    """List a class-folder dataset without reading any image.

    Raises:
        TfaugError: ``root`` is not a folder or has no class sub-folders.
    """
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise TfaugError(f"folder '{root}' does not exist; check the path after 'folder:'")
    classes = [d for d in _visible(os.listdir(root)) if os.path.isdir(os.path.join(root, d))]
    if not classes:
        raise TfaugError(f"folder '{root}' has no class sub-folders; put images in one sub-folder per class")
    files, non_images, order = [], [], []
    for label, name in enumerate(classes):
        for dirpath, dirnames, filenames in os.walk(os.path.join(root, name)):
            dirnames[:] = _visible(dirnames)  # prune hidden directories in place
            for fname in _visible(filenames):
                rel = Path(os.path.relpath(os.path.join(dirpath, fname), root)).as_posix()
                order.append(rel)
                if os.path.splitext(fname)[1].lower() in IMAGE_EXTENSIONS:
                    files.append((rel, label))
                else:
                    non_images.append(rel)
    return FolderListing(root, tuple(classes), tuple(files), tuple(non_images), tuple(order))


def read_manifest(root: str | os.PathLike) -> dict[str, dict[str, str]] | None:
    """``root/manifest.csv`` as ``{relative path: row}`` (every column a string), or None when there is none.

    The manifest (written by ``tfaug fill``) has the columns :data:`MANIFEST_COLUMNS`: ``path`` (relative to
    ``root``, "/" separators), ``class`` (folder name), ``synthetic`` (0 or 1), ``class_id``, ``seed`` and
    ``generator`` (of a generated image; empty for originals), ``source`` (original relative path of a copy).
    Only ``path`` and ``synthetic`` are required to read it.

    Raises:
        TfaugError: the file cannot be parsed, lacks ``path``/``synthetic``, or a ``synthetic`` value is not 0/1.
    """
    path = Path(root) / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        reader = csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"), newline=""))
        rows = list(reader)
        fields = reader.fieldnames or []
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise TfaugError(f"cannot read '{path}' as a CSV manifest ({err}); fix or delete it") from err
    missing = [c for c in ("path", "synthetic") if c not in fields]
    if missing:
        found = ", ".join(fields) or "none"
        raise TfaugError(f"manifest '{path}' has no {' and '.join(missing)} column (it has: {found}); fix or delete it")
    out = {}
    for i, row in enumerate(rows, start=2):
        flag = (row.get("synthetic") or "").strip().lower()
        if flag not in ("0", "1", "true", "false"):
            raise TfaugError(f"manifest '{path}' line {i}: synthetic must be 0 or 1, got {row.get('synthetic')!r}; "
                             "fix or delete the manifest")
        row = {k: ("" if v is None else str(v)) for k, v in row.items() if k is not None}
        row["synthetic"] = "1" if flag in ("1", "true") else "0"
        out[Path(row["path"].strip()).as_posix()] = row
    return out


def manifest_text(rows) -> str:
    """CSV text of manifest rows (dicts keyed by :data:`MANIFEST_COLUMNS`; missing keys are written empty)."""
    buf = io.StringIO(newline="")
    writer = csv.DictWriter(buf, fieldnames=MANIFEST_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row.get(k) is None else row.get(k) for k in MANIFEST_COLUMNS})
    return buf.getvalue()


def _shown(paths, limit: int = 5) -> str:
    paths = list(paths)
    return ", ".join(paths[:limit]) + (f" and {len(paths) - limit} more" if len(paths) > limit else "")


def _synthetic_flags(root: str, loaded: list[str], classes, labels) -> np.ndarray | None:
    """bool [N] from ``root/manifest.csv`` for the loaded files (None without a manifest); warns on mismatches."""
    manifest = read_manifest(root)
    if manifest is None:
        return None
    flags = np.array([manifest.get(rel, {}).get("synthetic") == "1" for rel in loaded], bool)
    loaded_set = set(loaded)
    missing = [p for p in manifest if p not in loaded_set]
    unlisted = [p for p in loaded if p not in manifest]
    moved = [rel for rel, y in zip(loaded, labels) if rel in manifest
             and manifest[rel].get("class", classes[y]) not in ("", classes[y])]
    problems = []
    if missing:
        problems.append(f"{len(missing)} listed files are missing or unreadable ({_shown(missing)})")
    if unlisted:
        problems.append(f"{len(unlisted)} files are not listed and count as real ({_shown(unlisted)})")
    if moved:
        problems.append(f"{len(moved)} files are listed under another class; their folder's class is used "
                        f"({_shown(moved)})")
    if problems:
        warnings.warn(f"the manifest of '{root}' disagrees with its files: " + "; ".join(problems), stacklevel=4)
    return flags


def _load_folder(spec: str, root: str, image_size=None, channels: int | None = None) -> Dataset:
    """One sub-folder per class (sorted names); unreadable files are skipped and reported, never fatal; sizes and
    channels unified by :func:`tfaug.data.conform.conform_images`."""
    listing = list_folder(root)
    classes = listing.classes
    arrays, labels, loaded = [], [], []
    skipped = list(listing.non_images)
    for rel, label in listing.files:
        try:
            arrays.append(read_image(os.path.join(root, *rel.split("/"))))
            labels.append(label)
            loaded.append(rel)
        except Exception:  # corrupt, truncated, unsupported: skip it, report it below
            skipped.append(rel)
    present = set(labels)
    for label, name in enumerate(classes):
        if label not in present:
            raise TfaugError(f"class folder '{os.path.join(root, name)}' has no readable images; add some or remove it")
    if skipped:
        skipped_set = set(skipped)
        skipped = [rel for rel in listing.walk_order if rel in skipped_set]  # walk order, as the files were met
        shown = ", ".join(skipped[:20]) + (f" and {len(skipped) - 20} more" if len(skipped) > 20 else "")
        warnings.warn(f"skipped {len(skipped)} unreadable or non-image files in '{root}': {shown}", stacklevel=3)
    images = conform_images(arrays, image_size, channels, where=f"'{root}'", stacklevel=4)
    synthetic = _synthetic_flags(root, loaded, classes, labels)
    return Dataset(images, np.asarray(labels, np.int32), tuple(classes), spec, tuple(skipped), synthetic)
