"""SavedModel export with stable serving signatures, versioned and atomically published.

A generator export is a ``tf.Module`` whose functions close over the Keras generator and whose tracked
variables are the generator's weights (the Keras ``ExportArchive`` pattern: the Keras object tree itself is
not serialised, only the traced functions and the variables they read). Exported endpoints:

* signature ``serving_default``: ``class_id`` int32 [N], ``seed`` int64 [N] -> ``images`` uint8 [N, H, W, C],
  ``class_id`` int32 [N], ``seed`` int64 [N].
* signature ``generate_png``: same inputs -> ``png_bytes`` string [N] (REST base64-encodes ``*_bytes``).
* attributes ``serve`` and ``generate``: ONE dict argument ``{"class_id", "seed"}`` -> the ``serving_default``
  outputs, for ``keras.layers.TFSMLayer(path)`` (whose default ``call_endpoint`` is ``serve``; TFSMLayer only
  calls one-argument endpoints). They take int32 or int64 class ids and seeds (cast: int32 seed s = int64 seed s).
* signature ``truncated``: ``class_id`` int32 [N], ``seed`` int64 [N], ``truncation`` float32 [N] (psi in
  [0, 1]; 1 = no truncation) -> the ``serving_default`` outputs. A three-input sampling network
  (``[z, class_id, truncation]``, e.g. stylegan) truncates its w towards the class's average w; any other
  generator gets ``psi * z``. ``tfaug serve`` also runs it for a ``serving_default`` request that carries a
  ``truncation`` input, so there psi is an optional input of the serving signature (default 1.0).
* attribute ``generate_truncated``: ONE dict argument ``{"class_id", "seed", "truncation"}`` (for TFSMLayer;
  int32 or int64 ids and seeds, like ``generate``).
* exported classifiers: signature ``serving_default`` and attribute ``serve`` (so ``TFSMLayer(path)`` works):
  ``images`` uint8 [N, H, W, C] in [0, 255] -> ``probabilities`` float32 [N, K] (rows sum to 1). Rescaling to
  [-1, 1] and the softmax happen inside; do not rescale before or apply a softmax after.

Image i depends only on ``(class_id[i], seed[i])``: its latent is ``latent_from_seeds(seed)[i]``, so batch
composition never changes an image. Class ids outside ``[0, num_classes)``, truncations outside [0, 1] and
inputs of different lengths make the call fail with ``InvalidArgumentError`` before the generator runs.

Metadata travels inside the SavedModel as ``assets/tfaug_metadata.json`` (readable with plain ``json``, see
:func:`read_metadata`) and as the string variable ``metadata_json`` (after ``tf.saved_model.load``).
Versions are written to ``<base>/<name>/<version>/`` through a hidden temporary directory and a rename.
"""
from __future__ import annotations

import datetime
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from tfaug.errors import TfaugError
from tfaug.export.versions import next_version, resolve_version
from tfaug.utils.io import atomic_directory, read_json, write_json

__all__ = [
    "METADATA_ASSET",
    "export_generator",
    "export_classifier",
    "export_run",
    "load_run",
    "next_version",
    "read_metadata",
    "run_facts",
]

METADATA_ASSET = "tfaug_metadata.json"
_BATCH = None  # every input and output keeps a variable batch dimension (TF Serving row/columnar formats)


def _io_spec(dtype: str, shape: list) -> dict:
    return {"dtype": dtype, "shape": shape}


