"""``run_enrich``: protocol, budgeted selection, the choice, the final fit, the single test read and the outputs.

Outputs in ``out`` (each written atomically; a rerun with the same ``out`` continues):

- ``protocol.json``: dataset, settings, the split (training-side and test indices) and the candidates;
- ``results.jsonl``: one line per validation fit (and per early stop), appended as they finish;
- ``choice.json``: the chosen strategy, written before the test set is read;
- ``saved_models/classifier/1``: the classifier trained on the whole training side (``serving_default``: uint8
  images -> probabilities; class names in its metadata);
- when a generator wins: ``saved_models/<dataset>_<model>/1`` (ready for ``tfaug serve --model-base``) and
  ``enriched/`` (the training side's real images plus generated ones, with ``manifest.csv``, as ``tfaug fill``
  writes them);
- ``test_split.npz`` (``x`` uint8, ``y``, ``indices``): the test set the verdict was scored on;
- ``test_reads.jsonl``: one line per test read; a resumed run whose choice differs from an earlier read's says so
  in ``verdict.json`` (``warning``) and the report;
- ``verdict.json`` and ``report.html``.
"""
from __future__ import annotations

import platform
import re
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfaug.enrich import candidates as cands
from tfaug.enrich.protocol import EnrichConfig, SealedTest, check_classes, config_record, make_protocol
from tfaug.enrich.select import Budget, run_selection
from tfaug.errors import TfaugError
from tfaug.utils.io import append_jsonl, read_json, read_jsonl, write_json

TEST_READS = "test_reads.jsonl"  # one line per test read (a resumed run that chose again reads it again)


@dataclass
class TrainSide:
    """The images selection and final training may see: uint8 [N, H, W, C], int32 labels, dataset indices."""

    images: np.ndarray
    labels: np.ndarray
    indices: np.ndarray
    class_names: list


def _real_dataset(spec: str, data_dir: str | None):
    from tfaug.data.sources import load_dataset

    ds = load_dataset(spec, data_dir=data_dir)
    if ds.synthetic.any():
        warnings.warn(f"{int(ds.synthetic.sum())} generated images (marked in manifest.csv) are left out: enrich "
                      "starts from real images only", stacklevel=2)
        ds = ds.subset(np.flatnonzero(~ds.synthetic))
    if ds.num_classes < 2:
        raise TfaugError(f"dataset {spec!r} has {ds.num_classes} class; enrich needs at least 2 classes")
    return ds


def _start(out: Path, spec: str, ds, cfg: EnrichConfig) -> tuple[dict, list[str]]:
    """Write protocol.json, or check that the one in ``out`` describes this same run (resume)."""
    path = out / "protocol.json"
    if path.exists():
        stored = read_json(path)
        if stored.get("dataset") != spec or stored.get("config") != config_record(cfg):
            raise TfaugError(f"{out} holds an enrich run of another dataset or settings; choose a new --out, or "
                             "rerun with the same --dataset and options to continue it")
        return stored["protocol"], stored["candidates"]
    proto = make_protocol(ds.labels, ds.class_names, cfg)
    candidates = cands.candidate_list(list(cfg.strategies), proto.imbalanced)
    write_json(path, {"dataset": spec, "config": config_record(cfg), "protocol": proto.to_dict(),
                      "candidates": candidates, "class_names": list(ds.class_names),
                      "image_shape": list(ds.image_shape), "n_images": len(ds)})
    return proto.to_dict(), candidates


