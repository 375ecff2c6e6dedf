"""Loaded model versions, version policies, labels and hot reload for the local model server.

:class:`ModelStore` keeps, per served model, the versions that are loaded (``tf.saved_model.load``, signature
``serving_default`` present, one warm-up call succeeded), the versions that failed to load (with the error,
reported as state ``END`` like TF Serving) and polls the base paths every ``poll_seconds``: a new integer version
directory is loaded on the polling thread and swapped in only once it is fully loaded and sane; old versions
are unloaded per policy only after a wanted version is available (TF Serving's availability-preserving policy),
so a broken new version never takes the model down. The ``latest`` policy serves the highest versions that load
(a broken or half-written newer one is skipped, and deleting the serving version falls back to the next loadable
one); a failed version is retried as soon as any file under it changes (size or mtime). Hidden temporary export directories are not integer
directories (see :mod:`tfaug.export.versions`) and are never looked at.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import threading
from pathlib import Path
from typing import Callable

import numpy as np

from tfaug.export.versions import list_versions
from tfaug.serving.config import ModelSpec
from tfaug.serving.status import ServingError

__all__ = ["LoadedVersion", "ModelStore", "SignatureInfo", "load_version"]

log = logging.getLogger("tfaug.serving")


@dataclasses.dataclass
class SignatureInfo:
    """One callable signature: ``inputs``/``outputs`` map tensor names to (numpy dtype, shape with None)."""

    name: str
    fn: Callable
    inputs: dict
    outputs: dict


@dataclasses.dataclass
class LoadedVersion:
    """One loaded SavedModel version and what requests need to know about it."""

    name: str
    version: int
    path: Path
    module: object
    signatures: dict
    metadata: dict
    num_classes: int | None
    signature_def_map: object  # tensorflow_serving.apis.get_model_metadata_pb2.SignatureDefMap
    batchers: dict = dataclasses.field(default_factory=dict)
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)
    closed: bool = False

    def signature(self, name: str | None) -> SignatureInfo:
        """The signature ``name`` (default ``serving_default``) or INVALID_ARGUMENT."""
        key = name or "serving_default"
        if key not in self.signatures:
            raise ServingError(
                "INVALID_ARGUMENT",
                f"Serving signature key {key!r} not found in model {self.name!r} version {self.version} "
                f"(available: {', '.join(sorted(self.signatures))}).",
            )
        return self.signatures[key]

    def close(self) -> None:
        """Stop this version's batchers (requests already queued are still answered)."""
        with self.lock:
            self.closed = True
            batchers, self.batchers = list(self.batchers.values()), {}
        for b in batchers:
            b.close()


def _spec_of(spec) -> tuple:
    return np.dtype(spec.dtype.as_numpy_dtype) if spec.dtype.name != "string" else np.dtype(object), (
        None if spec.shape.rank is None else tuple(spec.shape.as_list())
    )


def _signature_def_map(path: Path):
    from tensorflow.core.protobuf import saved_model_pb2
    from tensorflow_serving.apis import get_model_metadata_pb2

    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString((path / "saved_model.pb").read_bytes())
    out = get_model_metadata_pb2.SignatureDefMap()
    for key, sig in saved.meta_graphs[0].signature_def.items():
        out.signature_def[key].CopyFrom(sig)
    return out


def _warm_up(info: SignatureInfo) -> None:
    """Call the signature once with one all-zero row (catches broken graphs and traces before serving)."""
    import tensorflow as tf

    feeds = {}
    for name, (dtype, shape) in info.inputs.items():
        if shape is None or any(d is None for d in shape[1:]):
            return  # cannot build a valid dummy input; the load itself must do
        value = np.zeros((1, *shape[1:]), dtype) if dtype != object else np.full((1, *shape[1:]), b"", object)
        feeds[name] = tf.constant(value, dtype=tf.string if dtype == object else tf.as_dtype(dtype))
    info.fn(**feeds)


