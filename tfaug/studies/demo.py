"""``tfaug demo``: the end-to-end slice on one dataset, honestly measured: a preset study run by ``run_study``.

The demo is the study (``tfaug.studies.runner``) of one setting: one real test set held out first (the same in
every repeat), k training images per class (a new draw per repeat), a conditional GAN trained on that draw only,
and the same classifier trained under each strategy (baseline, bootstrap, classic, cdcgan, cdcgan+classic) with
the same seed, scored on the real test set. Everything a study gives comes with it: results appended cell by cell
to ``results.jsonl`` (an interrupted demo resumes where it stopped), ``results.csv``, ``summary.csv``,
``summary.md``, ``study.json``, ``timing.json``; the demo adds ``report.md`` (mean ± 95% CI and the paired
difference to ``classic``, the control a generator must beat), ``accuracy.png``, ``samples.png`` (repeat 0's
generator) and exports that generator to ``SAVED_MODELS/demo-cdcgan/<N>/``.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

from tfaug.config import FEWSHOT, ClassifierConfig, GANConfig, to_dict
from tfaug.errors import TfaugError
from tfaug.utils.io import atomic_write_bytes, atomic_write_text, read_json, write_json

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
    classifier: ClassifierConfig = FEWSHOT  # the default control (classifier/fewshot)
    export_name: str = "demo-cdcgan"

    @staticmethod
    def quick(**changes) -> "DemoConfig":
        base = DemoConfig(repeats=2, gan=GANConfig(steps=60, batch_size=32, width=8, sample_every=0, checkpoint_every=0),
                          classifier=dataclasses.replace(FEWSHOT, steps=40, min_epochs=0.0, batch_size=32, width=4))
        return dataclasses.replace(base, **changes)


@dataclass
class DemoResult:
    rows: list
    summary: list
    out: Path
    export_path: Path | None


def demo_study(cfg: DemoConfig) -> dict:
    """The demo as a study mapping (``tfaug.studies.config.study_from_dict``)."""
    return {"name": f"tfaug demo - {cfg.dataset}", "dataset": cfg.dataset, "test": {"fraction": cfg.test_fraction},
            "per_class": [cfg.per_class], "strategies": list(cfg.strategies), "classifier": to_dict(cfg.classifier),
            "generator": to_dict(cfg.gan), "generator_metrics": ["kid"], "repeats": cfg.repeats, "seed": cfg.seed}


def run_demo(cfg: DemoConfig, out: str | os.PathLike = "runs/demo", *, saved_models: str | None = "saved_models",
             data_dir: str | None = None, progress: bool = True) -> DemoResult:
    """Run (or resume) the demo into ``out``; export repeat 0's generator to ``saved_models`` (None: skip)."""
    from tfaug.studies.config import as_dict, study_from_dict, strategy_of
    from tfaug.studies.runner import run_study

    study = study_from_dict(demo_study(cfg))
    out = Path(out)
    _check_same_demo(out, as_dict(study))
    res = run_study(study, out, data_dir=data_dir, progress=progress)
    models = [strategy_of(study, s).generator for s in study.strategies]
    model = next((m for m in models if m), None)
    run_dir = out / "generators" / study.settings[0].name / "r0" / model if model else None
    _write_report(cfg, res.summary, out, run_dir)
    export_path = None
    if saved_models and run_dir is not None:
        from tfaug.export.savedmodel import export_run

        export_path = _previous_export(out, saved_models, cfg.export_name)
        if export_path is None:  # a rerun of a finished demo does not publish the same generator again
            export_path = export_run(run_dir, name=cfg.export_name, version="auto", base=saved_models)
            write_json(out / "export.json", {"path": str(export_path.resolve())})
        _append_export_note(out, export_path)
    return DemoResult(rows=res.rows, summary=res.summary, out=out, export_path=export_path)


def _check_same_demo(out: Path, record: dict) -> None:
    """A demo directory holds one demo: other settings (even addable ones), or results without a study record (a
    demo of an older tfaug, whose draws differ), are refused before anything runs."""
    from tfaug.studies.runner import _jsonable

    path = out / "study.json"
    if (out / "results.jsonl").exists():
        try:
            same = read_json(path) == _jsonable(record)
        except (OSError, ValueError):
            same = False
        if not same:
            raise TfaugError(f"{out} holds a demo with other settings; pass another --out or delete {out}")


def _write_report(cfg: DemoConfig, summary: list, out: Path, run_dir: Path | None) -> None:
    from tfaug.studies.report import bar_chart, markdown_table

    reference = "classic" if "classic" in cfg.strategies else None
    title = f"{cfg.dataset}: {cfg.per_class} real images/class, {cfg.repeats} repeats"
    bar_chart(out / "accuracy.png", summary, title)
    figures = ["![accuracy](accuracy.png)", ""]
    grid = out / "samples" / f"{run_dir.parent.parent.name}_{run_dir.name}.png" if run_dir is not None else None
    if grid is not None and grid.exists():  # run_study's grid of repeat 0's generator
        atomic_write_bytes(out / "samples.png", grid.read_bytes())
        figures += ["![generated samples](samples.png)", ""]
    text = "\n".join([
        f"# tfaug demo — {cfg.dataset}", "",
        f"- {cfg.per_class} real training images per class, a new draw per repeat; one held-out real test set "
        f"({cfg.test_fraction:.0%} of every class, never seen by any generator or augmenter).",
        f"- classifier `{cfg.classifier.name}`, {cfg.classifier.steps} steps, batch {cfg.classifier.batch_size}; "
        f"cDCGAN {cfg.gan.steps} steps per repeat, trained on that repeat's draw only; 1 generated image per real image.",
        "- mean ± 95% CI over repeats (t distribution); Δ is the paired difference to `classic` (same draw and seed).",
        "- the full study report (per-class recall, protocol notes) is `summary.md`.",
        "", markdown_table(summary, reference=reference), ""] + figures)
    atomic_write_text(out / "report.md", text)


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
