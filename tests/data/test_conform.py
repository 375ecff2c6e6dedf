"""One shape for every image (tfaug.data.conform) and the folder source's --image-size/--channels."""
import warnings

import numpy as np
import pytest
from PIL import Image

from tfaug.data.conform import conform_images, fit_image, parse_image_size
from tfaug.data.sources import load_dataset
from tfaug.errors import TfaugError


def _save(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def _caught(fn):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn()
    return out, [str(w.message) for w in caught]


@pytest.mark.parametrize("text, size", [("64x48", (64, 48)), ("32", (32, 32)), ("300 x 400", (300, 400)),
                                        ((16, 8), (16, 8))])
def test_parse_image_size(text, size):
    assert parse_image_size(text) == size


@pytest.mark.parametrize("text", ["64x", "axb", "4x64", "64x5000", "1x2x3"])
def test_bad_image_size_is_one_sentence(text):
    with pytest.raises(TfaugError) as exc:
        parse_image_size(text)
    assert "\n" not in str(exc.value)


def test_fit_keeps_the_aspect_ratio_then_centre_crops():
    # A 20x40 image, white with 6 black columns at each side. Fitted to 10x10 it is scaled to 10x20 (aspect kept)
    # and the centre 10 columns are kept: all white. Stretching it to 10x10 would keep black borders.
    image = np.zeros((20, 40), np.uint8)
    image[:, 6:34] = 255
    out = fit_image(image, 10, 10)
    assert out.shape == (10, 10) and out.min() >= 250
    rgb = fit_image(np.repeat(image[..., None], 3, -1), 10, 10)
    assert rgb.shape == (10, 10, 3) and rgb.min() >= 250
    assert fit_image(image[..., None], 10, 10).shape == (10, 10, 1)
    assert fit_image(image, 20, 40) is image  # already the size: untouched


def test_conform_warns_once_per_kind_of_change():
    grey = [np.full((8, 8), 100, np.uint8) for _ in range(3)]
    colour = [np.zeros((12, 8, 3), np.uint8)]
    out, msgs = _caught(lambda: conform_images(grey + colour, where="'pets'"))
    assert out.shape == (4, 8, 8, 3) and (out[0] == 100).all()
    assert len(msgs) == 2
    assert "3 of 4 greyscale images in 'pets' became RGB" in msgs[0] and "--channels 1" in msgs[0]
    assert "resized 1 of 4 images in 'pets' to 8x8" in msgs[1] and "centre-cropped" in msgs[1]
    out, msgs = _caught(lambda: conform_images(grey + colour, image_size="10x10", channels=1))
    assert out.shape == (4, 10, 10, 1) and len(msgs) == 2 and "became greyscale" in msgs[0] and "4 of 4" in msgs[1]
    out, msgs = _caught(lambda: conform_images(grey))
    assert out.shape == (3, 8, 8, 1) and msgs == []  # nothing changed: nothing said
    with pytest.raises(TfaugError, match="channels"):
        conform_images(grey, channels=2)


def test_a_300x400_folder_loads_at_full_size(tmp_path):
    rng = np.random.default_rng(0)
    for cls in ("cat", "coffee"):
        for i in range(2):
            _save(tmp_path / cls / f"{i}.png", rng.integers(0, 256, (300, 400, 3), dtype=np.uint8))
    ds, msgs = _caught(lambda: load_dataset(f"folder:{tmp_path}"))
    assert ds.image_shape == (300, 400, 3) and msgs == []
    ds, msgs = _caught(lambda: load_dataset(f"folder:{tmp_path}", image_size="30x40", channels=1))
    assert ds.image_shape == (30, 40, 1) and ds.class_names == ("cat", "coffee")
    assert any("resized 4 of 4" in m and "--image-size" in m for m in msgs)


def test_image_size_and_channels_apply_to_array_sources():
    ds, msgs = _caught(lambda: load_dataset("digits", image_size="16x16", channels=3))
    assert ds.image_shape == (16, 16, 3) and len(ds) == 1797
    assert sum("became RGB" in m for m in msgs) == 1 and sum("resized 1797 of 1797" in m for m in msgs) == 1
    assert (ds.images[..., 0] == ds.images[..., 2]).all()
