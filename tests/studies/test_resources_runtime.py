"""CellResources trains every generator, encoder and judge under the study's ``runtime`` (stand-ins record it)."""
import numpy as np
import pytest

from tfaug.config import RuntimeConfig
from tfaug.studies.config import study_from_dict
from tfaug.studies.resources import CellResources
from tests_helpers import toy_images


class _Trained:
    model = "model"


@pytest.fixture
def recorded(monkeypatch):
    import tfaug.training.classifier as classifier
    import tfaug.training.gan_runner as gan_runner

    calls = []

    def fake_gan(*args, **kwargs):
        calls.append(("gan", kwargs.get("runtime", "missing")))
        return _Trained()

    def fake_classifier(*args, **kwargs):
        calls.append(("classifier", kwargs.get("runtime", "missing")))
        return _Trained()

    monkeypatch.setattr(gan_runner, "train_gan", fake_gan)
    monkeypatch.setattr(classifier, "train_classifier", fake_classifier)
    return calls


@pytest.mark.parametrize("runtime", [None, {"strategy": "mirrored", "devices": 2, "mixed_precision": True}])
def test_every_training_call_gets_the_study_runtime(runtime, recorded, tmp_path):
    data = {"name": "t", "dataset": "digits", "per_class": [2], "strategies": ["baseline", "cdcgan"]}
    if runtime is not None:
        data["runtime"] = runtime
    cfg = study_from_dict(data)
    x, y = toy_images(n_per_class=2)
    res = CellResources(cfg, images=x, labels=y, indices=np.arange(len(x)), class_names=["a", "b", "c"],
                        root=tmp_path, seed=0)
    res.generator("cdcgan")
    res.encode_fn()
    res.probabilities_fn()
    want = RuntimeConfig(**(runtime or {}))
    assert recorded == [("gan", want), ("gan", want), ("classifier", want)]
