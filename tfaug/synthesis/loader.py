"""One interface for every generator: ``sample(class_ids, seeds, truncation=None) -> images``.

Synthesis, metrics and studies hold a :class:`Generator` and never care whether it is a Keras model in this
process or an exported SavedModel. The same ``(class_id, seed)`` pair always gives the same image, whatever
else is in the batch, because each latent is drawn by ``latent_from_seeds`` from its own seed.

Truncation (psi in [0, 1], optional, 1 = none): a three-input sampling network (stylegan) truncates its w
towards the class's average w; any other generator scales its latent, ``psi * z`` (see
``tfaug.models.sampling.generator_images``). An exported generator does it in its ``truncated`` signature;
exports made before that signature existed report ``supports_truncation = False``.

:func:`load_generator` accepts the three places a generator lives:

* a training run directory (``config.json`` + ``checkpoints/generator.keras``),
* a SavedModel directory (``saved_model.pb``, as written by :mod:`tfaug.export.savedmodel`),
* a model base directory ``saved_models/NAME`` (the highest integer version is used, like TF Serving).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np

from tfaug.errors import TfaugError
from tfaug.export.savedmodel import METADATA_ASSET, load_run, read_metadata, run_facts
from tfaug.models.sampling import generator_images, validate_requests, validate_truncation
from tfaug.export.versions import latest_version
from tfaug.utils.images import to_float

__all__ = ["Generator", "KerasGenerator", "SavedModelGenerator", "load_generator"]

DEFAULT_BATCH_SIZE = 256


@runtime_checkable
class Generator(Protocol):
    """Anything that turns (class id, seed) pairs into images.

    Attributes:
        num_classes: valid class ids are ``0 .. num_classes - 1``.
        image_shape: ``(H, W, C)`` of one image.
        class_names: one name per class id.
        kind: model kind, e.g. ``"cdcgan"``.

    Generators that can truncate also have ``supports_truncation: bool`` (True for :class:`KerasGenerator`, and
    for :class:`SavedModelGenerator` unless the export predates the ``truncated`` signature); it is not part
    of the protocol, so generators without truncation still satisfy it.
    """

    num_classes: int
    image_shape: tuple[int, int, int]
    class_names: tuple[str, ...]
    kind: str

    def sample(self, class_ids, seeds, truncation=None) -> np.ndarray:
        """float32 [N, H, W, C] in [-1, 1] for int ``class_ids`` [N], int ``seeds`` [N] and an optional
        truncation psi (one number or float [N], each in [0, 1]; None = no truncation)."""
        ...


def _class_names(names, num_classes: int) -> tuple[str, ...]:
    if names is None:
        return tuple(str(i) for i in range(num_classes))
    names = tuple(str(n) for n in names)
    if len(names) != num_classes:
        raise TfaugError(f"Got {len(names)} class names for {num_classes} classes.")
    return names


class KerasGenerator:
    """A functional Keras generator (inputs ``[z, class_id]``, output in [-1, 1]) behind ``sample``.

    Args:
        model: the generator; ``[z float32 [N, z_dim], class_id int32 [N]] -> float32 [N, H, W, C]`` (or ``[z]``,
            or ``[z, class_id, truncation float32 [N]]`` for generators that truncate in their own w space).
        z_dim: latent size.
        num_classes: number of classes (default: ``metadata["num_classes"]`` or ``len(class_names)``).
        class_names: one name per class (default ``"0", "1", ...``).
        kind: model kind recorded with samples.
        metadata: free-form facts (e.g. the run config).
        batch_size: images generated per call; memory stays bounded for any request size.
    """

    def __init__(
        self,
        model,
        z_dim: int,
        *,
        num_classes: int | None = None,
        class_names: Sequence[str] | None = None,
        kind: str = "keras",
        metadata: dict | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ):
        import tensorflow as tf

        self.model = model
        self.z_dim = int(z_dim)
        self.metadata: dict[str, Any] = dict(metadata or {})
        if num_classes is None:
            num_classes = self.metadata.get("num_classes", len(class_names) if class_names is not None else None)
        if num_classes is None:
            raise TfaugError("KerasGenerator needs num_classes (or class_names) to validate class ids.")
        self.num_classes = int(num_classes)
        self.class_names = _class_names(class_names, self.num_classes)
        self.image_shape = tuple(int(d) for d in model.outputs[0].shape[1:])
        self.kind = kind
        self.batch_size = int(batch_size)
        self.supports_truncation = True
        # One trace for every batch size and truncation: psi = 1 is exactly no truncation (1 * z = z).
        self._fn = tf.function(
            lambda c, s, psi: generator_images(model, self.z_dim, c, s, psi),
            input_signature=[tf.TensorSpec([None], tf.int32), tf.TensorSpec([None], tf.int64),
                             tf.TensorSpec([None], tf.float32)],
            autograph=False,
        )

    @classmethod
    def from_run(cls, run_dir: str | os.PathLike, batch_size: int = DEFAULT_BATCH_SIZE,
                 checkpoint: str = "last") -> "KerasGenerator":
        """The sampling network (EMA generator) of a training run directory (``config.json`` +
        ``checkpoints/generator.keras``, or ``checkpoints/best/generator.keras`` with ``checkpoint="best"``).
        ``load_run`` imports ``tfaug.models.networks.layers`` first, so zoo models' custom layers load."""
        model, config = load_run(run_dir, checkpoint)
        facts = run_facts(config, model, run_dir)
        return cls(
            model,
            facts["z_dim"],
            num_classes=facts["num_classes"],
            class_names=facts["class_names"],
            kind=facts["model_kind"],
            metadata={"run_dir": str(run_dir), "config": config},
            batch_size=batch_size,
        )

    def keras_model(self, truncation: bool = False):
        """A seed-taking Keras model ``{class_id, seed(, truncation)} -> {"images": uint8}`` giving the exported
        SavedModel's images for the same inputs (see :func:`tfaug.models.networks.seeded.seeded_generator`)."""
        from tfaug.models.networks.seeded import seeded_generator

        return seeded_generator(self.model, self.z_dim, truncation=truncation)

    def sample(self, class_ids, seeds, truncation=None) -> np.ndarray:
        """float32 [N, H, W, C] in [-1, 1]; image i depends only on ``(class_ids[i], seeds[i], psi[i])``.

        Args:
            class_ids: int [N] in ``[0, num_classes)``.
            seeds: int [N].
            truncation: None (no truncation), one psi, or float [N]; each psi in [0, 1].

        Raises:
            TfaugError: bad class ids or seeds, or a truncation of the wrong length or outside [0, 1].
        """
        cls, seeds = validate_requests(class_ids, seeds, self.num_classes)
        psi = validate_truncation(truncation, len(seeds))
        if psi is None:
            psi = np.ones(len(seeds), np.float32)
        out = np.empty((len(seeds), *self.image_shape), np.float32)
        for start in range(0, len(seeds), self.batch_size):
            stop = start + self.batch_size
            out[start:stop] = self._fn(cls[start:stop], seeds[start:stop], psi[start:stop]).numpy()
        return out

    def __repr__(self) -> str:
        return f"KerasGenerator(kind={self.kind!r}, classes={self.num_classes}, image_shape={self.image_shape})"


