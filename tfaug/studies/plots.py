"""Study plots: accuracy vs setting with 95% CI bands, per-class recall heatmap, per-class recall by training count
(long tail), CV estimate vs external test.

Every function takes the summary of :func:`tfaug.studies.report.summarize_study` (metrics are fractions in
[0, 1]), writes one PNG atomically (matplotlib's Agg backend, no display needed) and returns its path, or
returns None without writing when there is nothing to plot.
"""
from __future__ import annotations

import io
import math
import os
import re
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

from tfaug.utils.io import atomic_write_bytes

_K = re.compile(r"k=(\d+)")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | os.PathLike) -> Path:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=100)
    _pyplot().close(fig)
    return atomic_write_bytes(path, buf.getvalue())


def _fin(v) -> bool:
    return isinstance(v, (int, float, np.number)) and not isinstance(v, bool) and math.isfinite(float(v))


def _colors(n: int) -> list:
    """Distinct colours for up to 20 lines (tab10, then tab20)."""
    plt = _pyplot()
    cmap = plt.get_cmap("tab10" if n <= 10 else "tab20")
    return [cmap(i % cmap.N) for i in range(n)]


def _order(summary: Sequence[dict], key: str, given: Sequence[str] | None) -> list[str]:
    seen = list(dict.fromkeys(e[key] for e in summary))
    return [s for s in given if s in seen] if given is not None else seen


