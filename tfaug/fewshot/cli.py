"""``tfaug adapt``, ``tfaug invert`` and ``tfaug fill`` (no TensorFlow import at module level, so ``tfaug --help``
stays instant). Each command is a thin call into the library module named in its ``func``."""
from __future__ import annotations

from tfaug.cli_args import non_negative_int, positive_int, truncation_psi

ADAPT_METHODS = ("freeze", "svd", "embedding", "age")  # = tfaug.fewshot.adapt.METHODS (not imported: keep --help light)


def add_parsers(sub) -> None:
    """Add ``adapt``, ``invert`` and ``fill`` to the ``tfaug`` subparsers."""
    a = sub.add_parser("adapt", help="add a new class to a pretrained conditional generator from a few images")
    a.add_argument("run_dir", metavar="RUN_DIR", help="run directory of the pretrained generator (tfaug train-gan)")
    a.add_argument("--dataset", required=True,
                   help="the new class's images: folder:PATH (a folder of images, or class folders with --class), "
                        "npz:PATH, digits ... (5 to 40 images are typical)")
    a.add_argument("--data-dir", help="TensorFlow Datasets data directory (for tfds: specs)")
    a.add_argument("--class", dest="source_class", default=None,
                   help="use only this class (name or id) of --dataset; default: all of its images")
    a.add_argument("--new-class", required=True, help="name of the new class (must not be an existing class name)")
    a.add_argument("--method", choices=ADAPT_METHODS, default="svd",
                   help="freeze: fine-tune with early G layers and lower D layers frozen (FreezeD); svd: train only the "
                        "singular values of every kernel; embedding: learn only the new class embedding; age: no "
                        "training, attribute-group editing around the inverted images' centroid (stylegan only)")
    a.add_argument("--steps", type=positive_int, default=None, help="adaptation steps (default: the method's; age: inversion refinement steps per image)")
    a.add_argument("--batch-size", type=positive_int, default=None, help="batch size (default: the method's; unused by age)")
    a.add_argument("--encoder", default=None, help="age: encoder directory from tfaug invert (default: optimise w directly)")
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--out", required=True, help="run directory of the adapted generator (must not exist)")
    a.add_argument("--no-progress", action="store_true")
    a.set_defaults(func="tfaug.fewshot.adapt:adapt_command")

    i = sub.add_parser("invert", help="train an encoder from images to a style generator's w; report reconstruction")
    i.add_argument("run_dir", metavar="RUN_DIR", help="run directory of a stylegan generator")
    i.add_argument("--dataset", default=None,
                   help="real images to invert after training (and to use in the reconstruction loss), any spec")
    i.add_argument("--data-dir", help="TensorFlow Datasets data directory (for tfds: specs)")
    i.add_argument("--steps", type=positive_int, default=None, help="encoder training steps (default 2000)")
    i.add_argument("--batch-size", type=positive_int, default=None, help="batch size (default 32)")
    i.add_argument("--refine-steps", type=non_negative_int, default=None,
                   help="per-image optimisation steps after the encoder when inverting --dataset (default 100)")
    i.add_argument("--seed", type=int, default=0)
    i.add_argument("--out", required=True, help="encoder directory (must not exist)")
    i.add_argument("--no-progress", action="store_true")
    i.set_defaults(func="tfaug.fewshot.invert:invert_command")

    f = sub.add_parser("fill", help="top a class-folder dataset up to a minimum per class with generated images")
    f.add_argument("--dataset", required=True, help="folder:PATH, one sub-folder per class (never modified)")
    f.add_argument("--generator", required=True, metavar="RUN_OR_SAVEDMODEL",
                   help="run directory, SavedModel directory or model base directory whose class names match")
    f.add_argument("--min-per-class", type=positive_int, required=True,
                   help="every class below this count gets generated images up to it")
    f.add_argument("--out", required=True, help="folder:PATH of the new dataset (must not exist)")
    f.add_argument("--truncation", type=truncation_psi, default=None,
                   help="truncation psi in [0, 1]: lower = more typical, less varied images (default 1: none)")
    f.add_argument("--seed", type=int, default=0, help="first seed of the generated images")
    f.add_argument("--no-progress", action="store_true")
    f.set_defaults(func="tfaug.synthesis.fill:fill_command")


__all__ = ["ADAPT_METHODS", "add_parsers"]
