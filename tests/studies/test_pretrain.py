"""generator: {pretrain: SOURCE}: a source generator trained once per study (or per draw on its majority classes),
adapted jointly to the draw's classes with svd; tiny cdcgan (width 8, 2 eager steps), 2 adaptation steps."""
import numpy as np
import pytest

from tfaug.errors import TfaugError
from tfaug.studies.config import study_from_dict

GEN = {"model": "cdcgan", "steps": 2, "width": 8, "batch_size": 8, "z_dim": 8, "sample_every": 0,
       "checkpoint_every": 0, "adapt_steps": 2}


@pytest.fixture
def cheap(monkeypatch):
    """Eager GAN steps and adaptation (tracing would cost more than the few steps); records every train_gan call as
    (role, images fed)."""
    from tfaug.studies import pretrain
    from tfaug.training import distribute, gan_runner

    monkeypatch.setattr(distribute, "make_train_function", lambda step_fn, strategy, **kw: step_fn)
    monkeypatch.setattr(pretrain, "COMPILED", False)
    calls, real = [], gan_runner.train_gan

    def spy(images, labels, **kw):
        calls.append(((kw.get("data_info") or {}).get("role"), np.asarray(images)))
        return real(images, labels, **kw)

    monkeypatch.setattr(gan_runner, "train_gan", spy)
    return calls


@pytest.fixture
def toy_npz(tmp_path, toy):
    x, y = toy  # 3 classes x 20 images, 8x8x1
    path = tmp_path / "toy.npz"
    np.savez(path, x=x, y=y)
    return path


def _study(tmp, **over):
    base = {"dataset": f"npz:{tmp}", "test": {"per_class": 5}, "per_class": [3], "strategies": ["cdcgan"],
            "classifier": {"steps": 2, "width": 4, "batch_size": 8}, "generator": {**GEN, "pretrain": "digits"},
            "generator_metrics": ["kid"], "repeats": 2, "seed": 1}
    return study_from_dict({k: v for k, v in {**base, **over}.items() if v is not None})


def _resources(cfg, root, x, y, idx, seed=0):
    from tfaug.studies.executors import _locked_resources

    return _locked_resources()(cfg, images=x[idx], labels=y[idx], indices=idx, class_names=["a", "b", "c"], root=root,
                         seed=seed)


@pytest.fixture
def fake_classifier(monkeypatch):
    """An untrained linear classifier instead of training one (the cells' classifiers are not under test)."""
    from types import SimpleNamespace

    import keras

    import tfaug.training.classifier as classifier

    def fake(x, y, *, num_classes, cfg, **kwargs):
        keras.utils.set_random_seed(cfg.seed)
        model = keras.Sequential([keras.Input(np.shape(x)[1:]), keras.layers.Flatten(), keras.layers.Dense(num_classes)])
        return SimpleNamespace(model=model, metrics={}, history={})

    monkeypatch.setattr(classifier, "train_classifier", fake)


def test_config_refuses_bad_kinds_and_majority_without_imbalance(toy_npz):
    with pytest.raises(TfaugError, match="generator.model must be one of stylegan, cdcgan"):
        _study(toy_npz, generator={**GEN, "model": "dcgan", "pretrain": "digits"})
    with pytest.raises(TfaugError, match="cdcgan with conditioning 'onehot' cannot grow"):
        _study(toy_npz, generator={**GEN, "pretrain": "digits", "options": {"conditioning": "onehot"}})
    with pytest.raises(TfaugError, match="setting k=3 gives every class the same count"):
        _study(toy_npz, generator={**GEN, "pretrain": "majority"})
    with pytest.raises(TfaugError, match="generator.adapt_steps needs generator.pretrain"):
        _study(toy_npz, generator=dict(GEN))
    with pytest.raises(TfaugError, match="generator.pretrain_steps must be an integer >= 1"):
        _study(toy_npz, generator={**GEN, "pretrain": "digits", "pretrain_steps": 0})
    cfg = _study(toy_npz, generator={**GEN, "pretrain": "digits", "pretrain_steps": 3})
    assert cfg.pretrain == {"source": "digits", "steps": 3, "adapt_steps": 2}
    plain = {k: v for k, v in GEN.items() if k != "adapt_steps"}
    assert _study(toy_npz, generator={**plain, "pretrain": "digits"}).pretrain == {"source": "digits"}


def test_default_adapt_steps_scale_with_the_adapted_classes(toy_npz):
    from tfaug.fewshot.adapt import DEFAULTS
    from tfaug.studies.pretrain import adapt_steps, majority_classes

    cfg = _study(toy_npz, generator={k: v for k, v in GEN.items() if k != "adapt_steps"} | {"pretrain": "digits"})
    assert adapt_steps(cfg, 3) == 3 * DEFAULTS["svd"]["steps"]
    assert majority_classes([0] * 10 + [1] * 5 + [2] * 4, 3) == ([0, 1], [2])  # 5 >= 10 / 2 > 4


def test_source_images_are_conformed_and_never_hold_a_test_image():
    from tfaug.data.sources import load_dataset
    from tfaug.studies.pretrain import image_hashes, source_images

    digits = load_dataset("digits")
    test = digits.images[::7]
    x, y, names, removed = source_images("digits", (8, 8, 1), exclude=test)
    assert not image_hashes(x) & image_hashes(test)
    assert removed >= len(image_hashes(test)) and len(x) == len(digits) - removed and len(y) == len(x)
    big, _, _, none = source_images("digits", (12, 12, 3))
    assert big.shape == (len(digits), 12, 12, 3) and big.dtype == np.uint8 and none == 0


