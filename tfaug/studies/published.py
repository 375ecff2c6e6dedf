"""The five studies' published numbers (summarised in docs/studies.md) and the comparison tables beside ours.

Numbers are :class:`Num` floats that remember how the study printed them (``Num("38.2", percent=True)`` is
0.382 and prints ``38.2%``), so tables show them verbatim while arithmetic uses fractions in [0, 1]. Layout:
``PUBLISHED[study]["results"][dataset][setting][method][metric]``; settings use the runner's names (``k=10``,
``minority=4,keep=0.25``, ``real=60000,synthetic=0``; ``*`` = the study's only setting). ``rules`` map our strategy
texts to published methods by full regular-expression match (first match wins; a tuple lists alternatives).
"""
from __future__ import annotations

import math
import re
from typing import Mapping, Sequence

from tfaug.errors import TfaugError
from tfaug.metrics.stats import format_ci


class Num(float):
    """A published number as printed: ``~0.50``, ``0.9820``, ``38.2`` (percent) or a range ``0.556-0.587``.

    The float value is the fraction in [0, 1]; a range's value is its upper end (the best reported) and ``low`` its
    lower end; ``text`` is the printed form (with ``%`` for percentages).
    """

    text: str
    low: float

    def __new__(cls, text: str, percent: bool = False) -> "Num":
        core = text.strip().lstrip("~")
        lo, _, hi = core.partition("-")
        scale = 100.0 if percent else 1.0
        obj = super().__new__(cls, float(hi or lo) / scale)
        obj.text = text.strip() + ("%" if percent else "")
        obj.low = float(lo) / scale
        return obj


def _pct(line: str) -> list[Num]:
    return [Num(t, percent=True) for t in line.split("/")]


def _series(methods: Mapping[str, str], ks: Sequence[int], percent: bool = True) -> dict:
    """``{"M1": "41.3 / 43.6"}`` over ks -> ``{"k=1": {"M1": {"accuracy": Num}}}``."""
    out: dict = {}
    for method, line in methods.items():
        for k, v in zip(ks, _pct(line) if percent else [Num(t) for t in line.split("/")]):
            out.setdefault(f"k={k}", {})[method] = {"accuracy": v}
    return out


def _merge(*tables: dict) -> dict:
    out: dict = {}
    for t in tables:
        for setting, methods in t.items():
            out.setdefault(setting, {}).update(methods)
    return out


def _filter_table(pairs: str) -> dict:
    """S3's quality filter: ``"20.6->25.8, ..."`` over k = 5, 10, 20, 100."""
    out: dict = {}
    for k, pair in zip((5, 10, 20, 100), pairs.split(",")):
        before, after = pair.strip().split("->")
        out[f"k={k}"] = {"GAN, before quality filter": {"accuracy": Num(before, percent=True)},
                         "GAN, after quality filter": {"accuracy": Num(after, percent=True)}}
    return out


_S3_KS = (1, 2, 5, 10, 100)
_GEN = r"[a-z0-9-]*gan[a-z0-9-]*(:[0-9.]+)?"

