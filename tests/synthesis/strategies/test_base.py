"""The strategy object: grammar, needs, the block registry (a block of the test's own needing a teacher), the mix."""
import numpy as np
import pytest
from strategy_helpers import IMBALANCE, K, ConstGen, StubResources, build_mix, mix_of, real_draw

from tfaug.errors import TfaugError
from tfaug.synthesis.strategies import Block, Counts, Draw, MixState, Needs, block_names, parse, register, unregister


def test_parse_blocks():
    s = parse("cdcgan:0.5+classic:objects")
    assert s.generator == "cdcgan" and s.ratio == 0.5 and s.augment == "classic:objects" and s.bootstrap is None
    assert parse("bootstrap").bootstrap == 4.0
    b = parse("baseline")
    assert (b.generator, b.augment, b.bootstrap) == (None, None, None)
    for bad in ("nope", "bootstrap:0.5", "cdcgan:x", ""):
        with pytest.raises(TfaugError):
            parse(bad)


def test_strategy_grammar():
    s = parse("cdcgan:0.5+classic:objects")
    assert (s.generator, s.ratio, s.ratio_given, s.augment) == ("cdcgan", 0.5, True, "classic:objects")
    assert parse("bagan").ratio_given is False
    assert parse("bootstrap").bootstrap == 4.0 and not parse("bootstrap").bootstrap_given
    assert parse("synthetic-only", default_model="bagan").generator == "bagan"
    assert parse("curriculum:cvae").generator == "cvae" and parse("curriculum:cvae").curriculum
    f = parse("cdcgan+filter:consistency:0.9+filter:variance")
    assert f.filters == ("consistency:0.9", "variance")
    m = parse("m3:m=40,mu=0.1")
    assert m.method == "m3" and m.method_args == {"m": 40, "mu": 0.1}
    for bad in ("nope", "bootstrap:0.5", "cdcgan:x", "", "m1+classic", "filter:variance", "cdcgan+bagan",
                "curriculum+source-flag", "m1:q=3", "extra-real+cdcgan", "classic+classic"):
        with pytest.raises(TfaugError):
            parse(bad)


def test_errors_name_the_block_and_list_the_known_ones():
    with pytest.raises(TfaugError, match=r"unknown strategy block 'nope' in 'classic\+nope'; known blocks: "
                                         r"baseline, bootstrap, classic, extra-real, filter, synthetic-only, "
                                         r"curriculum, source-flag, disc-bank, m1, m2, m3, m4, reweight, logit-adjust, balanced, soft, weight, swap, sepbn, recommended and the zoo models .*cdcgan"):
        parse("classic+nope")
    with pytest.raises(TfaugError, match="extra-real is the control for a generator"):
        parse("extra-real+cdcgan")


def test_needs_declare_what_a_cell_must_provide():
    assert parse("baseline+classic").needs == Needs()
    assert parse("bootstrap:2+classic").needs.runs == ()
    assert parse("extra-real").needs == Needs(pool=True)
    assert parse("cdcgan+classic").needs == Needs(generators=("cdcgan",))
    assert parse("synthetic-only", default_model="bagan").needs.generators == ("bagan",)
    named = parse("bagan+filter:strict+filter:sphere", filters={"strict": "consistency:0.9"})
    assert named.filter_specs == ("consistency:0.9", "sphere")
    assert named.needs == Needs(generators=("bagan",), encoder=True, judge=True)
    assert named.needs.runs == ("bagan", "encoder-vae")
    assert parse("m2", method_model="cvae").needs.runs == ("cvae", "encoder-vae")
    assert parse("m3", method_model="cvae").needs.runs == ("cvae",)
    assert parse("disc-bank", method_model="cvae").needs.runs == ("gan-bank",)
    assert parse("disc-bank").metrics_generator == "gan-bank" and parse("m1", method_model="cvae").metrics_generator == "cvae"
    assert parse("cdcgan:0").metrics_generator is None and parse("curriculum+cdcgan:0").metrics_generator == "cdcgan"
    assert parse("classic").metrics_generator is None


def _teacher_stage(strategy, state: MixState) -> None:
    """Keep the generated images whose teacher probability of their class is at least T (default 0.5)."""
    threshold = float(strategy.arg("teacher-check") or 0.5)
    x, y = state.generated
    p = state.resources.teacher_fn()(x)
    keep = p[np.arange(len(y)), y] >= threshold
    state.generated = (x[keep], y[keep])
    state.n_rejected += int((~keep).sum())


@pytest.fixture
def teacher_block():
    block = register(Block(names=("teacher-check",), needs=lambda s: Needs(teacher=True), stage=_teacher_stage,
                           order=40))
    yield block
    unregister(block)