def load_version(name: str, version: int, path: str | Path) -> LoadedVersion:
    """Load ``path`` (one SavedModel version) and check it can serve; raises on any problem."""
    import tensorflow as tf

    from tfaug.export.savedmodel import METADATA_ASSET, read_metadata

    path = Path(path)
    module = tf.saved_model.load(str(path))
    signatures = {}
    for key, fn in module.signatures.items():
        _, kwargs = fn.structured_input_signature
        outputs = fn.structured_outputs
        signatures[key] = SignatureInfo(
            name=key,
            fn=fn,
            inputs={k: _spec_of(v) for k, v in kwargs.items()},
            outputs={k: _spec_of(v) for k, v in outputs.items()},
        )
    if "serving_default" not in signatures:
        raise ValueError(f"{path} has no 'serving_default' signature")
    metadata = read_metadata(path) if (path / "assets" / METADATA_ASSET).is_file() else {}
    num_classes = metadata.get("num_classes") if metadata.get("model_kind") != "classifier" else None
    _warm_up(signatures["serving_default"])
    return LoadedVersion(
        name=name,
        version=int(version),
        path=path,
        module=module,
        signatures=signatures,
        metadata=metadata,
        num_classes=int(num_classes) if num_classes is not None else None,
        signature_def_map=_signature_def_map(path),
    )


def _fingerprint(path: Path) -> tuple:
    """(relative path, size, mtime) of every file under a version directory: changes when any file of it is
    rewritten, completed or added (variables data shards included), so a failed version is retried then."""
    stamp = []
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(root, name)
            try:
                st = os.stat(full)
            except OSError:
                continue
            stamp.append((os.path.relpath(full, path), st.st_size, st.st_mtime_ns))
    return tuple(stamp)


@dataclasses.dataclass
class _ModelState:
    spec: ModelSpec
    loaded: dict = dataclasses.field(default_factory=dict)  # version -> LoadedVersion
    failed: dict = dataclasses.field(default_factory=dict)  # version -> (fingerprint, message)
    loading: set = dataclasses.field(default_factory=set)


