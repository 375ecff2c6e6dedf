"""Run directories: the on-disk contract of a training run.

```
RUN_DIR/config.json               what was trained on what (kind, config, data description, training indices)
RUN_DIR/history.jsonl             one JSON record per logging interval (step, losses, wall time)
RUN_DIR/samples/step_XXXXXX.png   per-class sample grids during training; samples/final.png at the end
RUN_DIR/losses.png                every history series against the step, written at the end
RUN_DIR/tensorboard/              TensorBoard event files: loss/*, ada/p, learning_rate/* and the sample grids
RUN_DIR/checkpoints/generator.keras   the sampling (EMA) generator, a standalone functional Keras model
RUN_DIR/checkpoints/last/         resume state: network weights, optimizer variables, state.json (step)
RUN_DIR/checkpoints/best/generator.keras, checkpoints/best.json   with best_every: the best-scoring sampling
                                  network so far and its {"step", "score", "metric"}
```
Everything but the TensorBoard event files (appended as the run goes) is written atomically, so an interrupted
run can always be resumed from its last checkpoint.
Publishing ``checkpoints/last`` takes two renames (``last`` -> ``.last.old-PID``, then ``.last.tmp-XXXX`` ->
``last``); a kill between them leaves no ``last`` but two complete checkpoints beside it. :func:`find_checkpoint`
therefore also considers those hidden siblings and picks the newest complete one (its ``state.json``, written
last, present and valid), and :func:`clean_checkpoint_leftovers` removes them after the next save.
"""
from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from tfaug.errors import TfaugError
from tfaug.utils.io import read_json

CONFIG = "config.json"
HISTORY = "history.jsonl"
SAMPLES = "samples"
CHECKPOINTS = "checkpoints"
GENERATOR = "generator.keras"
LAST = "last"
STATE = "state.json"
OPTIMIZERS = "optimizers.npz"

log = logging.getLogger("tfaug.training")


def prepare_run_dir(out: str | os.PathLike, resume: bool) -> Path:
    """Validate ``out`` for a new run or a resumed one and return it as a Path.

    A new run refuses a directory that already holds a run (so a finished run is never overwritten by accident);
    ``resume`` requires one.
    """
    out = Path(out)
    has_run = (out / CONFIG).exists()
    if resume and not has_run:
        raise TfaugError(f"cannot resume: {out} is not a tfaug run directory (no {CONFIG}); drop --resume to start a new run")
    if not resume and has_run:
        raise TfaugError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    if out.exists() and not out.is_dir():
        raise TfaugError(f"{out} exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    return out


def read_run_config(run_dir: str | os.PathLike) -> dict:
    """Read RUN_DIR/config.json with a clear error when it is missing or corrupt."""
    path = Path(run_dir) / CONFIG
    hint = "pass a directory written by `tfaug train-gan`"
    if not Path(run_dir).is_dir():
        raise TfaugError(f"{run_dir} is not a tfaug run directory (it does not exist or is not a directory); {hint}")
    if not path.exists():
        raise TfaugError(f"{run_dir} is not a tfaug run directory (missing {CONFIG}); {hint}")
    try:
        cfg = read_json(path)
    except (OSError, ValueError) as exc:
        raise TfaugError(f"{path} is not valid JSON ({exc}); the run directory is corrupt") from None
    if not isinstance(cfg, dict):
        raise TfaugError(f"{path} does not hold a JSON object; the run directory is corrupt")
    return cfg


def _checkpoint_state(path: Path) -> dict | None:
    """The state of a complete checkpoint directory, or None: ``state.json`` (written last) must hold an integer
    step >= 0, and the optimizer file and at least one network weights file must be there."""
    try:
        state = read_json(path / STATE)
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict) or isinstance(state.get("step"), bool) or not isinstance(state.get("step"), int):
        return None
    if state["step"] < 0 or not (path / OPTIMIZERS).is_file() or not any(path.glob("*.weights.h5")):
        return None
    return state


def checkpoint_leftovers(run_dir: str | os.PathLike) -> list[Path]:
    """What interrupted saves left in ``checkpoints/``: hidden siblings of its atomically published directories
    (``.last.tmp-*``, ``.last.old-*``, ``.best.tmp-*`` ...) and of its ``.keras`` files (``.tmp-*-generator.keras``)."""
    ckpt = Path(run_dir) / CHECKPOINTS
    if not ckpt.is_dir():
        return []
    patterns = (".*.tmp-*", ".*.old-*", ".tmp-*.keras")
    return sorted({p for pattern in patterns for p in ckpt.glob(pattern)})


def find_checkpoint(run_dir: str | os.PathLike) -> tuple[Path, dict] | None:
    """``(directory, state)`` of the newest complete checkpoint: ``checkpoints/last`` or, after a kill during a
    save, one of its hidden siblings; ``last`` wins a tie. None when there is no complete checkpoint."""
    ckpt = Path(run_dir) / CHECKPOINTS
    candidates = [ckpt / LAST] + [p for p in checkpoint_leftovers(run_dir)
                                  if p.is_dir() and p.name.startswith(f".{LAST}.")]
    best = None
    for path in candidates:
        state = _checkpoint_state(path) if path.is_dir() else None
        if state is not None and (best is None or state["step"] > best[1]["step"]):
            best = (path, state)
    if best is not None and best[0].name != LAST:
        log.warning("%s has no complete checkpoints/last; using %s (step %d)", run_dir, best[0].name, best[1]["step"])
    return best


def clean_checkpoint_leftovers(run_dir: str | os.PathLike) -> None:
    """Remove what interrupted saves left (see :func:`checkpoint_leftovers`); call only once a new
    ``checkpoints/last`` is published, since until then a leftover may be the newest complete checkpoint."""
    for path in checkpoint_leftovers(run_dir):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def read_state(run_dir: str | os.PathLike) -> dict | None:
    """The resume state (``{"step": int, "finished": bool}``) of the newest complete checkpoint
    (:func:`find_checkpoint`), or None when no checkpoint was written yet.

    Raises:
        TfaugError: checkpoints were written but none is complete (a resume cannot continue them).
    """
    found = find_checkpoint(run_dir)
    if found is not None:
        return found[1]
    broken = [p.name for p in checkpoint_leftovers(run_dir) if p.is_dir() and p.name.startswith(f".{LAST}.")]
    if (Path(run_dir) / CHECKPOINTS / LAST).exists():
        broken.insert(0, LAST)
    if broken:
        raise TfaugError(f"{Path(run_dir) / CHECKPOINTS} holds no complete checkpoint ({', '.join(broken)} are "
                         "incomplete or unreadable), so this run cannot be resumed; start a new run with another --out")
    return None
