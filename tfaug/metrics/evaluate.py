"""Judge a generator against real data: the library function behind ``tfaug evaluate``.

The reference split is honest when it can be: if the generator records the dataset indices it trained on (run
directory ``config.json["data"]["train_indices"]`` or SavedModel metadata ``training_config.data.train_indices``,
for the same dataset spec), those images are its training set (for memorisation and CAS real+generated) and
every other image is the held-out reference. Otherwise a stratified split stands in and the protocol says so.

The default domain extractor trains on every real image of the dataset: it is the measuring instrument shared by
all generators judged on that dataset (trained once, then cached), not a party to the comparison.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from tfaug.errors import TfaugError

__all__ = ["evaluate", "reference_split", "build_extractor", "DEFAULT_METRICS", "FALLBACK_TEST_FRACTION"]

DEFAULT_METRICS = "fid,kid,is,pr,consistency,diversity"
FALLBACK_TEST_FRACTION = 0.5


def reference_split(generator, dataset, spec: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray, str]:
    """(train indices, reference indices, description) for judging ``generator`` on ``dataset``.

    Uses the training indices the generator recorded when they belong to ``spec``; otherwise a stratified split
    (``FALLBACK_TEST_FRACTION`` of every class as reference, seeded).
    """
    from tfaug.data.subsets import stratified_split
    from tfaug.utils.io import portable_text

    meta = getattr(generator, "metadata", None) or {}
    data = (meta.get("config") or meta.get("training_config") or {}).get("data") or {}
    idx = data.get("train_indices")
    n = len(dataset.labels)
    # exported metadata keeps only a path's last component (tfaug.utils.io.portable_text): compare in that form
    if idx is not None and portable_text(data.get("spec", spec)) == portable_text(spec):
        train = np.unique(np.asarray(idx, np.int64))
        if len(train) and (train.min() < 0 or train.max() >= n):
            raise TfaugError(f"the generator's recorded training indices do not fit {spec} ({n} images); "
                             "is it the dataset the generator was trained on?")
        ref = np.setdiff1d(np.arange(n), train)
        if len(ref) == 0:
            raise TfaugError(f"the generator trained on every image of {spec}; no held-out real images remain")
        return train, ref, (f"held-out: the {len(ref)} images of {spec} outside the generator's {len(train)} "
                            "recorded training images")
    train, _, ref = stratified_split(dataset.labels, test=FALLBACK_TEST_FRACTION, seed=seed)
    why = "records no training indices" if idx is None else f"trained on {data.get('spec')!r}, not {spec!r}"
    return train, ref, (f"stratified split (seed {seed}, {FALLBACK_TEST_FRACTION:.0%} of each class as reference) "
                        f"because the generator {why}; 'train' is a stand-in for its training set")


def build_extractor(kind: str, dataset, spec: str, *, cache_dir=None, config=None, progress: bool = True):
    """``domain`` (trained on every real image of the dataset, cached) or ``inception:PATH``."""
    from tfaug.metrics.features import domain_extractor, inception_extractor

    if kind == "domain":
        return domain_extractor(spec, dataset.images, dataset.labels, num_classes=dataset.num_classes,
                                cache_dir=cache_dir, config=config, split_desc="all images", progress=progress)
    if kind == "inception" or kind.startswith("inception:"):
        return inception_extractor(kind.partition(":")[2] or None)
    raise TfaugError(f"unknown extractor {kind!r}; use domain or inception:PATH")


def evaluate(
    generator: str | os.PathLike,
    dataset: str,
    *,
    metrics: str | list[str] = DEFAULT_METRICS,
    n_per_class: int | None = None,
    extractor: str = "domain",
    seed: int = 0,
    data_dir: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    extractor_config=None,
    out: str | os.PathLike | None = None,
    log: str | os.PathLike | None = None,
    options: dict | None = None,
    progress: bool = True,
) -> dict:
    """Sample a generator, compute the requested metrics against real data and write ``metrics.json``.

    Args:
        generator: run directory, SavedModel directory or model base directory.
        dataset: real data spec (``digits``, ``npz:PATH`` ...).
        metrics: comma-separated names or a list (see :func:`~tfaug.metrics.registry.metric_names`).
        n_per_class: generated images per class (default: the reference set's size / K, rounded up).
        extractor: ``domain`` or ``inception:PATH``.
        seed: sampling seed and seed of every random subset.
        data_dir, cache_dir: TFDS data directory; feature-extractor cache root.
        extractor_config: ClassifierConfig of the domain extractor (default LeNet-5).
        out: metrics.json path (written atomically; the closest-pairs grid goes next to it), or None.
        log: JSONL file to append the record to, or None.
        options: metric knobs (``k``, ``cas_steps``, ``max_pairs``, ``kid_subsets`` ...).
        progress: show progress bars.

    Returns:
        The record: one key per metric value, ``protocol``, ``warnings`` and ``timings``.
    """
    from tfaug.metrics.registry import MetricContext, compute_metrics, parse_metric_names, write_metrics

    # cheap checks first: a typo in --metrics fails before TensorFlow is imported
    names = parse_metric_names(metrics)
    if n_per_class is not None and int(n_per_class) < 1:
        raise TfaugError(f"n_per_class must be >= 1, got {n_per_class}")
    if not (extractor == "domain" or extractor.startswith("inception")):
        raise TfaugError(f"unknown extractor {extractor!r}; use domain or inception:PATH")

    from tfaug import __version__
    from tfaug.data.sources import load_dataset
    from tfaug.synthesis.loader import load_generator
    from tfaug.synthesis.sample import sample_per_class
    from tfaug.utils.images import to_float
    ds = load_dataset(dataset, data_dir=data_dir)
    gen = load_generator(generator, num_classes=ds.num_classes, image_shape=ds.image_shape)
    if tuple(gen.image_shape) != tuple(ds.image_shape):
        raise TfaugError(f"the generator makes {tuple(gen.image_shape)} images but {dataset} has {tuple(ds.image_shape)}")
    if gen.num_classes != ds.num_classes:
        raise TfaugError(f"the generator has {gen.num_classes} classes but {dataset} has {ds.num_classes}")
    train, ref, split_desc = reference_split(gen, ds, dataset, seed=seed)
    n = int(n_per_class or math.ceil(len(ref) / ds.num_classes))
    ext = build_extractor(extractor, ds, dataset, cache_dir=cache_dir, config=extractor_config, progress=progress)
    images, labels = sample_per_class(gen, n, seed=seed)
    ctx = MetricContext(
        generated=images, generated_labels=labels, reference=to_float(ds.images[ref]),
        reference_labels=ds.labels[ref], extractor=ext, num_classes=ds.num_classes, class_names=ds.class_names,
        train=to_float(ds.images[train]) if len(train) else None, train_labels=ds.labels[train] if len(train) else None,
        seed=seed, options={"progress": progress, **(options or {})},
        artifacts_dir=Path(out).parent if out is not None else None)
    results, timings = compute_metrics(names, ctx)
    record = {
        **results,
        "protocol": {
            "generator": str(generator), "generator_kind": getattr(gen, "kind", "unknown"), "dataset": dataset,
            "metrics": names, "extractor": ext.protocol(), "image_shape": list(ds.image_shape),
            "n_real": int(len(ref)), "n_train": int(len(train)), "n_generated": int(len(images)),
            "n_per_class": n, "reference_split": split_desc, "seed": seed, "tfaug_version": __version__,
        },
        "warnings": list(ctx.warnings),
        "timings": timings,
    }
    write_metrics(out, record, log=log)
    return record


def summary_rows(record: dict) -> list[tuple[str, str]]:
    """(metric, value) rows for a short printed table."""
    short = {"memorisation": ("share_copies", "share_copies_pixel"), "diversity": ("ssim", "feature")}
    rows = []
    for key, value in record.items():
        if key in ("protocol", "warnings", "timings", "cas_detail", "per_class"):
            continue
        if key in short and isinstance(value, dict):
            value = {k: value[k] for k in short[key] if k in value}
        rows.append((key, _fmt(value)))
    if "per_class" in record:
        rows.append(("per_class", f"{len(record['per_class'])} classes (see JSON)"))
    return rows


def _fmt(value) -> str:
    if isinstance(value, dict):
        if {"mean", "std"} <= set(value):
            if value["std"] is None:  # one subset: no spread to show (a "± 0" would claim a measured one)
                return f"{_fmt(value['mean'])} (one subset, no ±)"
            return f"{_fmt(value['mean'])} ± {_fmt(value['std'])}"
        return ", ".join(f"{k} {_fmt(v)}" for k, v in value.items() if not isinstance(v, (dict, list)))
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else "n/a"
    return "n/a" if value is None else str(value)
