"""Blocks that sample a generator trained on the draw: ``MODEL[:R]``, ``filter:NAME``, ``synthetic-only[:MODEL]``,
``curriculum[:MODEL]``, ``source-flag[:MODEL]``.

- ``MODEL[:R]`` (any zoo model): generated images per class by the count rule (``synthetic_counts``).
- ``filter:NAME``: a named filter of the study, or a filter spec (``variance``, ``consistency:0.9``); the chain is
  built with the callables it needs from the resources (judge, encoder, the draw's teacher for ``teacher[:C]``;
  fitted on the real draw). Generation
  over-samples (twice the missing count, up to :data:`ROUNDS` rounds with fresh seeds) until each class has its
  count of kept images; when the rounds run out it keeps what passed; ``n_rejected`` counts the dropped images.
- ``synthetic-only``: generated images only (CAS); ``curriculum``: ``pretrain`` holds the generated images, the
  mix the real part; ``source-flag``: real + generated with an extra last channel, 1 on generated rows.

Seeds: generated image j of class c uses seed ``seed + CLASS_SEED_STRIDE * c + j``; later rounds continue from the
next unused j, so no seed is ever used twice (the unfiltered draw equals ``sample_per_class(gen, counts, seed)``).
"""
from __future__ import annotations

import numpy as np

from tfaug.errors import TfaugError
from tfaug.synthesis.filters import apply_filters, build_filters, parse_filters
from tfaug.synthesis.sample import CLASS_SEED_STRIDE
from tfaug.synthesis.strategies.base import Block, Needs, Strategy, model_names, number, once, register
from tfaug.synthesis.strategies.mix import MixState, TrainingMix, add_flag, common, generated_groups

ROUNDS = 4        # generation rounds when filters drop images (the first + 3 with fresh seeds)
OVERSAMPLE = 2.0  # images requested per still-missing image in each filtered round
_CHUNK = 1024     # images per generator.sample call
FLAGS = ("synthetic-only", "curriculum", "source-flag")


def _parse_model(fields: dict, head: str, arg: str, text: str) -> None:
    once(fields, "generator", head, text)
    fields["ratio"] = number(arg, 1.0, text, minimum=0.0)
    fields["ratio_given"] = bool(arg)


def _parse_filter(fields: dict, head: str, arg: str, text: str) -> None:
    if not arg:
        raise TfaugError(f"'filter' needs a name in {text!r}, e.g. filter:variance")
    fields.setdefault("_filters", []).append(arg)


def _parse_flag(fields: dict, head: str, arg: str, text: str) -> None:
    once(fields, head.replace("-", "_"), True, text)
    if arg:
        models = model_names()
        if arg not in models:
            raise TfaugError(f"unknown model {arg!r} in {text!r}; zoo models: {', '.join(models)}")
        fields.setdefault("_flag_models", []).append(arg)


def filter_names(strategy: Strategy) -> set[str]:
    """Names of the filters the strategy's filter specs build (``variance``, ``consistency`` ...)."""
    return {s.name for spec in strategy.filter_specs for s in parse_filters(spec)}


def _needs(strategy: Strategy) -> Needs:
    if not strategy.generator:
        return Needs()
    names = filter_names(strategy)
    return Needs(generators=(strategy.generator,), encoder="sphere" in names, judge="consistency" in names,
                 teacher="teacher" in names)


def _filters(strategy: Strategy, resources, x_real: np.ndarray, y_real: np.ndarray) -> list:
    specs = [s for spec in strategy.filter_specs for s in parse_filters(spec)]
    if not specs:
        return []
    names = {s.name for s in specs}
    if resources is None and names & {"consistency", "sphere", "teacher"}:
        raise TfaugError(f"strategy {strategy.name!r} filters with a classifier or encoder but no resources were given")
    built = build_filters(specs, probabilities_fn=resources.probabilities_fn() if "consistency" in names else None,
                          encode_fn=resources.encode_fn() if "sphere" in names else None,
                          teacher_fn=resources.teacher_fn() if "teacher" in names else None,
                          reference=x_real if "near-duplicate" in names else None)
    for f in built:
        f.fit(x_real, y_real)
    return built


