"""The study training mix: count rules per regime, sources (groups), extra-real from the pool, filters, S4 variants."""
import numpy as np
import pytest

from tfaug.errors import TfaugError
from tfaug.studies.config import Setting
from tfaug.studies.mix import add_flag, build_study_mix, synthetic_counts
from tfaug.studies.strategies import parse_strategy

K = 3
PER_CLASS = Setting("k=4", "per_class", per_class=4)
IMBALANCE = Setting("minority=1,keep=3", "imbalance", minority=(1,), keep=3.0)
GRID = Setting("real=6,synthetic=10", "grid", real=6, synthetic=10)


class ConstGen:
    """class c -> constant image c/10; records every seed it was asked for."""

    num_classes, image_shape = K, (8, 8, 1)

    def __init__(self):
        self.seeds = []

    def sample(self, class_ids, seeds):
        self.seeds.extend(np.asarray(seeds).tolist())
        c = np.asarray(class_ids, np.float32)[:, None, None, None]
        return np.ones((len(class_ids), 8, 8, 1), np.float32) * c / 10


class OddFlatGen(ConstGen):
    """Seeds divisible by 3: a textured image with mean c/10; other seeds: a flat image (what a variance filter must
    drop). Two thirds flat, so one round of 2x over-sampling is not enough."""

    def sample(self, class_ids, seeds):
        x = super().sample(class_ids, seeds)
        texture = np.where(np.indices((8, 8)).sum(0) % 2 == 0, 0.3, -0.3)[None, :, :, None]
        return np.where((np.asarray(seeds) % 3 == 0)[:, None, None, None], x + texture, x).astype(np.float32)


class StubResources:
    def __init__(self, gen, probabilities=None):
        self.gen, self.probabilities, self.calls = gen, probabilities, []

    def generator(self, model):
        self.calls.append(("generator", model))
        return self.gen

    def probabilities_fn(self):
        self.calls.append(("probabilities_fn",))
        return self.probabilities

    def encode_fn(self):
        self.calls.append(("encode_fn",))
        return lambda x: x.reshape(len(x), -1)


def _real(counts, offset=1000, seed=0):
    """A real draw: float32 [-1, 1] images with a per-image pattern, labels, dataset indices offset.. ."""
    y = np.concatenate([np.full(n, c, np.int32) for c, n in enumerate(counts)])
    x = np.random.default_rng(seed).uniform(-1, 1, (len(y), 8, 8, 1)).astype(np.float32)
    return x, y, offset + np.arange(len(y), dtype=np.int64)


def _mix(text, setting=PER_CLASS, counts=(4, 4, 4), gen=None, **kw):
    x, y, idx = _real(counts)
    kw.setdefault("resources", StubResources(gen or ConstGen()))
    return build_study_mix(parse_strategy(text), setting=setting, x_real=x, y_real=y, idx_real=idx, num_classes=K,
                           seed=kw.pop("seed", 7), **kw), (x, y, idx)


def _check_generated(mix):
    syn = mix.synthetic
    assert np.allclose(mix.images[syn][..., 0].mean(axis=(1, 2)), mix.labels[syn] / 10)  # label stays on its image
    g = mix.groups[syn]
    assert (g < 0).all() and len(set(g.tolist())) == len(g)  # each generated image is its own group


def test_per_class_ratio_counts_and_groups():
    mix, (x, y, idx) = _mix("cdcgan")
    assert (mix.n_real, mix.n_synthetic, mix.n_duplicates, mix.n_extra_real) == (12, 12, 0, 0)
    assert np.bincount(mix.labels[mix.synthetic]).tolist() == [4, 4, 4]
    assert np.array_equal(mix.groups[:12], idx) and np.array_equal(mix.images[:12], x)
    _check_generated(mix)
    assert mix.images.dtype == np.float32 and mix.labels.dtype == np.int32 and mix.groups.dtype == np.int64
    half, _ = _mix("cdcgan:0.5", counts=(4, 3, 2))  # half up: 2, 1.5 -> 2, 1
    assert np.bincount(half.labels[half.synthetic], minlength=K).tolist() == [2, 2, 1]


