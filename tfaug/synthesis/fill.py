"""Top a class-folder dataset up to a minimum number of images per class with generated images (``tfaug fill``).

:func:`fill_dataset` writes a NEW class-folder dataset (the source is only read):

* every file of the source is copied byte-for-byte to the same relative path (the source's own ``manifest.csv``
  is replaced by the new one, whose rows carry its synthetic flags over);
* every class with fewer than ``min_per_class`` readable images gets generated PNGs up to the minimum
  (:func:`tfaug.synthesis.counts.generated_counts` with ``target=min_per_class``, the rule ``train-classifier`` and
  studies share), named
  ``<class>/tfaug_<seed>.png`` (``tfaug_<seed>_<i>.png`` if an original already has that name);
* ``manifest.csv`` at the root lists every image file the dataset loader reads, with the columns
  ``path,class,synthetic,class_id,seed,generator,source`` (see :mod:`tfaug.data.sources`), so that loading
  ``folder:OUT`` marks the generated images (``Dataset.synthetic``) and splits keep them out of test sets.

Generator classes are matched to class folders BY NAME (``generator.class_names``). Generated images take the
dataset's most common size and channel count (resized/converted with a warning when the generator differs).

Seeds: the generated images of a class whose generator class id is ``c`` use the seeds
``seed + CLASS_SEED_STRIDE * c + j`` for ``j = 0 .. added - 1`` (:func:`tfaug.synthesis.sample.class_seeds`, the
rule of :func:`~tfaug.synthesis.sample.sample_per_class`), so a rerun writes identical files and a larger
minimum adds images after the same first ones. Filling an already filled dataset skips the seeds its manifest
records for the same generator and class, so no generated image is repeated.
"""
from __future__ import annotations

import os
import shutil
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfaug.data.sources import MANIFEST_NAME, list_folder, manifest_text, parse_spec, read_image, read_manifest
from tfaug.errors import TfaugError
from tfaug.synthesis.counts import generated_counts
from tfaug.synthesis.sample import CLASS_SEED_STRIDE, class_seeds
from tfaug.utils.images import png_bytes, to_uint8
from tfaug.utils.io import atomic_directory, atomic_write_text

__all__ = ["FillResult", "fill_dataset", "fill_command", "summary_table"]

BATCH = 64  # images generated (and written) per call


@dataclass(frozen=True)
class FillResult:
    """What :func:`fill_dataset` wrote.

    Attributes:
        out: the new dataset folder.
        counts_before: ``{class name: readable images in the source}``, in class-folder order.
        counts_added: ``{class name: generated images added}`` (0 for classes already at the minimum).
        manifest: ``out / "manifest.csv"``.
    """

    out: Path
    counts_before: dict[str, int]
    counts_added: dict[str, int]
    manifest: Path

    @property
    def counts_after(self) -> dict[str, int]:
        """``{class name: images in the new dataset}``."""
        return {c: n + self.counts_added[c] for c, n in self.counts_before.items()}


def _describe(generator) -> str:
    """``kind:path`` of a generator for the manifest (``kind`` alone when it has no known location)."""
    meta = getattr(generator, "metadata", None) or {}
    where = getattr(generator, "path", None) or meta.get("run_dir")
    kind = str(getattr(generator, "kind", "generator"))
    return f"{kind}:{Path(where).resolve()}" if where else kind


