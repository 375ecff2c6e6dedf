"""The ``tfaug`` command: one subcommand per job, each a thin call into the library.

Bad input never shows a stack trace: argument errors and :class:`~tfaug.errors.TfaugError` print one line and
exit with status 2; Ctrl-C exits with 130 after the current checkpoint is written. TensorFlow is imported only
when a job runs, so ``tfaug --help`` is instant.
"""
from __future__ import annotations

import argparse
import sys
import warnings

from tfaug import __version__
from tfaug.cli_args import (add_data_args, add_runtime_args, class_choice, key_value, non_negative_float,
                            non_negative_int, positive_float, positive_int, truncation_psi, unit_fraction)
from tfaug.utils.quiet import VERBOSE_ENV, quiet_native_logs

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
# Subsystems that add their own subcommands: each module defines ``add_parsers(subparsers)`` and must not
# import TensorFlow at module level (``tfaug --help`` stays instant). Their ``func`` strings name the command.
EXTENSIONS: tuple[str, ...] = ("tfaug.metrics.cli", "tfaug.serving.cli", "tfaug.studies.cli", "tfaug.fewshot.cli",
                               "tfaug.enrich.cli")


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose errors are one line (no usage dump) with exit status 2."""

    def error(self, message: str):  # noqa: D401 - argparse API
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="tfaug", description="Enrich small or imbalanced image datasets, measure whether it helped, "
                "and export generators for TensorFlow Serving.")
    p.add_argument("--version", action="version", version=f"tfaug {__version__}")
    p.add_argument("--verbose", action="store_true",
                   help=f"also show TensorFlow's own log lines (or set {VERBOSE_ENV}=1)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    d = sub.add_parser("demo", help="end-to-end demo: cDCGAN vs classic augmentation on a small dataset")
    add_data_args(d, default="digits", subsets=False)
    d.add_argument("--per-class", type=positive_int, default=10, help="real training images per class (default 10)")
    d.add_argument("--repeats", type=positive_int, default=3, help="repeats with different draws/seeds (default 3)")
    d.add_argument("--test-fraction", type=unit_fraction, default=0.5, help="share of each class held out (default 0.5)")
    d.add_argument("--gan-steps", type=positive_int, help="GAN steps per repeat (default 1500)")
    d.add_argument("--classifier-steps", type=positive_int, help="classifier steps per cell (default 500)")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--quick", action="store_true", help="a seconds-long smoke run (tiny models, 2 repeats)")
    d.add_argument("--out", default="runs/demo", help="output directory (default runs/demo; resumes if interrupted)")
    d.add_argument("--saved-models", default="saved_models", help="export base directory (default saved_models)")
    d.add_argument("--no-export", action="store_true", help="do not export the generator")
    d.add_argument("--no-progress", action="store_true")
    d.set_defaults(func="tfaug.commands:demo")

    from tfaug.models.zoo import model_names  # names only: no TensorFlow import

    g = sub.add_parser("train-gan", help="train a generative model of the zoo into a run directory")
    g.add_argument("--model", default=None, choices=model_names(),
                   help="zoo model (default: the preset's, else cdcgan)")
    add_data_args(g)
    g.add_argument("--steps", type=positive_int, help="training steps (default 2000)")
    g.add_argument("--epochs", type=positive_float, help="alternatively: passes over the training images")
    g.add_argument("--batch-size", type=positive_int)
    g.add_argument("--preset", default=None,
                   help="GAN preset: gan/quick, gan/digits, gan/mnist, gan/dcgan64, gan/cdcgan-onehot, gan/ada, "
                        "gan/stylegan, gan/stylegan-quick")
    g.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", type=key_value,
                   help="model-specific option, repeatable (e.g. --option conditioning=onehot)")
    g.add_argument("--diffaugment", metavar="POLICIES",
                   help="DiffAugment policies, e.g. color,translation,cutout ('none' disables)")
    g.add_argument("--ada-target", type=unit_fraction, help="ADA target for E[sign(D(real))] (0 disables; paper: 0.6)")
    g.add_argument("--r1", type=non_negative_float, help="R1 penalty weight gamma (0 disables)")
    g.add_argument("--class-balanced", action="store_true",
                   help="class-balanced batches (every class equally often; for long-tailed data)")
    g.add_argument("--ema-decay", type=unit_fraction, help="EMA decay of the sampling generator, in [0, 1)")
    g.add_argument("--best-every", type=non_negative_int,
                   help="keep checkpoints/best by pixel KID every N steps (0 disables)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--out", required=True, help="run directory")
    g.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    g.add_argument("--no-progress", action="store_true")
    add_runtime_args(g)
    g.set_defaults(func="tfaug.commands:train_gan")

    s = sub.add_parser("generate", help="write N images of one class from a run directory or SavedModel")
    s.add_argument("source", metavar="RUN_DIR_OR_SAVEDMODEL")
    s.add_argument("--class-id", type=class_choice, required=True, metavar="CLASS",
                   help="class by name (from the run's or SavedModel's metadata) or id")
    s.add_argument("--n", type=positive_int, default=16)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", required=True, help="output directory for PNGs and grid.png (must be empty)")
    s.add_argument("--overwrite", action="store_true", help="write into a non-empty --out, replacing same-named files")
    s.add_argument("--truncation", type=truncation_psi, metavar="PSI",
                   help="truncation psi in [0, 1]: lower is closer to the class's average image (default: none)")
    s.set_defaults(func="tfaug.commands:generate")

    e = sub.add_parser("export", help="export a run's generator as a versioned SavedModel for TF Serving")
    e.add_argument("run_dir", metavar="RUN_DIR")
    e.add_argument("--name", required=True, help="model name (saved_models/NAME/VERSION)")
    e.add_argument("--version", default="auto", help="integer version or 'auto' (next free, default)")
    e.add_argument("--base", default="saved_models", help="model base directory (default saved_models)")
    e.add_argument("--overwrite", action="store_true", help="replace an existing version")
    e.add_argument("--checkpoint", choices=["last", "best"], default="last",
                   help="which sampling network: last (default) or best (by the run's quality score)")
    e.set_defaults(func="tfaug.commands:export")

    c = sub.add_parser("train-classifier", help="train a classifier on real (+ enriched) data, score on real test data")
    add_data_args(c)
    c.add_argument("--augment", default="none",
                   help="none | bootstrap[:F] | classic[:PRESET] (default none); a bare classic picks the data kind's "
                        "preset, its milder one or none on validation splits of the training draw; '+'-joined strategy "
                        "blocks such as reweight, balanced, weight:W, swap:P, sepbn (the last three with --synthetic); "
                        "soft and filter:teacher need a teacher, which only `tfaug study` trains")
    c.add_argument("--synthetic", metavar="RUN_DIR_OR_SAVEDMODEL", help="add generated images from this generator")
    c.add_argument("--ratio", type=positive_float, default=None,
                   help="generated images per real image of every class; default: with --minority/--keep every class "
                        "is topped up to the majority class count, otherwise 1")
    c.add_argument("--classifier", default="fewshot", choices=["fewshot", "res_cnn", "small_cnn", "lenet5"],
                   help="fewshot (default: the preset classifier/fewshot, the control every enrichment must beat) "
                        "or a network with the first wave's settings (Adam, constant lr, 600 steps, batch 32)")
    c.add_argument("--steps", type=positive_int, default=None,
                   help="optimisation steps (default: the classifier's budget for the training draw)")
    c.add_argument("--batch-size", type=positive_int, default=None, help="images per step (default: the classifier's)")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--out", required=True, help="run directory")
    c.add_argument("--export", metavar="NAME", help="also export the classifier to saved_models/NAME")
    c.add_argument("--no-progress", action="store_true")
    add_runtime_args(c)
    c.set_defaults(func="tfaug.commands:train_classifier")

    import importlib

    for module in EXTENSIONS:
        importlib.import_module(module).add_parsers(sub)
    for command in sub.choices.values():  # --verbose after the command too; SUPPRESS keeps one given before it
        command.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS,
                             help=f"also show TensorFlow's own log lines (or set {VERBOSE_ENV}=1)")
    return p


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    """Warnings as 'tfaug: warning: ...' lines instead of file/line/source dumps."""
    return f"tfaug: warning: {message}\n"


def _set_prog(parser: argparse.ArgumentParser, command: str, prog: str) -> None:
    """Show ``prog`` (a script's name) instead of ``tfaug COMMAND`` in ``command``'s usage and errors."""
    parser.prog = prog  # unrecognized arguments are reported by the top-level parser
    for action in parser._actions:  # argparse keeps subparsers only here
        if isinstance(action, argparse._SubParsersAction) and command in action.choices:
            action.choices[command].prog = prog


def main(argv: list[str] | None = None, *, prog: str | None = None) -> int:
    """Entry point of the ``tfaug`` console script (and of ``scripts/*.py``); returns the exit status.

    ``prog`` (scripts/*.py pass their own file name) replaces ``tfaug COMMAND`` in the command's usage line.
    TensorFlow's native log lines are filtered out of stderr (:mod:`tfaug.utils.quiet`) unless ``--verbose`` or
    ``TFAUG_VERBOSE=1``; the filter runs only while the command runs, and only when ``sys.stderr`` is the
    process's own (not when a caller such as pytest has replaced it).
    """
    warnings.formatwarning = _one_line_warning
    parser = build_parser()
    if prog is not None and argv:
        _set_prog(parser, argv[0], prog)
    args = parser.parse_args(argv)
    quiet = quiet_native_logs(getattr(args, "verbose", False))
    from tfaug.errors import TfaugError

    module, _, name = args.func.partition(":")
    try:
        import importlib

        return int(getattr(importlib.import_module(module), name)(args) or 0)
    except TfaugError as exc:
        print(f"tfaug {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"tfaug {args.command}: interrupted; progress so far is saved (rerun with --resume where offered)",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if quiet is not None:
            quiet.stop()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