PUBLISHED: dict = {
    "S1": {
        "title": "Coin dataset enrichment: bootstrapping vs augmentation vs DCGAN (master's thesis, 2024)",
        "protocol": "binary coins vs other artefacts (~1,779 images, 64x64 RGB), dynamic LeNet-5, 3-fold CV on each "
                    "enriched set + mean test accuracy over 3 external test sets of 1k+1k images; single runs.",
        "metrics": ("accuracy", "cv_accuracy"),
        "results": {"coins": {"*": {
            "vanilla": {"accuracy": Num("0.590")},
            "augmented": {"accuracy": Num("0.582")},
            "bootstrapped": {"accuracy": Num("0.580"), "cv_accuracy": Num("0.894")},
            "GAN filtered": {"accuracy": Num("0.556-0.587")},
            "GAN unfiltered": {"accuracy": Num("~0.50")},
        }}},
        "rules": ((r"baseline", "vanilla"), (r"classic(:[\w-]+)?", "augmented"),
                  (r"bootstrap(:[0-9.]+)?", "bootstrapped"), (_GEN + r"\+filter:.+", "GAN filtered"),
                  (_GEN, "GAN unfiltered")),
        "notes": ("CV on bootstrapped data read 0.894 — leakage (duplicates in train and validation folds).",
                  "GAN unfiltered ~0.50 were degenerate one-class classifiers."),
    },
    "S3": {
        "title": "GANs, autoencoders and latent spaces for very small training sets (doctoral thesis)",
        "protocol": "MNIST with 1, 2, 5, 10, 100 training images per class, test 100 images per class; single runs.",
        "metrics": ("accuracy",),
        "results": {
            "MNIST": _merge(_series({"discriminator bank": "38.2 / 42.1 / 56.9 / 61.2 / 89.3",
                                     "M1": "41.3 / 43.6 / 57.4 / 61.8 / 66.4",
                                     "M2": "44.6 / 47.1 / 63.2 / 67.4 / 71.3",
                                     "M3": "41.9 / 43.8 / 58.3 / 61.3 / 66.7",
                                     "M4": "44.2 / 47.3 / 62.9 / 67.2 / 71.9"}, _S3_KS),
                            _filter_table("20.6->25.8, 25.8->30.2, 27.1->30.9, 25.4->24.8")),
            "CIFAR-10": _filter_table("18.9->21.6, 23.4->24.2, 28.2->31.2, 34.3->40.9"),
            "CIFAR-100": _filter_table("14.6->18.2, 16.4->29.5, 18.2->21.8, 24.5->27.6"),
        },
        "rules": ((r"disc-bank(:.*)?", "discriminator bank"), (r"m1(:.*)?", "M1"), (r"m2(:.*)?", "M2"),
                  (r"m3(:.*)?", "M3"), (r"m4(:.*)?", "M4")),
        "notes": (),
    },
    "S4": {
        "title": "DCGAN and conditional DCGAN for MNIST augmentation (coursework paper)",
        "protocol": "MNIST, real images {0, 600, 6k, 12k, 30k, 60k} x generated {same} from a conditional DCGAN with "
                    "one-sided label smoothing, LeNet 30 epochs; single runs. Our grid is scaled so that its largest "
                    "real count stands for S4's 60k.",
        "metrics": ("accuracy",),
        "grid_full": 60000,
        "results": {"MNIST": {
            "real=60000,synthetic=0": {"cDCGAN grid": {"accuracy": Num("94.7", percent=True)}},
            "real=60000,synthetic=60000": {
                "cDCGAN grid": {"accuracy": Num("96.25", percent=True)},
                "keep generated images the classifier labels correctly": {"accuracy": Num("95.76", percent=True)},
                "pretrain 15 epochs on generated, then 15 on real": {"accuracy": Num("95.55", percent=True)},
                "real/fake flag channel": {"accuracy": Num("94.25", percent=True)}},
            "real=0,synthetic=60000": {"cDCGAN grid": {"accuracy": Num("47.9", percent=True)}},
            "real=600,synthetic=60000": {"cDCGAN grid": {"accuracy": Num("89.0", percent=True)}},
        }},
        "rules": ((r"curriculum(:.*)?", "pretrain 15 epochs on generated, then 15 on real"),
                  (r"source-flag(:.*)?", "real/fake flag channel"),
                  (_GEN + r"\+filter:.+", "keep generated images the classifier labels correctly"),
                  (_GEN, "cDCGAN grid")),
        "notes": ("Generator: best FID 17.3 (compact DCGAN); cDCGAN with one-sided label smoothing IS 4.98, FID 17, "
                  "\"inception accuracy\" 87% (compare gen_consistency), all with a domain LeNet (94.7% on MNIST).",),
    },
    "S5": {
        "title": "GAN data augmentation for imbalanced classes (bachelor's thesis, 2020)",
        "protocol": "70:30 split, 75% of the minority class (MNIST digit 4, CIFAR-10 ship) dropped from training, "
                    "test balanced; accuracy / minority-class F1; single runs.",
        "metrics": ("accuracy", "minority_f1"),
        "results": {
            "MNIST": {"minority=4,keep=0.25": {
                m: {"accuracy": Num(a), "minority_f1": Num(f)} for m, (a, f) in {
                    "unbalanced": ("0.9820", "0.9793"), "balanced original": ("0.9860", "0.9858"),
                    "geometric": ("0.9833", "0.9789"), "CVAE": ("0.9819", "0.9735"),
                    "CVAE-GAN": ("0.9831", "0.9745"), "BAGAN": ("0.9842", "0.9806")}.items()}},
            "CIFAR-10": {"minority=8,keep=0.25": {
                m: {"accuracy": Num(a), "minority_f1": Num(f)} for m, (a, f) in {
                    "unbalanced": ("0.7023", "0.7484"), "balanced": ("0.7177", "0.8312"),
                    "BAGAN": ("0.7054", "0.7547")}.items()}},
        },
        "rules": ((r"baseline", "unbalanced"), (r"extra-real(:.*)?", ("balanced original", "balanced")),
                  (r"classic(:[\w-]+)?", "geometric"), (r"cvae(:[0-9.]+)?", "CVAE"),
                  (r"cvae-gan(:[0-9.]+)?", "CVAE-GAN"), (r"bagan(:[0-9.]+)?", "BAGAN")),
        "notes": (),
    },
    "S2": {
        "title": "Few-shot generation of ancient coin images (master's thesis, ~2023)",
        "protocol": "168 coin classes, VGG16 top-1; the generated-image gains are inflated by near-duplicates "
                    "across the split.",
        "metrics": ("accuracy",),
        "results": {"coins": {"*": {"14 real/class": {"accuracy": Num("16.3", percent=True)},
                                    "14 real + 14 generated": {"accuracy": Num("61.0", percent=True)},
                                    "14 real + 28 generated": {"accuracy": Num("92.9", percent=True)}}}},
        "rules": (),
        "notes": (),
    },
}
_LABELS = {"accuracy": "accuracy", "minority_f1": "minority F1", "cv_accuracy": "CV accuracy"}


