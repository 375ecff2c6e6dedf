"""Leakage-safe cell splits: test sets never leak into training, pools or generators; draws nest; bad studies fail."""
import numpy as np
import pytest

from tfaug.errors import TfaugError
from tfaug.studies.config import study_from_dict
from tfaug.studies.splits import cell_split, check_feasible, relabel

# 4 classes of unequal size (30, 40, 50, 60 images), shuffled so that indices do not follow classes
LABELS = np.random.default_rng(0).permutation(np.repeat(np.arange(4), [30, 40, 50, 60])).astype(np.int32)


def _cfg(regime: dict, test=None, repeats: int = 3, seed: int = 5, **extra):
    data = {"dataset": "digits", "test": test or {"per_class": 5, "large_per_class": 8},
            "strategies": ["cdcgan" if "grid" in regime else "baseline"], "repeats": repeats, "seed": seed,
            **regime, **extra}
    return study_from_dict(data)


REGIMES = {
    "per_class": {"per_class": [1, 5, 10]},
    "imbalance": {"imbalance": {"minority": [1, 3], "keep": [0.25, 0.5, 3]}},
    "imbalance_base": {"imbalance": {"minority": 2, "keep": [0.5, 2], "per_class": 12}},
    "grid": {"grid": {"real": [0, 8, 20], "synthetic": [0, 40]}},
}


@pytest.mark.parametrize("regime", sorted(REGIMES))
@pytest.mark.parametrize("test", [{"per_class": 5, "large_per_class": 8}, {"fraction": 0.2}])
def test_no_test_index_reaches_training_pool_or_generator(regime, test):
    cfg = _cfg(REGIMES[regime], test=test)
    check_feasible(cfg, LABELS)
    tests = set()
    for s in cfg.settings:
        for r in range(cfg.repeats):
            sp = cell_split(cfg, LABELS, s, r)
            held = sp.test if sp.test_large is None else sp.test_large
            assert set(sp.test) <= set(held)
            for part in (sp.train, sp.pool, sp.generator_train):
                assert part.dtype == np.int64
                assert not np.intersect1d(part, held).size, (s.name, r)
            assert not np.intersect1d(sp.train, sp.pool).size
            # everything is accounted for: train + pool + held-out test = the whole dataset
            assert len(sp.train) + len(sp.pool) + len(held) == len(LABELS)
            assert set(sp.train) <= set(sp.generator_train)
            tests.add(tuple(sp.test))
    assert len(tests) == 1  # one test set for every setting and repeat


def test_test_sets_per_class_and_large_contains_test():
    cfg = _cfg(REGIMES["per_class"])
    sp = cell_split(cfg, LABELS, cfg.settings[0], 0)
    assert np.bincount(LABELS[sp.test]).tolist() == [5] * 4
    assert np.bincount(LABELS[sp.test_large]).tolist() == [8] * 4
    assert set(sp.test) < set(sp.test_large)
    no_large = _cfg(REGIMES["per_class"], test={"per_class": 5})
    sp2 = cell_split(no_large, LABELS, no_large.settings[0], 0)
    assert sp2.test_large is None and np.array_equal(sp2.test, sp.test)  # the N-prefix does not depend on M
    frac = cell_split(_cfg(REGIMES["per_class"], test={"fraction": 0.2}), LABELS, cfg.settings[0], 0)
    assert np.bincount(LABELS[frac.test]).tolist() == [6, 8, 10, 12]


def test_per_class_draws_nest_and_differ_across_repeats():
    cfg = _cfg(REGIMES["per_class"])
    for r in range(cfg.repeats):
        draws = [cell_split(cfg, LABELS, s, r).train for s in cfg.settings]
        for k, d in zip((1, 5, 10), draws):
            assert np.bincount(LABELS[d], minlength=4).tolist() == [k] * 4
        assert set(draws[0]) <= set(draws[1]) <= set(draws[2])
        sp = cell_split(cfg, LABELS, cfg.settings[1], r)
        assert np.array_equal(sp.generator_train, sp.train)
    repeats = [tuple(cell_split(cfg, LABELS, cfg.settings[2], r).train) for r in range(cfg.repeats)]
    assert len(set(repeats)) == cfg.repeats
    again = cell_split(cfg, LABELS, cfg.settings[2], 1).train
    assert tuple(again) == repeats[1]  # deterministic