def test_imbalance_tops_up_to_majority_unless_a_ratio_is_given():
    counts = (10, 3, 8)
    top, _ = _mix("cdcgan", setting=IMBALANCE, counts=counts)
    assert np.bincount(top.labels, minlength=K).tolist() == [10, 10, 10]
    assert top.n_synthetic == 9
    ratio, _ = _mix("cdcgan:1", setting=IMBALANCE, counts=counts)
    assert np.bincount(ratio.labels[ratio.synthetic], minlength=K).tolist() == [10, 3, 8]
    dup, (x, y, idx) = _mix("bootstrap+classic", setting=IMBALANCE, counts=counts)
    assert np.bincount(dup.labels, minlength=K).tolist() == [10, 10, 10] and dup.augment == "classic"
    assert dup.n_duplicates == 9 and not dup.synthetic.any()
    # a duplicate carries its source's dataset index, and is a copy of that source
    pos = {int(i): p for p, i in enumerate(idx)}
    for row in range(len(idx), len(dup.labels)):
        assert np.array_equal(dup.images[row], x[pos[int(dup.groups[row])]])
    factor, _ = _mix("bootstrap:2", setting=IMBALANCE, counts=counts)
    assert len(factor.labels) == 42 and factor.n_duplicates == 21
    assert synthetic_counts(parse_strategy("baseline+classic"), IMBALANCE, [0, 1, 2], K) == {0: 0, 1: 0, 2: 0}


def test_grid_spreads_the_synthetic_total_and_allows_no_real_images():
    mix, _ = _mix("cdcgan", setting=GRID, counts=(2, 2, 2))
    assert np.bincount(mix.labels[mix.synthetic]).tolist() == [4, 3, 3] and mix.n_real == 6
    empty = build_study_mix(parse_strategy("cdcgan"), setting=Setting("g", "grid", real=0, synthetic=5),
                            x_real=np.zeros(0), y_real=[], idx_real=[], num_classes=K,
                            resources=StubResources(ConstGen()), seed=1)
    assert empty.images.shape == (5, 8, 8, 1) and empty.synthetic.all() and empty.n_real == 0
    _check_generated(empty)


def test_extra_real_draws_only_fresh_pool_images_of_the_class():
    x, y, idx = _real((4, 4, 4))
    rng = np.random.default_rng(3)
    pool_y = np.array([0] * 10 + [1] * 2 + [2] * 6, np.int32)
    pool_idx = np.arange(18, dtype=np.int64) + 5000
    pool_idx[10] = idx[4]  # a class-1 training image that slipped into the pool must never be added again
    pool_x = rng.uniform(-1, 1, (18, 8, 8, 1)).astype(np.float32)
    kw = dict(setting=PER_CLASS, x_real=x, y_real=y, idx_real=idx, num_classes=K, pool_x=pool_x, pool_y=pool_y,
              pool_idx=pool_idx, seed=4)
    mix = build_study_mix(parse_strategy("extra-real"), **kw)
    extra = mix.groups[12:]
    assert mix.n_extra_real == len(extra) == 4 + 1 + 4  # class 1's pool is short: it gives what it has
    assert set(extra) <= set(pool_idx) and not set(extra) & set(idx)
    assert len(set(extra.tolist())) == len(extra)
    for g, label, image in zip(extra, mix.labels[12:], mix.images[12:]):
        row = int(np.flatnonzero(pool_idx == g)[0])
        assert label == pool_y[row] and np.array_equal(image, pool_x[row])
    assert not mix.synthetic.any() and mix.n_synthetic == 0
    again = build_study_mix(parse_strategy("extra-real"), **kw)
    assert np.array_equal(again.groups, mix.groups)  # deterministic given the seed
    other = build_study_mix(parse_strategy("extra-real"), **{**kw, "seed": 5})
    assert not np.array_equal(other.groups, mix.groups)
    nothing = build_study_mix(parse_strategy("extra-real"), **{**kw, "pool_x": None, "pool_y": None})
    assert nothing.n_extra_real == 0 and len(nothing.labels) == 12  # no pool: no crash
    top = build_study_mix(parse_strategy("extra-real"), **{**kw, "setting": IMBALANCE, "x_real": x[:9],
                                                         "y_real": np.array([0] * 5 + [1, 1] + [2, 2], np.int32),
                                                         "idx_real": idx[:9]})
    assert np.bincount(top.labels, minlength=K).tolist() == [5, 3, 5]  # class 1 short of 3, the pool has 1 fresh


def test_synthetic_only_uses_generated_images_only():
    mix, _ = _mix("synthetic-only:cdcgan", counts=(4, 3, 2))
    assert mix.synthetic.all() and (mix.groups < 0).all() and mix.n_real == 0
    assert np.bincount(mix.labels).tolist() == [4, 3, 2]
    imb, _ = _mix("synthetic-only", setting=IMBALANCE, counts=(6, 2, 5))
    assert np.bincount(imb.labels).tolist() == [6, 6, 6]
    grid, _ = _mix("synthetic-only", setting=GRID, counts=(2, 2, 2))
    assert len(grid.labels) == 10 and grid.synthetic.all()
    _check_generated(grid)


