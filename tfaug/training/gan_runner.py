"""Train any zoo model (``cfg.model``) into a run directory, with progress, sample grids, checkpoints and resume.

The loop is a plain Python loop over a compiled ``train_step`` (the model's own Keras ``train_step`` wrapped in
``tf.function``), so that training can stop and resume at any checkpointed step, not only at epoch ends.
It relies only on the zoo contract (``tfaug.models.base.GenerativeModel``): ``prepare`` runs once on a fresh run;
``networks()``, ``optimizers()`` and ``state_variables()`` are what a checkpoint saves and restores;
``sampling_network`` becomes ``checkpoints/generator.keras``; every tracker ``train_step`` returns is logged.

With ``cfg.best_every`` > 0 the runner also keeps the best sampling network: every ``best_every`` steps it
scores a fixed sample (fixed classes and seeds) against a fixed draw of the training images with
``tfaug.utils.kid.pixel_kid`` (KID on downsampled pixels, cheap; it ranks checkpoints of one run) and, when
the score improves, writes ``checkpoints/best/generator.keras`` atomically and ``checkpoints/best.json``.
See ``tfaug.utils.rundir`` for the other files it writes.

``runtime`` (a :class:`tfaug.config.RuntimeConfig`) says where and at which precision the step runs: the model is
built inside ``tfaug.training.distribute.runtime_scope``, the dataset is distributed with the strategy, every
BatchNorm layer uses global-batch statistics when there are several replicas, and the step is
``distribute.make_train_function`` (the same code for every strategy). Only the chief worker writes ``out``;
other workers of a multi-worker run write to a temporary directory that is deleted at the end. The runtime is
recorded in config.json under ``"runtime"`` but a resumed run may use another one; without a ``runtime`` a
resumed run keeps its stored precision (:func:`stored_runtime`).
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfaug import __version__
from tfaug.config import GANConfig, RuntimeConfig, to_dict
from tfaug.errors import TfaugError
from tfaug.utils import rundir as rd
from tfaug.utils.images import as_float_images, save_class_grid, to_uint8
from tfaug.utils.io import append_jsonl, atomic_directory, atomic_write_text, read_json, read_jsonl, write_json

MAX_GRID_CLASSES = 20  # sample grids show at most this many class rows
GRID_COLUMNS = 8
BEST_DIR = "best"  # checkpoints/best/generator.keras
BEST_JSON = "best.json"  # checkpoints/best.json: {"step", "score", "metric"}
BEST_SAMPLE = 256  # real and generated images scored for the best checkpoint
BEST_SEED_OFFSET = 1_000_003  # generated images for the score use seeds apart from the sample grids'

log = logging.getLogger("tfaug.training")



@dataclass
class GANRun:
    """Result of :func:`train_gan`: the trained model, its run directory and the logged history."""

    model: object
    run_dir: Path
    history: list[dict]
    step: int


def train_gan(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    class_names,
    cfg: GANConfig,
    out: str | os.PathLike,
    data_info: dict | None = None,
    resume: bool = False,
    progress: bool = True,
    log_every: int | None = None,
    runtime: RuntimeConfig | None = None,
) -> GANRun:
    """Train the zoo model ``cfg.model`` on (images, labels) and write a run directory.

    Args:
        images: uint8 [N, H, W, C] (or float32 in [-1, 1]) training images; N >= 1.
        labels: int [N] class ids in [0, len(class_names)).
        class_names: K names; K >= 1.
        cfg: GAN configuration; with ``resume`` the stored config is used and only ``cfg.steps`` may grow.
        out: run directory (created; must not hold a run unless ``resume``).
        data_info: description of the data stored in config.json (spec, subset, training indices ...).
        resume: continue the run in ``out`` from its last checkpoint.
        progress: show a tqdm progress bar.
        log_every: history interval in steps (default: ~100 records per run).
        runtime: strategy, devices, mixed precision and XLA (None = ``RuntimeConfig()``: one device, float32; with
            ``resume``, the stored run's precision on one device). ``mixed_precision="auto"`` is resolved to what
            this machine supports and recorded so. The global batch ``min(cfg.batch_size, N)`` must be divisible by the replica count.

    Raises:
        TfaugError: bad inputs, a batch not divisible by the replicas, ``multiworker`` without ``TF_CONFIG``, a
            model XLA cannot compile.
    """
    images = np.asarray(images)
    labels = np.asarray(labels, dtype=np.int32)
    if len(images) == 0:
        raise TfaugError("no training images: the selected subset is empty")
    if len(images) != len(labels):
        raise TfaugError(f"{len(images)} images but {len(labels)} labels")
    from tfaug.training import distribute

    if runtime is None and resume:
        runtime = stored_runtime(out, precision_only=True)
    runtime = distribute.resolve_runtime(runtime)

    # The strategy first: a multi-worker strategy must exist before other TensorFlow work, and a bad runtime
    # (no TF_CONFIG, missing devices) must fail before the run directory is made.
    with distribute.runtime_scope(runtime) as strategy:
        distribute.check_global_batch(min(cfg.batch_size, len(images)), strategy)
        chief = distribute.is_chief()
        run_dir = rd.prepare_run_dir(out, resume) if chief else Path(out)
        if resume:
            stored = rd.read_run_config(run_dir)
            cfg = GANConfig(**{**stored["gan"], "steps": max(cfg.steps, stored["gan"]["steps"])})
        image_shape = tuple(int(d) for d in images.shape[1:])
        config = {
            "kind": cfg.model,
            "gan": to_dict(cfg),
            "data": {**(data_info or {}), "image_shape": list(image_shape), "num_classes": len(class_names),
                     "class_names": list(class_names), "n_train": int(len(images))},
            "runtime": to_dict(runtime),
            "tfaug_version": __version__,
        }
        # Non-chief workers of a multi-worker run write everything to a scratch directory, deleted at the end.
        write_dir = run_dir if chief else Path(tempfile.mkdtemp(prefix="tfaug-worker-"))
        try:
            run = _train(images, labels, class_names, cfg, runtime, strategy, config, run_dir, write_dir,
                         resume, progress, log_every)
        finally:
            if not chief:
                shutil.rmtree(write_dir, ignore_errors=True)
    run.run_dir = run_dir
    return run


def stored_runtime(run_dir: str | os.PathLike, *, precision_only: bool = False) -> RuntimeConfig | None:
    """The ``RuntimeConfig`` recorded in ``run_dir``/config.json (old boolean precisions read as ``fp16``), or
    None when there is no readable run there; ``precision_only`` keeps only its ``mixed_precision`` (strategy and
    devices belong to the machine a run resumes on)."""
    path = Path(run_dir) / rd.CONFIG
    if not path.is_file():
        return None
    try:
        stored = read_json(path).get("runtime") or {}
        runtime = RuntimeConfig(**stored)
    except (OSError, ValueError, TypeError, AttributeError, TfaugError):
        return None
    return RuntimeConfig(mixed_precision=runtime.mixed_precision) if precision_only else runtime


def _train(images, labels, class_names, cfg, runtime, strategy, config, run_dir, write_dir, resume, progress,
           log_every) -> GANRun:
    """The body of :func:`train_gan` inside the runtime's strategy scope; writes go to ``write_dir``."""
    import keras

    from tfaug.data.pipeline import make_step_pipeline
    from tfaug.models.zoo import build_model
    from tfaug.training import distribute
    from tfaug.training.tensorboard import GANBoard

    num_classes = len(class_names)
    image_shape = tuple(config["data"]["image_shape"])
    batch = min(cfg.batch_size, len(images))
    keras.utils.set_random_seed(cfg.seed)
    # Built before config.json is written, so a bad option leaves no half-made run behind.
    model = build_model(cfg.model, image_shape, num_classes, cfg)
    write_json(write_dir / rd.CONFIG, config)
    start = 0
    state = rd.read_state(run_dir) if resume else None  # raises when checkpoints exist but none is complete
    if state is not None:
        start = restore_checkpoint(model, run_dir)
    else:
        if resume:
            log.warning("%s has no checkpoint yet; the resumed run starts at step 0", run_dir)
        # One-off phase (e.g. BAGAN's autoencoder); its results live in weights, so a resume skips it.
        model.prepare(as_float_images(images), labels, progress=progress)
    history = [r for r in read_jsonl(run_dir / rd.HISTORY) if r.get("step", 0) <= start]
    if resume:  # drop records logged after the checkpoint we resumed from
        _rewrite_history(write_dir, history)
    run_dir = write_dir

    distribute.synchronize_batchnorm(model.networks().values(), strategy)
    # Batch k depends only on (seed, k): a resumed run sees the batches an uninterrupted one sees.
    ds = make_step_pipeline(images, labels, batch, seed=cfg.seed, start_step=start, balanced=cfg.class_balanced)
    ds = distribute.distribute_dataset(ds, strategy)
    step_fn = distribute.make_train_function(model.train_step, strategy, jit_compile=runtime.jit_compile,
                                             name=cfg.model)
    log_every = log_every or max(1, cfg.steps // 100)
    grid_classes = list(range(min(num_classes, MAX_GRID_CLASSES)))
    scorer = _BestScorer(images, labels, cfg.seed, run_dir) if cfg.best_every else None
    board = GANBoard(run_dir, model)  # RUN/tensorboard, losses.png, the grey-samples hint
    bar = _progress(progress, cfg.steps, start, f"train-gan {run_dir.name}")
    t0, step = time.perf_counter(), start
    try:
        for step_batch in ds:
            if step >= cfg.steps:
                break
            logs = step_fn(step_batch)
            step += 1
            if bar is not None:
                bar.update(1)
            if step % log_every == 0 or step == cfg.steps:
                record = {"step": step, "time_s": round(time.perf_counter() - t0, 3),
                          **{k: float(v) for k, v in logs.items()}}
                if getattr(model, "ada", None) is not None and "ada_p" not in record:
                    record["ada_p"] = model.ada_p
                append_jsonl(run_dir / rd.HISTORY, record)
                history.append(record)
                board.scalars(step, record)
                for m in model.metrics:
                    m.reset_state()
                if bar is not None:
                    shown = [k for k in record if k not in ("step", "time_s")][:3]
                    bar.set_postfix({k: f"{record[k]:.3f}" for k in shown})
            if scorer is not None and (step % cfg.best_every == 0 or step == cfg.steps):
                scorer.update(model, step)
            if cfg.sample_every and step % cfg.sample_every == 0 and step < cfg.steps:
                write_sample_grid(model, run_dir / rd.SAMPLES / f"step_{step:06d}.png", grid_classes, class_names, step)
                board.grid(step, run_dir / rd.SAMPLES / f"step_{step:06d}.png")
            if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and step < cfg.steps:
                save_checkpoint(model, run_dir, step, finished=False)
    except KeyboardInterrupt:
        save_checkpoint(model, run_dir, step, finished=False)
        raise
    finally:
        if bar is not None:
            bar.close()
    save_checkpoint(model, run_dir, step, finished=True)
    write_sample_grid(model, run_dir / rd.SAMPLES / "final.png", grid_classes, class_names, step)
    board.grid(step, run_dir / rd.SAMPLES / "final.png")
    board.finish(history, step, grid_classes)
    return GANRun(model=model, run_dir=run_dir, history=history, step=step)


class _BestScorer:
    """Scores the sampling network on a fixed sample and keeps ``checkpoints/best`` when the score improves.

    The real side is a fixed draw of up to ``BEST_SAMPLE`` training images; the generated side uses the same
    class ids (so the class balance matches) with fixed seeds, so scores of different steps are comparable.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, seed: int, run_dir: Path):
        rng = np.random.default_rng(seed)
        idx = np.sort(rng.choice(len(images), min(BEST_SAMPLE, len(images)), replace=False))
        self.real = as_float_images(images[idx])
        self.class_ids = labels[idx].astype(np.int32)
        self.seeds = np.arange(len(idx), dtype=np.int64) + BEST_SEED_OFFSET
        self.run_dir = run_dir
        path = run_dir / rd.CHECKPOINTS / BEST_JSON
        self.best = read_json(path) if path.exists() else None

    def update(self, model, step: int) -> float | None:
        """Score the model now; save it as best when better. Returns the score (None when too few images)."""
        from tfaug.utils.kid import pixel_kid

        if len(self.real) < 2:
            return None
        score = pixel_kid(self.real, model.sample(self.class_ids, self.seeds))
        if self.best is None or score < float(self.best["score"]):
            ckpt = self.run_dir / rd.CHECKPOINTS
            ckpt.mkdir(parents=True, exist_ok=True)
            with atomic_directory(ckpt / BEST_DIR, overwrite=True) as tmp:
                model.sampling_network.save(str(tmp / rd.GENERATOR))
            self.best = {"step": int(step), "score": float(score), "metric": "pixel_kid",
                         "n_images": int(len(self.real))}
            write_json(ckpt / BEST_JSON, self.best)
        return score


def write_sample_grid(model, path: Path, class_ids, class_names, step: int) -> None:
    """One row per class, ``GRID_COLUMNS`` fixed seeds, from the sampling (EMA) network."""
    ids = np.repeat(np.asarray(class_ids, np.int32), GRID_COLUMNS)
    seeds = np.tile(np.arange(GRID_COLUMNS, dtype=np.int64), len(class_ids))
    imgs = to_uint8(model.sample(ids, seeds)).reshape(len(class_ids), GRID_COLUMNS, *model.image_shape)
    save_class_grid(path, list(imgs), [class_names[c] for c in class_ids], title=f"step {step}")


def save_checkpoint(model, run_dir: Path, step: int, finished: bool) -> None:
    """Atomically write checkpoints/last (``networks()`` weights, ``optimizers()`` and ``state_variables()``
    values, step) and checkpoints/generator.keras (``sampling_network``)."""
    ckpt = run_dir / rd.CHECKPOINTS
    ckpt.mkdir(parents=True, exist_ok=True)
    with atomic_directory(ckpt / rd.LAST, overwrite=True) as tmp:
        for name, net in model.networks().items():
            net.save_weights(str(tmp / f"{name}.weights.h5"))
        arrays = {}
        for key, (opt, _) in model.optimizers().items():
            for i, v in enumerate(_optimizer_variables(opt)):
                arrays[f"opt.{key}.{i:04d}"] = np.asarray(v)
        for key, var in model.state_variables().items():
            arrays[f"state.{key}"] = np.asarray(var)
        np.savez(tmp / rd.OPTIMIZERS, **arrays)
        write_json(tmp / rd.STATE, {"step": int(step), "finished": bool(finished)})
    # Keras insists on the .keras suffix, so save to a hidden sibling and rename over the old file.
    tmp_path = ckpt / f".tmp-{os.getpid()}-{rd.GENERATOR}"
    try:
        model.sampling_network.save(str(tmp_path))
        os.replace(tmp_path, ckpt / rd.GENERATOR)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    # A new complete checkpoint is published: what earlier interrupted saves left can go now.
    rd.clean_checkpoint_leftovers(run_dir)


def restore_checkpoint(model, run_dir: Path) -> int:
    """Load the newest complete checkpoint (``checkpoints/last``, or after a kill during a save the complete
    sibling it left, see :func:`tfaug.utils.rundir.find_checkpoint`) into ``model`` (networks, optimizers,
    state variables); returns the stored step."""
    found = rd.find_checkpoint(run_dir) if rd.read_state(run_dir) is not None else None
    if found is None:
        raise TfaugError(f"{run_dir} has no checkpoint to resume from")
    last, state = found
    try:
        for name, net in model.networks().items():
            net.load_weights(str(last / f"{name}.weights.h5"))
        data = np.load(last / rd.OPTIMIZERS)
    except (OSError, ValueError) as exc:
        raise TfaugError(f"checkpoint in {last} is unreadable ({exc}); start a new run") from None
    for key, (opt, variables) in model.optimizers().items():
        if not opt.built:
            opt.build(variables)
        names = sorted(k for k in data.files if k.startswith(f"opt.{key}."))
        opt_vars = _optimizer_variables(opt)
        if len(names) != len(opt_vars):
            raise TfaugError(f"checkpoint in {last} does not match this model ({key} optimizer); start a new run")
        for var, k in zip(opt_vars, names):
            var.assign(data[k])
    for key, var in model.state_variables().items():
        if f"state.{key}" not in data.files:
            raise TfaugError(f"checkpoint in {last} lacks the model state {key!r}; start a new run")
        var.assign(data[f"state.{key}"])
    return int(state["step"])


def _optimizer_variables(opt) -> list:
    """The variables a checkpoint stores for ``opt``: a LossScaleOptimizer's inner optimizer's (the loss scale
    re-adapts in a few steps), so a run can resume with or without mixed precision."""
    return list(getattr(opt, "inner_optimizer", opt).variables)


def _rewrite_history(run_dir: Path, records: list[dict]) -> None:
    atomic_write_text(run_dir / rd.HISTORY, "".join(json.dumps(r, sort_keys=True) + "\n" for r in records))


def _progress(enabled: bool, total: int, initial: int, desc: str):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="step", dynamic_ncols=True)