def test_study_pretrains_once_adapts_per_draw_and_records_the_source(cheap, fake_classifier, toy_npz, tmp_path):
    from tfaug.data.sources import load_dataset
    from tfaug.studies.pretrain import image_hashes
    from tfaug.studies.runner import run_study
    from tfaug.studies.splits import cell_split

    # The study's own dataset as the source: pretraining gets everything but the test images.
    cfg = _study(toy_npz, generator={**GEN, "pretrain": f"npz:{toy_npz}"}, strategies=["baseline", "cdcgan"])
    out = tmp_path / "study"
    rows = run_study(cfg, out, progress=False).rows
    assert len(rows) == 4
    assert {r["strategy"]: r["generator_source"] for r in rows} == {"baseline": "", "cdcgan": f"npz:{toy_npz}"}
    roles = [role for role, _ in cheap]
    assert roles == ["pretrain"]  # one source run for both draws, no zoo generator trained on a draw
    ds = load_dataset(f"npz:{toy_npz}")
    test = cell_split(cfg, ds.labels, cfg.settings[0], 0).test
    fed = cheap[0][1]
    assert len(fed) == len(ds) - len(test) and not image_hashes(fed) & image_hashes(ds.images[test])
    assert f"- Generator `cdcgan` pretrained once on `npz:{toy_npz}`" in (out / "summary.md").read_text()
    runs = sorted(p.name for p in (out / "generators").iterdir() if not p.name.startswith("."))
    assert len(runs) == 2 and runs[1].startswith("pretrain-cdcgan-")
    for r in (0, 1):
        assert (out / "generators" / "k=3" / f"r{r}" / "cdcgan" / "checkpoints" / "generator.keras").is_file()


def test_adapted_generator_samples_every_target_class_and_is_reused(cheap, toy_npz, tmp_path, toy, monkeypatch):
    from tfaug.fewshot import adapt
    from tfaug.synthesis.loader import load_generator

    cfg = _study(toy_npz)
    x, y = toy
    root = tmp_path / "generators" / "k=3" / "r0"
    draw = np.arange(0, len(y), 4)
    gen = _resources(cfg, root, x, y, draw).generator("cdcgan")
    ids, seeds = np.repeat(np.arange(3, dtype=np.int32), 2), np.arange(6, dtype=np.int64)
    imgs = gen.sample(ids, seeds)
    assert imgs.shape == (6, 8, 8, 1) and imgs.dtype == np.float32 and -1 <= imgs.min() <= imgs.max() <= 1
    assert gen.num_classes == 3 and [r for r, _ in cheap] == ["pretrain"]
    # Parallel workers lock the study-level source run beside the draws' scopes.
    assert len(list((tmp_path / "generators").glob(".pretrain-cdcgan-*.lock"))) == 1
    # digits (10 classes) is the source: target class c is the network's class 10 + c, not a digit class.
    source = load_generator(next((tmp_path / "generators").glob("pretrain-*")))
    assert not np.allclose(source.sample(ids, seeds), imgs)
    monkeypatch.setattr(adapt, "train_new_class", lambda *a, **k: pytest.fail("adapted again"))
    again = _resources(cfg, root, x, y, draw).generator("cdcgan")  # a fresh process: loads both runs
    np.testing.assert_array_equal(again.sample(ids, seeds), imgs)
    assert [r for r, _ in cheap] == ["pretrain"]
    with pytest.raises(TfaugError, match="trained on other images"):
        _resources(cfg, root, x, y, draw + 1).generator("cdcgan")


def test_majority_source_keeps_majority_images_and_adapts_the_minority(cheap, toy_npz, tmp_path, toy):
    from tfaug.synthesis.loader import load_generator

    cfg = _study(toy_npz, per_class=None, imbalance={"minority": 2, "keep": [2], "per_class": 6},
                 generator={**GEN, "pretrain": "majority"})
    x, y = toy
    sel = np.concatenate([np.flatnonzero(y == 0)[:6], np.flatnonzero(y == 1)[:6], np.flatnonzero(y == 2)[:2]])
    root = tmp_path / "r0"
    gen = _resources(cfg, root, x, y, sel).generator("cdcgan")
    assert [r for r, _ in cheap] == ["pretrain"] and len(cheap[0][1]) == 12  # majority classes 0 and 1 only
    base = load_generator(root / "pretrain-majority-cdcgan")
    seeds = np.arange(4, dtype=np.int64)
    for c in (0, 1):
        ids = np.full(4, c, np.int32)
        np.testing.assert_array_equal(gen.sample(ids, seeds), base.sample(ids, seeds))
    minority = gen.sample(np.full(4, 2, np.int32), seeds)
    assert minority.shape == (4, 8, 8, 1) and -1 <= minority.min() <= minority.max() <= 1
    assert not np.allclose(minority, base.sample(np.ones(4, np.int32), seeds))
    balanced = np.concatenate([np.flatnonzero(y == c)[:4] for c in range(3)])
    with pytest.raises(TfaugError, match="majority found no minority class"):
        _resources(cfg, tmp_path / "r1", x, y, balanced).generator("cdcgan")
