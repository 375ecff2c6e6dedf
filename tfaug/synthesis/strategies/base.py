"""The strategy object: a parsed ``+``-joined list of registered blocks and what it needs (its mix: ``mix``).

A block is registered once (:func:`register`) by the module of its family (``real``, ``generative``, ``methods``
in this package, or any other module); :func:`parse` looks every block of a strategy text up in the registry, so
adding a strategy block means one module (its :class:`Block`) plus its test. A block may contribute:

- ``parse(fields, head, arg, text)``: its attributes of the :class:`Strategy` (absent: the block is only recorded
  in ``Strategy.blocks``, at most once per strategy);
- ``needs(strategy) -> Needs``: what a cell must provide (generators, encoder, judge, teacher, the real pool);
- ``stage(strategy, state)``: one step of ``mix.build``, run in ``order`` (bootstrap 10, extra-real 20, generation
  30; a block of its own may run later and may change ``state.real`` / ``state.generated``);
- ``finish(strategy, state) -> TrainingMix | None``: a different assembly of the parts (synthetic-only, curriculum,
  source-flag); the first block that returns one wins, else real + generated rows are concatenated;
- ``check(strategy)``: refuse unsupported combinations once the whole strategy is parsed (one sentence).

The blocks' stages and ``finish`` receive the ``tfaug.synthesis.strategies.mix.MixState`` of ``mix.build``.
TensorFlow-free at import: generators, classifiers and encoders come from ``resources``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol

from tfaug.errors import TfaugError

__all__ = ["Block", "Needs", "Resources", "Strategy", "blocks", "block_names", "model_names", "number", "once", "parse",
           "register", "train_option", "unregister"]

FLAG_FIELDS = ("synthetic_only", "curriculum", "source_flag")


def model_names() -> tuple[str, ...]:
    """Zoo model names usable as strategy blocks (no TensorFlow import)."""
    from tfaug.models.zoo import model_names as names

    return tuple(names())


# -- what a strategy needs and gets ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Needs:
    """What a cell must provide to build (or, for S3 methods, to run) a strategy.

    Attributes:
        generators: zoo models that must be trained on the cell's real images (run directories of those names).
        encoder: a VAE encoder trained on them (run ``encoder-vae``; ``sphere`` filters, m2 and m4).
        judge: a classifier trained on them without augmentation (``consistency`` filters; in memory).
        teacher: the cell's control classifier, trained on them with classic augmentation (run ``teacher``),
            as a probabilities function (``Resources.teacher_fn``).
        pool: the unused real pool (images, labels, dataset indices) of the draw (``extra-real``).
    """

    generators: tuple = ()
    encoder: bool = False
    judge: bool = False
    teacher: bool = False
    pool: bool = False

    def __or__(self, other: "Needs") -> "Needs":
        return Needs(generators=tuple(dict.fromkeys(self.generators + other.generators)),
                     encoder=self.encoder or other.encoder, judge=self.judge or other.judge,
                     teacher=self.teacher or other.teacher, pool=self.pool or other.pool)

    @property
    def runs(self) -> tuple[str, ...]:
        """Names of the run directories these needs train (what the executors' scheduler claims)."""
        return self.generators + (("encoder-vae",) if self.encoder else ()) + (("teacher",) if self.teacher else ())


class Resources(Protocol):
    """What a mix may need beyond the real draw; implemented by the study runner, cached per draw (and fold)."""

    def generator(self, model: str):
        """A generator (``sample(class_ids, seeds)``) of zoo ``model`` trained only on this draw's images."""

    def probabilities_fn(self):
        """Judge classifier trained on the real images: images [-1, 1] [N,H,W,C] -> probabilities [N, K]."""

    def encode_fn(self):
        """Encoder trained on the real images: images [-1, 1] [N,H,W,C] -> encodings [N, D]."""

    def teacher_fn(self):
        """The draw's control classifier (classic augmentation): images float32 [-1, 1] [N,H,W,C] -> [N, K]."""


# -- the registry ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    """A strategy building block (see the module docstring). ``names``: the heads it answers to; ``match``: a
    predicate for a family of heads (the zoo models)."""

    names: tuple = ()
    parse: Callable | None = None
    needs: Callable | None = None
    stage: Callable | None = None
    order: int = 50
    finish: Callable | None = None
    match: Callable | None = None
    check: Callable | None = None


_REGISTRY: list[Block] = []


def register(block: Block) -> Block:
    """Add ``block`` to the grammar (its names must be new); returns it."""
    taken = set(block_names())
    clash = [n for n in block.names if n in taken]
    if clash:
        raise TfaugError(f"strategy block {clash[0]!r} is registered already")
    _REGISTRY.append(block)
    return block


def unregister(block: Block) -> None:
    """Remove ``block`` (tests register blocks of their own)."""
    _REGISTRY.remove(block)


def blocks() -> tuple[Block, ...]:
    """The registered blocks, in registration (grammar) order."""
    return tuple(_REGISTRY)


def block_names() -> tuple[str, ...]:
    """Every registered block name (zoo models excluded), in grammar order."""
    return tuple(n for b in _REGISTRY for n in b.names)


def _lookup(head: str, generators: tuple = ()) -> Block | None:
    for b in _REGISTRY:
        if head in b.names:
            return b
    for b in _REGISTRY:
        if b.match is not None and (b.match(head) or head in generators):
            return b
    return None


# -- the strategy ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Strategy:
    """A parsed strategy (build it with :func:`parse`).

    Attributes:
        name: the canonical text (as given).
        bootstrap: duplication factor >= 1, or None; ``bootstrap_given`` is False when the factor was defaulted.
        augment: classic augmentation spec (``classic`` / ``classic:PRESET``), or None.
        generator: zoo model name, or None.
        ratio: generated (or extra real) images per real image, >= 0; ``ratio_given`` False when defaulted.
        extra_real: add unused real images (the control).
        filters: filter names/specs applied to generated images, in order, as written; ``filter_specs`` the same
            resolved through the named filters given to :func:`parse`.
        synthetic_only, curriculum, source_flag: the S4 / CAS training variants.
        method: one of the S3 classifiers (``disc-bank``, ``m1``..``m4``) or None; ``method_args`` their inline
            parameter overrides; ``method_model`` the zoo model they sample (``gan-bank`` for disc-bank).
        train_options: how the classifier trains on the mix, set by training blocks (``reweight``, ``logit-adjust``,
            ``balanced``: ``tfaug.synthesis.strategies.longtail``); read by
            ``tfaug.training.longtail.train_kwargs``.
        blocks: ``(head, arg)`` of every block as written, in order; ``block_objects`` their registered
            :class:`Block` (resolved once, at parse time).
    """

    name: str
    bootstrap: float | None = None
    bootstrap_given: bool = False
    augment: str | None = None
    generator: str | None = None
    ratio: float = 1.0
    ratio_given: bool = False
    extra_real: bool = False
    filters: tuple = ()
    filter_specs: tuple = ()
    synthetic_only: bool = False
    curriculum: bool = False
    source_flag: bool = False
    method: str | None = None
    method_args: dict = field(default_factory=dict)
    method_model: str | None = None
    train_options: dict = field(default_factory=dict)
    blocks: tuple = ()
    block_objects: tuple = field(default=(), compare=False, repr=False)

    @property
    def generative(self) -> bool:
        """True when the strategy samples a generator (so the cell needs one trained on its draw)."""
        return self.generator is not None

    def arg(self, head: str) -> str | None:
        """The argument of block ``head`` as written (``""`` when it has none), or None when absent."""
        return next((a for h, a in self.blocks if h == head), None)

    def _blocks(self) -> list[Block]:
        return list(dict.fromkeys(self.block_objects))

    @property
    def needs(self) -> Needs:
        """What a cell must provide (the union of the blocks' needs)."""
        out, done = Needs(), set()
        for b in self._blocks():
            if b.needs is not None and b.needs not in done:
                done.add(b.needs)
                out = out | b.needs(self)
        return out

    @property
    def metrics_generator(self) -> str | None:
        """The zoo model whose generator metrics belong to this strategy's results (None: it samples none)."""
        if self.method:
            return self.method_model
        flags = self.synthetic_only or self.curriculum or self.source_flag
        return self.generator if self.generator and (self.ratio > 0 or flags) else None

    def build(self, draw, counts=None, resources: Resources | None = None):
        """The training mix of this strategy from ``draw`` (``tfaug.synthesis.strategies.mix.build``)."""
        from tfaug.synthesis.strategies.mix import build

        return build(self, draw, counts, resources)


_ALIASES: dict[str, str] = {}


def register_alias(name: str, text: str) -> None:
    """Make ``name`` a strategy block that stands for the blocks of ``text`` (e.g. ``recommended``); the alias takes
    no argument and composes like any block (``recommended+reweight``). Aliases may not nest."""
    if not name or any(c in name for c in "+: ") or name in block_names():
        raise ValueError(f"bad or taken alias name {name!r}")
    if any(p.strip().partition(":")[0] in _ALIASES for p in text.split("+")):
        raise ValueError(f"alias {name!r} may not use another alias")
    _ALIASES[name] = text


def unregister_alias(name: str) -> None:
    """Remove alias ``name`` (tests register aliases of their own)."""
    _ALIASES.pop(name, None)


def aliases() -> dict[str, str]:
    """Registered aliases ``{name: strategy text}``."""
    return dict(_ALIASES)


def expand_aliases(text: str) -> list[str]:
    """The ``+``-separated parts of ``text`` with every alias replaced by its blocks (empty parts kept: ``parse``
    names them)."""
    out = []
    for part in (p.strip() for p in text.split("+")):
        head, sep, arg = part.partition(":")
        if head in _ALIASES:
            if sep:
                raise TfaugError(f"{head} takes no argument (it stands for {_ALIASES[head]}); got {part!r} in {text!r}")
            out += [p.strip() for p in _ALIASES[head].split("+")]
        else:
            out.append(part)
    return out


def parse(text: str, default_model: str = "cdcgan", *, filters: dict | None = None,
          method_model: str = "gan-bank", generators: tuple = ()) -> Strategy:
    """Parse ``cdcgan:0.5+classic`` style text into a :class:`Strategy` (unknown blocks are errors).

    Args:
        text: the strategy text.
        default_model: generator of ``synthetic-only``, ``curriculum`` and ``source-flag`` when neither the block
            nor a ``MODEL`` block names one.
        filters: named filter specs ``{NAME: SPEC}`` (a study's ``filters``); other filter names are specs.
        method_model: the zoo model the S3 methods m1..m4 sample (a study's ``methods.model``).
        generators: further names accepted as ``MODEL[:R]`` blocks besides the zoo models (``train-classifier``
            names a generator loaded from a path ``external``); ``resources.generator(name)`` provides them.
    """
    if not isinstance(text, str) or not text.strip():
        raise TfaugError("empty strategy")
    fields: dict = {"_default_model": default_model, "_method_model": method_model}
    written: list[tuple[str, str]] = []
    found: list[Block] = []
    for part in expand_aliases(text):
        if not part:
            raise TfaugError(f"empty block in strategy {text!r}")
        head, _, arg = part.partition(":")
        block = _lookup(head, tuple(generators))
        if block is None:
            raise TfaugError(f"unknown strategy block {head!r} in {text!r}; known blocks: "
                             f"{', '.join(block_names() + tuple(_ALIASES))} and the zoo models "
                             f"{', '.join(model_names())}")
        if block.parse is not None:
            block.parse(fields, head, arg, text)
        elif any(h == head for h, _ in written):
            raise TfaugError(f"strategy {text!r} gives {head} twice")
        written.append((head, arg))
        found.append(block)
    strategy = _assemble(text, fields, tuple(written), tuple(found), filters)
    for check in dict.fromkeys(b.check for b in found if b.check is not None):
        check(strategy)
    return strategy


def _assemble(text: str, fields: dict, written: tuple, found: tuple, named: dict | None) -> Strategy:
    default_model, method_model = fields.pop("_default_model"), fields.pop("_method_model")
    filters = fields.pop("_filters", [])
    flag_models = fields.pop("_flag_models", [])
    flags = [f for f in FLAG_FIELDS if fields.get(f)]
    if len(flags) > 1:
        raise TfaugError(f"strategy {text!r} combines {' and '.join(f.replace('_', '-') for f in flags)}; use one of them")
    if fields.get("method"):
        others = sorted(set(fields) - {"method", "method_args"}) + (["filter"] if filters else [])
        if others:
            raise TfaugError(f"{fields['method']!r} is a classifier of its own and cannot be combined "
                             f"(got {', '.join(others)} in {text!r})")
        fields["method_model"] = "gan-bank" if fields["method"] == "disc-bank" else method_model
    models = {fields.get("generator"), *flag_models} - {None}
    if len(models) > 1:
        raise TfaugError(f"strategy {text!r} names two generators ({', '.join(sorted(models))}); use one")
    if flags and not models:
        fields["generator"] = default_model
    elif models:
        fields["generator"] = models.pop()
    if filters and not fields.get("generator"):
        raise TfaugError(f"strategy {text!r} filters generated images but has no generator (add e.g. cdcgan)")
    if fields.get("extra_real") and fields.get("generator") and not flags:
        raise TfaugError(f"strategy {text!r}: extra-real is the control for a generator; list them as two strategies")
    specs = tuple(str((named or {}).get(f, f)) for f in filters)
    return Strategy(name=text, filters=tuple(filters), filter_specs=specs, blocks=written, block_objects=found,
                    **fields)


def train_option(fields: dict, key: str, value, text: str) -> None:
    """Set training option ``key`` of ``Strategy.train_options`` or raise when a block gave it already."""
    options = fields.setdefault("train_options", {})
    if key in options:
        raise TfaugError(f"strategy {text!r} gives {key.replace('_', '-')} twice")
    options[key] = value


def once(fields: dict, key: str, value, text: str) -> None:
    """Set ``fields[key]`` or raise when a block gave it already (for blocks' ``parse``)."""
    if key in fields:
        raise TfaugError(f"strategy {text!r} gives {key.replace('_', '-')} twice")
    fields[key] = value


def number(arg: str, default: float, text: str, minimum: float) -> float:
    """``arg`` as a number >= ``minimum`` (``default`` when empty), or one sentence naming the strategy."""
    if not arg:
        return default
    try:
        value = float(arg)
    except ValueError:
        raise TfaugError(f"bad number {arg!r} in strategy {text!r}") from None
    if value < minimum:
        raise TfaugError(f"{arg} in strategy {text!r} must be >= {minimum}")
    return value