def _generator_signature(image_shape: tuple[int, int, int]) -> dict:
    """Human/machine-readable description of the generator endpoints (stored in the metadata)."""
    inputs = {"class_id": _io_spec("int32", [_BATCH]), "seed": _io_spec("int64", [_BATCH])}
    outputs = {
        "images": _io_spec("uint8", [_BATCH, *image_shape]),
        "class_id": _io_spec("int32", [_BATCH]),
        "seed": _io_spec("int64", [_BATCH]),
    }
    truncation = {**_io_spec("float32", [_BATCH]), "optional": True, "default": 1.0, "range": [0.0, 1.0]}
    truncated_inputs = {**inputs, "truncation": _io_spec("float32", [_BATCH])}
    return {
        "serving_default": {
            "inputs": inputs,
            "optional_inputs": {"truncation": truncation},
            "outputs": outputs,
            "note": "with a truncation input the request runs the 'truncated' signature (tfaug serve; "
                    "TF Serving: call 'truncated' directly)",
        },
        "truncated": {"inputs": truncated_inputs, "outputs": outputs},
        "generate_png": {"inputs": inputs, "outputs": {"png_bytes": _io_spec("string", [_BATCH])}},
        "generate": {
            "inputs": {"inputs": inputs},
            "outputs": outputs,
            "note": "tf.function attribute taking one dict argument, for keras.layers.TFSMLayer; also named "
                    "'serve' (TFSMLayer's default endpoint); class_id and seed may be int32 or int64",
        },
        "generate_truncated": {
            "inputs": {"inputs": truncated_inputs},
            "outputs": outputs,
            "note": "tf.function attribute taking one dict argument, for keras.layers.TFSMLayer",
        },
        "truncation": "psi in [0, 1], 1 = none: w_avg[c] + psi * (w - w_avg[c]) for generators with a truncation "
                      "input, psi * z for the others; psi = 0 gives each class's average image",
        "image_encoding": "uint8 = clip(round((x + 1) * 127.5), 0, 255) of generator output x in [-1, 1]",
        "determinism": "image i depends only on (class_id[i], seed[i])",
    }


def _classifier_signature(image_shape: tuple, num_classes: int) -> dict:
    return {
        "serving_default": {
            "inputs": {"images": _io_spec("uint8", [_BATCH, *image_shape])},
            "outputs": {"probabilities": _io_spec("float32", [_BATCH, num_classes])},
        },
        "image_encoding": "uint8 [0, 255], scaled to [-1, 1] inside the model",
        "output": "probabilities (softmax applied inside; each row sums to 1), not logits",
        "keras": "keras.layers.TFSMLayer(path) calls the attribute 'serve' (the same function)",
    }


# --------------------------------------------------------------------------------------------- graph code


def _checked_inputs(class_id, seed, num_classes: int):
    """Assert equal lengths and 0 <= class_id < num_classes before anything reads the inputs."""
    import tensorflow as tf

    checks = [
        tf.debugging.assert_equal(
            tf.size(class_id), tf.size(seed), message="class_id and seed must have the same length"
        ),
        tf.debugging.assert_greater_equal(class_id, 0, message="class_id must be >= 0"),
        tf.debugging.assert_less(class_id, num_classes, message=f"class_id must be < {num_classes}"),
    ]
    # Control dependencies so a bad id fails here, not as an Embedding gather (which returns zeros on GPU).
    with tf.control_dependencies(checks):
        return tf.identity(class_id), tf.identity(seed)


def _checked_truncation(truncation, seed):
    """Assert ``truncation`` has one value per row and every value is in [0, 1] (NaN fails too)."""
    import tensorflow as tf

    checks = [
        tf.debugging.assert_equal(
            tf.size(truncation), tf.size(seed), message="truncation and seed must have the same length"
        ),
        tf.debugging.assert_greater_equal(truncation, 0.0, message="truncation must be >= 0"),
        tf.debugging.assert_less_equal(truncation, 1.0, message="truncation must be <= 1"),
    ]
    with tf.control_dependencies(checks):
        return tf.identity(truncation)


def _to_uint8(x):
    import tensorflow as tf

    return tf.cast(tf.clip_by_value(tf.round((x + 1.0) * 127.5), 0.0, 255.0), tf.uint8)


