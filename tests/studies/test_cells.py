"""A study cell trains a mixing strategy with the trainer arguments its mix asks for: the teacher's soft targets on
generated rows, the generated flags, weight and sepbn (a recording trainer; a tiny generator)."""
import numpy as np
import pytest

from tfaug.studies.config import study_from_dict
from tfaug.studies.runner import run_study

STUDY = {"name": "mixing", "dataset": "digits", "test": {"per_class": 5}, "per_class": [2],
         "strategies": ["cdcgan+soft:2+weight:0.5+sepbn+filter:teacher:0"],
         "classifier": {"steps": 2, "width": 4, "batch_size": 8},
         "generator": {"steps": 2, "width": 8, "batch_size": 16, "z_dim": 8, "sample_every": 0,
                       "checkpoint_every": 0},
         "generator_metrics": ["kid"], "repeats": 1, "seed": 3}


@pytest.fixture
def trainings(monkeypatch):
    """A fake trainer (an untrained linear Keras model) recording every call: (images, augment, kwargs)."""
    from types import SimpleNamespace

    import keras

    import tfaug.training.classifier as classifier

    calls = []

    def fake(x, y, *, num_classes, cfg, augment=None, **kwargs):
        calls.append((len(x), augment, kwargs))
        keras.utils.set_random_seed(cfg.seed)
        model = keras.Sequential([keras.Input(np.shape(x)[1:]), keras.layers.Flatten(),
                                  keras.layers.Dense(num_classes)])
        return SimpleNamespace(model=model, metrics={"accuracy": 0.5}, history={})

    monkeypatch.setattr(classifier, "train_classifier", fake)
    return calls


def test_the_cell_trains_on_soft_targets_in_weighted_separate_bn_batches(trainings, tmp_path):
    res = run_study(study_from_dict(STUDY), tmp_path / "out", progress=False)
    assert len(res.rows) == 1 and res.rows[0]["n_synthetic"] == 20 and res.rows[0]["n_real"] == 20
    cells = [kw for n, _, kw in trainings if "mixing" in kw]
    assert len(cells) == 1
    kw = cells[0]
    assert kw["mixing"] == {"weight": 0.5, "sepbn": True}
    syn, targets = kw["synthetic"], kw["targets"]
    assert syn.sum() == 20 and targets.shape == (40, 10)
    np.testing.assert_allclose(targets.sum(axis=1), 1.0, atol=1e-5)
    assert set(np.unique(targets[~syn])) == {0.0, 1.0}  # real rows: one-hot
    assert np.all(targets[syn].max(axis=1) < 1.0)  # generated rows: the teacher's softened probabilities
    teachers = [a for n, a, k in trainings if n == 20]  # (the augmentation choice trains on validation splits)
    assert len(teachers) == 1  # the draw's control classifier, trained once on the 20 real images
    assert (tmp_path / "out" / "generators" / "k=2" / "r0" / "teacher" / "teacher.json").exists()
