"""Keep TensorFlow's native log lines off the terminal, so a ``tfaug`` command shows only tfaug's own lines.

TensorFlow's C++ core logs through absl straight to file descriptor 2, partly before ``TF_CPP_MIN_LOG_LEVEL``
is read (the absl ``InitializeLog`` banner, the oneDNN notice, ``Could not find cuda drivers``, ``failed call to
cuInit``, grappler's ``remapper failed ... Mutation::Apply error``). No setting removes all of them, so
:func:`quiet_native_logs` puts a filter between descriptor 2 and the terminal: Python's ``sys.stderr`` (tfaug's
messages, warnings, progress bars) goes to the terminal directly, and what native code writes to descriptor 2
passes a line filter that drops absl/glog-formatted lines (``I0000 00:00:...``, ``W...``, ``E...``) and the
absl banner. Fatal (``F``) lines and anything else pass through, so a crash still explains itself.

``--verbose`` or ``TFAUG_VERBOSE=1`` turns the filter off. No TensorFlow import here.
"""
from __future__ import annotations

import logging
import os
import re
import sys
import threading

__all__ = ["VERBOSE_ENV", "NativeLogFilter", "is_noise", "owns_stderr", "quiet_native_logs", "verbose_requested"]

VERBOSE_ENV = "TFAUG_VERBOSE"
# absl/glog line prefix: severity letter (not F), MMDD, time (absl before InitializeLog prints "00:00:<epoch>"),
# thread id, file:line]
_GLOG = re.compile(rb"^[IWE]\d{4} \d\d:\d\d:\d+(\.\d+)?\s+\d+\s+\S+:\d+\]")
_BANNERS = (b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
            b"To enable the following instructions:")  # second line of cpu_feature_guard's notice


def verbose_requested(flag: bool = False) -> bool:
    """True when ``flag`` (``--verbose``) is set or ``TFAUG_VERBOSE`` holds a true value (1, true, yes, on)."""
    env = os.environ.get(VERBOSE_ENV, "").strip().lower()
    return bool(flag) or env in ("1", "true", "yes", "on")


def is_noise(line: bytes) -> bool:
    """True for a native TensorFlow log line that a quiet terminal drops (info, warning and error lines in absl's
    format, and absl's pre-initialisation banner); False for everything else, fatal lines included."""
    text = line.rstrip(b"\r\n")
    return bool(_GLOG.match(text)) or text.strip().startswith(_BANNERS)


def _write_all(fd: int, data: bytes) -> bool:
    """Write every byte of ``data`` to ``fd``; False when the descriptor is gone (the terminal closed)."""
    try:
        while data:
            data = data[os.write(fd, data):]
    except OSError:
        return False
    return True


class NativeLogFilter:
    """Redirect descriptor 2 through a thread that drops :func:`is_noise` lines; ``sys.stderr`` bypasses it.

    Use as a context manager, or ``start()`` / ``stop()``; ``stop()`` restores descriptor 2 and ``sys.stderr``
    and forwards what is still buffered. One filter per process at a time.
    """

    def __init__(self):
        self._saved_fd = None
        self._thread = None
        self._saved_stderr = None

    def start(self) -> "NativeLogFilter":
        sys.stderr.flush()
        self._saved_fd = os.dup(2)
        read_fd, write_fd = os.pipe()
        os.dup2(write_fd, 2)
        os.close(write_fd)
        self._saved_stderr = sys.stderr
        # Python's own writes (tfaug's lines, warnings, tqdm bars) go straight to the terminal, unbuffered by lines
        # so that a progress bar's carriage returns still redraw it.
        sys.stderr = open(os.dup(self._saved_fd), "w", buffering=1, encoding=getattr(sys.stderr, "encoding", None)
                          or "utf-8", errors="backslashreplace", closefd=True)
        self._thread = threading.Thread(target=self._pump, args=(read_fd, self._saved_fd), name="tfaug-native-logs",
                                        daemon=True)
        self._thread.start()
        return self

    @staticmethod
    def _pump(read_fd: int, out_fd: int) -> None:
        pending = b""
        while True:
            try:
                chunk = os.read(read_fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            pending += chunk
            *lines, pending = pending.split(b"\n")
            kept = b"".join(line + b"\n" for line in lines if not is_noise(line))
            if kept and not _write_all(out_fd, kept):
                break
        if pending and not is_noise(pending):
            _write_all(out_fd, pending)
        os.close(read_fd)

    def stop(self) -> None:
        if self._saved_fd is None:
            return
        try:
            sys.stderr.flush()
            sys.stderr.close()
        except (OSError, ValueError):
            pass
        sys.stderr = self._saved_stderr
        os.dup2(self._saved_fd, 2)  # closes the pipe's write end: the pump sees end of file and finishes
        self._thread.join(timeout=5)  # unless a child process still holds the pipe: then leave the pump be
        if not self._thread.is_alive():
            os.close(self._saved_fd)
        self._saved_fd = None

    def __enter__(self) -> "NativeLogFilter":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def owns_stderr() -> bool:
    """True when Python's ``sys.stderr`` writes to descriptor 2 itself (a program on a terminal, pipe or file);
    False when a caller has replaced it (pytest's capture, a notebook), which the filter must leave alone."""
    try:
        return sys.stderr is not None and sys.stderr.fileno() == 2
    except (AttributeError, OSError, ValueError):
        return False


def quiet_native_logs(verbose: bool = False) -> NativeLogFilter | None:
    """Quiet TensorFlow for a command-line run, unless :func:`verbose_requested`.

    Sets ``TF_CPP_MIN_LOG_LEVEL=3`` (unless already set) and sends the ``tensorflow`` and ``absl`` Python loggers'
    below-error records nowhere; when :func:`owns_stderr`, also starts a :class:`NativeLogFilter`. Call it
    before TensorFlow is imported.

    Returns:
        The started filter (stop it when the command ends), or None (verbose, or stderr not ours).
    """
    if verbose_requested(verbose):
        return None
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    for name in ("tensorflow", "absl"):
        logging.getLogger(name).setLevel(logging.ERROR)
    return NativeLogFilter().start() if owns_stderr() else None