def study_key(name: str) -> str | None:
    """``s3``, ``S3``, ``s1-naive`` -> the published study id (``S3``, ``S1``), or None."""
    m = re.match(r"[sS](\d)(\b|[-_])", name + "-")
    return f"S{m.group(1)}" if m and f"S{m.group(1)}" in PUBLISHED else None


def _dataset(study: dict, spec: str | None) -> str:
    """The published dataset a spec stands for (longest name contained in it), else the study's first."""
    norm = re.sub(r"[^a-z0-9]", "", (spec or "").lower())
    hits = [d for d in study["results"] if re.sub(r"[^a-z0-9]", "", d.lower()) in norm]
    return max(hits, key=len) if hits else next(iter(study["results"]))


def published_setting(study: str, setting: str, settings: Sequence[str]) -> str:
    """The published setting our ``setting`` corresponds to (S4 grids are scaled: largest real count -> 60k)."""
    info = PUBLISHED[study]
    full = info.get("grid_full")
    m = re.fullmatch(r"real=(\d+),synthetic=(\d+)", setting)
    if full and m:
        reals = [int(g.group(1)) for g in (re.fullmatch(r"real=(\d+),synthetic=\d+", s) for s in settings) if g]
        f = full / max(max(reals), 1)
        return f"real={round(int(m.group(1)) * f)},synthetic={round(int(m.group(2)) * f)}"
    return setting


def _method(study: dict, strategy: str, available, mapping) -> str | None:
    if mapping is not None:
        return mapping.get(strategy) if mapping.get(strategy) in available else None
    for pattern, target in study["rules"]:
        if re.fullmatch(pattern, strategy):
            for t in (target,) if isinstance(target, str) else target:
                if t in available:
                    return t
            return None
    return None


