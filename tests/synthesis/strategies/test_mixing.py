"""Mixing blocks (soft, weight, swap, sepbn) and the teacher-confidence filter: parsing, needs, the mix's soft targets
and the trainer arguments they become (the training itself: tests/training/test_mixing.py)."""
import numpy as np
import pytest
from strategy_helpers import IMBALANCE, K, ConstGen, StubResources, mix_of

from tfaug.errors import TfaugError
from tfaug.synthesis.strategies import parse
from tfaug.synthesis.strategies.mixing import soften
from tfaug.training.mixing import mix_kwargs


def teacher(images):
    """Class = 10 x mean value (ConstGen's images) with probability 0.6; the other 0.4 spread unevenly over the
    other classes."""
    c = np.clip(np.rint(images.mean(axis=(1, 2, 3)) * 10), 0, K - 1).astype(int)
    p = np.full((len(images), K), 0.0)
    p[:, :] = np.array([0.3, 0.2, 0.1])[None, :K]
    p[np.arange(len(c)), c] = 0.0
    p /= p.sum(axis=1, keepdims=True)
    p *= 0.4
    p[np.arange(len(c)), c] = 0.6
    return p.astype(np.float32)


def test_blocks_parse_and_declare_their_needs():
    assert parse("cdcgan+soft").train_options == {"soft_temperature": 1.0}
    assert parse("cdcgan+soft:4+classic").needs.teacher
    assert not parse("cdcgan+weight:0.5").needs.teacher
    assert parse("cdcgan+weight:0.5+sepbn").train_options == {"generated_weight": 0.5, "sepbn": True}
    assert parse("cdcgan+swap:0.3+soft").train_options == {"swap": 0.3, "soft_temperature": 1.0}
    assert parse("cdcgan+filter:teacher:0.7").needs.teacher
    assert parse("cdcgan+filter:teacher").needs.generators == ("cdcgan",)
    for bad in ("soft", "cdcgan+soft:0", "cdcgan+soft:-1", "cdcgan+weight", "cdcgan+weight:-1", "cdcgan+swap",
                "cdcgan+swap:1.5", "cdcgan+sepbn:2", "cdcgan+swap:0.5+weight:1", "cdcgan+swap:0.5+sepbn",
                "cdcgan+soft+soft", "curriculum+soft", "cdcgan+sepbn+balanced", "cdcgan+soft+balanced"):
        with pytest.raises(TfaugError):
            parse(bad)
    parse("cdcgan+soft+logit-adjust:posthoc")  # post-hoc adjustment trains plainly: fine
    # the long-tail losses take target rows (soft or one-hot), so they compose with every mixing block
    assert parse("cdcgan+soft+logit-adjust").train_options == {"soft_temperature": 1.0, "logit_adjust": 1.0,
                                                              "posthoc": False}
    assert parse("cdcgan+weight:1+sepbn+reweight").train_options["generated_weight"] == 1.0


def test_soften_sums_to_one_keeps_argmax_and_flattens_with_temperature():
    p = np.array([[0.7, 0.2, 0.1], [0.05, 0.05, 0.9]], np.float32)
    np.testing.assert_allclose(soften(p, 1.0), p, atol=1e-6)
    for t in (0.5, 1.0, 3.0, 1e6):
        q = soften(p, t)
        np.testing.assert_allclose(q.sum(axis=1), 1.0, atol=1e-6)
        assert np.array_equal(q.argmax(axis=1), p.argmax(axis=1))
    assert soften(p, 3.0)[0, 0] < soften(p, 1.0)[0, 0] < soften(p, 0.5)[0, 0]
    np.testing.assert_allclose(soften(p, 1e6), 1.0 / 3, atol=1e-5)
    # log-probabilities / T: T = 2 is the renormalised square root
    np.testing.assert_allclose(soften(p, 2.0)[0], np.sqrt(p[0]) / np.sqrt(p[0]).sum(), atol=1e-6)
    with pytest.raises(TfaugError):
        soften(p, 0.0)


def test_soft_targets_follow_the_teacher_on_generated_rows_only():
    res = StubResources(ConstGen(), teacher=teacher)
    mix, (x, y, _) = mix_of("cdcgan+soft:2+classic", resources=res)
    assert ("teacher_fn",) in res.calls and ("probabilities_fn",) not in res.calls
    t = mix.targets
    assert t.shape == (len(mix.labels), K) and t.dtype == np.float32
    np.testing.assert_allclose(t.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(t[~mix.synthetic], np.eye(K)[mix.labels[~mix.synthetic]])  # real: one-hot
    gen = mix.images[mix.synthetic]
    np.testing.assert_allclose(t[mix.synthetic], soften(teacher(gen), 2.0), atol=1e-6)
    assert np.array_equal(t[mix.synthetic].argmax(axis=1), teacher(gen).argmax(axis=1))
    assert np.all(t[mix.synthetic].max(axis=1) < 0.6)  # T = 2 flattens the teacher's 0.6
    flat, _ = mix_of("cdcgan+soft:1000", resources=StubResources(ConstGen(), teacher=teacher))
    np.testing.assert_allclose(flat.targets[flat.synthetic], 1.0 / K, atol=1e-3)
    kw = mix_kwargs(mix, K)
    assert np.array_equal(kw["targets"], mix.targets) and "mixing" not in kw
    plain, _ = mix_of("cdcgan+classic")
    assert plain.targets is None and mix_kwargs(plain, K) == {}


def test_soft_tops_up_an_imbalanced_draw_too():
    mix, _ = mix_of("cdcgan+soft", setting=IMBALANCE, counts=(6, 2, 4),
                    resources=StubResources(ConstGen(), teacher=teacher))
    assert np.bincount(mix.labels, minlength=K).tolist() == [6, 6, 6]
    assert mix.targets is not None and int(mix.synthetic.sum()) == 6


def test_weight_swap_sepbn_become_trainer_arguments():
    mix, _ = mix_of("cdcgan:0.5+weight:0.25+sepbn+classic")
    assert mix.targets is None
    kw = mix_kwargs(mix, K)
    assert kw["mixing"] == {"weight": 0.25, "sepbn": True}
    np.testing.assert_array_equal(kw["synthetic"], mix.synthetic)
    rows = np.arange(0, len(mix.labels), 2)
    assert len(mix_kwargs(mix, K, rows)["synthetic"]) == len(rows)  # naive CV folds slice the flags
    assert mix_kwargs(mix_of("cdcgan+swap:0.2")[0], K)["mixing"] == {"swap": 0.2}


def test_teacher_filter_keeps_what_the_teacher_believes():
    class WrongOnOdd(ConstGen):
        def sample(self, class_ids, seeds):
            wrong = np.where(np.asarray(seeds) % 2 == 1, (np.asarray(class_ids) + 1) % K, class_ids)
            return super().sample(wrong, seeds)

    res = StubResources(WrongOnOdd(), teacher=teacher)
    mix, _ = mix_of("cdcgan+filter:teacher", resources=res)
    assert ("teacher_fn",) in res.calls and ("probabilities_fn",) not in res.calls
    assert np.bincount(mix.labels[mix.synthetic]).tolist() == [4, 4, 4] and mix.n_rejected > 0
    got = teacher(mix.images[mix.synthetic])
    assert np.all(got[np.arange(len(got)), mix.labels[mix.synthetic]] >= 0.5)
    strict, _ = mix_of("cdcgan+filter:teacher:0.65", resources=StubResources(WrongOnOdd(), teacher=teacher))
    assert strict.n_synthetic == 0 and strict.n_rejected > 0  # the teacher never reaches 0.65