def accuracy_plot(path: str | os.PathLike, summary: Sequence[dict], settings: Sequence[str],
                  strategies: Sequence[str], metric: str = "accuracy", title: str | None = None) -> Path | None:
    """``metric`` (mean, 95% CI band, repeats as dots) against the setting, one line per strategy.

    The x axis is numeric when every setting is ``k=N`` (log-scaled when the largest k is more than 10 times the
    smallest), else one categorical tick per setting. Returns None when no cell has a finite ``<metric>_mean``.
    """
    idx = {(e["setting"], e["strategy"]): e for e in summary if _fin(e.get(f"{metric}_mean"))}
    settings = [s for s in settings if any((s, t) in idx for t in strategies)]
    strategies = [t for t in strategies if any((s, t) in idx for s in settings)]
    if not idx or not settings:
        return None
    ks = [_K.fullmatch(s) for s in settings]
    numeric = all(ks)
    xs = [int(m.group(1)) for m in ks] if numeric else list(range(len(settings)))
    log = numeric and max(xs) > 10 * min(xs)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(6.0, 0.5 * len(settings) + 4.5), 4.2))
    n = len(strategies)
    for i, (strategy, color) in enumerate(zip(strategies, _colors(n))):
        pts = [(x, idx[(s, strategy)]) for x, s in zip(xs, settings) if (s, strategy) in idx]
        px = np.array([x for x, _ in pts], dtype=float)
        mean = np.array([e[f"{metric}_mean"] for _, e in pts])
        half = np.nan_to_num(np.array([e.get(f"{metric}_ci95", np.nan) for _, e in pts], dtype=float))
        style = ("-", "--", ":")[i // 10 % 3]
        ax.plot(px, mean, style, marker="o", ms=3.5, color=color, label=strategy)
        if len(pts) > 1:
            ax.fill_between(px, mean - half, mean + half, color=color, alpha=0.13, lw=0)
        else:
            ax.errorbar(px, mean, yerr=half, color=color, capsize=3, lw=1)
        # small horizontal offsets keep the repeats of different strategies apart
        shift = (i - (n - 1) / 2) / max(n, 1) * 0.3
        for x, e in pts:
            vals = [v for v in e.get("values" if metric == "accuracy" else f"{metric}_values", []) if _fin(v)]
            dx = x * (1.0 + 0.15 * shift) if log else x + shift * (0.1 * x if numeric else 1.0)
            ax.plot([dx] * len(vals), vals, ".", color=color, ms=3.5, alpha=0.7)
    if log:
        ax.set_xscale("log")
    ax.set_xticks(xs)
    ax.set_xticklabels([str(x) for x in xs] if numeric else settings, rotation=0 if numeric else 30,
                       ha="center" if numeric else "right", fontsize=8)
    ax.minorticks_off()
    ax.set_xlabel("real training images per class (k)" if numeric else "setting")
    low, high = ax.get_ylim()
    ax.set_ylim(max(low, 0.0), min(high, 1.02))  # CI bands may reach past [0, 1]; scores cannot
    ax.set_ylabel(f"test {metric.replace('_', ' ')} (mean ± 95% CI)")
    ax.set_title(title or f"{metric.replace('_', ' ')} per setting and strategy", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7 if n > 6 else 8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return _save(fig, path)


def recall_heatmap(path: str | os.PathLike, data: Sequence[dict], class_names: Sequence[str] | None = None, *,
                   settings: Sequence[str] | None = None, strategies: Sequence[str] | None = None,
                   title: str | None = None) -> Path | None:
    """Mean per-class recall in [0, 1]: one row per (setting, strategy), one column per class, values annotated.

    Args:
        data: a summary (entries with ``per_class_recall_mean``) or result rows (with ``per_class_recall``).
        class_names: column labels (default: class indices).
        settings, strategies: row order (default: order of appearance); rows are labelled ``setting / strategy``
            when there is more than one setting, and settings are separated by lines.

    Returns:
        The path, or None when no entry carries per-class recalls.
    """
    key = "per_class_recall_mean" if any(e.get("per_class_recall_mean") for e in data) else "per_class_recall"
    have = [e for e in data if e.get(key) and "setting" in e and "strategy" in e]
    if not have:
        return None
    settings, strategies = _order(have, "setting", settings), _order(have, "strategy", strategies)
    labels, matrix, breaks = [], [], []
    for s in settings:
        for t in strategies:
            vals = [e[key] for e in have if e["setting"] == s and e["strategy"] == t]
            if vals and len({len(v) for v in vals}) == 1:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    matrix.append(np.nanmean(np.array(vals, dtype=float), axis=0))
                labels.append(f"{s} / {t}" if len(settings) > 1 else t)
        breaks.append(len(labels))
    if not matrix or len({len(r) for r in matrix}) != 1:
        return None
    m = np.array(matrix)
    k = m.shape[1]
    names = list(class_names)[:k] if class_names is not None and len(class_names) >= k else [str(i) for i in range(k)]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(2.5 + 0.55 * k + 0.06 * max(map(len, labels)), 1.4 + 0.27 * len(labels)))
    im = ax.imshow(m, vmin=0.0, vmax=1.0, cmap="viridis", aspect="auto")
    size = 7 if len(labels) * k <= 600 else 5.5
    for (i, j), v in np.ndenumerate(m):
        if math.isfinite(v):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=size, color="black" if v > 0.6 else "white")
    for b in breaks[:-1]:
        if 0 < b < len(labels):
            ax.axhline(b - 0.5, color="white", lw=2)
    ax.set_xticks(range(k))
    long = max(map(len, names)) > 3
    ax.set_xticklabels(names, rotation=45 if long else 0, ha="right" if long else "center", fontsize=8)
    ax.set_yticks(range(len(labels)))
    ax.set_yticklabels(labels, fontsize=7 if len(labels) > 20 else 8)
    ax.set_xlabel("class")
    ax.set_title(title or "mean per-class recall (test)", fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02)
    return _save(fig, path)


