"""RuntimeConfig's precision setting: the new names, the old boolean/Keras spellings, and bad values."""
import pytest

from tfaug.config import RuntimeConfig, from_dict, precision_name, to_dict
from tfaug.errors import TfaugError


@pytest.mark.parametrize("value, want", [
    ("bf16", "bf16"), ("fp16", "fp16"), ("off", "off"), ("auto", "auto"), (" BF16 ", "bf16"),
    (True, "fp16"), (False, "off"), (None, "off"),          # configs and run dirs of earlier versions
    ("mixed_float16", "fp16"), ("mixed_bfloat16", "bf16"), ("float32", "off"), ("bfloat16", "bf16"),
])
def test_precision_names_and_old_values(value, want):
    assert precision_name(value) == want
    assert RuntimeConfig(mixed_precision=value).mixed_precision == want


def test_runtime_round_trips_and_names_its_policy():
    rt = from_dict(RuntimeConfig, {"mixed_precision": True})  # an old config.json / study YAML
    assert rt == RuntimeConfig(mixed_precision="fp16") and to_dict(rt)["mixed_precision"] == "fp16"
    assert [RuntimeConfig(mixed_precision=p).dtype_policy for p in ("off", "bf16", "fp16")] == [
        "float32", "mixed_bfloat16", "mixed_float16"]
    with pytest.raises(TfaugError, match="resolved when training starts"):
        RuntimeConfig(mixed_precision="auto").dtype_policy
    with pytest.raises(TfaugError, match="unknown mixed_precision 'fp8'; choose one of: off, bf16, fp16, auto"):
        RuntimeConfig(mixed_precision="fp8")
    with pytest.raises(TfaugError, match="unknown mixed_precision 2"):
        RuntimeConfig(mixed_precision=2)