class ModelStore:
    """Thread-safe registry of served model versions with background polling.

    Args:
        specs: returns the models to serve; called on every poll (a ``--model-base`` store re-scans the
            directory, so new model names appear without a restart).
        poll_seconds: seconds between polls of the base paths (> 0).
        loader: ``(name, version, path) -> LoadedVersion``; :func:`load_version` by default.
    """

    def __init__(self, specs: Callable[[], list[ModelSpec]], poll_seconds: float = 2.0, loader=load_version):
        self._specs = specs
        self._poll_seconds = float(poll_seconds)
        self._loader = loader
        self._models: dict[str, _ModelState] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---------------------------------------------------------------------------------------- lifecycle

    def start_polling(self) -> None:
        """Poll the base paths on a daemon thread until :meth:`stop`."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._poll_loop, name="tfaug-model-poller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop polling and unload every version."""
        self._stop.set()
        if self._thread is not None:
            # The poller is a daemon thread: do not let a slow load hold up shutdown for long.
            self._thread.join(timeout=10)
            self._thread = None
        with self._lock:
            states, self._models = list(self._models.values()), {}
        for state in states:
            for lv in state.loaded.values():
                lv.close()

    def _poll_loop(self) -> None:
        while not self._stop.wait(self._poll_seconds):
            try:
                self.poll_once()
            except Exception:  # noqa: BLE001 - the poller must survive anything a file system throws at it
                log.exception("model poll failed; retrying in %.1f s", self._poll_seconds)

    def poll_once(self) -> None:
        """Reconcile loaded versions with the directories on disk (load new, unload unwanted)."""
        specs = {s.name: s for s in self._specs()}
        with self._lock:
            for name in list(self._models):
                if name not in specs:
                    for lv in self._models.pop(name).loaded.values():
                        lv.close()
            for name, spec in specs.items():
                state = self._models.setdefault(name, _ModelState(spec))
                state.spec = spec
        for name, spec in specs.items():
            if self._stop.is_set():
                return
            self._reconcile(self._models.get(name))

    def _reconcile(self, state: _ModelState | None) -> None:
        if state is None:
            return
        spec = state.spec
        # A version dir without saved_model.pb is still being copied in (non-atomic copy): not ready yet.
        present = [v for v in list_versions(spec.base_path) if (spec.base_path / str(v) / "saved_model.pb").is_file()]
        if spec.policy == "latest":
            # TF Serving's latest policy serves the highest versions that load: walk down past broken ones.
            wanted = []
            for v in reversed(present):
                if len(wanted) == spec.num_versions or self._stop.is_set():
                    break
                if self._ensure_loaded(state, v):
                    wanted.append(v)
            wanted.sort()
        else:
            wanted = spec.wanted(present)
            for v in reversed(wanted):  # newest first: that is what unversioned requests will want
                self._ensure_loaded(state, v)
        with self._lock:
            # Availability first: nothing is unloaded (not even a deleted version, which still serves from memory)
            # until a version the policy wants is loaded to take over.
            if any(v in state.loaded for v in wanted):
                for v in list(state.loaded):
                    if v not in wanted:
                        state.loaded.pop(v).close()
                        log.info("model %s version %d unloaded", spec.name, v)
            for v in list(state.failed):
                if v not in present:
                    del state.failed[v]

    def _ensure_loaded(self, state: _ModelState, v: int) -> bool:
        """Load version ``v`` unless it is loaded or failed with the same files; returns whether it is loaded."""
        spec = state.spec
        path = spec.base_path / str(v)
        fp = _fingerprint(path)
        with self._lock:
            if v in state.loaded:
                return True
            if v in state.failed and state.failed[v][0] == fp:
                return False
            state.loading.add(v)
        try:
            lv = self._loader(spec.name, v, path)
        except Exception as exc:  # noqa: BLE001 - any load failure just means "do not serve this version"
            message = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
            log.warning("model %s version %d at %s failed to load and is not served: %s", spec.name, v, path, message)
            with self._lock:
                state.loading.discard(v)
                state.failed[v] = (fp, message)
            return False
        with self._lock:
            state.loading.discard(v)
            state.failed.pop(v, None)
            state.loaded[v] = lv
        log.info("model %s version %d loaded from %s", spec.name, v, path)
        return True

    # ------------------------------------------------------------------------------------------ queries

    def _state(self, name: str) -> _ModelState:
        state = self._models.get(name)
        if state is None:
            # No list of the served models: a 404 must not tell a prober what else this server holds.
            raise ServingError("NOT_FOUND", f"Model {name!r} is not served by this server.")
        return state

    def _label_version(self, state: _ModelState, label: str) -> int:
        if label not in state.spec.labels:
            known = ", ".join(sorted(state.spec.labels)) or "none"
            raise ServingError(
                "NOT_FOUND", f"Model {state.spec.name!r} has no version label {label!r} (labels: {known})."
            )
        return state.spec.labels[label]

    def resolve(self, name: str, version: int | None = None, label: str | None = None) -> LoadedVersion:
        """The loaded version for a request: explicit ``version``, ``label``, or the latest available one.

        Raises:
            ServingError: NOT_FOUND for an unknown model, version or label, or a version that is not loaded.
        """
        with self._lock:
            state = self._state(name)
            if label is not None:
                version = self._label_version(state, label)
            if version is None:
                if not state.loaded:
                    raise ServingError("NOT_FOUND", f"Model {name!r} has no version available yet.")
                return state.loaded[max(state.loaded)]
            lv = state.loaded.get(int(version))
            if lv is None:
                available = ", ".join(str(v) for v in sorted(state.loaded)) or "none"
                raise ServingError(
                    "NOT_FOUND", f"Model {name!r} version {version} is not available (available versions: {available})."
                )
            return lv

    def status(self, name: str, version: int | None = None, label: str | None = None) -> list[tuple]:
        """``[(version, state, error_code, error_message)]``, newest first, for GetModelStatus.

        States follow TF Serving's ModelVersionStatus: AVAILABLE (loaded), LOADING, END (failed to load, with
        error_code UNKNOWN and the reason).
        """
        with self._lock:
            state = self._state(name)
            rows = {v: (v, "AVAILABLE", "OK", "") for v in state.loaded}
            rows.update({v: (v, "LOADING", "OK", "") for v in state.loading if v not in rows})
            rows.update({v: (v, "END", "UNKNOWN", msg) for v, (_, msg) in state.failed.items() if v not in rows})
            if label is not None:
                version = self._label_version(state, label)
            if version is not None:
                if int(version) not in rows:
                    raise ServingError("NOT_FOUND", f"Could not find version {version} of model {name!r}.")
                return [rows[int(version)]]
            if not rows:
                raise ServingError("NOT_FOUND", f"Could not find any versions of model {name!r}.")
            return [rows[v] for v in sorted(rows, reverse=True)]

    def served(self) -> dict[str, list[int]]:
        """Model name -> loaded versions (ascending)."""
        with self._lock:
            return {name: sorted(state.loaded) for name, state in sorted(self._models.items())}
