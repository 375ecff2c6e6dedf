"""LeNet-5 and S1's "dynamic LeNet": kernel size and the two dense widths follow the arguments, the defaults keep
LeCun's network exactly, and bad values are clear errors."""
import pytest

from tfaug.errors import TfaugError
from tfaug.models.networks.classifiers import build_classifier


def _sizes(model):
    return {
        "kernel": model.get_layer("conv1").kernel.shape[:2],
        "kernel2": model.get_layer("conv2").kernel.shape[:2],
        "fc1": model.get_layer("fc1").units,
        "fc2": model.get_layer("fc2").units,
    }


def test_defaults_are_lenet5_exactly():
    model = build_classifier("lenet5", (28, 28, 1), 10)
    assert _sizes(model) == {"kernel": (5, 5), "kernel2": (5, 5), "fc1": 120, "fc2": 84}
    # conv 156 + conv 2,416 + dense 784*120+120 + 120*84+84 + 84*10+10 (two 2x pools: 28 -> 7, 7*7*16 = 784)
    assert model.count_params() == 156 + 2416 + 94200 + 10164 + 850


@pytest.mark.parametrize("kernel,fc1,fc2", [(3, 128, 64), (7, 512, 256), (5, 256, 128)])
def test_dynamic_lenet_sizes_follow_the_config(kernel, fc1, fc2):
    model = build_classifier("lenet5", (8, 8, 2), 3, kernel=kernel, fc1=fc1, fc2=fc2)
    assert _sizes(model) == {"kernel": (kernel, kernel), "kernel2": (kernel, kernel), "fc1": fc1, "fc2": fc2}
    assert model.get_layer("conv1").kernel.shape[2] == 2  # any channel count (e.g. a source-flag channel)
    assert model.output_shape == (None, 3)


def test_small_cnn_ignores_lenet_sizes():
    a = build_classifier("small_cnn", (8, 8, 1), 3, width=8)
    b = build_classifier("small_cnn", (8, 8, 1), 3, width=8, kernel=7, fc1=512, fc2=256)
    assert a.count_params() == b.count_params()


@pytest.mark.parametrize("kwargs", [{"kernel": 4}, {"kernel": 0}, {"fc1": 0}, {"fc2": -1}])
def test_bad_lenet_sizes(kwargs):
    with pytest.raises(TfaugError):
        build_classifier("lenet5", (8, 8, 1), 3, **kwargs)
