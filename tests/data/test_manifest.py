"""Manifest-aware folder loading (Dataset.synthetic) and splits that keep synthetic images out of test sets."""
import types
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tfaug.errors import TfaugError


def _png(path: Path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((6, 6), value, np.uint8)).save(path)


def topped_up(root: Path, real=(3, 8), made=(9, 2)) -> Path:
    """Class folders a, b with ``real`` originals and ``made`` generated images, and their manifest."""
    from tfaug.data.sources import manifest_text

    rows = []
    for name, n_real, n_made in zip("ab", real, made):
        for i in range(n_real):
            _png(root / name / f"r{i:02d}.png", 10 + i)
            rel = f"{name}/r{i:02d}.png"
            rows.append({"path": rel, "class": name, "synthetic": 0, "source": rel})
        for i in range(n_made):
            _png(root / name / f"tfaug_{i}.png", 200 + i)
            rows.append({"path": f"{name}/tfaug_{i}.png", "class": name, "synthetic": 1, "class_id": "ab".index(name),
                         "seed": i, "generator": "stub"})
    (root / "manifest.csv").write_text(manifest_text(rows))
    return root


def test_manifest_round_trip(tmp_path):
    from tfaug.data.sources import MANIFEST_COLUMNS, manifest_text, read_manifest

    assert read_manifest(tmp_path) is None
    rows = [{"path": "x/1.png", "class": "x", "synthetic": 0, "source": "x/1.png"},
            {"path": "y/tfaug_5.png", "class": "y", "synthetic": 1, "class_id": 2, "seed": 5, "generator": "k:/a, b"}]
    text = manifest_text(rows)
    assert text.splitlines()[0] == ",".join(MANIFEST_COLUMNS)
    (tmp_path / "manifest.csv").write_text(text)
    back = read_manifest(tmp_path)
    assert list(back) == ["x/1.png", "y/tfaug_5.png"]
    assert back["y/tfaug_5.png"] == {"path": "y/tfaug_5.png", "class": "y", "synthetic": "1", "class_id": "2",
                                     "seed": "5", "generator": "k:/a, b", "source": ""}
    assert back["x/1.png"]["synthetic"] == "0" and back["x/1.png"]["seed"] == ""


def test_folder_with_manifest_marks_synthetic_and_subset_keeps_it(tmp_path):
    from tfaug.data.sources import load_dataset

    root = topped_up(tmp_path / "ds")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a consistent manifest loads silently
        ds = load_dataset(f"folder:{root}")
    assert ds.synthetic.dtype == np.bool_ and ds.synthetic.shape == (22,)
    # walk order per class: r00.. then tfaug_.. (sorted names); the images carry their value
    assert ds.synthetic.tolist() == [False] * 3 + [True] * 9 + [False] * 8 + [True] * 2
    assert (ds.images[ds.synthetic, 0, 0, 0] >= 200).all() and (ds.images[~ds.synthetic, 0, 0, 0] < 200).all()
    sub = ds.subset([0, 5, 12, 21])
    assert sub.synthetic.tolist() == [False, True, False, True]
    assert ds.subset(ds.synthetic).synthetic.all()
    (root / "manifest.csv").unlink()
    assert not load_dataset(f"folder:{root}").synthetic.any()


def test_manifest_disagreeing_with_files_warns_and_unlisted_count_as_real(tmp_path):
    from tfaug.data.sources import load_dataset

    root = topped_up(tmp_path / "ds")
    (root / "a" / "tfaug_0.png").unlink()  # listed, missing
    _png(root / "b" / "extra.png", 250)  # on disk, unlisted
    (root / "b" / "tfaug_1.png").rename(root / "a" / "tfaug_1b.png")
    text = (root / "manifest.csv").read_text().replace("b/tfaug_0.png,b,", "b/tfaug_0.png,a,")
    (root / "manifest.csv").write_text(text)
    with pytest.warns(UserWarning) as record:
        ds = load_dataset(f"folder:{root}")
    msg = " ".join(str(w.message) for w in record)
    assert "disagrees" in msg and "2 listed files are missing" in msg and "a/tfaug_0.png" in msg
    assert "2 files are not listed and count as real" in msg and "b/extra.png" in msg and "a/tfaug_1b.png" in msg
    assert "1 files are listed under another class" in msg and "b/tfaug_0.png" in msg
    assert len(ds) == 22 and ds.synthetic.sum() == 8 + 1  # a: 8 listed generated, b: tfaug_0 (unlisted ones: real)


