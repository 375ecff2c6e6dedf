"""Atomic file output and small JSON helpers.

Every file tfaug writes goes through a temporary file in the same directory followed by ``os.replace``, so an
interrupted run never leaves a half-written result, checkpoint or export behind, and never clobbers a user's
existing file with a partial one.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator


def _ensure_parent(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _public_mode(path: str | os.PathLike, directory: bool) -> None:
    """mkstemp/mkdtemp create private (0600/0700) entries; give them the normal umask-based mode so that e.g.
    a TF Serving container running as another user can read an export."""
    os.chmod(path, (0o777 if directory else 0o666) & ~_umask())


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file + rename). Returns the path."""
    path = Path(path)
    _ensure_parent(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        _public_mode(tmp, directory=False)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON, atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file."""
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def append_jsonl(path: str | os.PathLike, record: dict) -> None:
    """Append one JSON record as a line, flushed and fsynced (a crash loses at most this line)."""
    path = Path(path)
    _ensure_parent(path)
    line = json.dumps(record, sort_keys=True, default=_json_default) + "\n"
    with open(path, "a", encoding="utf-8") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """Read a JSONL file; a truncated last line (from a crash) is ignored."""
    path = Path(path)
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


@contextlib.contextmanager
def atomic_directory(final: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling directory; on success rename it to ``final`` (atomic publish).

    Replacing an existing ``final`` takes two renames (``final`` -> ``.NAME.old-PID``, then the temporary
    ``.NAME.tmp-XXXX`` -> ``final``): a kill between them leaves no ``final`` but both complete directories beside
    it. Readers that must survive that look at those hidden siblings (checkpoints:
    :func:`tfaug.utils.rundir.find_checkpoint`, which the next save cleans up after).

    Args:
        final: the directory to publish.
        overwrite: replace an existing ``final``; otherwise an existing one raises FileExistsError.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists() and not overwrite:
        raise FileExistsError(str(final))
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    _public_mode(tmp, directory=True)
    try:
        yield tmp
        if final.exists():
            old = final.with_name(f".{final.name}.old-{os.getpid()}")
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _json_default(obj: Any) -> Any:
    """Make numpy scalars/arrays and paths JSON-serialisable."""
    try:
        import numpy as np

        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


_PATH_SPECS = ("npz:", "folder:")  # dataset specs whose argument is a path


def portable_text(text: str) -> str:
    """``text`` without the machine it came from: an absolute (or ``~``) path becomes its last component, and so
    does the path of a ``npz:``/``folder:`` dataset spec (``folder:/home/ann/pets`` -> ``folder:pets``); other
    text is returned unchanged."""
    for prefix in _PATH_SPECS:
        if text.lower().startswith(prefix):
            return prefix + portable_text(text[len(prefix):])
    stripped = text.strip()
    if stripped.startswith("~") or (os.path.isabs(stripped) and len(stripped) > 1):
        return Path(stripped.rstrip("/\\")).name or stripped
    return text


def scrub_paths(value: Any) -> Any:
    """A copy of a JSON-like value with every string passed through :func:`portable_text` (exported metadata
    must not carry the exporting machine's directories)."""
    if isinstance(value, str):
        return portable_text(value)
    if isinstance(value, dict):
        return {k: scrub_paths(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub_paths(v) for v in value]
    return value