def comparison_table(study: str, summary: Sequence[dict], mapping: Mapping[str, str] | None = None, *,
                     dataset: str | None = None) -> str:
    """Markdown: published numbers (verbatim) beside ours (mean ± 95% CI) for the corresponding rows.

    Args:
        study: ``S1`` .. ``S5``.
        summary: :func:`tfaug.studies.report.summarize_study` output.
        mapping: our strategy text -> published method name; default: the study's ``rules``.
        dataset: our dataset spec, to pick the published dataset (``cifar10`` -> CIFAR-10; default the first).

    Returns:
        A table with one row per (setting, strategy) that has a published counterpart, plus per setting a row
        "best tfaug strategy" (highest mean accuracy, ``extra-real`` controls excluded) with its difference to the
        best published accuracy. Ours are shown in the study's unit (percent when it printed percentages).
    """
    if study not in PUBLISHED:
        raise TfaugError(f"no published numbers for study {study!r}; known: {', '.join(sorted(PUBLISHED))}")
    info = PUBLISHED[study]
    table = info["results"][_dataset(info, dataset)]
    metrics = info["metrics"]
    settings = list(dict.fromkeys(e["setting"] for e in summary))
    head = ["setting", "tfaug strategy", "published method"]
    for m in metrics:
        head += [f"{_LABELS[m]}: published", f"{_LABELS[m]}: tfaug"]
    head.append("Δ accuracy (tfaug − published)")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for setting in settings:
        key = "*" if "*" in table else published_setting(study, setting, settings)
        methods = table.get(key)
        if not methods:
            continue
        label = setting if key in (setting, "*") else f"{setting} (≙ {key})"
        entries = [e for e in summary if e["setting"] == setting]
        for e in entries:
            name = _method(info, e["strategy"], methods, mapping)
            if name:
                lines.append(_row(label, e["strategy"], name, methods[name], e, metrics))
        # extra-real is the control with more real images than the setting grants: not a candidate for "best"
        candidates = [e for e in entries if _ok(e.get("accuracy_mean")) and "extra-real" not in e["strategy"]]
        best = max(candidates, key=lambda e: e["accuracy_mean"], default=None)
        scored = [(m, v["accuracy"]) for m, v in methods.items() if "accuracy" in v]
        if best and scored:
            pub_name, pub = max(scored, key=lambda mv: float(mv[1]))
            lines.append(_row(label, f"**best tfaug: {best['strategy']}**", f"**best published: {pub_name}**",
                              {"accuracy": pub}, best, metrics))
    if len(lines) == 2:
        return "_No setting of this run corresponds to a published one._\n"
    notes = [f"- {n}" for n in info.get("notes", ())]
    return "\n".join(lines) + "\n" + ("\n" + "\n".join(notes) + "\n" if notes else "")


def _ok(v) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def _row(label: str, ours: str, method: str, published: dict, e: dict, metrics) -> str:
    """One table row; ours is shown in the unit the study printed (percent when its number ends with %)."""
    cells = [label, ours, method]
    for m in metrics:
        pub = published.get(m)
        cells.append(pub.text if pub is not None else "—")
        mean, half = e.get(f"{m}_mean"), e.get(f"{m}_ci95", float("nan"))
        if not _ok(mean):
            cells.append("—")
        elif pub is not None and pub.text.endswith("%"):
            cells.append(format_ci(100 * mean, 100 * half, 1) + "%")
        else:
            cells.append(format_ci(mean, half))
    pub, mean = published.get("accuracy"), e.get("accuracy_mean")
    if pub is None or not _ok(mean):
        cells.append("—")
    else:
        cells.append(f"{100 * (mean - pub):+.1f} pts" if pub.text.endswith("%") else f"{mean - pub:+.3f}")
    return "| " + " | ".join(cells) + " |"
