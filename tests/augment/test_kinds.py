"""Data kinds: the guess from pixels, the kind presets and the resolution of a bare ``classic``."""
import numpy as np
import pytest

from tfaug.augment.classic import PRESETS, parse_augment
from tfaug.augment.kinds import KINDS, detect_kind, is_auto, kind_candidates, resolve_augment
from tfaug.errors import TfaugError


def _glyphs(n=20, size=28, seed=0):
    """Black images with a few bright strokes away from the border."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, size, size, 1), np.uint8)
    for i in range(n):
        r = rng.integers(6, size - 6)
        x[i, r : r + 2, 5 : size - 5] = 255
        x[i, 5 : size - 5, r : r + 2] = 200
    return x


def test_detects_glyphs_and_photos():
    assert detect_kind(_glyphs()) == "glyphs"
    assert detect_kind(255 - _glyphs()) == "glyphs"  # dark strokes on white paper too
    rng = np.random.default_rng(0)
    assert detect_kind(rng.integers(0, 256, (10, 28, 28, 1), dtype=np.uint8)) == "photos"
    colour = rng.integers(0, 256, (10, 16, 16, 3), dtype=np.uint8)
    assert detect_kind(colour) == "photos"
    # float images in [-1, 1] are read the same way
    assert detect_kind(_glyphs().astype(np.float32) / 127.5 - 1.0) == "glyphs"


def test_detects_the_shipped_datasets():
    from tfaug.data.sources import load_dataset

    assert detect_kind(load_dataset("digits").images) == "glyphs"
    assert detect_kind(load_dataset("lfw_subset").images) == "photos"


def test_every_kind_has_a_preset_a_milder_one_and_glyphs_never_flip():
    for kind in KINDS:
        strong, mild, none = kind_candidates(kind)
        assert none == "none"
        s, m = parse_augment(strong), parse_augment(mild)
        assert s is not None and m is not None
        assert strong.split(":")[1] in PRESETS and mild.split(":")[1] in PRESETS
    assert parse_augment("classic:glyphs").flip == "" and parse_augment("classic:glyphs-mild").flip == ""
    with pytest.raises(TfaugError, match="known kinds"):
        kind_candidates("x-rays")


def test_a_bare_classic_resolves_from_the_data_and_a_named_spec_stays():
    assert is_auto("classic") and is_auto("classic:auto") and not is_auto("classic:glyphs")
    assert resolve_augment("classic", _glyphs()) == "classic:glyphs"
    assert resolve_augment("classic", kind="faces") == "classic:faces"
    assert resolve_augment("classic:objects", _glyphs()) == "classic:objects"
    assert resolve_augment(None) is None
    with pytest.raises(TfaugError, match="picks its preset from the data"):
        resolve_augment("classic")
