"""Hardware detection for mixed precision: /proc/cpuinfo parsing and the choice a bare --mixed-precision makes."""
import pytest

from tfaug.errors import TfaugError
from tfaug.utils import hardware

CPUINFO = """processor\t: 0
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse2 avx2 fma avx512f avx512_vnni avx512_bf16 amx_tile amx_bf16 amx_int8

processor\t: 1
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse2 avx2 fma avx512f avx512_vnni avx512_bf16 amx_tile amx_bf16 amx_int8
"""


def test_cpu_info_reads_model_flags_and_count(tmp_path):
    path = tmp_path / "cpuinfo"
    path.write_text(CPUINFO)
    info = hardware.cpu_info(path)
    assert info["model"] == "Intel(R) Xeon(R) Platinum 8480+" and info["logical_cpus"] == 2
    assert "amx_bf16" in info["flags"] and "avx512_bf16" in info["flags"] and "fpu" in info["flags"]
    assert hardware.cpu_supports_bf16(info["flags"])
    missing = hardware.cpu_info(tmp_path / "absent")
    assert missing["flags"] == [] and missing["logical_cpus"] == 0


@pytest.mark.parametrize("flags, caps, want", [
    (["avx2"], [(8, 0)], "bf16"),                     # A100 and newer: bf16 whatever the CPU
    (["avx2"], [(9, 0), (8, 6)], "bf16"),
    (["amx_bf16"], [(7, 5)], "fp16"),                 # a T4: the GPU trains, fp16 with loss scaling
    (["avx2"], [(8, 0), (7, 0)], "fp16"),             # mixed GPUs: the oldest decides
    (["amx_bf16", "amx_tile"], [], "bf16"),           # AMX CPU
    (["avx512f", "avx512_bf16"], [], "bf16"),         # AVX512-BF16 CPU
])
def test_auto_precision(flags, caps, want):
    assert hardware.auto_precision(flags, caps) == want


def test_auto_precision_without_bf16_hardware_is_one_clear_sentence():
    with pytest.raises(TfaugError, match="lacks bfloat16 instructions.*--mixed-precision bf16 or fp16") as exc:
        hardware.auto_precision(["avx2", "fma"], [])
    assert "\n" not in str(exc.value)


def test_machine_summary_lists_reported_flags_only():
    summary = hardware.machine_summary()
    assert set(summary) == {"cpu_model", "cpu_flags", "logical_cpus", "bf16_cpu"}
    assert set(summary["cpu_flags"]) <= set(hardware.REPORTED_CPU_FLAGS)
    assert summary["bf16_cpu"] == hardware.cpu_supports_bf16()
