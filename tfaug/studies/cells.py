"""One study cell: its split, its strategy's training mix (or S3 method), the classifier, the row of metrics.

:func:`build_state` gives the state a driver or a parallel worker runs cells with: the study's data (loaded and
checked by :func:`load_data`) plus a bounded cache of the cells' resources (``tfaug.studies.resources``), one per
draw (scope, repeat, CV fold), so that the cells of one draw share its generators, encoder, judge and teacher.
What a cell trains and builds is asked of its strategy object (``tfaug.synthesis.strategies``): its ``needs`` and
``build``. Seeds come from the study seed, the repeat and the fold only (see ``tfaug.studies.runner``).
"""
from __future__ import annotations

import dataclasses
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfaug.errors import TfaugError
from tfaug.studies import config as study_config
from tfaug.studies.resources import CellResources
from tfaug.utils.io import write_json

FOLD_SEED_STEP = 1000  # fold i of repeat r trains with seed (cfg.seed + r) + 1000 * (i + 1)


def load_data(cfg, data_dir: str | None) -> tuple:
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
    images, labels, class_names, _ = load_data(cfg, data_dir)
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

    def test_images(self):
        """uint8 images of the study's test set (``test_large`` when asked: the same in every setting and repeat),
        which a ``generator.pretrain`` source must not contain; None without pretraining."""
        if not getattr(self.cfg, "pretrain", None):
            return None
        if getattr(self, "_test_images", None) is None:
            from tfaug.studies.splits import cell_split

            split = cell_split(self.cfg, self.labels, self.cfg.settings[0], 0)
            test = split.test_large if split.test_large is not None else split.test
            self._test_images = self.images[np.asarray(test, np.int64)]
        return self._test_images

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
                  "fold": fold}, exclude=self.test_images())
        self.cache[key] = res
        while len(self.cache) > self.capacity:
            self.cache.popitem(last=False)
        return res

    def run_cell(self, cell) -> dict:
        from tfaug.studies.splits import cell_split

        t0 = time.perf_counter()
        cfg, setting = self.cfg, cell.setting
        strategy = study_config.strategy_of(cfg, cell.strategy)
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
        if split.validation is not None:
            tests.append(np.asarray(split.validation, np.int64))
        fit = self.fit_predict(strategy, setting, real, split.pool, res, [self.float_images(t) for t in tests],
                               cell.seed, keep_mix=bool(cfg.cv and not cfg.cv["group_aware"]))
        row = {"dataset": cfg.dataset, "setting": setting.name, "strategy": cell.strategy, "repeat": cell.repeat,
               "seed": cell.seed}
        # an imbalanced draw is also scored by head / middle / tail thirds of its classes (sorted by training count)
        counts = (np.bincount(self.labels[real.idx], minlength=self.num_classes) if setting.kind == "imbalance"
                  else None)
        row.update(_metrics(self.labels[tests[0]], fit.predictions[0], self.num_classes, minority, counts))
        if split.test_large is not None:
            large = _metrics(self.labels[tests[1]], fit.predictions[1], self.num_classes, minority)
            row["accuracy_large"], row["macro_f1_large"] = large["accuracy"], large["macro_f1"]
        if split.validation is not None:
            val = _metrics(self.labels[tests[-1]], fit.predictions[-1], self.num_classes, minority)
            row.update({f"val_{m}": val[m] for m in ("accuracy", "macro_f1", "balanced_accuracy")})
        if cfg.cv:
            row.update(self.cross_validate(cell, strategy, setting, real, split.pool, fit))
        model = strategy.metrics_generator
        if model is not None:
            row.update(res.generator_metrics(model))
        row.update(fit.counts)
        row["generator_source"] = _generator_source(cfg, strategy)
        row["generator_seconds"] = round(res.seconds - before, 2)
        row["train_seconds"] = round(fit.seconds, 2)
        row["wall_seconds"] = round(time.perf_counter() - t0, 2)
        return row

    def fit_predict(self, strategy, setting, real: "_Real", pool, res, evals: list, seed: int,
                    keep_mix: bool = False) -> "_Fit":
        """Train the strategy on the real draw (with ``res``) and predict class ids for every array in ``evals``."""
        if strategy.method:
            return self._method(strategy, real, res, evals, seed)
        from tfaug.augment.kinds import is_auto
        from tfaug.synthesis.strategies import Counts, Draw, add_flag

        draw = Draw(x=real.x, y=real.y, idx=real.idx, num_classes=self.num_classes, seed=seed)
        if strategy.needs.pool:
            pool = np.asarray(pool, np.int64)
            draw.pool_x, draw.pool_y, draw.pool_idx = self.float_images(pool), self.labels[pool], pool
        mix = strategy.build(draw, Counts.of(setting), res)
        if is_auto(mix.augment):  # a bare `classic`: the draw's own choice (validated on the draw, once per draw)
            mix.augment = res.augment_spec()
        t0 = time.perf_counter()
        model = self.train(mix, seed)
        if mix.source_flag:
            evals = [add_flag(x, 0.0) for x in evals]
        preds = [_predict(model, x) for x in evals]
        return _Fit(preds, mix.counts(), time.perf_counter() - t0, mix if keep_mix else None)

    def train(self, mix, seed: int, rows=None):
        """Train the study classifier on ``mix`` (rows ``rows`` only when given); returns the Keras model."""
        from tfaug.training.classifier import train_classifier
        from tfaug.training.mixing import mix_kwargs

        x, y = (mix.images, mix.labels) if rows is None else (mix.images[rows], mix.labels[rows])
        # The budget follows the real draw (a strategy that adds images trains as long as its control); with
        # `epochs` it follows the training set, as configured.
        n = len(x) if self.cfg.classifier_epochs is not None else mix.n_real
        clf = dataclasses.replace(self.cfg.classifier, seed=seed, steps=self.cfg.classifier_steps(n),
                                  min_epochs=0.0, max_steps=0)
        kwargs = {"flag_channels": 1} if mix.source_flag else {}  # classic augmentation must not touch the flag
        if mix.pretrain is not None:
            px, py = mix.pretrain
            kwargs["pretrain"] = (px, py, self.cfg.classifier_steps(len(px)))
        kwargs.update(mix_kwargs(mix, self.num_classes, rows))  # long-tail and mixing blocks, soft targets (none: {})
        return train_classifier(x, y, num_classes=self.num_classes, cfg=clf, augment=mix.augment,
                                runtime=self.cfg.runtime, **kwargs).model

    def _method(self, strategy, real, res, evals, seed) -> "_Fit":
        from tfaug.studies.methods import predict_method

        params = {**self.cfg.methods, **strategy.method_args}
        kwargs = {}
        if strategy.method == "disc-bank":
            kwargs["bank"] = res.generator(strategy.method_model)
        else:
            kwargs["generator"] = res.generator(strategy.method_model)
            if strategy.needs.encoder:
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


def _generator_source(cfg, strategy) -> str:
    """What the cell's pretrained generator learnt from beyond its draw (``generator.pretrain``: a dataset spec or
    ``majority``); "" when the strategy samples no pretrained generator."""
    pretrain = getattr(cfg, "pretrain", None)
    if not pretrain or cfg.generator.model not in strategy.needs.generators:
        return ""
    return str(pretrain["source"])


def _predict(model, x) -> np.ndarray:
    from tfaug.training.classifier import predict_classes

    return predict_classes(model, x)


def _metrics(y_true, y_pred, num_classes: int, minority, train_counts=None) -> dict:
    from tfaug.utils.classification import classification_metrics

    return classification_metrics(y_true, y_pred, num_classes, minority=minority, train_counts=train_counts)


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


def _write_split(out: Path, setting: str, repeat: int, split) -> None:
    path = out / "splits" / f"{setting}_r{repeat}.json"
    if not path.exists():
        write_json(path, split.to_dict())