def run_enrich(spec: str, out, *, budget_minutes: float = 30.0, cfg: EnrichConfig | None = None,
               progress: bool = True, command: str | None = None, data_dir: str | None = None) -> dict:
    """Run ``tfaug enrich`` (see the module docstring); returns the verdict (also in ``out/verdict.json``).

    Args:
        spec: dataset spec (``folder:PATH``, ``npz:PATH``, ``digits`` ...).
        out: run directory (created; an existing enrich run of the same dataset and settings is continued).
        budget_minutes: wall-time budget of the whole run, > 0.
        cfg: settings (None: :class:`EnrichConfig` defaults).
        progress: show the selection bar.
        command: the command line, recorded for reproduction.
        data_dir: TensorFlow Datasets directory for ``tfds:`` specs.

    Raises:
        TfaugError: bad data (a class with fewer than 3 images, one class), another run in ``out``, or no
            candidate finished within the budget.
    """
    if not budget_minutes > 0:
        raise TfaugError(f"--budget must be > 0 minutes, got {budget_minutes}")
    cfg = cfg or EnrichConfig()
    budget = Budget(60.0 * budget_minutes)
    out = Path(out)
    ds = _real_dataset(spec, data_dir)
    check_classes(ds.labels, ds.class_names)  # before anything is written
    out.mkdir(parents=True, exist_ok=True)
    proto, candidates = _start(out, spec, ds, cfg)
    if proto["reason"]:  # say it now, not only in the verdict
        warnings.warn(proto["reason"], stacklevel=2)
    train = np.asarray(proto["train"], np.int64)
    side = TrainSide(ds.images[train], ds.labels[train], train, list(ds.class_names))
    rows = run_selection(out, side, candidates, cfg, budget, progress=progress)

    from tfaug.enrich.verdict import candidate_table, choose

    chosen, why = choose(rows, candidates)
    write_json(out / "choice.json", {"chosen": chosen, "why": why})  # fixed before the test set is read
    outputs = _final(out, spec, side, chosen, cfg, progress)
    test, reads = None, []
    if proto["name"] == "holdout":
        test_idx = np.asarray(proto["test"], np.int64)
        append_jsonl(out / TEST_READS, {"chosen": chosen, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
        reads = read_jsonl(out / TEST_READS)
        test = _score_test(out, SealedTest(ds.images[test_idx], ds.labels[test_idx], test_idx),
                           outputs["classifier"], len(ds.class_names), cfg.seed)
    table = candidate_table(rows, candidates)
    chosen_row = next(r for r in table if r["candidate"] == chosen)
    verdict = {
        "dataset": spec, "chosen": chosen, "why": why, "generative": cands.is_generative(chosen),
        "validation_accuracy": chosen_row["accuracy"], "delta_vs_classic": chosen_row["delta_vs_classic"],
        "test": test, "class_names": list(ds.class_names),
        "protocol": {"name": proto["name"], "reason": proto["reason"], "imbalanced": proto["imbalanced"],
                     "n_train": int(len(train)), "n_test": int(len(proto["test"])),
                     "test_fraction": cfg.test_fraction, "val_fraction": cfg.val_fraction,
                     "max_repeats": cfg.max_repeats, "min_repeats": cfg.min_repeats, "seed": cfg.seed,
                     "classifier": config_record(cfg)["classifier"]["name"],
                     "test_reads": len(reads)},
        "candidates": table, "outputs": outputs,
        "budget": {"minutes": budget_minutes, "seconds_used": round(budget.elapsed(), 1)},
        "command": command or f"tfaug enrich --dataset {spec} --out {out}", "machine": machine(),
    }
    earlier = sorted({r["chosen"] for r in reads[:-1]} - {chosen})
    if earlier:  # a resumed run that chose differently: the test set has been looked at for another model
        verdict["warning"] = (f"the test set of this --out was also read for {', '.join(earlier)} in an earlier run; "
                              "this test score is no longer a single clean read (start a new --out for one)")
    if test is None:
        verdict["estimate"] = {"accuracy": chosen_row["accuracy"], "note": proto["reason"]}
    from tfaug.enrich.report_html import write_report

    write_report(out, verdict, ds, side)
    verdict["budget"]["seconds_used"] = round(budget.elapsed(), 1)
    write_json(out / "verdict.json", verdict)
    return verdict


def _final(out: Path, spec: str, side: TrainSide, chosen: str, cfg: EnrichConfig, progress: bool) -> dict:
    """Train ``chosen`` on the whole training side and export it (and its generator, and the enriched dataset)."""
    from tfaug.export.savedmodel import export_classifier, export_run

    base = out / "saved_models"
    res = cands.draw_resources(out / "work" / "final", side.images, side.labels, side.indices, side.class_names,
                               cfg.gan, cfg.seed, progress=progress)
    fit = cands.fit_candidate(chosen, side.images, side.labels, None, None, res, cfg.classifier, cfg.seed,
                              num_classes=len(side.class_names), progress="final classifier" if progress else False)
    meta = {"class_names": side.class_names, "strategy": chosen, "dataset": spec, "model_kind": "classifier",
            "train_indices": side.indices.tolist()}
    clf = export_classifier(fit.model, metadata=meta, name="classifier", version=1, base=base, overwrite=True)
    outputs = {"classifier": str(clf.relative_to(out))}
    model = cands.generator_model(chosen)
    if model:
        name = f"{_slug(spec)}_{model}"
        gen = export_run(out / "work" / "final" / model, name=name, version=1, base=base, overwrite=True)
        outputs.update(generator=str(gen.relative_to(out)), generator_name=name)
        outputs["enriched"] = _enriched(out, side, gen, cfg)
    return outputs


def _enriched(out: Path, side: TrainSide, generator_dir: Path, cfg: EnrichConfig) -> str:
    """``out/enriched``: the training side's real images in class folders, topped up by ``tfaug fill``."""
    from tfaug.synthesis.fill import fill_dataset
    from tfaug.utils.images import save_png
    from tfaug.utils.io import atomic_directory

    dest = out / "enriched"
    if not dest.exists():
        real = out / "work" / "train_real"
        if not real.exists():
            with atomic_directory(real) as tmp:
                for i, (img, y) in enumerate(zip(side.images, side.labels)):
                    save_png(tmp / side.class_names[int(y)] / f"real_{int(side.indices[i]):06d}.png", img)
        target = cfg.min_per_class or 2 * int(np.bincount(side.labels).max())
        fill_dataset(real, generator_dir, min_per_class=target, out_root=dest, seed=cfg.seed, progress=False)
    return str(dest.relative_to(out))


def _score_test(out: Path, test: SealedTest, classifier_dir: str, num_classes: int, seed: int) -> dict:
    """The single test read: the exported classifier (SavedModel) predicts the test images; CIs by bootstrap."""
    import tensorflow as tf

    from tfaug.enrich.verdict import bootstrap_ci
    from tfaug.utils.io import atomic_write_bytes

    x, y = test.read()
    fn = tf.saved_model.load(str(out / classifier_dir)).signatures["serving_default"]
    probs = np.concatenate([fn(images=tf.constant(x[i:i + 256]))["probabilities"].numpy()
                            for i in range(0, len(x), 256)])
    import io

    buf = io.BytesIO()
    np.savez_compressed(buf, x=x, y=y, indices=test.indices, predictions=np.argmax(probs, -1))
    atomic_write_bytes(out / "test_split.npz", buf.getvalue())
    return bootstrap_ci(y, np.argmax(probs, axis=-1), num_classes, seed=seed)


def _slug(spec: str) -> str:
    name = Path(str(spec).split(":")[-1].rstrip("/")).name or str(spec)
    return re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_").lower() or "dataset"


def machine() -> str:
    """CPU model and core count of this machine (for the verdict and the report)."""
    import os

    model, extras = platform.processor() or platform.machine(), []
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
        elif line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            extras = [name for flag, name in (("avx512f", "AVX-512"), ("amx_tile", "AMX")) if flag in flags]
            break
    with_ = f" with {'/'.join(extras)}" if extras else ""
    return f"{model}{with_}, {os.cpu_count()} cores, {platform.system()}"


