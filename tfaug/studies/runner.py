"""``tfaug study``: run a study config cell by cell, resumable, leakage-safe, and report it.

The order of work:

1. load the dataset (one-vs-rest relabelled when asked) and check that every setting is feasible, before anything
   is trained or written;
2. ``OUT/study.json`` holds the validated study; a rerun into the same OUT must match it, except that settings,
   strategies and repeats may be added (then only the new cells run);
3. every cell of ``config.expand`` not yet in ``OUT/results.jsonl`` (key: setting, strategy, repeat) runs, in
   order in this process or in parallel workers (``tfaug.studies.executors``), and its row is appended by this
   process as soon as it is complete (an interruption loses at most the running cells);
4. sample grids of repeat 0's generators, the report (``tfaug.studies.report.write_study_report``) and
   ``OUT/timing.json``.

Leakage rules: the test sets come from ``splits.cell_split`` and only real, never-seen images are scored; every
generator, judge and encoder of a cell trains on that cell's ``generator_train`` images (a CV fold's training
originals in group-aware CV) only (see ``tfaug.studies.resources``). ``OUT/splits/<setting>_r<repeat>.json``
records every index list for audit.

Determinism: every seed is derived from the study seed, the repeat and (for CV) the fold — the same for every
strategy of a repeat, so strategies are compared on paired draws — never from the order in which cells ran, so
a resumed study produces the same rows as an uninterrupted one (except the ``*_seconds`` fields).
"""
from __future__ import annotations

import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tfaug.errors import TfaugError
from tfaug.studies import config as study_config
from tfaug.studies.cells import FOLD_SEED_STEP, _State, build_state, load_data  # noqa: F401 - public via runner
from tfaug.studies.executors import ExecutorSpec, run_cells
from tfaug.studies.resources import sample_grids
from tfaug.utils.io import append_jsonl, read_json, read_jsonl, write_json

_load = load_data  # the name tests and older callers use
ADDABLE = ("settings", "strategies", "repeats")
TIME_FIELDS = ("generator_seconds", "train_seconds", "wall_seconds")


@dataclass
class StudyResult:
    """Rows of the study's cells (as in results.jsonl), the report summary and the output directory."""

    rows: list
    summary: list
    out: Path


def run_study(cfg, out, *, data_dir: str | None = None, progress: bool = True, command: str | None = None,
              executor=None) -> StudyResult:
    """Run (or resume) ``cfg`` (a ``StudyConfig``) into ``out``; see the module docstring.

    Args:
        cfg: validated study.
        out: output directory (created; a study already there must be compatible).
        data_dir: TensorFlow Datasets directory for ``tfds:`` specs.
        progress: tqdm bar over cells (and, with the local executor, the generators' own bars).
        command: the command line recorded in timing.json (default: ``sys.argv``).
        executor: a ``tfaug.studies.executors.ExecutorSpec`` (``local``, ``processes``, ``ray``); None = local.
            Every executor gives the same rows (see ``tfaug.studies.executors``).
    """
    executor = executor or ExecutorSpec()
    t_start = time.perf_counter()
    data = _load(cfg, data_dir)
    out = Path(out)
    _check_or_write_study(out, study_config.as_dict(cfg))
    cells = study_config.expand(cfg)
    keys = {c.key for c in cells}
    rows = [r for r in read_jsonl(out / "results.jsonl") if _key(r) in keys]
    done = {_key(r) for r in rows}
    pending = [c for c in cells if c.key not in done]
    bar = _bar(progress, len(cells), len(done))
    execution = {"executor": "local", "workers": 1, "threads": _local_threads()}

    def on_row(cell, row: dict) -> None:
        append_jsonl(out / "results.jsonl", row)  # the driver alone writes results, cell by cell
        rows.append(row)
        done.add(cell.key)
        if bar is not None:
            bar.set_postfix(setting=cell.setting.name, strategy=cell.strategy, acc=f"{row['accuracy']:.3f}")
            bar.update(1)

    try:
        if executor.name == "local":
            state = _State(cfg, *data[:3], out, progress)
            for cell in pending:
                on_row(cell, state.run_cell(cell))
        else:
            execution = {"executor": executor.name}
            run_cells(executor, cfg, out, pending, on_row, data_dir=data_dir, record=execution)
        if bar is not None:
            bar.close()
            bar = None
        grids = sample_grids(cfg, out, data[2], data[3])
        summary = _report(cfg, out, rows, data[2], grids)
    finally:
        if bar is not None:
            bar.close()
        _write_timing(out, time.perf_counter() - t_start, command, execution)
    return StudyResult(rows=_ordered(cfg, rows), summary=summary, out=out)


def _key(row: dict) -> tuple:
    return (row.get("setting"), row.get("strategy"), row.get("repeat"))