def test_curriculum_pretrains_on_generated_rows_only():
    mix, (x, y, idx) = _mix("curriculum:cdcgan+bootstrap:2")
    px, py = mix.pretrain
    assert len(py) == 12 and np.allclose(px[..., 0].mean(axis=(1, 2)), py / 10)
    assert not mix.synthetic.any() and (mix.groups >= 0).all() and set(mix.groups) == set(idx)
    assert len(mix.labels) == 24 and mix.n_synthetic == 12 and mix.n_duplicates == 12


def test_source_flag_marks_exactly_the_generated_rows():
    mix, _ = _mix("source-flag:cdcgan")
    assert mix.images.shape[-1] == 2 and mix.source_flag
    assert np.array_equal(mix.images[..., -1].max(axis=(1, 2)) == 1.0, mix.synthetic)
    assert np.array_equal(mix.images[..., -1].min(axis=(1, 2)) == 1.0, mix.synthetic)
    assert add_flag(np.zeros((2, 4, 4, 3), np.float32), 0.0).shape == (2, 4, 4, 4)


def test_variance_filter_reaches_counts_with_fresh_seeds():
    gen = OddFlatGen()
    mix, _ = _mix("cdcgan+filter:variance", gen=gen)
    assert np.bincount(mix.labels[mix.synthetic]).tolist() == [4, 4, 4]
    assert mix.n_rejected > 0
    syn = mix.images[mix.synthetic]
    assert (syn.reshape(len(syn), -1).std(axis=1) > 0.1).all()  # no flat image got through
    assert len(gen.seeds) > 24  # more than one round was needed
    assert len(gen.seeds) == len(set(gen.seeds))  # no seed used twice across rounds
    textured = OddFlatGen()
    textured.sample = lambda c, s: OddFlatGen.sample(textured, c, 3 * np.asarray(s))  # every image passes
    exact, _ = _mix("cdcgan+filter:variance", gen=textured)
    assert np.bincount(exact.labels[exact.synthetic]).tolist() == [4, 4, 4] and exact.n_rejected == 0
    unfiltered, _ = _mix("cdcgan", gen=OddFlatGen())
    assert unfiltered.n_rejected == 0
    flat_kept = unfiltered.images[unfiltered.synthetic].reshape(12, -1).std(axis=1) == 0
    assert flat_kept.any()  # without the filter, flat images do get in (so the filter test can fail)


def test_filter_rounds_run_out_without_crashing():
    class FlatGen(ConstGen):
        pass

    gen = FlatGen()
    mix, _ = _mix("cdcgan+filter:variance", gen=gen)
    assert mix.n_synthetic == 0 and mix.n_rejected == len(gen.seeds) > 12 and len(mix.labels) == 12


def test_named_consistency_filter_uses_the_judge():
    class WrongOnOdd(ConstGen):
        def sample(self, class_ids, seeds):
            wrong = np.where(np.asarray(seeds) % 2 == 1, (np.asarray(class_ids) + 1) % K, class_ids)
            return super().sample(wrong, seeds)

    def judge(images):  # class = 10 x mean value, as a one-hot probability
        c = np.clip(np.rint(images.mean(axis=(1, 2, 3)) * 10), 0, K - 1).astype(int)
        return np.eye(K)[c]

    res = StubResources(WrongOnOdd(), probabilities=judge)
    mix, _ = _mix("cdcgan+filter:strict", resources=res, filters={"strict": "consistency:0.9"})
    assert ("probabilities_fn",) in res.calls and ("encode_fn",) not in res.calls
    assert np.bincount(mix.labels[mix.synthetic]).tolist() == [4, 4, 4] and mix.n_rejected > 0
    _check_generated(mix)
    plain = StubResources(ConstGen())
    _mix("cdcgan+filter:variance", resources=plain)
    assert plain.calls == [("generator", "cdcgan")]  # the judge is built only when a filter needs it


def test_deterministic_and_errors():
    a, _ = _mix("cdcgan+bootstrap", seed=3)
    b, _ = _mix("cdcgan+bootstrap", seed=3)
    c, _ = _mix("cdcgan+bootstrap", seed=4)
    assert np.array_equal(a.groups, b.groups) and np.array_equal(a.images, b.images)
    assert not np.array_equal(a.groups, c.groups)
    with pytest.raises(TfaugError, match="needs a generator"):
        _mix("cdcgan", resources=None)
    with pytest.raises(TfaugError, match="classifier of its own"):
        _mix("m1")
    baseline, _ = _mix("baseline", resources=None)
    assert len(baseline.labels) == 12 and baseline.pretrain is None and baseline.augment is None
