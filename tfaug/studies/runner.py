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

import dataclasses
import os
import platform
import sys
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfaug.errors import TfaugError
from tfaug.studies import config as study_config
from tfaug.studies.resources import CellResources, sample_grids
from tfaug.utils.io import append_jsonl, read_json, read_jsonl, write_json

FOLD_SEED_STEP = 1000  # fold i of repeat r trains with seed (cfg.seed + r) + 1000 * (i + 1)
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
    from tfaug.studies.executors import ExecutorSpec

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
            from tfaug.studies.executors import run_cells

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


def _load(cfg, data_dir: str | None) -> tuple:
    """(uint8 images, int32 labels, class names, image shape) of the study's dataset, checked for feasibility."""
    from tfaug.data.sources import load_dataset
    from tfaug.studies.splits import check_feasible, relabel

    ds = load_dataset(cfg.dataset, data_dir=data_dir)
    n_synthetic = int(np.count_nonzero(ds.synthetic))
    if n_synthetic:
        # A study draws its own test sets and adds generated images itself; a filled folder (tfaug fill) would let
        # generated images reach a test set, so it is refused rather than silently split.
        raise TfaugError(f"{cfg.dataset} holds {n_synthetic} generated images (its manifest.csv marks them); "
                         "a study needs the real images only: point it at the folder before `tfaug fill`")
    labels, class_names = ds.labels, list(ds.class_names)
    if cfg.one_vs_rest is not None:
        labels, class_names = relabel(labels, class_names, cfg.one_vs_rest)
        labels = np.asarray(labels, np.int32)
    check_feasible(cfg, labels, class_names)
    _check_cv(cfg, len(class_names))
    return ds.images, labels, class_names, ds.image_shape


def build_state(cfg, out, *, data_dir: str | None = None, resources_cls=None) -> "_State":
    """A worker's runner state: the study's data and resource caches, ``.cells`` and ``.run_cell(cell) -> row``.

    Args:
        cfg: validated study (rebuilt by the worker from plain data).
        out: the study directory the driver prepared.
        data_dir: TensorFlow Datasets directory for ``tfds:`` specs.
        resources_cls: ``CellResources`` or a subclass (parallel workers lock their runs); None = CellResources.
    """
    images, labels, class_names, _ = _load(cfg, data_dir)
    state = _State(cfg, images, labels, class_names, Path(out), progress=False, resources_cls=resources_cls)
    state.cells = study_config.expand(cfg)
    return state


# -- one cell -----------------------------------------------------------------------------------------------


