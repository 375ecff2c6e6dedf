"""Generative blocks: count rules per regime, groups, filters with fresh seeds, synthetic-only, curriculum, flag."""
import numpy as np
from strategy_helpers import (GRID, IMBALANCE, K, ConstGen, OddFlatGen, StubResources, build_mix, check_generated,
                              mix_of)

from tfaug.synthesis.strategies import Counts, add_flag


def test_per_class_ratio_counts_and_groups():
    mix, (x, y, idx) = mix_of("cdcgan")
    assert (mix.n_real, mix.n_synthetic, mix.n_duplicates, mix.n_extra_real) == (12, 12, 0, 0)
    assert np.bincount(mix.labels[mix.synthetic]).tolist() == [4, 4, 4]
    assert np.array_equal(mix.groups[:12], idx) and np.array_equal(mix.images[:12], x)
    check_generated(mix)
    assert mix.images.dtype == np.float32 and mix.labels.dtype == np.int32 and mix.groups.dtype == np.int64
    half, _ = mix_of("cdcgan:0.5", counts=(4, 3, 2))  # half up: 2, 1.5 -> 2, 1
    assert np.bincount(half.labels[half.synthetic], minlength=K).tolist() == [2, 2, 1]


def test_imbalance_tops_up_to_majority_unless_a_ratio_is_given():
    counts = (10, 3, 8)
    top, _ = mix_of("cdcgan", setting=IMBALANCE, counts=counts)
    assert np.bincount(top.labels, minlength=K).tolist() == [10, 10, 10]
    assert top.n_synthetic == 9
    ratio, _ = mix_of("cdcgan:1", setting=IMBALANCE, counts=counts)
    assert np.bincount(ratio.labels[ratio.synthetic], minlength=K).tolist() == [10, 3, 8]


def test_grid_spreads_the_synthetic_total_and_allows_no_real_images():
    mix, _ = mix_of("cdcgan", setting=GRID, counts=(2, 2, 2))
    assert np.bincount(mix.labels[mix.synthetic]).tolist() == [4, 3, 3] and mix.n_real == 6
    empty = build_mix("cdcgan", Counts("grid", synthetic=5), x=np.zeros(0), y=[], idx=[],
                      resources=StubResources(ConstGen()), seed=1)
    assert empty.images.shape == (5, 8, 8, 1) and empty.synthetic.all() and empty.n_real == 0
    check_generated(empty)


def test_synthetic_only_uses_generated_images_only():
    mix, _ = mix_of("synthetic-only:cdcgan", counts=(4, 3, 2))
    assert mix.synthetic.all() and (mix.groups < 0).all() and mix.n_real == 0
    assert np.bincount(mix.labels).tolist() == [4, 3, 2]
    imb, _ = mix_of("synthetic-only", setting=IMBALANCE, counts=(6, 2, 5))
    assert np.bincount(imb.labels).tolist() == [6, 6, 6]
    grid, _ = mix_of("synthetic-only", setting=GRID, counts=(2, 2, 2))
    assert len(grid.labels) == 10 and grid.synthetic.all()
    check_generated(grid)


def test_curriculum_pretrains_on_generated_rows_only():
    mix, (x, y, idx) = mix_of("curriculum:cdcgan+bootstrap:2")
    px, py = mix.pretrain
    assert len(py) == 12 and np.allclose(px[..., 0].mean(axis=(1, 2)), py / 10)
    assert not mix.synthetic.any() and (mix.groups >= 0).all() and set(mix.groups) == set(idx)
    assert len(mix.labels) == 24 and mix.n_synthetic == 12 and mix.n_duplicates == 12


def test_source_flag_marks_exactly_the_generated_rows():
    mix, _ = mix_of("source-flag:cdcgan")
    assert mix.images.shape[-1] == 2 and mix.source_flag
    assert np.array_equal(mix.images[..., -1].max(axis=(1, 2)) == 1.0, mix.synthetic)
    assert np.array_equal(mix.images[..., -1].min(axis=(1, 2)) == 1.0, mix.synthetic)
    assert add_flag(np.zeros((2, 4, 4, 3), np.float32), 0.0).shape == (2, 4, 4, 4)


def test_variance_filter_reaches_counts_with_fresh_seeds():
    gen = OddFlatGen()
    mix, _ = mix_of("cdcgan+filter:variance", gen=gen)
    assert np.bincount(mix.labels[mix.synthetic]).tolist() == [4, 4, 4]
    assert mix.n_rejected > 0
    syn = mix.images[mix.synthetic]
    assert (syn.reshape(len(syn), -1).std(axis=1) > 0.1).all()  # no flat image got through
    assert len(gen.seeds) > 24  # more than one round was needed
    assert len(gen.seeds) == len(set(gen.seeds))  # no seed used twice across rounds
    textured = OddFlatGen()
    textured.sample = lambda c, s: OddFlatGen.sample(textured, c, 3 * np.asarray(s))  # every image passes
    exact, _ = mix_of("cdcgan+filter:variance", gen=textured)
    assert np.bincount(exact.labels[exact.synthetic]).tolist() == [4, 4, 4] and exact.n_rejected == 0
    unfiltered, _ = mix_of("cdcgan", gen=OddFlatGen())
    assert unfiltered.n_rejected == 0
    flat_kept = unfiltered.images[unfiltered.synthetic].reshape(12, -1).std(axis=1) == 0
    assert flat_kept.any()  # without the filter, flat images do get in (so the filter test can fail)


def test_filter_rounds_run_out_without_crashing():
    class FlatGen(ConstGen):
        pass

    gen = FlatGen()
    mix, _ = mix_of("cdcgan+filter:variance", gen=gen)
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
    mix, _ = mix_of("cdcgan+filter:strict", resources=res, filters={"strict": "consistency:0.9"})
    assert ("probabilities_fn",) in res.calls and ("encode_fn",) not in res.calls
    assert np.bincount(mix.labels[mix.synthetic]).tolist() == [4, 4, 4] and mix.n_rejected > 0
    check_generated(mix)
    plain = StubResources(ConstGen())
    mix_of("cdcgan+filter:variance", resources=plain)
    assert plain.calls == [("generator", "cdcgan")]  # the judge is built only when a filter needs it