def _inside(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
        return True
    except ValueError:
        return False


def _scan(source: Path):
    """(listing, [(rel, label, (h, w, c))] of readable images, [unreadable rel])."""
    listing = list_folder(source)
    readable, unreadable = [], []
    for rel, label in listing.files:
        try:
            arr = read_image(source.joinpath(*rel.split("/")))
        except Exception:  # the dataset loader skips these too; they are still copied
            unreadable.append(rel)
            continue
        readable.append((rel, label, (arr.shape[0], arr.shape[1], 1 if arr.ndim == 2 else 3)))
    return listing, readable, unreadable


def _fit(images: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """uint8 [N, h, w, c] -> uint8 [N, H, W, C] = ``shape`` (bilinear resize; grey <-> RGB like the loader)."""
    from PIL import Image

    h, w, c = shape
    out = np.empty((len(images), h, w, c), np.uint8)
    for i, img in enumerate(images):
        im = Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img)
        if im.size != (w, h):
            im = im.resize((w, h), Image.Resampling.BILINEAR)
        im = im.convert("L" if c == 1 else "RGB")
        out[i] = np.asarray(im, np.uint8).reshape(h, w, c)
    return out


def _sample(generator, class_id: int, seeds: np.ndarray, truncation) -> np.ndarray:
    ids = np.full(len(seeds), class_id, np.int32)
    if truncation is None:
        return np.asarray(generator.sample(ids, seeds), np.float32)
    return np.asarray(generator.sample(ids, seeds, truncation=truncation), np.float32)


def _fresh_seeds(n: int, base: int, used: set[int]) -> np.ndarray:
    """The first ``n`` of ``base, base + 1, ...`` not in ``used`` (int64 [n]; ``class_seeds(n, base)`` if none)."""
    seeds = class_seeds(n + len(used), base)
    return seeds[~np.isin(seeds, list(used))][:n] if used else seeds[:n]


def _free_name(seed: int, taken: set[str]) -> str:
    """``tfaug_<seed>.png``, or ``tfaug_<seed>_<i>.png`` when a file of the folder already has that name."""
    name, i = f"tfaug_{seed}.png", 0
    while name.lower() in taken:
        i += 1
        name = f"tfaug_{seed}_{i}.png"
    return name


def fill_dataset(
    source_root: str | os.PathLike,
    generator,
    *,
    min_per_class: int,
    out_root: str | os.PathLike,
    seed: int = 0,
    truncation: float | None = None,
    progress: bool = True,
) -> FillResult:
    """Write a copy of a class-folder dataset with every class topped up to ``min_per_class`` images.

    Args:
        source_root: the dataset folder (one sub-folder per class); only read, never written.
        generator: a :class:`~tfaug.synthesis.loader.Generator` (``class_names``, ``image_shape``,
            ``sample(class_ids, seeds[, truncation])`` -> float32 [N, H, W, C] in [-1, 1]) or a path that
            :func:`~tfaug.synthesis.loader.load_generator` accepts.
        min_per_class: target count >= 1; classes with at least this many readable images get nothing.
        out_root: the new dataset folder; must not exist and must not lie inside ``source_root``. Written to a
            temporary sibling and renamed when complete.
        seed: base seed (see the module docstring for the per-image seeds).
        truncation: psi in [0, 1] passed to ``generator.sample`` (None = no truncation).
        progress: show a tqdm bar over the generated images.

    Returns:
        :class:`FillResult` with the per-class counts and the manifest path.

    Raises:
        TfaugError: bad source/out/minimum/truncation, a deficient class the generator does not know (by name),
            a generator that cannot truncate, or a copy that fails.
    """
    source, out = Path(source_root), Path(out_root)
    if isinstance(min_per_class, bool) or not isinstance(min_per_class, (int, np.integer)) or min_per_class < 1:
        raise TfaugError(f"the minimum per class must be an integer >= 1, got {min_per_class!r}")
    if truncation is not None and not 0.0 <= float(truncation) <= 1.0:
        raise TfaugError(f"truncation psi must be in [0, 1] (1 = none), got {truncation}")
    if not source.is_dir():
        raise TfaugError(f"folder '{source}' does not exist; check the path after 'folder:'")
    if out.exists() or out.is_symlink():
        raise TfaugError(f"output folder '{out}' already exists; choose a new --out (fill never overwrites)")
    if _inside(out.resolve(), source.resolve()):
        raise TfaugError(f"output folder '{out}' lies inside the source '{source}'; choose a folder outside it")

    listing, readable, unreadable = _scan(source)
    if unreadable:
        shown = ", ".join(unreadable[:10]) + (f" and {len(unreadable) - 10} more" if len(unreadable) > 10 else "")
        warnings.warn(f"{len(unreadable)} unreadable image files in '{source}' are copied but not counted or listed: "
                      f"{shown}", stacklevel=2)
    classes = listing.classes
    before = Counter(label for _, label, _ in readable)
    counts_before = {name: int(before[i]) for i, name in enumerate(classes)}
    top_up = generated_counts(list(counts_before.values()), target=int(min_per_class))  # the shared top-up rule
    deficits = {name: n for name, n in zip(counts_before, top_up) if n > 0}

    if isinstance(generator, (str, os.PathLike)):
        from tfaug.synthesis.loader import load_generator

        generator = load_generator(generator)
    gen_names = [str(n) for n in generator.class_names]
    unknown = [name for name in deficits if name not in gen_names]
    if unknown:
        known = ", ".join(repr(n) for n in gen_names[:20]) + (f" ... ({len(gen_names)} in all)" if len(gen_names) > 20
                                                               else "")
        raise TfaugError(
            f"the generator has no class named {', '.join(repr(n) for n in unknown)} (classes below "
            f"{min_per_class} images need one; its classes are {known}); "
            "use a generator trained or adapted on these class names"
        )
    if truncation is not None and deficits and getattr(generator, "supports_truncation", False) is not True:
        raise TfaugError(f"{generator!r} cannot truncate; run fill without --truncation or re-export the generator")
    shape = (Counter(s for _, _, s in readable).most_common(1)[0][0] if readable
             else tuple(int(d) for d in generator.image_shape))
    gen_shape = tuple(int(d) for d in generator.image_shape)
    if deficits and gen_shape != shape:
        warnings.warn(f"the generator makes {'x'.join(map(str, gen_shape))} images but most images of '{source}' "
                      f"are {'x'.join(map(str, shape))}; generated images are resized/converted to match",
                      stacklevel=2)
    described = _describe(generator) + (f";psi={float(truncation):g}" if truncation is not None else "")

    old = read_manifest(source) or {}
    rows = []
    for rel, label, _ in readable:
        prior = old.get(rel, {})
        synthetic = prior.get("synthetic") == "1"
        rows.append({"path": rel, "class": classes[label], "synthetic": int(synthetic),
                     "class_id": prior.get("class_id", "") if synthetic else "",
                     "seed": prior.get("seed", "") if synthetic else "",
                     "generator": prior.get("generator", "") if synthetic else "", "source": rel})

    used: dict[int, set[int]] = {}  # generator class id -> seeds the source's manifest already holds
    for row in old.values():
        if row.get("synthetic") == "1" and row.get("generator") == described:
            try:
                used.setdefault(int(row.get("class_id", "")), set()).add(int(row.get("seed", "")))
            except ValueError:
                pass

    bar = None
    if progress and deficits:
        from tqdm.auto import tqdm

        bar = tqdm(total=sum(deficits.values()), desc="fill", unit="img", dynamic_ncols=True)
    try:
        with atomic_directory(out) as tmp:
            _copy_tree(source, tmp)
            for name, n in deficits.items():
                class_id = gen_names.index(name)
                folder = tmp / name
                taken = {f.lower() for f in os.listdir(folder)}
                seeds = _fresh_seeds(n, int(seed) + CLASS_SEED_STRIDE * class_id, used.get(class_id, set()))
                for start in range(0, n, BATCH):
                    chunk = seeds[start:start + BATCH]
                    images = to_uint8(_sample(generator, class_id, chunk, truncation))
                    if images.shape[1:] != shape:
                        images = _fit(images, shape)
                    for s, image in zip(chunk.tolist(), images):
                        fname = _free_name(s, taken)
                        taken.add(fname.lower())
                        (folder / fname).write_bytes(png_bytes(image))
                        rows.append({"path": f"{name}/{fname}", "class": name, "synthetic": 1, "class_id": class_id,
                                     "seed": s, "generator": described, "source": ""})
                    if bar is not None:
                        bar.update(len(chunk))
            order = {name: i for i, name in enumerate(classes)}  # stable: each class's copies, then its new images
            rows.sort(key=lambda r: (order[r["class"]], r["synthetic"] == 1 and r["source"] == ""))
            atomic_write_text(tmp / MANIFEST_NAME, manifest_text(rows))
    except FileExistsError:
        raise TfaugError(f"output folder '{out}' already exists; choose a new --out (fill never overwrites)") from None
    finally:
        if bar is not None:
            bar.close()
    added = {name: deficits.get(name, 0) for name in classes}
    return FillResult(out=out, counts_before=counts_before, counts_added=added, manifest=out / MANIFEST_NAME)


def _copy_tree(source: Path, dest: Path) -> None:
    """Copy every file of ``source`` into the existing ``dest`` (contents and times; the root manifest excepted)."""
    root = source.resolve()

    def ignore(directory, names):
        return [MANIFEST_NAME] if Path(directory).resolve() == root and MANIFEST_NAME in names else []

    try:
        shutil.copytree(source, dest, symlinks=False, ignore=ignore, dirs_exist_ok=True)
    except (OSError, shutil.Error) as err:
        detail = err.args[0][0][2] if isinstance(err, shutil.Error) and err.args and err.args[0] else err
        raise TfaugError(f"cannot copy '{source}' ({detail}); check its permissions and the free disk space") from err


def summary_table(result: FillResult) -> str:
    """A plain-text table: one row per class (before, added, after) and a total row."""
    after = result.counts_after
    rows = [(c, str(result.counts_before[c]), str(result.counts_added[c]), str(after[c])) for c in result.counts_before]
    rows.append(("total", str(sum(result.counts_before.values())), str(sum(result.counts_added.values())),
                 str(sum(after.values()))))
    head = ("class", "before", "added", "after")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(4)]

    def fmt(row) -> str:
        return "  ".join(v.ljust(widths[0]) if i == 0 else v.rjust(widths[i]) for i, v in enumerate(row))

    return "\n".join([fmt(head), fmt(tuple("-" * w for w in widths)), *map(fmt, rows)])


