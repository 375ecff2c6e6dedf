"""What a training run shows besides its progress bar: TensorBoard logs, ``losses.png`` and a too-short-run hint.

``tfaug train-gan`` writes ``RUN/tensorboard/`` (``tensorboard --logdir RUN``):

* scalars ``loss/<name>`` for every tracker the model's ``train_step`` reports (d_loss, g_loss, d_real, ...),
  at the run's history interval; ``ada/p`` (ADA's augmentation probability, in [0, 1]) when ADA is on;
  ``learning_rate/<optimizer>`` for every optimizer of the model (``GenerativeModel.optimizers()``);
* images ``samples``: the labelled sample grid written every ``sample_every`` steps and at the end.

At the end it writes ``RUN/losses.png`` (every loss of ``history.jsonl`` against the step) and, when the final
samples are still nearly uniform (the generator has not left its initial grey), warns once with a hint.

``tfaug train-classifier`` gets :func:`classifier_callbacks`: Keras' own ``TensorBoard`` callback (loss and
accuracy per step) writing ``OUT/tensorboard/``.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from tfaug.utils.io import atomic_write_bytes

__all__ = ["TENSORBOARD_DIR", "LOSSES_PNG", "GREY_STD", "GANBoard", "classifier_callbacks", "plot_losses",
           "is_grey"]

TENSORBOARD_DIR = "tensorboard"
LOSSES_PNG = "losses.png"
GREY_STD = 0.05  # mean per-image pixel std (images in [-1, 1]) below which samples count as uniform grey
_NOT_LOSSES = ("step", "time_s")


def is_grey(images: np.ndarray, threshold: float = GREY_STD) -> bool:
    """True when float images [N, H, W, C] in [-1, 1] are nearly uniform: the mean over images of each image's
    pixel standard deviation is below ``threshold`` (> 0; 0.05 is about 6 of 255 grey levels)."""
    images = np.asarray(images, np.float64)
    return bool(images.size) and float(images.reshape(len(images), -1).std(axis=1).mean()) < threshold


def _learning_rate(optimizer) -> float | None:
    """The current learning rate of a Keras optimizer (a LossScaleOptimizer's inner one), or None."""
    import keras

    opt = getattr(optimizer, "inner_optimizer", optimizer)
    try:
        return float(keras.ops.convert_to_numpy(opt.learning_rate))
    except (AttributeError, TypeError, ValueError):
        return None


class GANBoard:
    """TensorBoard writer of one ``train-gan`` run (``run_dir/tensorboard``); see the module docstring.

    Args:
        run_dir: the run directory (written by the chief only; the runner passes its writing directory).
        model: the zoo model (``optimizers()``, ``sample``, ``ada_p``).
    """

    def __init__(self, run_dir: str | os.PathLike, model):
        import tensorflow as tf

        self.run_dir = Path(run_dir)
        self.model = model
        self.writer = tf.summary.create_file_writer(str(self.run_dir / TENSORBOARD_DIR))

    def scalars(self, step: int, record: dict) -> None:
        """Log one history record (``loss/<name>``, ``ada/p``) and the optimizers' learning rates at ``step``."""
        import tensorflow as tf

        with self.writer.as_default(step=int(step)):
            for key, value in record.items():
                if key in _NOT_LOSSES or value is None:
                    continue
                tag = "ada/p" if key == "ada_p" else f"loss/{key}"
                tf.summary.scalar(tag, float(value))
            for name, (optimizer, _) in self.model.optimizers().items():
                lr = _learning_rate(optimizer)
                if lr is not None:
                    tf.summary.scalar(f"learning_rate/{name}", lr)

    def grid(self, step: int, png_path: str | os.PathLike) -> None:
        """Log the sample grid PNG the runner just wrote as the image ``samples`` at ``step``."""
        import tensorflow as tf
        from PIL import Image

        with Image.open(png_path) as im:
            image = np.asarray(im.convert("RGB"), np.uint8)
        with self.writer.as_default(step=int(step)):
            tf.summary.image("samples", image[None], max_outputs=1)

    def finish(self, history: list[dict], step: int, grid_classes) -> None:
        """Close the writer, write ``losses.png`` and warn when the final samples (one per grid class, seed 0, as
        in the grid's first column) are uniform grey."""
        self.writer.flush()
        self.writer.close()
        if history:
            plot_losses(history, self.run_dir / LOSSES_PNG)
        ids = np.asarray(grid_classes, np.int32)
        if len(ids) and is_grey(self.model.sample(ids, np.zeros(len(ids), np.int64))):
            warnings.warn(f"samples/final.png is still nearly uniform grey after {step} steps: the generator has not "
                          "learned yet; train longer (--steps, e.g. 2000 or more) or resume with --resume --steps N",
                          stacklevel=3)


def plot_losses(history: list[dict], path: str | os.PathLike) -> Path:
    """Plot every numeric series of ``history`` (records with ``step``) but ``time_s`` against the step, one
    panel for the losses and one for ADA's p when present; written atomically as a PNG."""
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    keys = sorted({k for r in history for k, v in r.items() if k not in _NOT_LOSSES and isinstance(v, (int, float))})
    panels = [[k for k in keys if k != "ada_p"]] + ([["ada_p"]] if "ada_p" in keys else [])
    fig = Figure(figsize=(7, 3.2 * len(panels)))
    FigureCanvasAgg(fig)
    for i, names in enumerate(panels, start=1):
        ax = fig.add_subplot(len(panels), 1, i)
        for name in names:
            pts = [(r["step"], r[name]) for r in history if isinstance(r.get(name), (int, float)) and "step" in r]
            if pts:
                ax.plot(*zip(*pts), label=name, linewidth=1.2)
        ax.set_xlabel("step")
        ax.set_ylabel("ADA p" if names == ["ada_p"] else "loss / tracker value")
        ax.grid(alpha=0.3)
        if names:
            ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return atomic_write_bytes(path, buf.getvalue())


def classifier_callbacks(log_dir: str | os.PathLike | None, phase: str = "") -> list:
    """``[keras.callbacks.TensorBoard]`` writing loss and accuracy every step (``batch_loss``,
    ``batch_accuracy`` of the run ``train``) to ``log_dir``, or to ``log_dir/phase`` for a named phase (e.g.
    ``pretrain``: each ``fit`` counts its steps from 1); [] for None."""
    if log_dir is None:
        return []
    import keras

    path = Path(log_dir) / phase if phase else Path(log_dir)
    return [keras.callbacks.TensorBoard(log_dir=str(path), update_freq=1, write_graph=False, profile_batch=0)]