class _State:
    """Data of the study plus the caches of the cells' resources (bounded: a few draws at a time)."""

    def __init__(self, cfg, images, labels, class_names, out: Path, progress: bool, resources_cls=None):
        self.cfg, self.images, self.labels, self.class_names = cfg, images, labels, class_names
        self.out, self.progress, self.resources_cls = out, progress, resources_cls or CellResources
        self.num_classes = len(class_names)
        self.cache: OrderedDict = OrderedDict()
        self.capacity = 2 * ((cfg.cv or {}).get("folds", 0) + 1)

    def float_images(self, idx) -> np.ndarray:
        from tfaug.utils.images import to_float

        return to_float(self.images[np.asarray(idx, np.int64)])

    def resources(self, scope: str, repeat: int, seed: int, idx, heldout, fold: int | None = None):
        key = (scope, repeat, fold)
        if key in self.cache:
            self.cache.move_to_end(key)
            return self.cache[key]
        suffix = "" if fold is None else f"-fold{fold}"
        res = self.resources_cls(
            self.cfg, images=self.images[idx], labels=self.labels[idx], indices=idx, class_names=self.class_names,
            root=self.out / "generators" / scope / f"r{repeat}", seed=seed, suffix=suffix,
            heldout=self.images[heldout] if len(heldout) else None, progress=self.progress,
            info={"spec": self.cfg.dataset, "one_vs_rest": self.cfg.one_vs_rest, "scope": scope, "repeat": repeat,
                  "fold": fold})
        self.cache[key] = res
        while len(self.cache) > self.capacity:
            self.cache.popitem(last=False)
        return res

    def run_cell(self, cell) -> dict:
        from tfaug.studies.splits import cell_split
        from tfaug.studies.strategies import parse_strategy

        t0 = time.perf_counter()
        cfg, setting = self.cfg, cell.setting
        strategy = parse_strategy(cell.strategy, default_model=cfg.generator.model)
        split = cell_split(cfg, self.labels, setting, cell.repeat)
        _write_split(self.out, setting.name, cell.repeat, split)
        scope = "grid" if setting.kind == "grid" else setting.name
        gen_idx = np.asarray(split.generator_train, np.int64)
        # Held-out reference of gen_copies: real images the generator never saw (in a grid, the pool of a small
        # draw still holds generator_train images).
        heldout = np.setdiff1d(np.asarray(split.pool, np.int64), gen_idx)
        res = self.resources(scope, cell.repeat, cell.seed, gen_idx, heldout)
        before = res.seconds
        minority = int(setting.minority[0]) if setting.kind == "imbalance" and setting.minority else None
        real = _Real(self, np.asarray(split.train, np.int64))
        tests = [np.asarray(split.test, np.int64)]
        if split.test_large is not None:
            tests.append(np.asarray(split.test_large, np.int64))
        fit = self.fit_predict(strategy, setting, real, split.pool, res, [self.float_images(t) for t in tests],
                               cell.seed, keep_mix=bool(cfg.cv and not cfg.cv["group_aware"]))
        row = {"dataset": cfg.dataset, "setting": setting.name, "strategy": cell.strategy, "repeat": cell.repeat,
               "seed": cell.seed}
        row.update(_metrics(self.labels[tests[0]], fit.predictions[0], self.num_classes, minority))
        if len(tests) > 1:
            large = _metrics(self.labels[tests[1]], fit.predictions[1], self.num_classes, minority)
            row["accuracy_large"], row["macro_f1_large"] = large["accuracy"], large["macro_f1"]
        if cfg.cv:
            row.update(self.cross_validate(cell, strategy, setting, real, split.pool, fit))
        model = _generator_model(cfg, strategy)
        if model is not None:
            row.update(res.generator_metrics(model))
        row.update(fit.counts)
        row["generator_seconds"] = round(res.seconds - before, 2)
        row["train_seconds"] = round(fit.seconds, 2)
        row["wall_seconds"] = round(time.perf_counter() - t0, 2)
        return row

    def fit_predict(self, strategy, setting, real: "_Real", pool, res, evals: list, seed: int,
                    keep_mix: bool = False) -> "_Fit":
        """Train the strategy on the real draw (with ``res``) and predict class ids for every array in ``evals``."""
        if strategy.method:
            return self._method(strategy, real, res, evals, seed)
        from tfaug.studies.mix import add_flag, build_study_mix

        pool = np.asarray(pool, np.int64)
        mix = build_study_mix(strategy, setting=setting, x_real=real.x, y_real=real.y, idx_real=real.idx,
                              num_classes=self.num_classes, pool_x=self.float_images(pool), pool_y=self.labels[pool],
                              pool_idx=pool, resources=res, filters=self.cfg.filters, seed=seed)
        t0 = time.perf_counter()
        model = self.train(mix, seed)
        if mix.source_flag:
            evals = [add_flag(x, 0.0) for x in evals]
        preds = [_predict(model, x) for x in evals]
        counts = {"n_real": int(mix.n_real), "n_duplicates": int(mix.n_duplicates),
                  "n_extra_real": int(mix.n_extra_real), "n_synthetic": int(mix.n_synthetic),
                  "n_rejected": int(mix.n_rejected)}
        return _Fit(preds, counts, time.perf_counter() - t0, mix if keep_mix else None)

    def train(self, mix, seed: int, rows=None):
        """Train the study classifier on ``mix`` (rows ``rows`` only when given); returns the Keras model."""
        from tfaug.training.classifier import train_classifier

        x, y = (mix.images, mix.labels) if rows is None else (mix.images[rows], mix.labels[rows])
        clf = dataclasses.replace(self.cfg.classifier, seed=seed, steps=self.cfg.classifier_steps(len(x)))
        kwargs = {"flag_channels": 1} if mix.source_flag else {}  # classic augmentation must not touch the flag
        if mix.pretrain is not None:
            px, py = mix.pretrain
            kwargs["pretrain"] = (px, py, self.cfg.classifier_steps(len(px)))
        return train_classifier(x, y, num_classes=self.num_classes, cfg=clf, augment=mix.augment,
                                runtime=self.cfg.runtime, **kwargs).model

    def _method(self, strategy, real, res, evals, seed) -> "_Fit":
        from tfaug.studies.methods import predict_method

        params = {**self.cfg.methods, **strategy.method_args}
        kwargs = {}
        if strategy.method == "disc-bank":
            kwargs["bank"] = res.generator("gan-bank")
        else:
            kwargs["generator"] = res.generator(self.cfg.methods["model"])
            if strategy.method in ("m2", "m4"):
                kwargs["embed_fn"] = res.encode_fn()
        t0 = time.perf_counter()
        preds = [predict_method(strategy.method, images=x, num_classes=self.num_classes, params=params, seed=seed,
                                **kwargs) for x in evals]
        counts = {"n_real": int(len(real.idx)), "n_duplicates": 0, "n_extra_real": 0, "n_synthetic": 0,
                  "n_rejected": 0}
        return _Fit(preds, counts, time.perf_counter() - t0, None)

    def cross_validate(self, cell, strategy, setting, real: "_Real", pool, fit: "_Fit") -> dict:
        """K-fold CV on the training side: group-aware (per source fold, fresh mix and generator) or naive."""
        from tfaug.studies import cv

        folds, aware = self.cfg.cv["folds"], self.cfg.cv["group_aware"]
        accs = []
        if aware or fit.mix is None:  # methods have no enriched mix: their folds are always over originals
            for i, (tr, va) in enumerate(cv.source_folds(real.y, folds, cell.seed)):
                seed = cell.seed + FOLD_SEED_STEP * (i + 1)
                heldout = np.setdiff1d(np.asarray(pool, np.int64), real.idx)
                res = self.resources(setting.name, cell.repeat, seed, real.idx[tr], heldout, fold=i)
                sub = _Real(self, real.idx[tr])
                got = self.fit_predict(strategy, setting, sub, pool, res, [real.x[va]], cell.seed)
                accs.append(float(np.mean(got.predictions[0] == real.y[va])))
            protocol = "group_aware"
        else:
            mix = fit.mix
            for tr, va in cv.naive_folds(mix.labels, folds, cell.seed):
                model = self.train(mix, cell.seed, rows=tr)
                accs.append(float(np.mean(_predict(model, mix.images[va]) == mix.labels[va])))
            protocol = "naive"
        return {"cv_accuracy": float(np.mean(accs)), "cv_folds": accs, "cv_protocol": protocol}