def _generator_module(model, z_dim: int, num_classes: int):
    """A tf.Module with the generator endpoints; variables tracked explicitly (see module docstring)."""
    import tensorflow as tf

    from tfaug.models.sampling import generator_images

    module = tf.Module(name="tfaug_generator")
    module.generator_variables = list(model.variables)
    class_spec = tf.TensorSpec([None], tf.int32, name="class_id")
    seed_spec = tf.TensorSpec([None], tf.int64, name="seed")
    truncation_spec = tf.TensorSpec([None], tf.float32, name="truncation")

    def core(class_id, seed, truncation):
        class_id, seed = _checked_inputs(class_id, seed, num_classes)
        truncation = _checked_truncation(truncation, seed)
        x = generator_images(model, z_dim, class_id, seed, truncation)
        return {"images": _to_uint8(x), "class_id": tf.identity(class_id), "seed": tf.identity(seed)}

    # Every endpoint calls this one function, so the generator is traced once per export, not once per
    # endpoint. Without a truncation it gets psi = 1, which is exactly no truncation (1 * z = z; a
    # three-input network gets the ones it gets when sampled without truncation in-process).
    core = tf.function(core, input_signature=[class_spec, seed_spec, truncation_spec], autograph=False)

    def images(class_id, seed, truncation=None):
        if truncation is None:
            truncation = tf.ones(tf.shape(seed), tf.float32)
        return core(class_id, seed, truncation)

    def serve(class_id, seed):
        return images(class_id, seed)

    def generate_png(class_id, seed):
        encoded = tf.map_fn(tf.io.encode_png, images(class_id, seed)["images"], fn_output_signature=tf.string)
        return {"png_bytes": encoded}

    def ids(inputs):
        # int32 or int64 class ids and seeds: the values are the same, the core takes int32 / int64
        return tf.cast(inputs["class_id"], tf.int32), tf.cast(inputs["seed"], tf.int64)

    def generate(inputs):
        return images(*ids(inputs))

    def truncated(class_id, seed, truncation):
        return images(class_id, seed, truncation)

    def generate_truncated(inputs):
        return images(*ids(inputs), tf.cast(inputs["truncation"], tf.float32))

    # Signatures have one fixed dtype per input (TF Serving's contract: class_id int32, seed int64).
    module.serve_signature = tf.function(serve, input_signature=[class_spec, seed_spec], autograph=False)
    module.generate_png = tf.function(generate_png, input_signature=[class_spec, seed_spec], autograph=False)
    module.truncated = tf.function(
        truncated, input_signature=[class_spec, seed_spec, truncation_spec], autograph=False
    )
    # The one-dict endpoints for keras.layers.TFSMLayer: `serve` is its default call_endpoint. Each is traced for
    # int32 and int64 class ids and seeds (a restored function dispatches on the dtypes it was traced for);
    # the values are cast, so an int32 seed s gives the image of the int64 seed s.
    # `serve` and `generate` are one function object (saved once, traced once per dtype pair).
    module.serve = module.generate = tf.function(generate, autograph=False)
    module.generate_truncated = tf.function(generate_truncated, autograph=False)
    for cls_dtype in (tf.int32, tf.int64):
        for seed_dtype in (tf.int32, tf.int64):
            pair = {"class_id": tf.TensorSpec([None], cls_dtype, name="class_id"),
                    "seed": tf.TensorSpec([None], seed_dtype, name="seed")}
            module.generate.get_concrete_function(pair)
            module.generate_truncated.get_concrete_function({**pair, "truncation": truncation_spec})
    signatures = {
        "serving_default": module.serve_signature.get_concrete_function(),
        "generate_png": module.generate_png.get_concrete_function(),
        "truncated": module.truncated.get_concrete_function(),
    }
    return module, signatures


def _classifier_module(model, image_shape: tuple, from_logits: bool):
    import tensorflow as tf

    module = tf.Module(name="tfaug_classifier")
    module.classifier_variables = list(model.variables)

    def serve(images):
        x = tf.cast(images, tf.float32) / 127.5 - 1.0
        y = tf.cast(model(x, training=False), tf.float32)
        return {"probabilities": tf.nn.softmax(y, axis=-1) if from_logits else y}

    module.serve = tf.function(
        serve, input_signature=[tf.TensorSpec([None, *image_shape], tf.uint8, name="images")], autograph=False
    )
    return module, {"serving_default": module.serve.get_concrete_function()}


