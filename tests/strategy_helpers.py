"""Stubs shared by the strategy tests (tests/synthesis/strategies): generators, resources and real draws."""
import numpy as np

from tfaug.synthesis.strategies import Counts, Draw, parse

K = 3
PER_CLASS = Counts("per_class")
IMBALANCE = Counts("imbalance")
GRID = Counts("grid", synthetic=10)


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
    """Resources that record what was asked of them."""

    def __init__(self, gen, probabilities=None, teacher=None):
        self.gen, self.probabilities, self.teacher, self.calls = gen, probabilities, teacher, []

    def generator(self, model):
        self.calls.append(("generator", model))
        return self.gen

    def probabilities_fn(self):
        self.calls.append(("probabilities_fn",))
        return self.probabilities

    def encode_fn(self):
        self.calls.append(("encode_fn",))
        return lambda x: x.reshape(len(x), -1)

    def teacher_fn(self):
        self.calls.append(("teacher_fn",))
        return self.teacher


def real_draw(counts, offset=1000, seed=0):
    """A real draw: float32 [-1, 1] images with a per-image pattern, labels, dataset indices offset.. ."""
    y = np.concatenate([np.full(n, c, np.int32) for c, n in enumerate(counts)])
    x = np.random.default_rng(seed).uniform(-1, 1, (len(y), 8, 8, 1)).astype(np.float32)
    return x, y, offset + np.arange(len(y), dtype=np.int64)


def build_mix(text, counts=PER_CLASS, *, x, y, idx, seed=0, resources=None, filters=None, pool_x=None, pool_y=None,
              pool_idx=None, num_classes=K):
    """``parse(text).build(...)`` with the draw given as arrays (what the study runner does)."""
    draw = Draw(x=x, y=y, idx=idx, num_classes=num_classes, seed=seed, pool_x=pool_x, pool_y=pool_y,
                pool_idx=pool_idx)
    return parse(text, filters=filters).build(draw, counts, resources)


def mix_of(text, setting=PER_CLASS, counts=(4, 4, 4), gen=None, **kw):
    """The mix of ``text`` on a fresh real draw with ``counts`` images per class, and that draw."""
    x, y, idx = real_draw(counts)
    kw.setdefault("resources", StubResources(gen or ConstGen()))
    return build_mix(text, setting, x=x, y=y, idx=idx, seed=kw.pop("seed", 7), **kw), (x, y, idx)


def check_generated(mix):
    syn = mix.synthetic
    assert np.allclose(mix.images[syn][..., 0].mean(axis=(1, 2)), mix.labels[syn] / 10)  # label stays on its image
    g = mix.groups[syn]
    assert (g < 0).all() and len(set(g.tolist())) == len(g)  # each generated image is its own group


def _teach_stage(strategy, state) -> None:
    """Asks the teacher for the real draw's probabilities and checks them (a block that only needs a teacher)."""
    p = np.asarray(state.resources.teacher_fn()(state.x))
    assert p.shape == (len(state.x), state.draw.num_classes) and np.allclose(p.sum(axis=1), 1.0, atol=1e-4)
    TEACH_CALLS.append(len(p))


TEACH_CALLS: list = []


def teach_block():
    """A ``teach`` block (registered by the caller) whose needs are a teacher, asked for by its build stage."""
    from tfaug.synthesis.strategies import Block, Needs

    return Block(names=("teach",), needs=lambda s: Needs(teacher=True), stage=_teach_stage, order=40)