@pytest.mark.parametrize("text, needle", [
    ("path,class\na/r00.png,a\n", "no synthetic column"),
    ("path,synthetic\na/r00.png,maybe\n", "synthetic must be 0 or 1"),
])
def test_malformed_manifest_is_an_error(tmp_path, text, needle):
    from tfaug.data.sources import load_dataset

    root = topped_up(tmp_path / "ds")
    (root / "manifest.csv").write_text(text)
    with pytest.raises(TfaugError, match=needle):
        load_dataset(f"folder:{root}")


def test_dataset_checks_synthetic_length():
    from tfaug.data.sources import Dataset

    with pytest.raises(TfaugError, match="synthetic flags"):
        Dataset(np.zeros((3, 4, 4, 1), np.uint8), [0, 1, 0], ("a", "b"), "x", (), [True, False])


def test_synthetic_never_in_test_and_unflagged_split_unchanged():
    from tfaug.data.experiment import draw_experiment
    from tfaug.data.subsets import stratified_split, subset_draw

    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), [10, 30, 20]).astype(np.int32)
    synthetic = rng.random(len(labels)) < 0.4
    plain = draw_experiment(labels, test_fraction=0.3, per_class=5, seed=4)
    same = draw_experiment(labels, test_fraction=0.3, per_class=5, seed=4, synthetic=np.zeros(len(labels), bool))
    pool, _, test = stratified_split(labels, test=0.3, seed=4)  # the unflagged rule, spelled out
    np.testing.assert_array_equal(plain.test, test)
    np.testing.assert_array_equal(plain.pool, pool)
    np.testing.assert_array_equal(plain.train, pool[subset_draw(labels[pool], per_class=5, seed=4)])
    for a, b in ((plain.train, same.train), (plain.test, same.test), (plain.pool, same.pool)):
        np.testing.assert_array_equal(a, b)
    for seed in range(5):
        split = draw_experiment(labels, test_fraction=0.3, per_class=5, seed=seed, synthetic=synthetic)
        assert not synthetic[split.test].any() and len(split.test) > 0
        real = np.flatnonzero(~synthetic)  # the test set is the one the real images alone give
        np.testing.assert_array_equal(split.test, real[stratified_split(labels[real], test=0.3, seed=seed)[2]])
        np.testing.assert_array_equal(np.sort(np.concatenate([split.pool, split.test])), np.arange(len(labels)))
        assert synthetic[split.pool].sum() == synthetic.sum()  # synthetic images stay available for training


def test_per_class_draws_real_images_first():
    from tfaug.data.experiment import draw_experiment
    from tfaug.data.subsets import imbalance_subset, per_class_subset

    labels = np.repeat([0, 1], [12, 12])
    synthetic = np.zeros(24, bool)
    synthetic[[2, 3, 4, 5, 6, 7, 8, 9]] = True  # class 0: 4 real (0, 1, 10, 11), 8 synthetic; class 1: 12 real
    for seed in range(4):
        k6 = per_class_subset(labels, 6, seed=seed, synthetic=synthetic)
        assert set([0, 1, 10, 11]) <= set(k6.tolist()) and synthetic[k6].sum() == 2
        k3 = per_class_subset(labels, 3, seed=seed, synthetic=synthetic)
        assert not synthetic[k3].any() and set(k3.tolist()) <= set(k6.tolist())  # nested
        kept = imbalance_subset(labels, 0, 5, seed=seed, synthetic=synthetic)
        assert synthetic[kept].sum() == 1 and (labels[kept] == 1).sum() == 12
    split = draw_experiment(labels, test_fraction=0.25, per_class=4, seed=1, synthetic=synthetic)
    train0 = split.train[labels[split.train] == 0]
    assert len(train0) == 4 and (~synthetic[train0]).sum() == 3  # 1 real of class 0 is in the test set
    assert not synthetic[split.test].any()


def test_load_split_of_train_classifier_tests_on_real_images(tmp_path):
    from tfaug.commands import _load_split

    root = topped_up(tmp_path / "ds", real=(4, 10), made=(6, 0))
    args = types.SimpleNamespace(dataset=f"folder:{root}", data_dir=None, minority=None, keep=None, test_fraction=0.5,
                                 per_class=None, seed=0)
    ds, split = _load_split(args)
    assert ds.synthetic.sum() == 6 and not ds.synthetic[split.test].any()
    assert np.bincount(ds.labels[split.test]).tolist() == [2, 5]  # half of each class's REAL images
    assert ds.synthetic[split.train].sum() == 6