# ------------------------------------------------------------------------------------------- publishing


def _publish(module, signatures: dict, metadata: dict, name: str, version, base, overwrite: bool) -> Path:
    """Attach metadata to ``module`` and save it as ``base/name/<version>`` via a temporary directory."""
    import tensorflow as tf

    if not name or not isinstance(name, str) or "/" in name or "\\" in name or name.startswith("."):
        raise TfaugError(f"Model name must be a plain directory name such as 'digits_cgan', got {name!r}.")
    model_base = Path(base) / name
    number = resolve_version(model_base, version)
    final = model_base / str(number)
    if final.exists() and not overwrite:
        raise TfaugError(f"{final} already exists; pass overwrite=True or choose another version (or 'auto').")

    with tempfile.TemporaryDirectory(prefix="tfaug-meta-") as staging:
        # The asset is copied into <export>/assets/ by tf.saved_model.save, keeping its file name.
        asset_file = write_json(Path(staging) / METADATA_ASSET, metadata)
        module.metadata_asset = tf.saved_model.Asset(str(asset_file))
        module.metadata_json = tf.Variable(asset_file.read_text(encoding="utf-8"), trainable=False, name="metadata_json")
        try:
            with atomic_directory(final, overwrite=overwrite) as tmp:
                tf.saved_model.save(module, str(tmp), signatures=signatures)
                if not (tmp / "assets" / METADATA_ASSET).is_file():
                    raise RuntimeError(f"SavedModel export did not write assets/{METADATA_ASSET}")
        except FileExistsError:  # another process published this version between our check and the rename
            raise TfaugError(f"{final} already exists; pass overwrite=True or choose another version.") from None
    return final


def _base_metadata(metadata: dict | None, kind_default: str, image_shape, num_classes: int) -> dict:
    from tfaug import __version__

    from tfaug.utils.io import scrub_paths

    meta: dict[str, Any] = scrub_paths(dict(metadata or {}))  # no directories of the exporting machine
    names = meta.get("class_names")
    names = [str(i) for i in range(num_classes)] if names is None else [str(n) for n in names]
    if len(names) != num_classes:
        raise TfaugError(f"metadata has {len(names)} class names but the model has {num_classes} classes.")
    meta.update(
        model_kind=str(meta.get("model_kind") or kind_default),
        image_shape=[int(d) for d in image_shape],
        num_classes=int(num_classes),
        class_names=names,
        tfaug_version=__version__,
        exported_at=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    )
    return meta


def _static_shape(shape, what: str) -> tuple[int, ...]:
    dims = tuple(shape)
    if any(d is None for d in dims):
        raise TfaugError(f"The {what} shape {dims} must be fully known to export (only the batch may vary).")
    return tuple(int(d) for d in dims)


