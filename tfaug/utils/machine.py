"""Where a result was measured: CPU model and the instruction-set flags that change float results and speed.

Result files record this, because float results differ slightly across CPU kinds (oneDNN picks other kernels with
AVX-512 or AMX) and speed differs a lot (bfloat16 matrix units). No TensorFlow import.
"""
from __future__ import annotations

import os
import platform
from pathlib import Path

# Flags worth naming: vector width and the bf16 / int8 matrix units.
NOTABLE_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "amx_bf16", "amx_int8")


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (or the platform's processor string)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> list[str]:
    """Which of :data:`NOTABLE_FLAGS` this CPU has (empty where /proc/cpuinfo is unreadable)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                have = set(line.split(":", 1)[1].split())
                return [f for f in NOTABLE_FLAGS if f in have]
    except OSError:
        pass
    return []


def machine_info() -> dict:
    """CPU model, notable flags, core count, 1-minute load average and Python version, JSON-ready."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return {"cpu": cpu_model(), "cpu_flags": cpu_flags(), "cpu_count": os.cpu_count(),
            "load_average_1min": round(load, 2), "python": platform.python_version()}


def machine_text(info: dict | None = None) -> str:
    """One line: ``2 CPU cores (Intel Xeon ...; avx512f, amx_bf16, ...), load 1.2``."""
    m = info or machine_info()
    flags = ", ".join(m.get("cpu_flags") or []) or "no AVX-512/AMX"
    return f"{m.get('cpu_count')} CPU cores ({m.get('cpu')}; {flags}), load average {m.get('load_average_1min')}"


__all__ = ["NOTABLE_FLAGS", "cpu_flags", "cpu_model", "machine_info", "machine_text"]
