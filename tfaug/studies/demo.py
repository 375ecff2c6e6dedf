"""``tfaug demo``: the end-to-end slice on one dataset, honestly measured.

For each repeat: hold out one real test set (fixed across repeats), draw k training images per class (a new draw
per repeat), train a conditional GAN on that draw only, then train the same classifier under each strategy
(baseline, bootstrap, classic, cdcgan, cdcgan+classic) with the same seed, and score it on the real test set.
Results are appended cell by cell to ``results.jsonl`` so an interrupted demo resumes where it stopped; the
report gives mean ± 95% CI and the paired difference to ``classic`` (the control a generator must beat).
"""
from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from tfaug.config import ClassifierConfig, GANConfig, to_dict
from tfaug.errors import TfaugError
from tfaug.utils.io import append_jsonl, atomic_write_text, read_json, read_jsonl, write_json

DEFAULT_STRATEGIES = ("baseline", "bootstrap", "classic", "cdcgan", "cdcgan+classic")


@dataclass(frozen=True)
class DemoConfig:
    """What the demo runs. ``quick()`` gives the seconds-long variant used by tests."""

    dataset: str = "digits"
    per_class: int = 10
    repeats: int = 3
    test_fraction: float = 0.5
    strategies: tuple = DEFAULT_STRATEGIES
    seed: int = 0
    gan: GANConfig = field(default_factory=lambda: GANConfig(steps=1500, batch_size=64, width=32, sample_every=500,
                                                             checkpoint_every=500))
    classifier: ClassifierConfig = field(default_factory=lambda: ClassifierConfig(steps=500, batch_size=32))
    export_name: str = "demo-cdcgan"

    @staticmethod
    def quick(**changes) -> "DemoConfig":
        base = DemoConfig(repeats=2, gan=GANConfig(steps=60, batch_size=32, width=8, sample_every=0, checkpoint_every=0),
                          classifier=ClassifierConfig(steps=40, batch_size=32, width=8))
        return dataclasses.replace(base, **changes)


@dataclass
class DemoResult:
    rows: list
    summary: list
    out: Path
    export_path: Path | None


def run_demo(cfg: DemoConfig, out: str | os.PathLike = "runs/demo", *, saved_models: str | None = "saved_models",
             data_dir: str | None = None, progress: bool = True) -> DemoResult:
    """Run (or resume) the demo into ``out``; export repeat 0's generator to ``saved_models`` (None: skip)."""
    from tfaug.data.experiment import draw_experiment
    from tfaug.data.sources import load_dataset
    from tfaug.studies.strategies import parse_strategy

    strategies = [parse_strategy(s) for s in cfg.strategies]
    ds = load_dataset(cfg.dataset, data_dir=data_dir)
    out = Path(out)
    _check_or_write_config(out, cfg)
    rows = read_jsonl(out / "results.jsonl")
    done = {(r["strategy"], r["repeat"]) for r in rows}
    cells = [(r, s) for r in range(cfg.repeats) for s in strategies]
    bar = _bar(progress, len(cells), sum((s.name, r) in done for r, s in cells))
    generators: dict[int, object] = {}
    try:
        for repeat, strategy in cells:
            if (strategy.name, repeat) in done:
                continue
            split = draw_experiment(ds.labels, test_fraction=cfg.test_fraction, per_class=cfg.per_class,
                                    seed=cfg.seed + repeat, split_seed=cfg.seed, synthetic=ds.synthetic)
            row = _run_cell(cfg, ds, split, repeat, strategy, out, generators, progress)
            append_jsonl(out / "results.jsonl", row)
            rows.append(row)
            if bar is not None:
                bar.set_postfix(strategy=strategy.name, acc=f"{row['accuracy']:.3f}")
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    rows = [r for r in rows if r["repeat"] < cfg.repeats and r["strategy"] in cfg.strategies]
    summary = _write_report(cfg, ds, rows, out, generators)
    export_path = None
    if saved_models and any(s.generator for s in strategies):
        from tfaug.export.savedmodel import export_run

        export_path = _previous_export(out, saved_models, cfg.export_name)
        if export_path is None:  # a rerun of a finished demo does not publish the same generator again
            export_path = export_run(_gan_dir(out, 0), name=cfg.export_name, version="auto", base=saved_models)
            write_json(out / "export.json", {"path": str(export_path.resolve())})
        _append_export_note(out, export_path)
    return DemoResult(rows=rows, summary=summary, out=out, export_path=export_path)


def _run_cell(cfg, ds, split, repeat, strategy, out, generators, progress) -> dict:
    from tfaug.studies.strategies import build_mix
    from tfaug.training.classifier import train_classifier

    x_tr, y_tr = ds.images[split.train], ds.labels[split.train]
    t0 = time.perf_counter()
    mix = build_mix(strategy, x_tr, y_tr, seed=cfg.seed + repeat,
                    generator_fn=lambda: _generator(cfg, ds, split, repeat, out, generators, progress))
    t1 = time.perf_counter()
    clf_cfg = dataclasses.replace(cfg.classifier, seed=cfg.seed + repeat)
    res = train_classifier(mix.images, mix.labels, num_classes=ds.num_classes, cfg=clf_cfg,
                           x_test=ds.images[split.test], y_test=ds.labels[split.test], augment=mix.augment)
    return {"dataset": cfg.dataset, "setting": f"k={cfg.per_class}", "strategy": strategy.name, "repeat": repeat,
            "seed": cfg.seed + repeat, **res.metrics, "n_real": mix.n_real, "n_duplicates": mix.n_duplicates,
            "n_synthetic": mix.n_synthetic, "mix_seconds": round(t1 - t0, 2),
            "train_seconds": round(time.perf_counter() - t1, 2)}


