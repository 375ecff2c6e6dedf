"""``tfaug query``: ask a running model server for images (or its status/metadata) and write them out.

Image j of ``--class-id C --n N --seed S`` is the pair ``(C, S + j)`` (the seed rule of
:mod:`tfaug.synthesis.sample`), so a query returns exactly the images ``tfaug generate`` writes from the same
SavedModel in-process (``--truncation PSI`` asks the ``truncated`` signature, like ``tfaug generate
--truncation PSI``). Files are ``class{C}_seed{S+j}.png`` plus ``grid.png``, each written atomically.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from tfaug.errors import TfaugError
from tfaug.serving.client import ServingClient
from tfaug.utils.images import make_grid, save_png

__all__ = ["client_from_args", "fetch_images", "query_class_id", "write_images", "run_query"]


def client_from_args(args) -> ServingClient:
    """A REST client for ``--url`` (default http://127.0.0.1:8501) or a gRPC client for ``--grpc``."""
    if args.grpc:
        return ServingClient.grpc(args.grpc, timeout=args.timeout, retries=args.retries)
    return ServingClient.rest(args.url or "http://127.0.0.1:8501", timeout=args.timeout, retries=args.retries)


def fetch_images(client: ServingClient, model: str, class_id: int, n: int, seed: int, batch_size: int = 64,
                 version: int | None = None, label: str | None = None, progress: bool = False,
                 truncation: float | None = None) -> np.ndarray:
    """uint8 [n, H, W, C] for ``(class_id, seed + j)``, j < n, asked in requests of at most ``batch_size``;
    truncated with psi ``truncation`` in [0, 1] when given."""
    from tqdm.auto import tqdm

    seeds = np.arange(int(seed), int(seed) + int(n), dtype=np.int64)
    chunks = []
    with tqdm(total=int(n), unit="img", disable=not progress or n <= batch_size, leave=False) as bar:
        for start in range(0, int(n), int(batch_size)):
            part = seeds[start : start + int(batch_size)]
            chunks.append(client.generate(model, np.full(len(part), int(class_id), np.int32), part,
                                          version=version, label=label, truncation=truncation))
            bar.update(len(part))
    return np.concatenate(chunks)


def write_images(images: np.ndarray, class_id: int, seed: int, out_dir: str | os.PathLike) -> list[Path]:
    """Write uint8 images [N, H, W, C] as ``class{c}_seed{s}.png`` (s = seed + j) and ``grid.png``.

    Returns:
        The image paths in request order, then the grid path.
    """
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TfaugError(f"cannot create the output directory {out} ({exc.strerror or exc}).") from None
    paths = []
    for j, image in enumerate(images):
        path = out / f"class{int(class_id)}_seed{int(seed) + j}.png"
        save_png(path, image)
        paths.append(path)
    grid = out / "grid.png"
    save_png(grid, make_grid(images))
    return paths + [grid]


def query_class_id(value, model: str, saved_models: str | os.PathLike = "saved_models",
                   version: int | None = None) -> int:
    """The class id of ``value`` (a name or an id) for the served model ``model``.

    TF Serving's model metadata carries signatures, not class names, so names are read from the SavedModel that
    is served: ``saved_models/<model>/<version>/assets/tfaug_metadata.json`` (``version`` None: the highest one).
    Without it an id (a whole number >= 0) is passed on unchecked and the server judges it.

    Raises:
        TfaugError: ``value`` is not a class of the model (the message lists its classes), or it is a name and
            no local metadata holds the class names.
    """
    from tfaug.export.savedmodel import read_metadata
    from tfaug.export.versions import latest_version
    from tfaug.utils.classes import resolve_class

    base = Path(saved_models) / model
    version = latest_version(base) if version is None else version
    names = None
    if version is not None and (base / str(version)).is_dir():
        try:
            names = read_metadata(base / str(version)).get("class_names")
        except TfaugError:  # not a tfaug export: no names to go by
            names = None
    if names:
        return resolve_class(value, names, "--class-id", f"{model} ({base / str(version)})")
    text = str(value).strip()
    if text.isdigit():
        return int(text)
    raise TfaugError(f"--class-id {text!r} is a name, but the class names of {model} are not known here (no tfaug "
                     f"SavedModel under {base}); give the class id or --saved-models DIR")


def run_query(args) -> int:
    """The ``tfaug query`` job (see ``tfaug query --help``); returns the exit status."""
    version = args.version
    with client_from_args(args) as client:
        if args.status or args.metadata:
            result = (client.status(args.name, version=version, label=args.label) if args.status
                      else client.metadata(args.name, version=version, label=args.label))
            print(json.dumps(result, indent=2, sort_keys=True))
            return 0
        if args.class_id is None or args.out is None:
            raise TfaugError("--class-id and --out are required to fetch images (or pass --status / --metadata)")
        args.class_id = query_class_id(args.class_id, args.name, getattr(args, "saved_models", "saved_models"),
                                       version)
        images = fetch_images(client, args.name, args.class_id, args.n, args.seed, args.batch_size,
                              version=version, label=args.label, progress=not args.no_progress,
                              truncation=getattr(args, "truncation", None))
    paths = write_images(images, args.class_id, args.seed, args.out)
    h, w, c = images.shape[1:]
    print(f"wrote {len(images)} images {w}x{h}x{c} of class {args.class_id} (seeds {args.seed}..{args.seed + args.n - 1}) "
          f"from {args.name} at {client.address} and {paths[-1].name} to {args.out}")
    return 0