def test_imbalance_keeps_fraction_or_count_of_minorities():
    cfg = _cfg(REGIMES["imbalance"])
    left = [30 - 8, 40 - 8, 50 - 8, 60 - 8]
    got = {s.name: np.bincount(LABELS[cell_split(cfg, LABELS, s, 0).train], minlength=4).tolist()
           for s in cfg.settings}
    assert got["minority=1,3,keep=0.25"] == [left[0], 8, left[2], 13]  # 0.25 * 32 = 8, 0.25 * 52 = 13
    assert got["minority=1,3,keep=0.5"] == [left[0], 16, left[2], 26]
    assert got["minority=1,3,keep=3"] == [left[0], 3, left[2], 3]
    base = _cfg(REGIMES["imbalance_base"])
    got = [np.bincount(LABELS[cell_split(base, LABELS, s, 0).train], minlength=4).tolist() for s in base.settings]
    assert got == [[12, 12, 6, 12], [12, 12, 2, 12]]
    small, large = (cell_split(cfg, LABELS, s, 0).train for s in cfg.settings[:2])
    assert set(small) <= set(large)


def test_exponential_profile_draws_the_long_tail_counts():
    cfg = _cfg({"imbalance": {"profile": "exponential", "ratio": [2, 10]}})
    # n_max = the smallest class after the 8 (large) test images per class: 30 - 8 = 22
    got = {s.name: np.bincount(LABELS[cell_split(cfg, LABELS, s, 0).train], minlength=4).tolist()
           for s in cfg.settings}
    assert got == {"exponential,ratio=2": [22, 17, 13, 11], "exponential,ratio=10": [22, 10, 4, 2]}
    assert set(cell_split(cfg, LABELS, cfg.settings[1], 1).train) <= set(cell_split(cfg, LABELS, cfg.settings[0], 1).train)
    based = _cfg({"imbalance": {"profile": "exponential", "ratio": [10], "per_class": 12}})
    assert np.bincount(LABELS[cell_split(based, LABELS, based.settings[0], 0).train]).tolist() == [12, 5, 2, 1]
    with pytest.raises(TfaugError, match="per_class=40 needs 40 images of class 'zero'"):
        check_feasible(_cfg({"imbalance": {"profile": "exponential", "ratio": [10], "per_class": 40}}), LABELS,
                       class_names=["zero", "one", "two", "three"])


def test_extreme_case_keeps_a_count_of_the_minorities_against_the_rest():
    labels = np.random.default_rng(1).permutation(np.repeat(np.arange(3), [40, 45, 50])).astype(np.int32)
    cfg = _cfg({"imbalance": {"minority": [0, 2], "keep": [3], "per_class": 30}}, test={"per_class": 5})
    assert [s.name for s in cfg.settings] == ["minority=0,2,keep=3"]
    split = cell_split(cfg, labels, cfg.settings[0], 0)
    assert np.bincount(labels[split.train]).tolist() == [3, 30, 3]
    assert np.bincount(labels[split.test]).tolist() == [5, 5, 5]


def test_grid_draws_are_subsets_of_the_generator_draw():
    cfg = _cfg(REGIMES["grid"])
    for r in range(cfg.repeats):
        splits = {s.name: cell_split(cfg, LABELS, s, r) for s in cfg.settings}
        top = splits["real=20,synthetic=0"]
        assert np.array_equal(top.generator_train, top.train)
        assert np.bincount(LABELS[top.train], minlength=4).tolist() == [5, 5, 5, 5]
        eight = splits["real=8,synthetic=40"].train
        assert np.bincount(LABELS[eight], minlength=4).tolist() == [2, 2, 2, 2]
        assert len(splits["real=0,synthetic=40"].train) == 0
        for sp in splits.values():
            assert set(sp.train) <= set(sp.generator_train)
            assert np.array_equal(sp.generator_train, top.train)  # one generator per repeat
    odd = _cfg({"grid": {"real": [6], "synthetic": [0]}})
    assert np.bincount(LABELS[cell_split(odd, LABELS, odd.settings[0], 0).train]).tolist() == [2, 2, 1, 1]


def test_relabel_one_vs_rest():
    y, names = relabel(np.array([0, 3, 1, 3, 2]), ["a", "b", "c", "d"], 3)
    assert y.tolist() == [0, 1, 0, 1, 0] and names == ["rest", "d"] and y.dtype == np.int32
    y, names = relabel(np.array([0, 2]), None, None)
    assert y.tolist() == [0, 2] and names == ["0", "1", "2"]
    with pytest.raises(TfaugError, match="one_vs_rest 4"):
        relabel(np.array([0, 1, 2]), ["a", "b", "c"], 4)