def _gan_dir(out: Path, repeat: int) -> Path:
    return out / "gan" / f"repeat{repeat}"


def _generator(cfg, ds, split, repeat, out, cache, progress):
    """The repeat's generator: trained on that repeat's draw only (resumed or reused if already on disk)."""
    if repeat in cache:
        return cache[repeat]
    from tfaug.synthesis.loader import load_generator
    from tfaug.training.gan_runner import train_gan
    from tfaug.utils.rundir import read_state

    run_dir = _gan_dir(out, repeat)
    state = read_state(run_dir) if (run_dir / "config.json").exists() else None
    if state is None or not state.get("finished"):
        gan_cfg = dataclasses.replace(cfg.gan, seed=cfg.seed + repeat)
        info = {"spec": cfg.dataset, "per_class": cfg.per_class, "test_fraction": cfg.test_fraction,
                "split_seed": cfg.seed, "draw_seed": cfg.seed + repeat, "train_indices": split.train.tolist()}
        train_gan(ds.images[split.train], ds.labels[split.train], class_names=ds.class_names, cfg=gan_cfg,
                  out=run_dir, data_info=info, resume=(run_dir / "config.json").exists(), progress=progress)
    cache[repeat] = load_generator(run_dir)
    return cache[repeat]


def _check_or_write_config(out: Path, cfg: DemoConfig) -> None:
    record = to_dict(cfg)
    record["strategies"] = list(cfg.strategies)
    path = out / "config.json"
    if path.exists():
        old = read_json(path)
        if old != record and (out / "results.jsonl").exists():
            raise TfaugError(f"{out} holds a demo with other settings; pass another --out or delete {out}")
    write_json(path, record)


def _write_report(cfg, ds, rows, out, generators) -> list:
    from tfaug.studies.report import bar_chart, markdown_table, summarize, write_csv

    names = list(cfg.strategies)
    reference = "classic" if "classic" in names else None
    summary = summarize(rows, names, reference=reference)
    write_csv(out / "results.csv", sorted(rows, key=lambda r: (r["repeat"], names.index(r["strategy"]))), ds.class_names)
    write_csv(out / "summary.csv", [{k: v for k, v in e.items() if k != "values"} for e in summary])
    title = f"{cfg.dataset}: {cfg.per_class} real images/class, {cfg.repeats} repeats, test n={rows[0]['n'] if rows else 0}"
    bar_chart(out / "accuracy.png", summary, title)
    _sample_grid(cfg, ds, out, generators)
    table = markdown_table(summary, reference=reference)
    text = "\n".join([
        f"# tfaug demo — {cfg.dataset}", "",
        f"- {cfg.per_class} real training images per class, a new draw per repeat; one held-out real test set "
        f"({cfg.test_fraction:.0%} of every class, never seen by any generator or augmenter).",
        f"- classifier `{cfg.classifier.name}`, {cfg.classifier.steps} steps, batch {cfg.classifier.batch_size}; "
        f"cDCGAN {cfg.gan.steps} steps per repeat, trained on that repeat's draw only; 1 generated image per real image.",
        "- mean ± 95% CI over repeats (t distribution); Δ is the paired difference to `classic` (same draw and seed).",
        "", table, "", "![accuracy](accuracy.png)", "", "![generated samples](samples.png)", ""])
    atomic_write_text(out / "report.md", text)
    return summary


def _sample_grid(cfg, ds, out, generators) -> None:
    """Per-class grid of repeat 0's generator: one row per class (at most 20), seeds 0-9."""
    run_dir = _gan_dir(out, 0)
    if not (run_dir / "checkpoints" / "generator.keras").exists():
        return
    from tfaug.studies.resources import save_sample_grid
    from tfaug.synthesis.loader import load_generator

    gen = generators.get(0) or load_generator(run_dir)
    save_sample_grid(gen, out / "samples.png", ds.class_names, ds.image_shape,
                     title="cDCGAN samples (repeat 0), seeds 0-9")


def _previous_export(out: Path, saved_models: str, name: str) -> Path | None:
    """The SavedModel this demo directory already published under ``saved_models/name``, if it still exists."""
    record = out / "export.json"
    if not record.exists():
        return None
    path = Path(read_json(record).get("path", ""))
    base = (Path(saved_models) / name).resolve()
    return path if path.parent == base and (path / "saved_model.pb").exists() else None


def _append_export_note(out: Path, export_path: Path) -> None:
    text = (out / "report.md").read_text(encoding="utf-8")
    atomic_write_text(out / "report.md", text + f"\nGenerator of repeat 0 exported to `{export_path}`.\n")


def _bar(enabled: bool, total: int, initial: int):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc="demo cells", unit="cell", dynamic_ncols=True, position=0)
