"""Argument types and shared argument groups for the ``tfaug`` CLI (no TensorFlow imports here)."""
from __future__ import annotations

import argparse


def _int_at_least(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected a number >= {minimum}, got {value}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    return _int_at_least(text, 1)


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    return _int_at_least(text, 0)


def positive_float(text: str) -> float:
    """argparse type: a number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text}")
    return value


def non_negative_float(text: str) -> float:
    """argparse type: a number >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text}")
    return value


def key_value(text: str) -> tuple[str, str]:
    """argparse type: ``KEY=VALUE`` -> ``(KEY, VALUE)`` (the value stays a string; its consumer converts it)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value.strip()


def unit_fraction(text: str) -> float:
    """argparse type: a number in [0, 1)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text}")
    return value


def truncation_psi(text: str) -> float:
    """argparse type for --truncation: psi in [0, 1] (1 = no truncation, 0 = each class's average image)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"truncation must be in [0, 1], got {text}")
    return value


def keep_value(text: str) -> float | int:
    """argparse type for --keep: a fraction in (0, 1] or a whole count >= 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1] or a count, got {text!r}") from None
    if value > 1:
        if value != int(value):
            raise argparse.ArgumentTypeError(f"a count must be a whole number, got {text}")
        return int(value)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1] or a count, got {text}")
    return value


def class_choice(text: str) -> str:
    """argparse type for a class: a name or an id, resolved later against the class names
    (:func:`tfaug.utils.classes.resolve_class`)."""
    if not str(text).strip():
        raise argparse.ArgumentTypeError("expected a class name or id, got an empty string")
    return str(text).strip()


def image_size(text: str) -> tuple[int, int]:
    """argparse type for --image-size: ``HxW`` (or ``N`` for N x N) in pixels, each side in [8, 4096]."""
    from tfaug.data.conform import parse_image_size
    from tfaug.errors import TfaugError

    try:
        return parse_image_size(text)
    except TfaugError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_image_args(p: argparse.ArgumentParser) -> None:
    """--image-size and --channels: the shape every image of --dataset is brought to (tfaug.data.conform)."""
    p.add_argument("--image-size", type=image_size, metavar="HxW",
                   help="bring every image to H x W pixels, keeping the aspect ratio then centre-cropping "
                        "(default: the dataset's own size; a folder of mixed sizes takes its most common one)")
    p.add_argument("--channels", type=int, choices=(1, 3),
                   help="1 = greyscale, 3 = RGB (default: greyscale only when every image is greyscale)")


def add_data_args(p: argparse.ArgumentParser, default: str | None = None, subsets: bool = True) -> None:
    """--dataset/--data-dir, and (with ``subsets``) --per-class, --minority/--keep, --test-fraction."""
    p.add_argument("--dataset", required=default is None, default=default,
                   help="digits | lfw_subset | tfds:NAME[:split] | npz:PATH | folder:PATH"
                   + (f" (default {default})" if default else ""))
    p.add_argument("--data-dir", help="TensorFlow Datasets data directory (for tfds: specs)")
    if not subsets:
        return
    p.add_argument("--per-class", type=positive_int, help="draw K training images per class")
    p.add_argument("--minority", type=class_choice, metavar="CLASS",
                   help="induce imbalance: class to reduce, by name or id")
    p.add_argument("--keep", type=keep_value, help="with --minority: fraction (0, 1] or count of it to keep")
    p.add_argument("--test-fraction", type=unit_fraction, default=0.3,
                   help="share of every class held out as real test data before drawing (default 0.3)")
    add_image_args(p)


def add_runtime_args(p: argparse.ArgumentParser) -> None:
    """``--strategy``, ``--devices``, ``--mixed-precision``, ``--xla`` (a ``tfaug.config.RuntimeConfig``)."""
    from tfaug.config import STRATEGIES

    g = p.add_argument_group("runtime (where training runs; see README 'Several GPUs and machines')")
    g.add_argument("--strategy", choices=STRATEGIES, default=None,
                   help="tf.distribute strategy: default (one device), mirrored (this machine's GPUs, or logical "
                        "CPU devices), multiworker (cluster from TF_CONFIG)")
    g.add_argument("--devices", type=non_negative_int, default=None,
                   help="mirrored only: replicas (0 = every GPU, or 2 logical CPU devices without GPU)")
    g.add_argument("--mixed-precision", nargs="?", const="auto", default=None, choices=("bf16", "fp16", "off", "auto"),
                   help="half-precision compute with float32 variables: bf16 (mixed_bfloat16; GPUs of compute "
                        "capability >= 8.0, CPUs with AMX or AVX512-BF16), fp16 (mixed_float16 with loss scaling; "
                        "older GPUs) or off; bare --mixed-precision picks bf16 where the hardware has it, else fp16 "
                        "on a GPU")
    g.add_argument("--xla", action="store_true", default=None, help="compile training steps with XLA")


def runtime_from_args(args: argparse.Namespace, base=None):
    """The ``RuntimeConfig`` of ``base`` (default: ``RuntimeConfig()``) with the flags of
    :func:`add_runtime_args` that were given applied; raises ``TfaugError`` on a bad combination."""
    import dataclasses

    from tfaug.config import RuntimeConfig

    base = base or RuntimeConfig()
    changes = {"strategy": getattr(args, "strategy", None), "devices": getattr(args, "devices", None),
               "mixed_precision": getattr(args, "mixed_precision", None), "jit_compile": getattr(args, "xla", None)}
    runtime = dataclasses.replace(base, **{k: v for k, v in changes.items() if v is not None})
    if runtime.mixed_precision == "auto":  # recorded in config.json as what actually ran
        from tfaug.training.distribute import resolve_runtime

        runtime = resolve_runtime(runtime)
    return runtime
