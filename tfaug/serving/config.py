"""What to serve: TF Serving's ``models.config`` (ModelServerConfig text proto) or a ``saved_models/`` directory.

Both become a list of :class:`ModelSpec` (name, absolute base path, version policy, version labels). Relative
``base_path`` values are resolved against the directory of the config file (TF Serving resolves them against its
working directory; inside the container the config uses absolute ``/models/...`` paths, so this only matters
for local runs). The version policy decides which integer version directories are served:
``latest {num_versions: n}`` (default n=1), ``all {}`` or ``specific {versions: ...}``.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from tfaug.errors import TfaugError

__all__ = ["ModelSpec", "read_model_config", "scan_model_base", "parse_model_config"]


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """One served model.

    Attributes:
        name: model name used in URLs and ModelSpec.name.
        base_path: directory holding integer version sub-directories.
        policy: "latest", "all" or "specific".
        num_versions: with "latest", how many of the highest versions to serve (>= 1).
        versions: with "specific", the versions to serve.
        labels: version label -> version (e.g. {"stable": 1, "canary": 2}).
    """

    name: str
    base_path: Path
    policy: str = "latest"
    num_versions: int = 1
    versions: tuple[int, ...] = ()
    labels: dict = dataclasses.field(default_factory=dict)

    def wanted(self, present: list[int]) -> list[int]:
        """The versions among ``present`` (ascending) that the policy serves, ascending."""
        if self.policy == "all":
            return list(present)
        if self.policy == "specific":
            return [v for v in present if v in self.versions]
        return list(present[-self.num_versions :]) if present else []


def parse_model_config(text: str, config_dir: str | os.PathLike, source: str = "models.config") -> list[ModelSpec]:
    """Parse ModelServerConfig text-proto ``text``; relative base paths are resolved against ``config_dir``.

    Raises:
        TfaugError: invalid syntax, a non-tensorflow platform, a duplicate or missing name or base path.
    """
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    config = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as exc:
        raise TfaugError(f"{source} is not a valid ModelServerConfig text proto: {exc}.") from None
    if config.WhichOneof("config") != "model_config_list":
        raise TfaugError(
            f"{source} has no model_config_list; list the models in model_config_list {{ config {{ ... }} }}."
        )
    specs: list[ModelSpec] = []
    for entry in config.model_config_list.config:
        specs.append(_spec_from_proto(entry, Path(config_dir), source))
    names = [s.name for s in specs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise TfaugError(f"{source} lists model {duplicates[0]!r} more than once; model names must be unique.")
    if not specs:
        raise TfaugError(f"{source} lists no models; add at least one config {{ name: ... base_path: ... }}.")
    return specs


def _spec_from_proto(entry, config_dir: Path, source: str) -> ModelSpec:
    if not entry.name:
        raise TfaugError(f"{source} has a model config without a name.")
    if not entry.base_path:
        raise TfaugError(f"{source}: model {entry.name!r} has no base_path.")
    platform = entry.model_platform or "tensorflow"
    if platform != "tensorflow":
        raise TfaugError(f"{source}: model {entry.name!r} has model_platform {platform!r}; only 'tensorflow' is supported.")
    base = Path(entry.base_path)
    if not base.is_absolute():
        base = config_dir / base
    policy_msg = entry.model_version_policy
    which = policy_msg.WhichOneof("policy_choice") if entry.HasField("model_version_policy") else None
    kwargs: dict = {}
    if which == "all":
        kwargs["policy"] = "all"
    elif which == "specific":
        versions = tuple(int(v) for v in policy_msg.specific.versions)
        if not versions:
            raise TfaugError(f"{source}: model {entry.name!r} has a specific version policy without versions.")
        kwargs.update(policy="specific", versions=versions)
    else:
        n = int(policy_msg.latest.num_versions) if which == "latest" else 1
        kwargs.update(policy="latest", num_versions=max(n, 1))
    labels = {str(k): int(v) for k, v in entry.version_labels.items()}
    return ModelSpec(name=entry.name, base_path=base.resolve(), labels=labels, **kwargs)


def read_model_config(path: str | os.PathLike) -> list[ModelSpec]:
    """Read and parse a ``models.config`` file (see :func:`parse_model_config`)."""
    path = Path(path)
    if not path.is_file():
        raise TfaugError(f"Model config file {path} does not exist; pass the path of a models.config.")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TfaugError(f"Cannot read model config file {path} ({exc}).") from None
    return parse_model_config(text, path.resolve().parent, source=str(path))


def scan_model_base(model_base: str | os.PathLike) -> list[ModelSpec]:
    """Every visible sub-directory NAME of ``model_base`` as a model serving its latest version."""
    base = Path(model_base)
    if not base.is_dir():
        raise TfaugError(f"Model base directory {base} does not exist; export a model first (tfaug export).")
    return [
        ModelSpec(name=p.name, base_path=p.resolve())
        for p in sorted(base.iterdir())
        if p.is_dir() and not p.name.startswith(".")
    ]