def _sample(generator, labels: np.ndarray, seeds: np.ndarray, shape) -> np.ndarray:
    if len(labels) == 0:
        return np.zeros((0, *shape), np.float32)
    parts = [np.asarray(generator.sample(labels[i:i + _CHUNK], seeds[i:i + _CHUNK]), np.float32)
             for i in range(0, len(labels), _CHUNK)]
    return np.concatenate(parts)


def generate(generator, counts: dict, filters: list, seed: int, shape) -> tuple[np.ndarray, np.ndarray, int]:
    """``counts[c]`` generated images per class (fewer if filters keep too few); returns (x, y int32, n_rejected)."""
    shape = tuple(shape) if shape is not None else tuple(generator.image_shape)
    used = {c: 0 for c in counts}
    kept = {c: [] for c in counts}
    rejected = 0
    for _ in range(ROUNDS if filters else 1):
        need = {c: n - sum(len(k) for k in kept[c]) for c, n in counts.items()}
        ask = {c: (int(np.ceil(OVERSAMPLE * m)) if filters else m) for c, m in need.items() if m > 0}
        if not ask:
            break
        labels = np.concatenate([np.full(n, c, np.int32) for c, n in ask.items()])
        seeds = np.concatenate([int(seed) + CLASS_SEED_STRIDE * c + used[c] + np.arange(n, dtype=np.int64)
                                for c, n in ask.items()])
        for c, n in ask.items():
            used[c] += n
        x = _sample(generator, labels, seeds, shape)
        if filters:
            fx, fy, _ = apply_filters(filters, x, labels)
            rejected += len(x) - len(fx)
            x, labels = fx, fy.astype(np.int32)
        for c in ask:
            kept[c].append(x[labels == c][: need[c]])
    xs = [k for c in sorted(kept) for k in kept[c]]
    ys = [np.full(len(k), c, np.int32) for c in sorted(kept) for k in kept[c]]
    if not xs:
        return np.zeros((0, *shape), np.float32), np.zeros(0, np.int32), rejected
    return np.concatenate(xs), np.concatenate(ys), rejected


def _stage_generate(strategy: Strategy, state: MixState) -> None:
    if state.generator is None:
        return
    flt = _filters(strategy, state.resources, state.x, state.y)
    gen_x, gen_y, rejected = generate(state.generator, state.per_class, flt, state.draw.seed, state.x.shape[1:])
    state.generated = (gen_x, gen_y)
    state.n_rejected += rejected


def _finish(strategy: Strategy, state: MixState) -> TrainingMix | None:
    gen_x, gen_y = state.generated
    n_syn = len(gen_y)
    if strategy.synthetic_only:
        return TrainingMix(images=gen_x, labels=gen_y, groups=generated_groups(n_syn), synthetic=np.ones(n_syn, bool),
                           **{**common(strategy, state), "n_real": 0, "n_duplicates": 0, "n_extra_real": 0})
    real_x, real_y, real_g = state.real_part()
    if strategy.curriculum:
        return TrainingMix(images=real_x, labels=real_y, groups=real_g, synthetic=np.zeros(len(real_y), bool),
                           **{**common(strategy, state), "pretrain": (gen_x, gen_y)})
    if strategy.source_flag:
        return TrainingMix(images=np.concatenate([add_flag(real_x, 0.0), add_flag(gen_x, 1.0)]),
                           labels=np.concatenate([real_y, gen_y]),
                           groups=np.concatenate([real_g, generated_groups(n_syn)]),
                           synthetic=np.concatenate([np.zeros(len(real_y), bool), np.ones(n_syn, bool)]),
                           **common(strategy, state))
    return None


def _is_model(head: str) -> bool:
    return head in model_names()


MODEL = register(Block(parse=_parse_model, needs=_needs, stage=_stage_generate, order=30, match=_is_model))
FILTER = register(Block(names=("filter",), parse=_parse_filter, needs=_needs, stage=_stage_generate, order=30))
FLAG_BLOCKS = register(Block(names=FLAGS, parse=_parse_flag, needs=_needs, stage=_stage_generate, order=30,
                             finish=_finish))
