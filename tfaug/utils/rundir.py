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
"""
from __future__ import annotations

import os
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


def read_state(run_dir: str | os.PathLike) -> dict | None:
    """The resume state (``{"step": int, "finished": bool}``) or None when no checkpoint was written yet."""
    path = Path(run_dir) / CHECKPOINTS / LAST / STATE
    if not path.exists():
        return None
    try:
        return read_json(path)
    except (OSError, ValueError) as exc:
        raise TfaugError(f"checkpoint state {path} is unreadable: {exc}") from None
