"""What this machine can compute fast: CPU model and flags, GPU compute capabilities, and the mixed precision a
bare ``--mixed-precision`` chooses (issue 21).

bfloat16 is chosen where the hardware computes it natively: CPUs with AMX (``amx_bf16``) or AVX512-BF16
(``avx512_bf16``) in ``/proc/cpuinfo`` (oneDNN then runs bf16 matmuls and convolutions on them), and GPUs of
compute capability 8.0 or newer (A100, H100, H200, RTX 30xx/40xx). Older GPUs get float16 (with loss scaling).
A CPU without bf16 instructions gets neither: emulated half precision there is slower than float32.

The CPU part reads a text file only; the GPU part imports TensorFlow (``gpu_compute_capabilities``).
"""
from __future__ import annotations

import platform
from pathlib import Path

from tfaug.errors import TfaugError

# CPU flags (as /proc/cpuinfo spells them) that give native bf16 matmuls.
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")
# Flags worth recording next to a throughput number.
REPORTED_CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16",
                      "amx_int8")
# Compute capability from which a GPU has bf16 tensor cores (Ampere).
BF16_GPU_CAPABILITY = (8, 0)


def cpu_info(path: str | Path = "/proc/cpuinfo") -> dict:
    """``{"model": str, "flags": sorted list of str, "logical_cpus": int}`` of this machine's CPU.

    Reads the first processor block of ``path`` (Linux); elsewhere the model is ``platform.processor()`` and the
    flags are empty (so no bf16 is assumed).
    """
    model, flags, count = platform.processor() or platform.machine(), set(), 0
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return {"model": model, "flags": [], "logical_cpus": 0}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "processor":
            count += 1
        elif key == "model name" and count == 1:
            model = value.strip()
        elif key == "flags" and count == 1:
            flags = set(value.split())
    return {"model": model, "flags": sorted(flags), "logical_cpus": count}


def cpu_supports_bf16(flags=None) -> bool:
    """True when the CPU flags (default: this machine's) include AMX-BF16 or AVX512-BF16."""
    flags = set(cpu_info()["flags"] if flags is None else flags)
    return any(f in flags for f in BF16_CPU_FLAGS)


def gpu_compute_capabilities() -> list[tuple[int, int]]:
    """Compute capability ``(major, minor)`` of every visible GPU (empty without GPUs); imports TensorFlow."""
    import tensorflow as tf

    caps = []
    for gpu in tf.config.list_physical_devices("GPU"):
        cc = tf.config.experimental.get_device_details(gpu).get("compute_capability") or (0, 0)
        caps.append((int(cc[0]), int(cc[1])))
    return caps


def auto_precision(cpu_flags=None, gpu_capabilities=None) -> str:
    """The mixed precision a bare ``--mixed-precision`` means here: ``"bf16"`` or ``"fp16"``.

    Args:
        cpu_flags: CPU flags (default: this machine's /proc/cpuinfo).
        gpu_capabilities: ``[(major, minor), ...]`` of the GPUs training runs on (default: the visible GPUs).

    Returns:
        ``"bf16"`` when every GPU has compute capability >= 8.0, or when there is no GPU and the CPU has AMX-BF16
        or AVX512-BF16; ``"fp16"`` on older GPUs.

    Raises:
        TfaugError: no GPU and a CPU without bf16 instructions (mixed precision would be slower than float32).
    """
    caps = gpu_compute_capabilities() if gpu_capabilities is None else list(gpu_capabilities)
    if caps:
        return "bf16" if all(tuple(c) >= BF16_GPU_CAPABILITY for c in caps) else "fp16"
    if cpu_supports_bf16(cpu_flags):
        return "bf16"
    raise TfaugError("this machine has no GPU and its CPU lacks bfloat16 instructions (AMX-BF16 or AVX512-BF16), "
                     "so mixed precision would be slower than float32; train without --mixed-precision, or force "
                     "it with --mixed-precision bf16 or fp16")


def machine_summary() -> dict:
    """``{"cpu_model", "cpu_flags" (the REPORTED_CPU_FLAGS present), "logical_cpus", "bf16_cpu"}`` for result
    files."""
    info = cpu_info()
    present = set(info["flags"])
    return {"cpu_model": info["model"], "cpu_flags": [f for f in REPORTED_CPU_FLAGS if f in present],
            "logical_cpus": info["logical_cpus"], "bf16_cpu": cpu_supports_bf16(info["flags"])}


__all__ = ["BF16_CPU_FLAGS", "REPORTED_CPU_FLAGS", "BF16_GPU_CAPABILITY", "cpu_info", "cpu_supports_bf16",
           "gpu_compute_capabilities", "auto_precision", "machine_summary"]
