import numpy as np
import pytest

from tfaug.errors import TfaugError
from tfaug.studies.strategies import build_mix, parse_strategy


def test_parse_blocks():
    s = parse_strategy("cdcgan:0.5+classic:objects")
    assert s.generator == "cdcgan" and s.ratio == 0.5 and s.augment == "classic:objects" and s.bootstrap is None
    assert parse_strategy("bootstrap").bootstrap == 4.0
    b = parse_strategy("baseline")
    assert (b.generator, b.augment, b.bootstrap) == (None, None, None)
    for bad in ("nope", "bootstrap:0.5", "cdcgan:x", ""):
        with pytest.raises(TfaugError):
            parse_strategy(bad)


class _ConstGen:
    """A generator stub: class c -> constant image of value c/10 (enough to check the mix bookkeeping)."""

    num_classes, image_shape = 3, (8, 8, 1)

    def sample(self, class_ids, seeds):
        return np.ones((len(class_ids), 8, 8, 1), np.float32) * (np.asarray(class_ids)[:, None, None, None] / 10)


def test_mix_counts_follow_ratio_per_class(toy):
    x, y = toy
    mix = build_mix(parse_strategy("cdcgan:0.5+bootstrap:2"), x, y, seed=0, generator_fn=_ConstGen)
    assert (mix.n_real, mix.n_duplicates, mix.n_synthetic) == (60, 60, 30)
    assert len(mix.images) == len(mix.labels) == 150
    syn_x, syn_y = mix.images[-30:], mix.labels[-30:]
    assert np.bincount(syn_y).tolist() == [10, 10, 10]
    assert np.allclose(syn_x[:, 0, 0, 0], syn_y / 10)  # labels stay attached to their generated images
    assert mix.images.dtype == np.float32 and mix.images.min() >= -1


def test_generator_needed_only_when_asked(toy):
    x, y = toy
    mix = build_mix(parse_strategy("classic"), x, y, seed=0, generator_fn=None)
    assert mix.n_synthetic == 0 and mix.augment == "classic"
    with pytest.raises(TfaugError):
        build_mix(parse_strategy("cdcgan"), x, y, seed=0, generator_fn=None)