def _check_or_write_study(out: Path, record: dict) -> None:
    """Write study.json, or check that OUT's study matches ``record`` up to added settings/strategies/repeats."""
    path = out / "study.json"
    if path.exists():
        try:
            old = read_json(path)
        except (OSError, ValueError):
            raise TfaugError(f"{path} is unreadable; pass another --out") from None
        new = _jsonable(record)
        old = _with_new_defaults(old)
        for key in sorted(set(old) | set(new)):
            a, b = old.get(key), new.get(key)
            if key == "repeats":
                same = isinstance(a, int) and isinstance(b, int) and b >= a
            elif key in ADDABLE:
                same = isinstance(a, list) and isinstance(b, list) and all(v in b for v in a)
            else:
                same = a == b
            if not same:
                raise TfaugError(f"{out} holds a study whose {key!r} differs from this config (only settings, "
                                 f"strategies and repeats may be added); pass another --out")
    write_json(path, record)


def _with_new_defaults(old: dict) -> dict:
    """A stored study record with the fields its generator/classifier configs gained since filled with their
    defaults (an added field's default keeps the old behaviour, e.g. ``GANConfig.class_balanced``), so a study
    written by an earlier version resumes."""
    from tfaug.config import ClassifierConfig, GANConfig, to_dict

    out = dict(old)
    for key, cls in (("generator", GANConfig), ("classifier", ClassifierConfig)):
        if isinstance(out.get(key), dict):
            out[key] = {**_jsonable(to_dict(cls())), **out[key]}
    return out


def _jsonable(obj):
    import json

    return json.loads(json.dumps(obj, sort_keys=True, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))


def _ordered(cfg, rows: list) -> list:
    settings = [s.name for s in cfg.settings]
    strategies = list(cfg.strategies)
    return sorted(rows, key=lambda r: (settings.index(r["setting"]), r["repeat"], strategies.index(r["strategy"])))


def _report(cfg, out: Path, rows: list, class_names, grids: dict) -> list:
    from tfaug.studies.report import write_study_report

    strategies = list(cfg.strategies)
    return write_study_report(out, name=cfg.name, dataset=cfg.dataset, rows=_ordered(cfg, rows),
                              settings=[s.name for s in cfg.settings], strategies=strategies,
                              class_names=class_names, notes=_notes(cfg), sample_grids=grids,
                              reference="classic" if "classic" in strategies else None)


def _notes(cfg) -> list[str]:
    test = cfg.test
    held = (f"{test['per_class']} real images per class" if "per_class" in test else
            f"{test['fraction']:.0%} of every class")
    notes = [f"Test set: {held}, held out first with seed {cfg.seed} (the same in every repeat and setting); "
             "no generator, augmenter, judge or encoder ever saw it."]
    if "large_per_class" in test:
        notes.append(f"Large test set: {test['large_per_class']} real images per class (accuracy_large).")
    notes.append(f"{cfg.repeats} repeats (seeds {cfg.seed}..{cfg.seed + cfg.repeats - 1}): a new training draw, "
                 "generator and classifier per repeat; generators train on their repeat's draw only.")
    clf = cfg.classifier
    budget = f"{cfg.classifier_epochs:g} epochs" if cfg.classifier_epochs else f"{clf.steps} steps"
    notes.append(f"Classifier `{clf.name}` (width {clf.width}), {budget}, batch {clf.batch_size}, lr {clf.lr:g}.")
    notes.append(f"Generators: {cfg.generator.steps} steps, batch {cfg.generator.batch_size}, width "
                 f"{cfg.generator.width} (per-model overrides: {cfg.generator_overrides or 'none'}).")
    if getattr(cfg, "pretrain", None):
        from tfaug.studies.pretrain import note

        notes.append(note(cfg))
    if cfg.cv:
        kind = "group-aware (folds over real originals)" if cfg.cv["group_aware"] else \
            "naive (folds over the enriched set: copies cross folds, S1's leak)"
        notes.append(f"Cross-validation: {cfg.cv['folds']} folds, {kind}.")
    return notes


def _write_timing(out: Path, seconds: float, command: str | None, execution: dict | None = None) -> None:
    path = out / "timing.json"
    if not out.exists():
        return
    old = {}
    if path.exists():
        try:
            old = read_json(path)
        except (OSError, ValueError):
            old = {}
    import tensorflow as tf

    write_json(path, {"wall_seconds": round(float(old.get("wall_seconds", 0.0)) + seconds, 2),
                      "command": command or " ".join(["tfaug", *sys.argv[1:]]),
                      "execution": execution or {"executor": "local", "workers": 1, "threads": _local_threads()},
                      "machine": {"platform": platform.platform(), "cpu": _cpu_model(), "cpu_count": os.cpu_count(),
                                  "threads": {k: os.environ[k] for k in THREAD_ENV if k in os.environ},
                                  "tensorflow": tf.__version__, "python": platform.python_version()}})


THREAD_ENV = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS")


def _local_threads() -> int:
    """Intra-op threads of this process: TF_NUM_INTRAOP_THREADS when set, else every core (TensorFlow's default)."""
    try:
        return int(os.environ["TF_NUM_INTRAOP_THREADS"])
    except (KeyError, ValueError):
        return os.cpu_count() or 1


def _cpu_model() -> str:
    """The CPU's model name (Linux), else the platform's processor string."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _bar(enabled: bool, total: int, initial: int):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc="study cells", unit="cell", dynamic_ncols=True, position=0)
