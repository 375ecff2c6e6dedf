"""Study configuration: the YAML schema of ``tfaug study``, its validation and its expansion into cells.

A study file (see README "Studies") has these top-level keys; any other key is an error that names it:

- ``name``        study name (text), used in reports.
- ``dataset``     a dataset spec (``digits``, ``npz:PATH`` ...) or ``{spec: SPEC, one_vs_rest: C}`` (binary:
                  class C against all others, S1's setting on any dataset).
- ``test``        the held-out real test set, taken first from every class: ``{per_class: N}`` or
                  ``{fraction: F}``; optional ``large_per_class: M`` (M >= N) holds out M per class and scores
                  the published-size test set (the first N of them) *and* the large one (``accuracy_large``);
                  optional ``validation_per_class: V`` holds out V more real images per class after the test set
                  (the same in every repeat, never trained on, not in the extra-real pool) and scores them too
                  (``val_accuracy``, ``val_macro_f1``, ``val_balanced_accuracy``): choose strategies on these,
                  never on the test columns.
- the regime, exactly one of
  ``per_class: [k, ...]`` (k real training images per class),
  ``imbalance: {minority: C | [C, ...], keep: [f, ...], per_class: K?}`` (keep a fraction f in (0, 1] or a count
  >= 1 of each minority class; other classes keep everything, or K per class; the extreme case "12 images of a
  class against 400 of the others" is ``{minority: C, keep: [12], per_class: 400}``),
  ``imbalance: {profile: exponential, ratio: [r, ...], per_class: K?}`` (the long-tail protocol of CIFAR-10-LT:
  class c keeps ``floor(n_max * r ** (-c / (K - 1)))`` images, at least 1, with n_max = K, else the smallest
  class's size after the test set; ``tfaug.data.subsets.exponential_counts``); one mapping may hold both forms
  (profile settings first, then the minority/keep ones, all with the same ``per_class``),
  ``grid: {real: [n, ...], synthetic: [n, ...]}`` (S4: n real and n generated images in total, spread evenly
  over classes; the generator of a repeat is trained on that repeat's largest real draw, and every smaller real
  draw is a subset of it).
- ``strategies``  list of strategy texts (``tfaug.synthesis.strategies``).
- ``classifier``  ``ClassifierConfig`` fields, plus ``epochs`` (then steps = ceil(epochs * train size / batch)) and
                  ``preset`` (start from ``classifier/PRESET``). Without ``name`` and ``preset`` the section starts
                  from the default control ``classifier/fewshot``; with ``name`` from the field defaults.
- ``generator``   ``GANConfig`` fields (``model`` is the default model of ``synthetic-only``, ``curriculum``,
                  ``source-flag`` and the S3 methods), plus ``preset`` (a ``gan/...`` preset to start from) and
                  ``models: {MODEL: {field: value}}`` (per-model overrides); ``pretrain: SPEC|majority``,
                  ``pretrain_steps``, ``adapt_steps``: knowledge from outside the draw (``tfaug.studies.pretrain``).
- ``filters``     named filter specs ``{NAME: "variance,consistency:0.9"}`` or a list of specs; ``filter:NAME`` in a
                  strategy uses a named one, or NAME itself as a spec (``filter:variance``).
- ``methods``     parameters of the S3 classifiers: ``m`` samples per class, ``L`` nearest, ``N`` votes, ``mu``
                  ball share, ``model`` (generator, default gan-bank), ``encoder_steps`` and ``latent_dim`` of the
                  VAE whose latent space M2/M4 use.
- ``generator_metrics``  list of per-generator metrics added to result rows (``kid``, ``copies``, ``ssim``,
                  ``consistency``); default ``[kid, copies]``.
- ``repeats``     R >= 1 repeats (a new training draw, generator and classifier seed per repeat).
- ``seed``        base seed S >= 0 (repeat r uses S + r; the test split uses S in every repeat).
- ``cv``          optional ``{folds: K >= 2, group_aware: true|false}``: K-fold cross-validation on the training
                  side of each cell as well as the external test (``cv_accuracy``); ``group_aware: false`` is the
                  naive protocol (folds split the enriched set, so copies of one source cross folds: S1's leak).
- ``runtime``     optional ``RuntimeConfig`` fields (``strategy: default|mirrored|multiworker``, ``devices``,
                  ``mixed_precision``, ``jit_compile``) for every generator and classifier of the study; where the
                  study runs, not what it computes, so it is not part of ``study.json`` and a study may resume
                  under another runtime. ``tfaug study --strategy ...`` overrides it.
- ``quick``       overrides (same keys, merged one level deep) applied by ``tfaug study --quick``.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tfaug.config import ClassifierConfig, GANConfig, RuntimeConfig, from_dict
from tfaug.errors import TfaugError
from tfaug.studies.pretrain import check_pretrain, parse_pretrain

KEYS = ("name", "dataset", "test", "per_class", "imbalance", "grid", "strategies", "classifier", "generator",
        "filters", "methods", "generator_metrics", "repeats", "seed", "cv", "runtime", "quick")
REGIMES = ("per_class", "imbalance", "grid")
IMBALANCE_KEYS = ("minority", "keep", "per_class", "profile", "ratio")
PROFILES = ("exponential",)
GENERATOR_METRICS = ("kid", "copies", "ssim", "consistency")
METHOD_DEFAULTS = {"m": 50, "L": 5, "N": 3, "mu": 0.05, "model": "gan-bank", "encoder_steps": 600, "latent_dim": 16}


@dataclass(frozen=True)
class Setting:
    """One data regime point: what real (and, in a grid, generated) images a cell starts from.

    Attributes:
        name: stable text used in results (``k=10``, ``minority=4,keep=0.25``, ``real=600,synthetic=6000``).
        kind: ``per_class``, ``imbalance`` or ``grid``.
        per_class: k per class (per_class regime; optional base draw of the imbalance regime).
        minority: minority class ids (imbalance regime).
        keep: fraction in (0, 1] or count >= 1 kept of each minority class (imbalance regime).
        real: total real training images (grid regime; 0 allowed: generated only).
        synthetic: total generated images (grid regime).
        profile: ``exponential`` for the long-tail profile of the imbalance regime, else None (minority/keep).
        ratio: the profile's imbalance ratio n_max / n_min >= 1 (``profile`` only).
    """

    name: str
    kind: str
    per_class: int | None = None
    minority: tuple = ()
    keep: float | None = None
    real: int | None = None
    synthetic: int | None = None
    profile: str | None = None
    ratio: float | None = None


@dataclass(frozen=True)
class Cell:
    """One result row: a setting, a strategy text and a repeat (seed = base seed + repeat)."""

    setting: Setting
    strategy: str
    repeat: int
    seed: int

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.setting.name, self.strategy, self.repeat)


@dataclass(frozen=True)
class StudyConfig:
    """A validated study. Build it with :func:`load_study` / :func:`study_from_dict`; see the module docstring."""

    name: str
    dataset: str
    one_vs_rest: int | None
    test: dict
    settings: tuple
    strategies: tuple
    classifier: ClassifierConfig
    classifier_epochs: float | None
    generator: GANConfig
    generator_overrides: dict
    filters: dict
    methods: dict
    generator_metrics: tuple
    repeats: int
    seed: int
    cv: dict | None
    raw: dict = field(default_factory=dict, compare=False)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig, compare=False)
    pretrain: dict | None = None  # {"source", "steps", "adapt_steps"} of generator.pretrain, or None

    def generator_config(self, model: str, seed: int) -> GANConfig:
        """The GAN config for ``model`` in a repeat with ``seed`` (per-model overrides applied)."""
        fields = dict(self.generator_overrides.get(model, {}))
        return dataclasses.replace(self.generator, model=model, seed=seed, **fields)

    def classifier_steps(self, n_train: int) -> int:
        """Optimisation steps for a training set of ``n_train`` images: ``classifier.budget(n_train)`` (pass the
        real draw's size), or with ``epochs`` exactly ``ceil(epochs * n_train / batch)``."""
        if self.classifier_epochs is None:
            return self.classifier.budget(n_train)
        batch = min(self.classifier.batch_size, max(1, n_train))
        return max(1, math.ceil(self.classifier_epochs * n_train / batch))


def expand(cfg: StudyConfig) -> list[Cell]:
    """Every cell of the study in run order: setting, then repeat, then strategy."""
    return [Cell(s, strategy, r, cfg.seed + r) for s in cfg.settings for r in range(cfg.repeats)
            for strategy in cfg.strategies]


def load_study(path: str | Path, quick: bool = False) -> StudyConfig:
    """Read and validate a study YAML file; ``quick`` applies its ``quick:`` overrides."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise TfaugError(f"study config {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise TfaugError(f"{path} is not valid YAML{where}") from None
    if not isinstance(data, dict):
        raise TfaugError(f"{path} must hold a mapping of study keys (name, dataset, strategies ...)")
    return study_from_dict(data, quick=quick)


def study_from_dict(data: dict, quick: bool = False) -> StudyConfig:
    """Validate a study mapping (see the module docstring); every error is one sentence naming the key."""
    data = dict(data)
    unknown = sorted(set(data) - set(KEYS))
    if unknown:
        raise TfaugError(f"unknown study key {unknown[0]!r}; known keys: {', '.join(KEYS)}")
    if quick:
        data = _merge(data, _mapping(data.get("quick") or {}, "quick"))
    raw = {k: v for k, v in data.items() if k not in ("quick", "runtime")}
    for key in ("dataset", "strategies"):
        if key not in data:
            raise TfaugError(f"study key {key!r} is required")
    spec, one_vs_rest = _dataset(data["dataset"])
    regimes = [r for r in REGIMES if r in data]
    if len(regimes) != 1:
        raise TfaugError(f"give exactly one regime key of {', '.join(REGIMES)} (got {', '.join(regimes) or 'none'})")
    settings = _settings(regimes[0], data[regimes[0]])
    strategies = _strategies(data["strategies"])
    clf, epochs = _classifier(data.get("classifier") or {})
    gen, overrides, pretrain = _generator(data.get("generator") or {})
    filters = _filters(data.get("filters"))
    methods = _methods(data.get("methods") or {})
    gm = data.get("generator_metrics", ["kid", "copies"])
    gm = tuple(_str_list(gm, "generator_metrics"))
    bad = [m for m in gm if m not in GENERATOR_METRICS]
    if bad:
        raise TfaugError(f"unknown generator metric {bad[0]!r}; known: {', '.join(GENERATOR_METRICS)}")
    cfg = StudyConfig(
        name=str(data.get("name") or "study"), dataset=spec, one_vs_rest=one_vs_rest, test=_test(data.get("test")),
        settings=settings, strategies=strategies, classifier=clf, classifier_epochs=epochs, generator=gen,
        generator_overrides=overrides, filters=filters, methods=methods, generator_metrics=gm,
        repeats=_int(data.get("repeats", 3), "repeats", 1), seed=_int(data.get("seed", 0), "seed", 0),
        cv=_cv(data.get("cv")), raw=raw, runtime=_runtime(data.get("runtime")), pretrain=pretrain)
    _check_strategies(cfg)
    return cfg


# -- pieces -------------------------------------------------------------------------------------------------


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        if k not in KEYS or k == "quick":
            raise TfaugError(f"unknown key {k!r} in 'quick'; it takes study keys: {', '.join(KEYS[:-1])}")
        out[k] = {**base[k], **v} if isinstance(v, dict) and isinstance(base.get(k), dict) else v
    return out


def _mapping(value, key: str) -> dict:
    if not isinstance(value, dict):
        raise TfaugError(f"study key {key!r} must be a mapping, got {type(value).__name__}")
    return value


def _only(value: dict, key: str, allowed: tuple) -> dict:
    value = _mapping(value, key)
    extra = sorted(set(value) - set(allowed))
    if extra:
        raise TfaugError(f"unknown key {extra[0]!r} in {key!r}; known: {', '.join(allowed)}")
    return value


def _int(value, key: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise TfaugError(f"{key} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _number(value, key: str, low: float, high: float | None = None, open_low: bool = False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    ok = ok and (value > low if open_low else value >= low) and (high is None or value <= high)
    if not ok:
        span = f"{'(' if open_low else '['}{low}, {high if high is not None else 'inf'}{']' if high is not None else ')'}"
        raise TfaugError(f"{key} must be a number in {span}, got {value!r}")
    return float(value)


def _list(value, key: str) -> list:
    values = value if isinstance(value, list) else [value]
    if not values:
        raise TfaugError(f"{key} must not be empty")
    return values


def _str_list(value, key: str) -> list[str]:
    values = _list(value, key)
    if not all(isinstance(v, str) and v.strip() for v in values):
        raise TfaugError(f"{key} must be a list of non-empty texts")
    return [v.strip() for v in values]


def _runtime(value) -> RuntimeConfig:
    if value is None:
        return RuntimeConfig()
    try:
        return from_dict(RuntimeConfig, _mapping(value, "runtime"))
    except TfaugError as e:
        raise TfaugError(f"runtime: {e}") from None


def _dataset(value) -> tuple[str, int | None]:
    if isinstance(value, str) and value.strip():
        return value.strip(), None
    value = _only(value, "dataset", ("spec", "one_vs_rest"))
    if not isinstance(value.get("spec"), str):
        raise TfaugError("dataset needs 'spec': a dataset spec such as digits or npz:PATH")
    ovr = value.get("one_vs_rest")
    return value["spec"], None if ovr is None else _int(ovr, "dataset.one_vs_rest", 0)


def _test(value) -> dict:
    value = _only(value if value is not None else {"fraction": 0.3}, "test",
                  ("per_class", "fraction", "large_per_class", "validation_per_class"))
    if ("per_class" in value) == ("fraction" in value):
        raise TfaugError("test needs exactly one of per_class (images per class) or fraction (share of each class)")
    out = {}
    if "per_class" in value:
        out["per_class"] = _int(value["per_class"], "test.per_class", 1)
    else:
        out["fraction"] = _number(value["fraction"], "test.fraction", 0.0, 1.0, open_low=True)
        if out["fraction"] >= 1.0:
            raise TfaugError("test.fraction must be below 1 (some images must stay for training)")
    if "large_per_class" in value:
        if "per_class" not in out:
            raise TfaugError("test.large_per_class needs test.per_class (the published-size test set)")
        out["large_per_class"] = _int(value["large_per_class"], "test.large_per_class", out["per_class"])
    if "validation_per_class" in value:
        out["validation_per_class"] = _int(value["validation_per_class"], "test.validation_per_class", 1)
    return out


def _settings(regime: str, value) -> tuple:
    if regime == "per_class":
        ks = [_int(k, "per_class", 1) for k in _list(value, "per_class")]
        return tuple(Setting(f"k={k}", "per_class", per_class=k) for k in dict.fromkeys(ks))
    if regime == "imbalance":
        value = _only(value, "imbalance", IMBALANCE_KEYS)
        base = value.get("per_class")
        base = None if base is None else _int(base, "imbalance.per_class", 1)
        profiled = _profile_settings(value, base) if "profile" in value or "ratio" in value else ()
        if profiled and "minority" not in value and "keep" not in value:
            return profiled
        if "minority" not in value or "keep" not in value:
            raise TfaugError("imbalance needs minority (a class id or list) and keep (a list of fractions or counts), "
                             "or profile: exponential and ratio (a list of imbalance ratios >= 1), or both")
        minority = tuple(_int(c, "imbalance.minority", 0) for c in _list(value["minority"], "imbalance.minority"))
        out = []
        for f in _list(value["keep"], "imbalance.keep"):
            f = _number(f, "imbalance.keep", 0.0, open_low=True)
            if f > 1 and not float(f).is_integer():
                raise TfaugError(f"imbalance.keep {f} must be a fraction in (0, 1] or a whole count >= 1")
            label = ",".join(map(str, minority))
            out.append(Setting(f"minority={label},keep={f:g}", "imbalance", per_class=base, minority=minority, keep=f))
        return (*profiled, *out)
    value = _only(value, "grid", ("real", "synthetic"))
    reals = [_int(n, "grid.real", 0) for n in _list(value.get("real", []), "grid.real")]
    syns = [_int(n, "grid.synthetic", 0) for n in _list(value.get("synthetic", []), "grid.synthetic")]
    cells = [(r, s) for r in dict.fromkeys(reals) for s in dict.fromkeys(syns) if r + s > 0]
    if not cells:
        raise TfaugError("grid has no cell with any training image (real + synthetic must be > 0)")
    return tuple(Setting(f"real={r},synthetic={s}", "grid", real=r, synthetic=s) for r, s in cells)


def strategy_of(cfg: StudyConfig, text: str):
    """The strategy object of ``text`` in study ``cfg`` (its default generator, named filters, methods model)."""
    from tfaug.synthesis.strategies import parse

    return parse(text, default_model=cfg.generator.model, filters=cfg.filters, method_model=cfg.methods["model"])
def _profile_settings(value: dict, base: int | None) -> tuple:
    """Settings of ``imbalance: {profile: exponential, ratio: [r, ...], per_class: K?}`` (one per ratio)."""
    if value.get("profile") not in PROFILES:
        raise TfaugError(f"imbalance.profile must be one of {', '.join(PROFILES)}, got {value.get('profile')!r}")
    if "ratio" not in value:
        raise TfaugError("imbalance.profile needs ratio: a list of imbalance ratios n_max / n_min >= 1, e.g. [10, 100]")
    out = []
    for r in dict.fromkeys(_list(value["ratio"], "imbalance.ratio")):
        r = _number(r, "imbalance.ratio", 1.0)
        if not math.isfinite(r):
            raise TfaugError(f"imbalance.ratio must be a finite number >= 1, got {r}")
        out.append(Setting(f"{value['profile']},ratio={r:g}", "imbalance", per_class=base, profile=value["profile"],
                           ratio=r))
    return tuple(out)


def _strategies(value) -> tuple:
    from tfaug.synthesis.strategies import parse

    texts = _str_list(value, "strategies")
    for t in texts:
        parse(t)  # raises one sentence naming the bad block
    if len(set(texts)) != len(texts):
        raise TfaugError("strategies lists a strategy twice")
    return tuple(texts)


def _classifier(value) -> tuple[ClassifierConfig, float | None]:
    """The ``classifier`` section: a section that names no network (``name``) and no preset (``preset``) starts
    from the default control, ``classifier/fewshot``; ``preset: NAME`` starts from ``classifier/NAME``; a section
    with ``name`` starts from ``ClassifierConfig``'s own field defaults (the first wave's meaning, kept for the
    reproduction configs). Other keys override."""
    from tfaug.config import DEFAULT_CLASSIFIER, PRESETS, from_dict, to_dict

    value = dict(_mapping(value, "classifier"))
    epochs = value.pop("epochs", None)
    if epochs is not None:
        if "steps" in value:
            raise TfaugError("classifier takes steps or epochs, not both")
        epochs = _number(epochs, "classifier.epochs", 0.0, open_low=True)
    name = value.pop("preset", None)
    if name is None and "name" not in value:
        name = DEFAULT_CLASSIFIER.split("/", 1)[1]
    if name is not None:
        key = f"classifier/{name}"
        if key not in PRESETS:
            known = ", ".join(k.split("/", 1)[1] for k in sorted(PRESETS) if k.startswith("classifier/"))
            raise TfaugError(f"unknown classifier preset {name!r}; known presets: {known}")
        value = {**to_dict(PRESETS[key]), **value}
    try:
        return from_dict(ClassifierConfig, value), epochs
    except TypeError as e:
        raise TfaugError(f"bad classifier settings: {e}") from None


def _known_model(name) -> None:
    from tfaug.models.zoo import model_names  # the names only: no TensorFlow import

    if name not in model_names():
        raise TfaugError(f"unknown model {name!r}; choose one of: {', '.join(model_names())}")


def _generator(value) -> tuple[GANConfig, dict, dict | None]:
    from tfaug.config import from_dict, preset, to_dict

    value = dict(_mapping(value, "generator"))
    pretrain = parse_pretrain(value)  # pops pretrain, pretrain_steps, adapt_steps
    models = _mapping(value.pop("models", {}) or {}, "generator.models")
    base = to_dict(preset(value.pop("preset"))) if "preset" in value else {}
    try:
        cfg = from_dict(GANConfig, {**base, **value})
    except TypeError as e:
        raise TfaugError(f"bad generator settings: {e}") from None
    _known_model(cfg.model)
    names = {f.name for f in dataclasses.fields(GANConfig)} - {"model", "seed"}
    overrides = {}
    for model, fields in models.items():
        fields = _mapping(fields, f"generator.models.{model}")
        bad = sorted(set(fields) - names)
        if bad:
            raise TfaugError(f"unknown key {bad[0]!r} in generator.models.{model}; known: {', '.join(sorted(names))}")
        _known_model(model)
        dataclasses.replace(cfg, model=model, **fields)  # validates the values
        overrides[str(model)] = dict(fields)
    return cfg, overrides, pretrain


def _filters(value) -> dict:
    from tfaug.synthesis.filters import parse_filters

    if value is None:
        return {}
    if isinstance(value, list):
        value = {str(v): v for v in _str_list(value, "filters")}
    value = _mapping(value, "filters")
    for name, spec in value.items():
        parse_filters(spec)
    return {str(k): str(v) if isinstance(v, str) else ",".join(map(str, v)) for k, v in value.items()}


def _methods(value) -> dict:
    value = _only(value, "methods", tuple(METHOD_DEFAULTS))
    out = {**METHOD_DEFAULTS, **value}
    for key in ("m", "L", "N", "encoder_steps", "latent_dim"):
        out[key] = _int(out[key], f"methods.{key}", 1)
    if out["L"] > out["m"]:
        raise TfaugError(f"methods.L ({out['L']}) must not exceed methods.m ({out['m']})")
    out["mu"] = _number(out["mu"], "methods.mu", 0.0, 1.0, open_low=True)
    return out


def _cv(value) -> dict | None:
    if value is None:
        return None
    value = _only(value, "cv", ("folds", "group_aware"))
    folds = _int(value.get("folds", 3), "cv.folds", 2)
    aware = value.get("group_aware", True)
    if not isinstance(aware, bool):
        raise TfaugError("cv.group_aware must be true or false")
    return {"folds": folds, "group_aware": aware}


def _check_strategies(cfg: StudyConfig) -> None:
    """Cross-key rules: named filters exist, grids need a generator, models are zoo models."""
    from tfaug.synthesis.filters import parse_filters

    for text in cfg.strategies:
        s = strategy_of(cfg, text)
        for name in s.filters:
            if name not in cfg.filters:
                parse_filters(name)  # not a named filter: must be a spec itself
        if cfg.settings[0].kind == "grid" and s.generator is None and s.method is None and not s.extra_real:
            if any(st.synthetic for st in cfg.settings):
                raise TfaugError(f"strategy {text!r} has no generator but the grid asks for synthetic images; "
                                 "use a generative strategy such as cdcgan (or extra-real, the real-image control)")
    if cfg.pretrain:
        check_pretrain(cfg)


def describe_cells(cfg: StudyConfig, cells: list[Cell] | None = None) -> str:
    """The expanded grid as text (``--dry-run``)."""
    cells = expand(cfg) if cells is None else cells
    lines = [f"study {cfg.name!r} on {cfg.dataset}" + (f" (class {cfg.one_vs_rest} vs rest)" if cfg.one_vs_rest is not None else ""),
             f"  settings ({len(cfg.settings)}): {', '.join(s.name for s in cfg.settings)}",
             f"  strategies ({len(cfg.strategies)}): {', '.join(cfg.strategies)}",
             f"  repeats: {cfg.repeats} (seeds {cfg.seed}..{cfg.seed + cfg.repeats - 1})",
             f"  test: {cfg.test}" + (f"; cv: {cfg.cv}" if cfg.cv else ""),
             f"  cells: {len(cells)} = {len(cfg.settings)} settings x {len(cfg.strategies)} strategies x {cfg.repeats} repeats"]
    return "\n".join(lines)


def as_dict(cfg: StudyConfig) -> dict[str, Any]:
    """The validated study as plain data (written to ``OUT/study.json``; a resume must match it)."""
    from tfaug.config import to_dict

    return {"name": cfg.name, "dataset": cfg.dataset, "one_vs_rest": cfg.one_vs_rest, "test": cfg.test,
            "settings": [_setting_dict(s) for s in cfg.settings], "strategies": list(cfg.strategies),
            "classifier": to_dict(cfg.classifier), "classifier_epochs": cfg.classifier_epochs,
            "generator": to_dict(cfg.generator), "generator_overrides": cfg.generator_overrides,
            "filters": cfg.filters, "methods": cfg.methods, "generator_metrics": list(cfg.generator_metrics),
            "repeats": cfg.repeats, "seed": cfg.seed, "cv": cfg.cv, **({"pretrain": cfg.pretrain} if cfg.pretrain else {})}


def _setting_dict(setting: Setting) -> dict:
    """A setting as plain data; the profile fields only when set, so study.json files written before the long-tail
    profile existed still match (a resume compares them)."""
    out = dataclasses.asdict(setting)
    for key in ("profile", "ratio"):
        if out[key] is None:
            del out[key]
    return out
