"""Dataset sources: embedded sets, npz, image folders, tfds offline behaviour and spec parsing."""
from __future__ import annotations

import time
import warnings

import numpy as np
import pytest
from PIL import Image

from tfaug.data.sources import Dataset, load_dataset, parse_spec
from tfaug.errors import TfaugError


def test_digits_shape_range_and_names():
    ds = load_dataset("digits")
    assert ds.images.shape == (1797, 8, 8, 1) and ds.images.dtype == np.uint8
    assert ds.labels.dtype == np.int32 and set(np.unique(ds.labels)) == set(range(10))
    assert ds.images.min() == 0 and ds.images.max() == 255  # 16 -> 255
    assert ds.class_names == tuple(str(i) for i in range(10))
    assert ds.num_classes == 10 and ds.image_shape == (8, 8, 1) and len(ds) == 1797
    assert ds.counts().dtype == np.int64 and ds.counts().sum() == 1797


def test_lfw_subset_faces_first():
    ds = load_dataset("lfw_subset")
    assert ds.images.shape == (200, 25, 25, 1) and ds.images.dtype == np.uint8
    assert ds.class_names == ("non-face", "face")
    np.testing.assert_array_equal(ds.counts(), [100, 100])
    assert (ds.labels[:100] == 1).all() and (ds.labels[100:] == 0).all()
    assert ds.images.max() > 200 and ds.images.min() < 30  # really scaled from [0, 1]


def test_subset_keeps_metadata():
    ds = load_dataset("digits")
    sub = ds.subset([0, 5, 7])
    assert len(sub) == 3 and sub.class_names == ds.class_names and sub.spec == "digits"
    np.testing.assert_array_equal(sub.images[1], ds.images[5])


def test_npz_round_trip_hw_and_label_remap(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (6, 5, 4), dtype=np.uint8)
    y = np.array([9, 3, 5, 3, 9, 9])
    path = tmp_path / "d.npz"
    np.savez(path, x=x, y=y)
    ds = load_dataset(f"npz:{path}")
    assert ds.images.shape == (6, 5, 4, 1) and ds.images.dtype == np.uint8
    np.testing.assert_array_equal(ds.images[..., 0], x)
    np.testing.assert_array_equal(ds.labels, [2, 0, 1, 0, 2, 2])
    assert ds.class_names == ("3", "5", "9") and ds.spec == f"npz:{path}"


def test_npz_float_images_and_class_names(tmp_path):
    x = np.linspace(0, 1, 2 * 3 * 3 * 3).reshape(2, 3, 3, 3)
    path = tmp_path / "f.npz"
    np.savez(path, x=x, y=np.array([1, 0]), class_names=np.array(["cat", "dog"]))
    ds = load_dataset(f"npz:{path}")
    assert ds.images.shape == (2, 3, 3, 3) and ds.images.max() == 255 and ds.images.min() == 0
    assert ds.class_names == ("cat", "dog")
    np.testing.assert_array_equal(ds.labels, [1, 0])


@pytest.mark.parametrize(
    "arrays, fragment",
    [
        ({"images": np.zeros((2, 3, 3), np.uint8), "y": np.zeros(2)}, "no array 'x'"),
        ({"x": np.zeros((2, 3, 3), np.uint8)}, "no array 'y'"),
        ({"x": np.zeros((2, 3, 3), np.uint8), "y": np.zeros(3, int)}, "2 images in x but 3 labels"),
        ({"x": np.full((2, 3, 3), 2.0), "y": np.zeros(2, int)}, "[0, 1]"),
        ({"x": np.full((2, 3, 3), 300, np.int32), "y": np.zeros(2, int)}, "[0, 255]"),
        ({"x": np.zeros((2, 3, 3, 2), np.uint8), "y": np.zeros(2, int)}, "1 or 3"),
    ],
)
def test_npz_errors(tmp_path, arrays, fragment):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(TfaugError) as err:
        load_dataset(f"npz:{path}")
    assert fragment in str(err.value)


def test_npz_missing_file(tmp_path):
    with pytest.raises(TfaugError, match="does not exist"):
        load_dataset(f"npz:{tmp_path / 'nope.npz'}")


def test_mnist10k_via_npz(mnist10k_path):
    ds = load_dataset(f"npz:{mnist10k_path}")
    assert len(ds) == 10_000 and ds.image_shape == (28, 28, 1) and ds.num_classes == 10
    assert ds.class_names == tuple(str(i) for i in range(10))
    assert ds.counts().min() > 800


def _save(path, array, mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode).save(path)


def test_folder_skips_corrupt_and_non_images(tmp_path):
    rng = np.random.default_rng(0)
    for cls, n in (("cat", 3), ("dog", 2)):
        for i in range(n):
            _save(tmp_path / cls / f"{i}.PNG", rng.integers(0, 256, (6, 6), dtype=np.uint8))
    (tmp_path / "cat" / "broken.png").write_bytes(b"definitely not a png")
    (tmp_path / "dog" / "notes.txt").write_text("hello")
    (tmp_path / "dog" / ".DS_Store").write_bytes(b"\0\1")  # hidden: silently ignored
    (tmp_path / ".hidden_class").mkdir()
    with pytest.warns(UserWarning, match="broken.png"):
        ds = load_dataset(f"folder:{tmp_path}")
    assert ds.class_names == ("cat", "dog")
    assert ds.images.shape == (5, 6, 6, 1) and ds.images.dtype == np.uint8
    np.testing.assert_array_equal(ds.counts(), [3, 2])
    assert sorted(ds.skipped) == sorted(["cat/broken.png", "dog/notes.txt"])
    assert ds.subset([0]).skipped == ds.skipped