def export_generator(
    model,
    *,
    z_dim: int,
    num_classes: int,
    metadata: dict,
    name: str,
    version: int | str | None = None,
    base: str | os.PathLike = "saved_models",
    overwrite: bool = False,
) -> Path:
    """Export a class-conditional generator as a TF Serving SavedModel at ``base/name/<version>``.

    Args:
        model: functional Keras generator, inputs ``[z float32 [N, z_dim], class_id int32 [N]]`` ->
            float32 [N, H, W, C] in [-1, 1] (a single ``z`` input is accepted for unconditional generators,
            and ``[z, class_id, truncation float32 [N]]`` for generators that truncate in their own w space).
        z_dim: latent size (must match the model's first input).
        num_classes: class ids accepted by the signatures are ``0 .. num_classes - 1``.
        metadata: extra JSON-serialisable metadata (e.g. ``class_names``, ``model_kind``, training config).
        name: model name (the TF Serving model base directory name).
        version: integer version, or None / "auto" for 1 + the highest existing version.
        base: directory holding all model bases.
        overwrite: replace an existing version directory.

    Returns:
        The published version directory.

    Raises:
        TfaugError: incompatible model, bad name/version, or an existing version without ``overwrite``.
    """
    if len(model.inputs) not in (1, 2, 3):
        raise TfaugError(f"A generator must take [z, class_id] (or [z, class_id, truncation]) inputs, "
                         f"this model takes {len(model.inputs)}.")
    z_in = model.inputs[0].shape[-1]
    if z_in is not None and int(z_in) != int(z_dim):
        raise TfaugError(f"z_dim={z_dim} does not match the generator's latent input size {int(z_in)}.")
    if int(num_classes) < 1:
        raise TfaugError(f"num_classes must be at least 1, got {num_classes}.")
    out_shape = tuple(model.outputs[0].shape)
    if len(out_shape) != 4:
        raise TfaugError(f"A generator must output images [N, H, W, C], this one outputs {out_shape}.")
    image_shape = _static_shape(out_shape[1:], "generator output")
    meta = _base_metadata(metadata, "generator", image_shape, int(num_classes))
    meta.update(z_dim=int(z_dim), signature=_generator_signature(image_shape))
    module, signatures = _generator_module(model, int(z_dim), int(num_classes))
    return _publish(module, signatures, meta, name, version, base, overwrite)


def _ends_in_softmax(model) -> bool:
    import keras

    last = model.layers[-1]
    if isinstance(last, keras.layers.Softmax):
        return True
    return getattr(getattr(last, "activation", None), "__name__", "") == "softmax"


def export_classifier(
    model,
    *,
    metadata: dict,
    name: str,
    version: int | str | None = None,
    base: str | os.PathLike = "saved_models",
    overwrite: bool = False,
    from_logits: bool | None = None,
) -> Path:
    """Export a classifier: signature ``serving_default`` ``images`` uint8 [N, H, W, C] -> ``probabilities``.

    Images are scaled to [-1, 1] inside the SavedModel. ``from_logits=None`` applies a softmax unless the
    model's last layer already is one; pass True/False to decide explicitly.
    """
    in_shape = tuple(model.inputs[0].shape)
    if len(model.inputs) != 1 or len(in_shape) != 4:
        raise TfaugError(f"A classifier must take one image input [N, H, W, C], this one takes {in_shape}.")
    image_shape = _static_shape(in_shape[1:], "classifier input")
    num_classes = model.outputs[0].shape[-1]
    if num_classes is None or len(model.outputs[0].shape) != 2:
        raise TfaugError(f"A classifier must output [N, K] scores, this one outputs {tuple(model.outputs[0].shape)}.")
    if from_logits is None:
        from_logits = not _ends_in_softmax(model)
    meta = _base_metadata(metadata, "classifier", image_shape, int(num_classes))
    meta["signature"] = _classifier_signature(image_shape, int(num_classes))
    module, signatures = _classifier_module(model, image_shape, bool(from_logits))
    return _publish(module, signatures, meta, name, version, base, overwrite)


# ----------------------------------------------------------------------------------------- run directories


CHECKPOINT_CHOICES = ("last", "best")


