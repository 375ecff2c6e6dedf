"""The metric registry: a name -> function table over a :class:`MetricContext`, plus JSON/JSONL reporting.

Every metric is a small function ``fn(ctx) -> value`` registered under a name (``fid``, ``kid``, ``is``, ``pr``,
``per_class``, ``consistency``, ``diversity``, ``memorisation``, ``cas``). The context holds the image sets and
the extractor and caches each set's features and probabilities, so asking for ten metrics extracts features
once per set. Metrics add caveats (small N, adapted subset sizes) to ``ctx.warnings`` instead of failing.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from tfaug.errors import TfaugError

__all__ = ["MetricContext", "METRICS", "register", "metric_names", "parse_metric_names", "compute_metrics",
           "write_metrics", "KID_SUBSET_SIZE", "KID_SUBSETS"]

KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000
# mean within-class SSIM above this: generated images are near-identical (S5 used mean SSIM as diversity)
NEAR_IDENTICAL_SSIM = 0.95


@dataclass
class MetricContext:
    """Everything a metric may need; features and probabilities are computed lazily and cached per set.

    Attributes:
        generated: float32 [M, H, W, C] in [-1, 1] generated images; generated_labels: int [M] requested classes.
        reference: float32 [N, H, W, C] in [-1, 1] held-out real images; reference_labels: int [N].
        extractor: a :class:`~tfaug.metrics.features.FeatureExtractor`.
        num_classes: K; class_names: one name per class.
        train, train_labels: the generator's real training images (memorisation, CAS real+generated) or None.
        seed: seed of every random subset / pair draw.
        options: per-metric knobs (``k`` for PRDC, ``cas_steps``, ``max_pairs``, ``is_splits``, ``progress``).
        warnings: caveats collected while computing.
        artifacts_dir: where metrics may write pictures (the closest-pairs grid), or None.
    """

    generated: np.ndarray
    generated_labels: np.ndarray
    reference: np.ndarray
    reference_labels: np.ndarray
    extractor: Any
    num_classes: int
    class_names: tuple = ()
    train: np.ndarray | None = None
    train_labels: np.ndarray | None = None
    seed: int = 0
    options: dict = field(default_factory=dict)
    warnings: list = field(default_factory=list)
    artifacts_dir: Any = None
    _cache: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        if not self.class_names:
            self.class_names = tuple(str(i) for i in range(self.num_classes))

    def images(self, which: str) -> np.ndarray:
        """The image set ``generated``, ``reference`` or ``train``."""
        x = {"generated": self.generated, "reference": self.reference, "train": self.train}[which]
        if x is None:
            raise TfaugError(f"no {which} images were given; this metric needs them")
        return x

    def labels(self, which: str) -> np.ndarray:
        return np.asarray({"generated": self.generated_labels, "reference": self.reference_labels,
                           "train": self.train_labels}[which])

    def _extract(self, which: str) -> tuple[np.ndarray, np.ndarray]:
        if which not in self._cache:
            self._cache[which] = self.extractor.extract(self.images(which))
        return self._cache[which]

    def features(self, which: str) -> np.ndarray:
        """float32 [N, D] extractor features of the set ``which`` (cached)."""
        return self._extract(which)[0]

    def probabilities(self, which: str) -> np.ndarray:
        """float32 [N, K] extractor class probabilities of the set ``which`` (cached)."""
        return self._extract(which)[1]

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)


@dataclass(frozen=True)
class _Metric:
    fn: Callable[[MetricContext], Any]
    expand: bool  # the value is a dict whose keys become top-level result keys
    help: str


METRICS: dict[str, _Metric] = {}


def register(name: str, *, expand: bool = False, help: str = "") -> Callable:
    """Decorator: register ``fn(ctx) -> value`` as metric ``name``."""

    def deco(fn):
        METRICS[name] = _Metric(fn, expand, help or (fn.__doc__ or "").strip().splitlines()[0])
        return fn

    return deco


def metric_names() -> list[str]:
    """Registered metric names in registration order."""
    return list(METRICS)


def parse_metric_names(text: str | list[str]) -> list[str]:
    """'fid,kid' (or a list) -> validated unique names; unknown names raise TfaugError listing the valid ones."""
    names = [n.strip() for n in (text.split(",") if isinstance(text, str) else text) if n.strip()]
    if "all" in names:
        names = metric_names()
    unknown = [n for n in names if n not in METRICS]
    if unknown or not names:
        raise TfaugError(f"unknown metric {', '.join(unknown) or '(none given)'}; valid metrics: "
                         f"{', '.join(metric_names())}, all")
    return list(dict.fromkeys(names))


def compute_metrics(names: list[str], ctx: MetricContext) -> tuple[dict, dict]:
    """Run metrics by name.

    Returns:
        (results, timings): results maps each metric (or, for ``pr``, its four parts) to its value;
        timings maps each metric to its wall-clock seconds (feature extraction is charged to the first metric
        that needs a set).
    """
    results, timings = {}, {}
    for name in parse_metric_names(names):
        start = time.perf_counter()
        value = METRICS[name].fn(ctx)
        timings[name] = round(time.perf_counter() - start, 4)
        if METRICS[name].expand:
            results.update(value)
        else:
            results[name] = value
    return results, timings


def write_metrics(path, record: dict, log=None) -> None:
    """Write ``record`` as JSON atomically (non-finite numbers become null) and append it to the JSONL ``log``."""
    from tfaug.utils.io import append_jsonl, write_json

    clean = _finite(record)
    if path is not None:
        write_json(path, clean)
    if log is not None:
        append_jsonl(log, clean)


def _finite(obj):
    """NaN/inf -> None and numpy -> Python, recursively (JSON has no NaN)."""
    if isinstance(obj, dict):
        return {str(k): _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _finite(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


# ------------------------------------------------------------------------------------------------ metrics


def _small_n(ctx: MetricContext, what: str) -> None:
    n = min(len(ctx.generated), len(ctx.reference))
    dim = ctx.features("reference").shape[1]
    if n < dim:
        ctx.warn(f"{what}: {n} samples is fewer than the {dim} feature dimensions; the covariance is singular "
                 "and FID is biased upwards (compare only values measured with the same N)")


def _kid(ctx: MetricContext, real, fake) -> dict:
    from tfaug.metrics.distances import kernel_inception_distance

    size = int(ctx.options.get("kid_subset_size", KID_SUBSET_SIZE))
    m = min(size, len(real), len(fake))
    if m < size:
        ctx.warn(f"kid: subsets of {m} images (fewer than the usual {size}) because the sets are small")
    subsets = int(ctx.options.get("kid_subsets", KID_SUBSETS))
    mean, std = kernel_inception_distance(real, fake, subsets=subsets, subset_size=size, seed=ctx.seed)
    if subsets == 1 or (m == len(real) and m == len(fake)):
        # one subset, or every subset is both whole sets (the same draw): the std is 0 by construction, not a
        # measured spread, so none is reported
        ctx.warn(f"kid: one distinct subset (of {m} images), so KID has no spread (std n/a)")
        return {"mean": mean, "std": None, "subset_size": m, "subsets": 1}
    return {"mean": mean, "std": std, "subset_size": m, "subsets": subsets}


@register("fid", help="Fréchet distance between real and generated feature Gaussians (lower is better)")
def _fid(ctx: MetricContext) -> float:
    from tfaug.metrics.distances import fid_from_features

    _small_n(ctx, "fid")
    return fid_from_features(ctx.features("reference"), ctx.features("generated"))


@register("kid", help="kernel inception distance, unbiased cubic-kernel MMD^2 over subsets (lower is better)")
def _kid_metric(ctx: MetricContext) -> dict:
    return _kid(ctx, ctx.features("reference"), ctx.features("generated"))


@register("is", help="Inception Score from the extractor's class probabilities (higher is better)")
def _is(ctx: MetricContext) -> dict:
    from tfaug.metrics.fidelity import inception_score

    mean, std = inception_score(ctx.probabilities("generated"), splits=int(ctx.options.get("is_splits", 10)))
    return {"mean": mean, "std": std}


@register("pr", expand=True, help="precision, recall, density, coverage on k-NN feature manifolds")
def _pr(ctx: MetricContext) -> dict:
    from tfaug.metrics.fidelity import prdc

    return prdc(ctx.features("reference"), ctx.features("generated"), k=int(ctx.options.get("k", 5)))


@register("per_class", help="FID and KID within each class")
def _per_class(ctx: MetricContext) -> dict:
    from tfaug.metrics.fidelity import per_class_distances

    out = per_class_distances(ctx.features("reference"), ctx.labels("reference"), ctx.features("generated"),
                              ctx.labels("generated"), ctx.class_names, seed=ctx.seed,
                              kid_subsets=int(ctx.options.get("kid_subsets", KID_SUBSETS)))
    few = [n for n, v in out.items() if v["too_few"]]
    if few:
        ctx.warn(f"per_class: too few images for class(es) {', '.join(few)}; their FID/KID are null")
    if any(v["small_n"] and not v["too_few"] for v in out.values()):
        ctx.warn("per_class: some classes have fewer images than feature dimensions (flag small_n); their FID "
                 "is biased upwards")
    return out


def _check_classes(ctx: MetricContext, what: str) -> None:
    if ctx.extractor.num_classes != ctx.num_classes:
        raise TfaugError(f"{what} needs an extractor that predicts the dataset's {ctx.num_classes} classes; the "
                         f"{ctx.extractor.name} extractor predicts {ctx.extractor.num_classes} (use --extractor domain)")


@register("consistency", help="extractor accuracy on generated images against the requested labels")
def _consistency(ctx: MetricContext) -> float:
    from tfaug.metrics.fidelity import class_consistency

    _check_classes(ctx, "consistency")
    return class_consistency(ctx.probabilities("generated"), ctx.labels("generated"))


@register("diversity", help="mean within-class pairwise SSIM (lower is more diverse) and feature distance")
def _diversity(ctx: MetricContext) -> dict:
    from tfaug.metrics.diversity import pairwise_feature_distance, pairwise_ssim

    pairs = int(ctx.options.get("max_pairs", 200))
    s = pairwise_ssim(ctx.images("generated"), ctx.labels("generated"), max_pairs=pairs, seed=ctx.seed)
    f = pairwise_feature_distance(ctx.features("generated"), ctx.labels("generated"), max_pairs=pairs, seed=ctx.seed)
    if s["mean"] is not None and s["mean"] > NEAR_IDENTICAL_SSIM:
        ctx.warn(f"diversity: generated images of a class are near-identical (mean SSIM {s['mean']:.3f} > "
                 f"{NEAR_IDENTICAL_SSIM}); the generator may have collapsed to a few images")
    return {"ssim": s["mean"], "feature": f["mean"], "pairs": s["pairs"]}


@register("memorisation", help="share of generated images closer to a training image than held-out real ones")
def _memorisation(ctx: MetricContext) -> dict:
    from tfaug.metrics.memorisation import closest_pairs_grid, memorisation
    from tfaug.utils.images import to_uint8

    if ctx.train is None:
        raise TfaugError("memorisation needs the generator's training images")
    res = memorisation(ctx.features("generated"), ctx.features("train"), ctx.features("reference"),
                       gen_pixels=ctx.images("generated"), train_pixels=ctx.images("train"),
                       heldout_pixels=ctx.images("reference"), percentile=float(ctx.options.get("percentile", 1.0)))
    out = {k: v for k, v in res.items() if not k.startswith("nearest_")}  # per-image arrays stay out of JSON
    if ctx.artifacts_dir is not None:
        from pathlib import Path

        grid = closest_pairs_grid(Path(ctx.artifacts_dir) / "closest_pairs.png", to_uint8(ctx.images("generated")),
                                  to_uint8(ctx.images("train")), res["nearest_index"], res["nearest_distance"])
        out["closest_pairs_grid"] = str(grid)
    return out


@register("cas", expand=True, help="accuracy on real test data of a classifier trained on generated images only")
def _cas(ctx: MetricContext) -> dict:
    from tfaug.metrics.cas import classification_accuracy_score

    res = classification_accuracy_score(
        ctx.images("generated"), ctx.labels("generated"), ctx.images("reference"), ctx.labels("reference"),
        num_classes=ctx.num_classes, train_images=ctx.train, train_labels=ctx.train_labels,
        steps=int(ctx.options.get("cas_steps", 300)), seed=ctx.seed, progress=bool(ctx.options.get("progress")),
        **({"width": int(ctx.options["cas_width"])} if "cas_width" in ctx.options else {}))
    out = {"cas": res["cas"]}
    if len(res) > 1:
        out["cas_detail"] = dict(res)
    return out