def cv_vs_test_plot(path: str | os.PathLike, summary: Sequence[dict], settings: Sequence[str] | None = None,
                    strategies: Sequence[str] | None = None, title: str | None = None) -> Path | None:
    """Per strategy, the cross-validation estimate (hatched) beside the external test accuracy, 95% CI bars.

    A CV bar far above its test bar is leakage (S1: copies of a source on both sides of a fold). Returns None when
    no entry has a finite ``cv_accuracy_mean``.
    """
    have = [e for e in summary if _fin(e.get("cv_accuracy_mean"))]
    if not have:
        return None
    settings, strategies = _order(have, "setting", settings), _order(have, "strategy", strategies)
    entries = [e for s in settings for t in strategies for e in have if e["setting"] == s and e["strategy"] == t]
    if not entries:
        return None
    labels = [f"{e['setting']} / {e['strategy']}" if len(settings) > 1 else e["strategy"] for e in entries]
    x = np.arange(len(entries))
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(5.0, 0.8 * len(entries) + 2.5), 4.0))
    for off, metric, name, kw in ((-0.2, "cv_accuracy", "cross-validation", {"hatch": "//", "color": "#DD8452"}),
                                  (0.2, "accuracy", "external test", {"color": "#4C72B0"})):
        means = np.array([e.get(f"{metric}_mean", np.nan) for e in entries], dtype=float)
        errs = np.nan_to_num(np.array([e.get(f"{metric}_ci95", np.nan) for e in entries], dtype=float))
        ax.bar(x + off, np.nan_to_num(means), width=0.38, yerr=errs, capsize=3, label=name, alpha=0.85, **kw)
    for i, e in enumerate(entries):
        vals = [v for v in e.get("values", []) if _fin(v)]
        ax.plot([i + 0.2] * len(vals), vals, "k.", ms=3)
    ax.set_xticks(x)
    ax.set_xticklabels(labels, rotation=25, ha="right", fontsize=8)
    ax.set_ylim(0.0, 1.05)
    ax.set_ylabel("accuracy (mean ± 95% CI)")
    ax.set_title(title or "CV estimate vs external real test set", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def recall_by_class_plot(path: str | os.PathLike, data: Sequence[dict], setting: str, train_counts: Sequence[int],
                         class_names: Sequence[str] | None = None, *, strategies: Sequence[str] | None = None,
                         title: str | None = None) -> Path | None:
    """Mean per-class recall of one long-tailed setting, one line per strategy, head classes left and tail right.

    Args:
        data: a summary (entries with ``per_class_recall_mean``) or result rows (with ``per_class_recall``); only
            entries of ``setting`` are drawn (rows of one strategy are averaged over repeats).
        setting: the setting's name (e.g. ``exponential,ratio=100``).
        train_counts: the K training image counts of that setting; the x axis orders classes by them, largest first
            (ties: smaller class id), and each tick shows ``name (count)``.
        class_names: tick names (default: class indices).
        strategies: line order (default: order of appearance).

    Returns:
        The path, or None when no entry of ``setting`` carries K per-class recalls.
    """
    counts = [int(c) for c in train_counts]
    k = len(counts)
    key = "per_class_recall_mean" if any(e.get("per_class_recall_mean") for e in data) else "per_class_recall"
    have = [e for e in data if e.get("setting") == setting and "strategy" in e and e.get(key) and len(e[key]) == k]
    if not have or k == 0:
        return None
    strategies = _order(have, "strategy", strategies)
    order = sorted(range(k), key=lambda c: (-counts[c], c))
    names = list(class_names)[:k] if class_names is not None and len(class_names) >= k else [str(i) for i in range(k)]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(6.0, 0.6 * k + 3.0), 4.2))
    for strategy, color in zip(strategies, _colors(len(strategies))):
        vals = [e[key] for e in have if e["strategy"] == strategy]
        if not vals:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(np.array(vals, dtype=float), axis=0)
        ax.plot(range(k), mean[order], marker="o", ms=4, color=color, label=strategy)
    ax.set_xticks(range(k))
    ax.set_xticklabels([f"{names[c]} ({counts[c]})" for c in order], rotation=45, ha="right", fontsize=8)
    ax.set_ylim(0.0, 1.02)
    ax.set_xlabel("class (training images), head to tail")
    ax.set_ylabel("recall (test)")
    ax.set_title(title or f"per-class recall, {setting}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    return _save(fig, path)