def test_folder_rgb_if_any_colour_and_resizes_to_most_common(tmp_path):
    gray = np.full((8, 8), 100, np.uint8)
    _save(tmp_path / "a" / "1.png", gray)
    _save(tmp_path / "a" / "2.jpg", gray)
    rgba = np.zeros((10, 12, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[:, :6, 3] = 255  # left half opaque red, right half transparent -> white
    _save(tmp_path / "b" / "3.png", rgba, "RGBA")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = load_dataset(f"folder:{tmp_path}")
    resize_msgs = [str(w.message) for w in caught if "resized" in str(w.message)]
    assert len(resize_msgs) == 1 and "1 of 3" in resize_msgs[0] and "8x8" in resize_msgs[0]
    assert ds.images.shape == (3, 8, 8, 3)
    assert (ds.images[0] == 100).all()  # grey promoted to RGB by replication
    assert tuple(ds.images[2, 4, 0]) == (255, 0, 0) and tuple(ds.images[2, 4, 7]) == (255, 255, 255)
    assert ds.skipped == ()


def test_folder_all_grey_gives_one_channel_16bit_scaled(tmp_path):
    _save(tmp_path / "x" / "a.png", np.full((4, 4), 65535, np.uint16))
    _save(tmp_path / "y" / "b.bmp", np.full((4, 4), 7, np.uint8))
    ds = load_dataset(f"folder:{tmp_path}")
    assert ds.images.shape == (2, 4, 4, 1)
    assert ds.images[0].min() == 255 and ds.images[1].max() == 7


def test_folder_errors(tmp_path):
    with pytest.raises(TfaugError, match="no class sub-folders"):
        load_dataset(f"folder:{tmp_path}")
    (tmp_path / "empty_class").mkdir()
    _save(tmp_path / "ok" / "a.png", np.zeros((4, 4), np.uint8))
    with pytest.raises(TfaugError, match="empty_class.*no readable images"):
        load_dataset(f"folder:{tmp_path}")
    with pytest.raises(TfaugError, match="does not exist"):
        load_dataset(f"folder:{tmp_path / 'missing'}")


@pytest.mark.parametrize("spec", ["mnist", "tfds:", "npz:", "csv:foo", "", "digits:3"])
def test_unknown_spec_lists_valid_forms(spec):
    with pytest.raises(TfaugError, match=r"digits, lfw_subset, tfds:NAME\[:split\], npz:PATH, folder:PATH"):
        load_dataset(spec)


def test_parse_spec():
    assert parse_spec("tfds:mnist") == ("tfds", "mnist", "train")
    assert parse_spec("tfds:mnist:test[:10%]") == ("tfds", "mnist", "test[:10%]")
    assert parse_spec(" DIGITS ") == ("digits", None, None)
    assert parse_spec("npz:/a/b.npz") == ("npz", "/a/b.npz", None)


def test_tfds_offline_fails_fast_with_instructions(tmp_path, monkeypatch):
    monkeypatch.setenv("TFAUG_NO_DOWNLOAD", "1")
    start = time.monotonic()
    with pytest.raises(TfaugError) as err:
        load_dataset("tfds:mnist", data_dir=str(tmp_path))
    assert time.monotonic() - start < 30
    msg = str(err.value)
    assert "--data-dir" in msg and str(tmp_path) in msg and "tfds build mnist" in msg
    assert list(tmp_path.iterdir()) == []  # nothing written to the user's data dir


def test_tfds_unknown_name(tmp_path, monkeypatch):
    monkeypatch.setenv("TFAUG_NO_DOWNLOAD", "1")
    with pytest.raises(TfaugError, match="not a TensorFlow Datasets name"):
        load_dataset("tfds:no_such_dataset_xyz", data_dir=str(tmp_path))


def test_dataset_validates_arrays():
    with pytest.raises(TfaugError):
        Dataset(np.zeros((2, 4, 4, 1), np.uint8), np.zeros(3), ("a",), "x")
    with pytest.raises(TfaugError):
        Dataset(np.zeros((2, 4, 4), np.uint8), np.zeros(2), ("a",), "x")


def test_tfds_prepared_path_with_mock_data(tmp_path, monkeypatch):
    tfds = pytest.importorskip("tensorflow_datasets")
    monkeypatch.setenv("TFAUG_NO_DOWNLOAD", "1")
    monkeypatch.setattr(tfds.core.DatasetBuilder, "is_prepared", lambda self: True)
    with tfds.testing.mock_data(num_examples=7, policy=tfds.testing.MockPolicy.USE_CODE):
        ds = load_dataset("tfds:mnist:test", data_dir=str(tmp_path))
    assert ds.images.shape == (7, 28, 28, 1) and ds.images.dtype == np.uint8 and ds.labels.dtype == np.int32
    assert ds.class_names == tuple(str(i) for i in range(10)) and ds.spec == "tfds:mnist:test"
    assert ((ds.labels >= 0) & (ds.labels < 10)).all()