def load_run(run_dir: str | os.PathLike, checkpoint: str = "last") -> tuple[Any, dict]:
    """Load ``(sampling network keras.Model, config dict)`` from a training run directory.

    A run directory holds ``config.json`` and ``checkpoints/generator.keras`` (the sampling network of the last
    checkpoint, the EMA generator for GANs) and, when trained with ``best_every``, ``checkpoints/best/generator.keras``.

    Args:
        run_dir: the run directory.
        checkpoint: ``last`` (default) or ``best``.

    Raises:
        TfaugError: the directory is missing, lacks either file, or either file is unreadable.
    """
    from tfaug.utils.rundir import CHECKPOINTS, GENERATOR, read_run_config

    if checkpoint not in CHECKPOINT_CHOICES:
        raise TfaugError(f"checkpoint must be one of {', '.join(CHECKPOINT_CHOICES)}, got {checkpoint!r}.")
    run = Path(run_dir)
    config = read_run_config(run)
    ckpt = run / CHECKPOINTS / GENERATOR if checkpoint == "last" else run / CHECKPOINTS / "best" / GENERATOR
    if not ckpt.is_file():
        if checkpoint == "best":
            raise TfaugError(f"{run} has no best checkpoint (missing checkpoints/best/generator.keras); train it "
                             "with `tfaug train-gan --best-every N` (N > 0) or export the last checkpoint.")
        raise TfaugError(f"{run} has no generator checkpoint (missing checkpoints/generator.keras); train it first.")
    import keras

    import tfaug.models.networks.layers  # noqa: F401  (registers the custom layers sampling networks use)

    import zipfile

    # Keras reports a file that is there but is no zip archive as "File not found": say what it is instead.
    if not zipfile.is_zipfile(ckpt):
        raise TfaugError(f"{ckpt} is not a .keras (zip) archive; the checkpoint is corrupt or truncated: retrain or "
                         "resume the run.")
    try:
        model = keras.models.load_model(ckpt, compile=False)
    except Exception as exc:  # corrupt zip, unknown layer ... all mean "this checkpoint is unusable"
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise TfaugError(f"{ckpt} could not be loaded ({type(exc).__name__}: {reason}); the checkpoint is corrupt.") from None
    return model, config


def run_facts(config: dict, model, run_dir) -> dict:
    """``z_dim``, ``num_classes``, ``class_names``, ``model_kind`` from a run config (latent size falls back to the model)."""
    data = config.get("data") or {}
    gan = config.get("gan") or {}
    z_dim = gan.get("z_dim", model.inputs[0].shape[-1])
    num_classes = data.get("num_classes")
    names = data.get("class_names")
    if num_classes is None and names is not None:
        num_classes = len(names)
    if z_dim is None or num_classes is None:
        raise TfaugError(f"{run_dir}/config.json lacks gan.z_dim or data.num_classes; the run directory is corrupt.")
    return {
        "z_dim": int(z_dim),
        "num_classes": int(num_classes),
        "class_names": [str(n) for n in names] if names is not None else [str(i) for i in range(int(num_classes))],
        "model_kind": str(config.get("kind") or "generator"),
    }


def export_run(
    run_dir: str | os.PathLike,
    name: str,
    version: int | str | None = None,
    base: str | os.PathLike = "saved_models",
    overwrite: bool = False,
    checkpoint: str = "last",
) -> Path:
    """Export the sampling network (EMA generator) of a training run directory (see :func:`export_generator`);
    ``checkpoint`` is ``last`` (default) or ``best``."""
    model, config = load_run(run_dir, checkpoint)
    facts = run_facts(config, model, run_dir)
    data = config.get("data") or {}
    metadata = {
        "model_kind": facts["model_kind"],
        "class_names": facts["class_names"],
        "dataset": data.get("spec"),
        "run_dir": Path(run_dir).resolve().name,  # the run's name only: metadata carries no local paths
        "checkpoint": checkpoint,
        "training_config": config,
    }
    return export_generator(
        model,
        z_dim=facts["z_dim"],
        num_classes=facts["num_classes"],
        metadata=metadata,
        name=name,
        version=version,
        base=base,
        overwrite=overwrite,
    )


def read_metadata(saved_model_dir: str | os.PathLike) -> dict:
    """Read ``assets/tfaug_metadata.json`` of an exported SavedModel with plain ``json`` (no TensorFlow)."""
    path = Path(saved_model_dir) / "assets" / METADATA_ASSET
    if not path.is_file():
        raise TfaugError(f"{saved_model_dir} is not a tfaug SavedModel (missing assets/{METADATA_ASSET}).")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TfaugError(f"{path} is not valid JSON ({exc}); re-export the model.") from None
    if not isinstance(meta, dict):
        raise TfaugError(f"{path} does not hold a JSON object; re-export the model.")
    return meta
