"""Real-image blocks: bootstrap (imbalance top-up and factor) and extra-real from the unused pool."""
import numpy as np
from strategy_helpers import IMBALANCE, K, PER_CLASS, build_mix, mix_of, real_draw

from tfaug.synthesis.strategies import parse, synthetic_counts


def test_imbalance_bootstrap_tops_up_to_majority_unless_a_factor_is_given():
    counts = (10, 3, 8)
    dup, (x, y, idx) = mix_of("bootstrap+classic", setting=IMBALANCE, counts=counts)
    assert np.bincount(dup.labels, minlength=K).tolist() == [10, 10, 10] and dup.augment == "classic"
    assert dup.n_duplicates == 9 and not dup.synthetic.any()
    # a duplicate carries its source's dataset index, and is a copy of that source
    pos = {int(i): p for p, i in enumerate(idx)}
    for row in range(len(idx), len(dup.labels)):
        assert np.array_equal(dup.images[row], x[pos[int(dup.groups[row])]])
    factor, _ = mix_of("bootstrap:2", setting=IMBALANCE, counts=counts)
    assert len(factor.labels) == 42 and factor.n_duplicates == 21
    assert synthetic_counts(parse("baseline+classic"), IMBALANCE, [0, 1, 2], K) == {0: 0, 1: 0, 2: 0}


def test_extra_real_draws_only_fresh_pool_images_of_the_class():
    x, y, idx = real_draw((4, 4, 4))
    rng = np.random.default_rng(3)
    pool_y = np.array([0] * 10 + [1] * 2 + [2] * 6, np.int32)
    pool_idx = np.arange(18, dtype=np.int64) + 5000
    pool_idx[10] = idx[4]  # a class-1 training image that slipped into the pool must never be added again
    pool_x = rng.uniform(-1, 1, (18, 8, 8, 1)).astype(np.float32)
    kw = dict(x=x, y=y, idx=idx, pool_x=pool_x, pool_y=pool_y, pool_idx=pool_idx, seed=4)
    mix = build_mix("extra-real", PER_CLASS, **kw)
    extra = mix.groups[12:]
    assert mix.n_extra_real == len(extra) == 4 + 1 + 4  # class 1's pool is short: it gives what it has
    assert set(extra) <= set(pool_idx) and not set(extra) & set(idx)
    assert len(set(extra.tolist())) == len(extra)
    for g, label, image in zip(extra, mix.labels[12:], mix.images[12:]):
        row = int(np.flatnonzero(pool_idx == g)[0])
        assert label == pool_y[row] and np.array_equal(image, pool_x[row])
    assert not mix.synthetic.any() and mix.n_synthetic == 0
    again = build_mix("extra-real", PER_CLASS, **kw)
    assert np.array_equal(again.groups, mix.groups)  # deterministic given the seed
    other = build_mix("extra-real", PER_CLASS, **{**kw, "seed": 5})
    assert not np.array_equal(other.groups, mix.groups)
    nothing = build_mix("extra-real", PER_CLASS, **{**kw, "pool_x": None, "pool_y": None})
    assert nothing.n_extra_real == 0 and len(nothing.labels) == 12  # no pool: no crash
    top = build_mix("extra-real", IMBALANCE, **{**kw, "x": x[:9], "y": np.array([0] * 5 + [1, 1] + [2, 2], np.int32),
                                                 "idx": idx[:9]})
    assert np.bincount(top.labels, minlength=K).tolist() == [5, 3, 5]  # class 1 short of 3, the pool has 1 fresh
