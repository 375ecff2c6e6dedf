"""Study reporting: summaries with 95% CIs, paired differences to a reference strategy, CSV, Markdown, plots."""
from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from tfaug.metrics.stats import format_ci, mean_ci, paired_difference_ci
from tfaug.utils.io import atomic_write_bytes, atomic_write_text

METRICS = ("accuracy", "macro_f1")


def summarize(rows: Sequence[dict], strategies: Sequence[str], reference: str | None = "classic",
              metrics: Sequence[str] = METRICS) -> list[dict]:
    """Mean ± 95% CI per strategy, and the paired difference (same repeat) to ``reference`` when present.

    Args:
        rows: one dict per (strategy, repeat) with keys ``strategy``, ``repeat`` and the metric names.
        strategies: the order of the output rows.
        reference: strategy to compare against (skipped when absent from ``rows``).
    """
    by = {s: {r["repeat"]: r for r in rows if r["strategy"] == s} for s in strategies}
    ref = by.get(reference) if reference else None
    out = []
    for s in strategies:
        cells = by[s]
        if not cells:
            continue
        entry = {"strategy": s, "repeats": len(cells),
                 "degenerate": sum(bool(c.get("degenerate")) for c in cells.values())}
        for m in metrics:
            entry[f"{m}_mean"], entry[f"{m}_ci95"] = mean_ci([c[m] for c in cells.values()])
        entry["values"] = [cells[k]["accuracy"] for k in sorted(cells)]
        if ref and s != reference:
            common = sorted(set(cells) & set(ref))
            if common:
                d, h = paired_difference_ci([cells[k]["accuracy"] for k in common], [ref[k]["accuracy"] for k in common])
                entry[f"accuracy_diff_vs_{reference}"], entry[f"accuracy_diff_vs_{reference}_ci95"] = d, h
        out.append(entry)
    return out


def markdown_table(summary: Sequence[dict], reference: str | None = "classic") -> str:
    """A Markdown table: strategy | n | accuracy | macro-F1 | Δ accuracy vs reference."""
    key = f"accuracy_diff_vs_{reference}"
    lines = [f"| strategy | repeats | accuracy | macro-F1 | Δ accuracy vs {reference} |", "|---|---|---|---|---|"]
    for e in summary:
        diff = "—" if key not in e else _signed(e[key], e[f"{key}_ci95"])
        flag = " (degenerate in %d)" % e["degenerate"] if e.get("degenerate") else ""
        lines.append(f"| {e['strategy']}{flag} | {e['repeats']} | {format_ci(e['accuracy_mean'], e['accuracy_ci95'])} | "
                     f"{format_ci(e['macro_f1_mean'], e['macro_f1_ci95'])} | {diff} |")
    return "\n".join(lines) + "\n"


def _signed(mean: float, half: float) -> str:
    s = f"{mean:+.3f}"
    return s if np.isnan(half) else f"{s} ± {half:.3f}"


def write_csv(path: str | os.PathLike, rows: Sequence[dict], class_names: Sequence[str] | None = None) -> Path:
    """Write rows to CSV atomically; list-valued per-class columns are expanded to ``recall_<class>`` etc."""
    flat = [_flatten(r, class_names) for r in rows]
    columns: list[str] = []
    for r in flat:
        columns += [k for k in r if k not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns)
    writer.writeheader()
    writer.writerows(flat)
    return atomic_write_text(path, buf.getvalue())


def _flatten(row: dict, class_names) -> dict:
    out = {}
    for k, v in row.items():
        if isinstance(v, (list, tuple)) and k.startswith("per_class_"):
            stem = k[len("per_class_"):]
            for i, x in enumerate(v):
                name = class_names[i] if class_names is not None and i < len(class_names) else str(i)
                out[f"{stem}_{name}"] = x
        else:
            out[k] = v
    return out


def bar_chart(path: str | os.PathLike, summary: Sequence[dict], title: str, metric: str = "accuracy") -> Path:
    """Bar chart of ``metric`` mean per strategy with 95% CI error bars and individual repeats as dots."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [e["strategy"] for e in summary]
    means = np.array([e[f"{metric}_mean"] for e in summary])
    errs = np.nan_to_num(np.array([e[f"{metric}_ci95"] for e in summary]))
    fig, ax = plt.subplots(figsize=(max(5, 1.2 * len(names) + 1), 3.6))
    ax.bar(range(len(names)), means, yerr=errs, capsize=4, color="#4C72B0", alpha=0.85)
    for i, e in enumerate(summary):
        for v in e.get("values", []):
            ax.plot(i, v, "k.", ms=4)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=20, ha="right")
    low = float(np.nanmin(means - errs)) if len(means) else 0.0
    ax.set_ylim(max(0.0, low - 0.1), min(1.0, float(np.nanmax(means + errs)) + 0.05) if len(means) else 1.0)
    ax.set_ylabel(f"test {metric} (mean ± 95% CI)")
    ax.set_title(title, fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())
