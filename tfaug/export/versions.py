"""Versioned model directories: ``saved_models/<name>/<integer version>/`` (TF Serving base paths).

TF Serving watches a model base path and serves the highest integer sub-directory, ignoring everything else.
Export publishes a version by renaming a hidden temporary directory (``.<version>.tmp-XXXX``), so a
half-written export is never an integer directory and is never picked up, by Serving or by these helpers.
No TensorFlow here: these are plain path rules.
"""
from __future__ import annotations

import os
from pathlib import Path

from tfaug.errors import TfaugError


def is_version_dir(path: Path) -> bool:
    """True for a directory named by a non-negative integer (``1``, ``17``), never hidden/temporary ones."""
    return path.is_dir() and path.name.isdigit() and path.name.isascii()


def list_versions(model_base: str | os.PathLike) -> list[int]:
    """Integer versions present under ``model_base``, ascending ([] when the directory does not exist)."""
    base = Path(model_base)
    if not base.is_dir():
        return []
    return sorted(int(p.name) for p in base.iterdir() if is_version_dir(p))


def latest_version(model_base: str | os.PathLike) -> int | None:
    """The highest integer version under ``model_base`` (what TF Serving serves), or None when there is none."""
    versions = list_versions(model_base)
    return versions[-1] if versions else None


def next_version(model_base: str | os.PathLike) -> int:
    """1 + the highest integer sub-directory of ``model_base`` (temporary and hidden ones ignored); 1 when none."""
    latest = latest_version(model_base)
    return 1 if latest is None else latest + 1


def resolve_version(model_base: str | os.PathLike, version: int | str | None) -> int:
    """Turn a requested version (None, "auto", an int or a digit string) into a concrete integer version.

    Raises:
        TfaugError: the version is not a non-negative integer or "auto".
    """
    if version is None or (isinstance(version, str) and version.strip().lower() == "auto"):
        return next_version(model_base)
    if isinstance(version, bool):
        raise TfaugError(f"Model version must be a non-negative integer or 'auto', got {version!r}.")
    if isinstance(version, int):
        number = version
    elif isinstance(version, str) and version.strip().isdigit():
        number = int(version.strip())
    else:
        raise TfaugError(f"Model version must be a non-negative integer or 'auto', got {version!r}.")
    if number < 0:
        raise TfaugError(f"Model version must be a non-negative integer or 'auto', got {version!r}.")
    return number