@dataclass
class _Fit:
    predictions: list
    counts: dict
    seconds: float
    mix: object


class _Real:
    """The real training draw of a cell: dataset indices, float32 [-1, 1] images, int32 labels."""

    def __init__(self, state: _State, idx: np.ndarray):
        self.idx = np.asarray(idx, np.int64)
        self.x = state.float_images(self.idx)
        self.y = state.labels[self.idx].astype(np.int32)


def _predict(model, x) -> np.ndarray:
    from tfaug.training.classifier import predict_classes

    return predict_classes(model, x)


def _metrics(y_true, y_pred, num_classes: int, minority) -> dict:
    from tfaug.metrics.classification import classification_metrics

    return classification_metrics(y_true, y_pred, num_classes, minority=minority)


def _generator_model(cfg, strategy) -> str | None:
    """The zoo model whose metrics go into this strategy's rows (None: the strategy samples no generator)."""
    if strategy.method == "disc-bank":
        return "gan-bank"
    if strategy.method:
        return cfg.methods["model"]
    flags = strategy.synthetic_only or strategy.curriculum or strategy.source_flag
    return strategy.generator if strategy.generator and (strategy.ratio > 0 or flags) else None


# -- study directory ----------------------------------------------------------------------------------------


def _key(row: dict) -> tuple:
    return (row.get("setting"), row.get("strategy"), row.get("repeat"))


def _check_cv(cfg, num_classes: int) -> None:
    """CV needs at least ``folds`` real training images in every setting (checked before anything runs)."""
    if not cfg.cv:
        return
    folds = cfg.cv["folds"]
    for s in cfg.settings:
        n = s.real if s.kind == "grid" else (s.per_class * num_classes if s.kind == "per_class" else None)
        if n is not None and n < folds:
            raise TfaugError(f"cv.folds={folds} needs at least {folds} real training images but setting "
                             f"{s.name} has {n}; lower cv.folds or drop that setting")


def _check_or_write_study(out: Path, record: dict) -> None:
    """Write study.json, or check that OUT's study matches ``record`` up to added settings/strategies/repeats."""
    path = out / "study.json"
    if path.exists():
        try:
            old = read_json(path)
        except (OSError, ValueError):
            raise TfaugError(f"{path} is unreadable; pass another --out") from None
        new = _jsonable(record)
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


def _jsonable(obj):
    import json

    return json.loads(json.dumps(obj, sort_keys=True, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))


def _write_split(out: Path, setting: str, repeat: int, split) -> None:
    path = out / "splits" / f"{setting}_r{repeat}.json"
    if not path.exists():
        write_json(path, split.to_dict())


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