class SavedModelGenerator:
    """An exported generator SavedModel behind ``sample``: its ``serving_default`` signature, or its
    ``truncated`` signature when a truncation is asked for.

    The uint8 images the signature returns are mapped back to float32 [-1, 1] (``x / 127.5 - 1``), so they
    are the in-process images quantised to 256 levels. Exports older than the ``truncated`` signature still
    load (``supports_truncation`` is then False and asking for a truncation is a TfaugError).
    """

    def __init__(self, path: str | os.PathLike, batch_size: int = DEFAULT_BATCH_SIZE, *,
                 num_classes: int | None = None, image_shape: Sequence[int] | None = None):
        import tensorflow as tf

        self.path = Path(path)
        # A SavedModel from elsewhere that honours the serving signature has no tfaug metadata: its class count
        # and image shape then come from the caller (e.g. the dataset) and the signature's output shape.
        tfaug_export = (self.path / "assets" / METADATA_ASSET).is_file()
        self.metadata = read_metadata(self.path) if tfaug_export else {}
        # Keep the loaded object alive: its signatures reference its variables.
        try:
            self._loaded = tf.saved_model.load(str(self.path))
        except Exception as exc:  # a truncated or foreign file: one sentence, not TensorFlow's stack trace
            what = "" if tfaug_export else " (and it is not a tfaug SavedModel: no assets/tfaug_metadata.json)"
            raise TfaugError(f"{self.path} could not be loaded as a SavedModel{what}: {type(exc).__name__}: "
                             f"{str(exc).splitlines()[0] if str(exc) else ''}") from None
        if "serving_default" not in self._loaded.signatures:
            raise TfaugError(f"{self.path} has no serving_default signature; re-export it with tfaug export.")
        self._fn = self._loaded.signatures["serving_default"]
        self._dtypes, signature_shape = _check_signature(self._fn, self.path)
        self._truncated = self._loaded.signatures.get("truncated")
        self.supports_truncation = self._truncated is not None
        if "num_classes" in self.metadata:
            num_classes = self.metadata["num_classes"]
        elif num_classes is None:
            raise TfaugError(f"{self.path} carries no tfaug metadata (assets/{METADATA_ASSET}), so its class count "
                             "is unknown; pass num_classes (tfaug evaluate takes it from --dataset).")
        self.num_classes = int(num_classes)
        self.class_names = _class_names(self.metadata.get("class_names"), self.num_classes)
        shape = self.metadata.get("image_shape") or signature_shape or image_shape
        if shape is None:
            raise TfaugError(f"{self.path}'s serving_default does not state its image shape and it carries no tfaug "
                             "metadata; pass image_shape (tfaug evaluate takes it from --dataset).")
        self.image_shape = tuple(int(d) for d in shape)
        self.kind = str(self.metadata.get("model_kind", "savedmodel"))
        self.batch_size = int(batch_size)

    def sample(self, class_ids, seeds, truncation=None) -> np.ndarray:
        """float32 [N, H, W, C] in [-1, 1] from the SavedModel's uint8 output.

        Args:
            class_ids: int [N] in ``[0, num_classes)``.
            seeds: int [N].
            truncation: None (``serving_default``), or one psi / float [N] in [0, 1] (``truncated``).

        Raises:
            TfaugError: bad inputs, or a truncation for an export without the ``truncated`` signature.
        """
        import tensorflow as tf

        cls, seeds = validate_requests(class_ids, seeds, self.num_classes)
        psi = validate_truncation(truncation, len(seeds))
        if psi is not None and self._truncated is None:
            raise TfaugError(f"{self.path} was exported without the 'truncated' signature; "
                             "re-export it with this tfaug version to sample with a truncation.")
        out = np.empty((len(seeds), *self.image_shape), np.float32)
        for start in range(0, len(seeds), self.batch_size):
            stop = start + self.batch_size
            feeds = {"class_id": tf.constant(cls[start:stop], self._dtypes["class_id"]),
                     "seed": tf.constant(seeds[start:stop], self._dtypes["seed"])}
            if psi is None:
                result = self._fn(**feeds)
            else:
                result = self._truncated(**feeds, truncation=tf.constant(psi[start:stop]))
            images = result["images"].numpy()
            if images.shape[1:] != self.image_shape:
                raise TfaugError(f"{self.path} returned images of shape {images.shape[1:]}, not the expected "
                                 f"{self.image_shape}.")
            out[start:stop] = to_float(images)
        return out

    def __repr__(self) -> str:
        return f"SavedModelGenerator({str(self.path)!r}, kind={self.kind!r}, classes={self.num_classes})"