def _folder_path(spec: str, what: str) -> str:
    """The path of a ``folder:PATH`` argument (a bare path is accepted for ``--out``)."""
    text = str(spec).strip()
    if what == "--out" and not text.lower().startswith("folder:"):
        kind, sep, _ = text.partition(":")
        if sep and kind.lower() in ("npz", "tfds", "digits", "lfw_subset"):
            raise TfaugError(f"--out must be folder:PATH (a new class-folder dataset), got {spec!r}")
        return os.path.expanduser(text)
    kind, arg, _ = parse_spec(text) if text.lower().startswith("folder:") else (None, None, None)
    if kind != "folder":
        raise TfaugError(f"{what} must be a class-folder dataset folder:PATH, got {spec!r}")
    return arg


def fill_command(args) -> int:
    """``tfaug fill``: top ``--dataset`` up into ``--out`` and print the per-class summary table."""
    source = _folder_path(args.dataset, "--dataset")
    out = _folder_path(args.out, "--out")
    if Path(out).exists():  # fail before loading the generator
        raise TfaugError(f"output folder '{out}' already exists; choose a new --out (fill never overwrites)")
    list_folder(source)  # a missing or empty source fails before loading the generator too
    result = fill_dataset(source, args.generator, min_per_class=args.min_per_class, out_root=out, seed=args.seed,
                          truncation=args.truncation, progress=not args.no_progress)
    print(summary_table(result))
    added = sum(result.counts_added.values())
    print(f"added {added} generated images to {sum(n > 0 for n in result.counts_added.values())} classes -> "
          f"{result.out} (manifest: {result.manifest})")
    return 0
