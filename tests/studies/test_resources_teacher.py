"""The teacher need: a strategy block that declares it gets the draw's control classifier (classic augmentation),
trained once per draw (scope, repeat, fold) and shared by that draw's cells, on disk for other workers."""
import numpy as np
import pytest
from strategy_helpers import TEACH_CALLS, teach_block

from tfaug.studies.config import study_from_dict
from tfaug.studies.executors import _locked_resources
from tfaug.studies.resources import TEACHER_AUGMENT
from tfaug.studies.runner import run_study
from tfaug.synthesis.strategies import register, unregister
from tfaug.utils.io import read_json

STUDY = {"name": "teacher", "dataset": "digits", "test": {"per_class": 10}, "per_class": [2],
         "strategies": ["teach", "bootstrap+teach"], "classifier": {"steps": 3, "width": 4, "batch_size": 8},
         "generator_metrics": ["kid"], "repeats": 2, "seed": 5}


@pytest.fixture
def teach():
    block = register(teach_block())
    TEACH_CALLS.clear()
    yield block
    unregister(block)


@pytest.fixture
def trainings(monkeypatch):
    """A fake trainer (an untrained linear Keras model) recording every train_classifier call: (images, augment)."""
    from types import SimpleNamespace

    import keras

    import tfaug.training.classifier as classifier

    calls = []

    def fake(x, y, *, num_classes, cfg, augment=None, **kwargs):
        calls.append((len(x), augment))
        keras.utils.set_random_seed(cfg.seed)
        model = keras.Sequential([keras.Input(np.shape(x)[1:]), keras.layers.Flatten(), keras.layers.Dense(num_classes)])
        return SimpleNamespace(model=model, metrics={"accuracy": 0.5}, history={})  # ties: the preset is chosen

    monkeypatch.setattr(classifier, "train_classifier", fake)
    return calls


def test_teacher_trained_once_per_draw_and_shared_by_its_cells(teach, trainings, tmp_path):
    out = tmp_path / "study"
    res = run_study(study_from_dict(STUDY), out, progress=False)
    assert len(res.rows) == 4 and len(TEACH_CALLS) == 4  # both teach cells of both repeats asked the teacher
    # A bare classic is the draw's validated choice: digits are glyphs, and the fake scores tie, so the preset wins.
    assert TEACHER_AUGMENT == "classic"
    teachers = [c for c in trainings if c[1] == "classic:glyphs" and c[0] == 20]
    assert teachers == [(20, "classic:glyphs")] * 2  # one per repeat's draw (10 classes x 2 images)
    choices = [c for c in trainings if c[0] == 10]  # 1 of 2 images per class held out: preset and none, 2 splits
    assert sorted(choices, key=str) == sorted([(10, "classic:glyphs"), (10, None)] * 4, key=str)
    assert len(trainings) == 4 + 2 + 8  # the cells' classifiers, the teachers, the choices, nothing else
    for r in (0, 1):
        run = out / "generators" / "k=2" / f"r{r}" / "teacher"
        record = read_json(run / "teacher.json")
        assert (run / "classifier.keras").exists() and record["augment"] == "classic:glyphs"
        assert read_json(run.parent / "augment.json")["augment"] == "classic:glyphs"
        assert record["repeat"] == r and len(record["train_indices"]) == 20
        split = read_json(out / "splits" / f"k=2_r{r}.json")
        assert sorted(record["train_indices"]) == sorted(split["generator_train"])  # the draw, never a test image
    # A resumed study with one more teach strategy loads the draws' teachers from disk: no new teacher trains.
    trainings.clear()
    run_study(study_from_dict({**STUDY, "strategies": STUDY["strategies"] + ["bootstrap:2+teach"]}), out,
              progress=False)
    assert trainings == [(40, None)] * 2  # only the new cells' own classifiers


def test_a_second_worker_loads_the_teacher_the_first_one_trained(teach, trainings, tmp_path):
    from tests_helpers import toy_images

    cfg = study_from_dict(STUDY)
    x, y = toy_images(n_per_class=4)
    Locked = _locked_resources()
    kw = dict(images=x, labels=y, indices=np.arange(len(x)) + 100, class_names=["a", "b", "c"], root=tmp_path, seed=3)
    first, second = Locked(cfg, **kw), Locked(cfg, **kw)  # two workers' resources of one draw
    p1 = first.teacher_fn()(x[:5] / 127.5 - 1)
    p2 = second.teacher_fn()(x[:5] / 127.5 - 1)
    # the draw's augmentation choice (preset and none, 2 validation splits of 9 images) and the teacher, once each;
    # the second worker loads both
    assert sorted(trainings, key=str) == sorted([(9, "classic:glyphs"), (9, None)] * 2 + [(12, "classic:glyphs")],
                                                key=str)
    assert np.allclose(p1, p2, atol=1e-6) and p1.shape == (5, 3)
    other = Locked(cfg, **{**kw, "indices": np.arange(len(x))})
    with pytest.raises(Exception, match="trained on other images"):
        other.teacher_fn()
    fold = Locked(cfg, **{**kw, "suffix": "-fold0"})
    trainings.clear()
    fold.teacher_fn()
    assert len(trainings) == 4 + 1 and (tmp_path / "teacher-fold0" / "teacher.json").exists()  # a fold is a draw too