def _check_signature(fn, path) -> tuple[dict, tuple[int, ...] | None]:
    """(input dtypes, image shape or None) of a generator ``serving_default``; TfaugError if it is not one."""
    _, kwargs = fn.structured_input_signature
    outputs = fn.structured_outputs
    if not {"class_id", "seed"} <= set(kwargs) or "images" not in outputs:
        raise TfaugError(f"{path}'s serving_default takes {sorted(kwargs)} and returns {sorted(outputs)}; a generator "
                         "takes class_id and seed (int [N]) and returns images (uint8 [N, H, W, C]).")
    dtypes = {k: kwargs[k].dtype for k in ("class_id", "seed")}
    if not all(d.is_integer for d in dtypes.values()) or outputs["images"].dtype.name != "uint8":
        raise TfaugError(f"{path}'s serving_default must take integer class_id and seed and return uint8 images, "
                         f"not {dtypes['class_id'].name}, {dtypes['seed'].name} -> {outputs['images'].dtype.name}.")
    dims = outputs["images"].shape
    known = dims.rank == 4 and all(d is not None for d in dims[1:])
    return dtypes, (tuple(int(d) for d in dims[1:]) if known else None)


def load_generator(path: str | os.PathLike, *, num_classes: int | None = None,
                   image_shape: Sequence[int] | None = None) -> Generator:
    """Load a generator from a run directory, a SavedModel directory or a model base directory.

    ``num_classes`` and ``image_shape`` are used only for a SavedModel without tfaug metadata (one exported by
    another tool that honours the serving signature); its signature's image shape wins when it states one.

    Raises:
        TfaugError: ``path`` is none of the three forms, or what it holds is unreadable.
    """
    p = Path(path)
    hints = {"num_classes": num_classes, "image_shape": image_shape}
    if (p / "saved_model.pb").is_file():
        return SavedModelGenerator(p, **hints)
    if (p / "config.json").is_file() or (p / "checkpoints").is_dir():
        return KerasGenerator.from_run(p)
    if p.is_dir():
        latest = latest_version(p)
        if latest is not None:
            version_dir = p / str(latest)
            if not (version_dir / "saved_model.pb").is_file():
                raise TfaugError(f"{version_dir} (the highest version under {p}) has no saved_model.pb; re-export it.")
            return SavedModelGenerator(version_dir, **hints)
    raise TfaugError(
        f"{p} is not a generator: pass a run directory (config.json + checkpoints/generator.keras), "
        "a SavedModel directory (saved_model.pb) or a model base directory (saved_models/NAME with integer versions)."
    )