def test_a_registered_block_joins_the_grammar_with_its_needs(teacher_block):
    assert block_names()[-1] == "teacher-check"
    s = parse("cdcgan+teacher-check:0.6")
    assert s.arg("teacher-check") == "0.6" and s.arg("classic") is None
    assert s.needs == Needs(generators=("cdcgan",), teacher=True) and s.needs.runs == ("cdcgan", "teacher")
    with pytest.raises(TfaugError, match="gives teacher-check twice"):
        parse("cdcgan+teacher-check+teacher-check")
    with pytest.raises(TfaugError, match="registered already"):
        register(Block(names=("teacher-check",)))

    def teacher(images):  # trusts class 0 and 2 images, doubts class 1 ones (image value = class / 10)
        c = np.rint(images.mean(axis=(1, 2, 3)) * 10).astype(int)
        return np.where((c == 1)[:, None], 0.4, 0.9) * np.eye(K)[c]

    res = StubResources(ConstGen(), teacher=teacher)
    mix, _ = mix_of("cdcgan+teacher-check:0.6", resources=res)
    assert ("teacher_fn",) in res.calls
    assert np.bincount(mix.labels[mix.synthetic], minlength=K).tolist() == [4, 0, 4] and mix.n_rejected == 4
    plain = StubResources(ConstGen(), teacher=teacher)
    mix_of("cdcgan", resources=plain)
    assert ("teacher_fn",) not in plain.calls  # asked only by a block that needs it
    unregister(teacher_block)
    with pytest.raises(TfaugError, match="unknown strategy block 'teacher-check'"):
        parse("cdcgan+teacher-check")
    register(teacher_block)


def test_mix_counts_follow_ratio_per_class(toy):
    x, y = toy
    mix = parse("cdcgan:0.5+bootstrap:2").build(Draw(x=x, y=y, num_classes=3, seed=0), Counts(),
                                                 StubResources(ConstGen()))
    assert (mix.n_real, mix.n_duplicates, mix.n_synthetic) == (60, 60, 30)
    assert len(mix.images) == len(mix.labels) == 150
    syn_x, syn_y = mix.images[-30:], mix.labels[-30:]
    assert np.bincount(syn_y).tolist() == [10, 10, 10]
    assert np.allclose(syn_x[:, 0, 0, 0], syn_y / 10)  # labels stay attached to their generated images
    assert mix.images.dtype == np.float32 and mix.images.min() >= -1
    assert np.array_equal(mix.groups[:60], np.arange(60))  # no indices given: the draw's row numbers


def test_generator_needed_only_when_asked(toy):
    x, y = toy
    mix = parse("classic").build(Draw(x=x, y=y, num_classes=3))
    assert mix.n_synthetic == 0 and mix.augment == "classic"
    with pytest.raises(TfaugError):
        parse("cdcgan").build(Draw(x=x, y=y, num_classes=3))


def test_deterministic_and_errors():
    a, _ = mix_of("cdcgan+bootstrap", seed=3)
    b, _ = mix_of("cdcgan+bootstrap", seed=3)
    c, _ = mix_of("cdcgan+bootstrap", seed=4)
    assert np.array_equal(a.groups, b.groups) and np.array_equal(a.images, b.images)
    assert not np.array_equal(a.groups, c.groups)
    with pytest.raises(TfaugError, match="needs a generator"):
        mix_of("cdcgan", resources=None)
    with pytest.raises(TfaugError, match="classifier of its own"):
        mix_of("m1")
    baseline, _ = mix_of("baseline", resources=None)
    assert len(baseline.labels) == 12 and baseline.pretrain is None and baseline.augment is None
    x, y, idx = real_draw((2, 2, 2))
    with pytest.raises(TfaugError, match="6 images, 6 labels and 5 indices"):
        build_mix("baseline", x=x, y=y, idx=idx[:5])
    assert mix_of("bootstrap", setting=IMBALANCE, counts=(4, 2, 1))[0].counts() == {
        "n_real": 7, "n_duplicates": 5, "n_extra_real": 0, "n_synthetic": 0, "n_rejected": 0}


def test_an_alias_stands_for_its_blocks_and_composes():
    from tfaug.synthesis.strategies.base import register_alias, unregister_alias

    register_alias("house", "cdcgan+soft:2+classic")
    try:
        s = parse("house")
        direct = parse("cdcgan+soft:2+classic")
        assert s.name == "house" and s.blocks == direct.blocks and s.needs == direct.needs
        assert parse("house+filter:variance").blocks == parse("cdcgan+soft:2+classic+filter:variance").blocks
        with pytest.raises(TfaugError, match="house takes no argument"):
            parse("house:3")
        with pytest.raises(TfaugError, match="gives classic twice|classic.*twice"):
            parse("house+classic")
        with pytest.raises(ValueError):
            register_alias("classic", "baseline")  # a block's name
        with pytest.raises(ValueError):
            register_alias("nested", "house+reweight")
    finally:
        unregister_alias("house")
    with pytest.raises(TfaugError, match="unknown strategy block 'house'"):
        parse("house")