def test_one_vs_rest_split_is_binary_and_accepts_original_labels():
    cfg = _cfg({"per_class": [3]}, dataset={"spec": "digits", "one_vs_rest": 2}, test={"per_class": 4})
    binary, _ = relabel(LABELS, None, 2)
    a = cell_split(cfg, binary, cfg.settings[0], 0)
    b = cell_split(cfg, LABELS, cfg.settings[0], 0)
    assert np.array_equal(a.train, b.train) and np.array_equal(a.test, b.test)
    assert np.bincount(binary[a.train]).tolist() == [3, 3]
    assert set(LABELS[a.train][binary[a.train] == 1]) == {2}
    bad = _cfg({"per_class": [3]}, dataset={"spec": "digits", "one_vs_rest": 7}, test={"per_class": 4})
    with pytest.raises(TfaugError, match="one_vs_rest 7"):
        check_feasible(bad, LABELS)


@pytest.mark.parametrize("regime, labels, message", [
    ({"per_class": [1, 25]}, LABELS, "k=25 needs 25 images of class 'zero' but only 22 remain after the test set"),
    ({"per_class": [1]}, np.where(LABELS == 2, 3, LABELS), "class 'two' has no images"),
    ({"imbalance": {"minority": 9, "keep": [0.5]}}, LABELS, "minority 9 is not a class id"),
    ({"imbalance": {"minority": 0, "keep": [30]}}, LABELS, "keep=30 needs 30 images of class 'zero'"),
    ({"imbalance": {"minority": 0, "keep": [0.5], "per_class": 40}}, LABELS, "per_class=40 needs 40 images"),
    ({"grid": {"real": [0], "synthetic": [10]}}, LABELS, "every grid.real is 0"),
    ({"grid": {"real": [100], "synthetic": [0]}}, LABELS,
     "real=100 \\(25 per class\\) needs 25 images of class 'zero'"),
])
def test_check_feasible_errors_are_one_clear_sentence(regime, labels, message):
    names = ["zero", "one", "two", "three"]
    cfg = _cfg(regime)
    with pytest.raises(TfaugError, match=message) as info:
        check_feasible(cfg, labels, class_names=names)
    assert "\n" not in str(info.value)


def test_class_too_small_for_its_test_images():
    labels = LABELS.copy()
    labels[np.flatnonzero(labels == 0)[5:]] = 1  # class 0 keeps 5 images: not enough for 8 test + 1 train
    with pytest.raises(TfaugError, match="class '0' has 5 images, too few for 8 test images"):
        check_feasible(_cfg({"per_class": [1]}), labels)
    with pytest.raises(TfaugError, match="too few"):  # cell_split runs the same checks
        cfg = _cfg({"per_class": [1]})
        cell_split(cfg, labels, cfg.settings[0], 0)
    check_feasible(_cfg({"per_class": [1]}, test={"per_class": 4}), labels)  # 4 test + 1 train fit


@pytest.mark.parametrize("test", [{"per_class": 5, "validation_per_class": 4}, {"fraction": 0.2, "validation_per_class": 3}])
def test_validation_set_is_fixed_disjoint_and_untrained(test):
    cfg = _cfg(REGIMES["per_class"], test=test)
    n = test["validation_per_class"]
    seen = set()
    for s in cfg.settings:
        for r in range(cfg.repeats):
            sp = cell_split(cfg, LABELS, s, r)
            assert np.bincount(LABELS[sp.validation], minlength=4).tolist() == [n] * 4
            for part in (sp.train, sp.pool, sp.generator_train, sp.test):
                assert not np.intersect1d(part, sp.validation).size, (s.name, r)
            assert len(sp.train) + len(sp.pool) + len(sp.test) + len(sp.validation) == len(LABELS)
            seen.add(tuple(sp.validation))
    assert len(seen) == 1  # one validation set for every setting and repeat
    plain = cell_split(_cfg(REGIMES["per_class"], test={k: v for k, v in test.items() if k != "validation_per_class"}),
                       LABELS, cfg.settings[0], 0)
    assert plain.validation is None and "validation" not in plain.to_dict()
    assert np.array_equal(plain.test, cell_split(cfg, LABELS, cfg.settings[0], 0).test)  # the test set is unchanged


def test_validation_counts_in_feasibility():
    with pytest.raises(TfaugError, match="too few for 30 test and validation images"):
        check_feasible(_cfg({"per_class": [1]}, test={"per_class": 5, "validation_per_class": 25}), LABELS)
