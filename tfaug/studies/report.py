"""Study reporting: summaries with 95% CIs, paired differences to a reference strategy, CSV, Markdown, plots.

``summarize``/``markdown_table``/``bar_chart`` serve the one-setting demo; ``summarize_study``/
``write_study_report`` serve ``tfaug study`` (settings x strategies x repeats); ``results_document`` writes
``docs/RESULTS.md`` from finished study directories beside the published numbers (``tfaug.studies.published``).
Accuracies and F1 scores are fractions in [0, 1]; CIs are Student-t 95% half-widths (NaN with one repeat).
"""
from __future__ import annotations

import csv
import io
import math
import os
import warnings
from pathlib import Path
from typing import Mapping, Sequence

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
        elif isinstance(v, (list, tuple)):  # e.g. cv_folds: one cell, ';'-joined
            out[k] = ";".join(str(x) for x in v)
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


# -- studies: settings x strategies x repeats ----------------------------------------------------------------

STUDY_METRICS = ("accuracy", "macro_f1", "minority_f1", "accuracy_large", "macro_f1_large", "cv_accuracy",
                 "gen_kid", "gen_copies", "gen_ssim", "gen_consistency", "balanced_accuracy", "minority_recall",
                 "head_accuracy", "middle_accuracy", "tail_accuracy", "val_accuracy", "val_macro_f1",
                 "val_balanced_accuracy")
_IMBALANCE_KEYS = ("minority_f1_mean", "tail_accuracy_mean")  # balanced accuracy is shown when one is present
DIFF_METRICS = ("accuracy", "minority_f1", "val_accuracy")
# (metric, column title, digits); accuracy and macro-F1 always shown, the others when a setting has them
_COLUMNS = (("accuracy", "accuracy", 3), ("macro_f1", "macro-F1", 3), ("balanced_accuracy", "balanced acc.", 3),
            ("minority_f1", "minority F1", 3), ("minority_recall", "minority recall", 3),
            ("head_accuracy", "head acc.", 3), ("middle_accuracy", "middle acc.", 3), ("tail_accuracy", "tail acc.", 3),
            ("accuracy_large", "acc. (large test)", 3), ("cv_accuracy", "CV acc.", 3),
            ("val_accuracy", "validation acc.", 3))
_GEN_COLUMNS = (("gen_kid", "KID", 4), ("gen_copies", "copies", 3), ("gen_ssim", "SSIM", 3),
                ("gen_consistency", "consistency", 3))


def _finite(v) -> bool:
    return isinstance(v, (int, float, np.number)) and not isinstance(v, bool) and math.isfinite(float(v))


def _num(v) -> float:
    return float(v) if _finite(v) else float("nan")


def summarize_study(rows: Sequence[dict], settings: Sequence[str], strategies: Sequence[str],
                    reference: str | None = "classic") -> list[dict]:
    """Mean ± 95% CI per (setting, strategy) and paired differences to ``reference`` (same setting and repeat).

    Args:
        rows: result rows of the runner (keys ``setting``, ``strategy``, ``repeat``, metrics in [0, 1] ...); a
            later row for the same cell replaces an earlier one; None/NaN metric values are ignored per metric.
        settings, strategies: the output order; cells outside them are ignored.
        reference: strategy the differences are taken to (None or absent: no differences).

    Returns:
        One dict per cell present: ``setting``, ``strategy``, ``repeats``, ``degenerate`` (count), for each metric
        of ``STUDY_METRICS`` found in ``rows`` ``<m>_mean`` and ``<m>_ci95`` (NaN half-width with one repeat),
        ``<m>_diff_vs_<reference>`` and ``..._ci95`` for ``DIFF_METRICS``, ``values`` (accuracy per repeat),
        ``minority_f1_values`` when present, ``per_class_recall_mean`` (list of K) when rows carry recalls.
    """
    cells: dict[tuple, dict[int, dict]] = {}
    for r in rows:
        cells.setdefault((r.get("setting"), r.get("strategy")), {})[int(r.get("repeat", 0))] = r
    present = [m for m in STUDY_METRICS if any(_finite(r.get(m)) for r in rows)]
    out = []
    for setting in settings:
        ref = cells.get((setting, reference)) if reference else None
        for strategy in strategies:
            got = cells.get((setting, strategy))
            if not got:
                continue
            reps = [got[k] for k in sorted(got)]
            e = {"setting": setting, "strategy": strategy, "repeats": len(reps),
                 "degenerate": sum(bool(r.get("degenerate")) for r in reps)}
            for m in present:
                e[f"{m}_mean"], e[f"{m}_ci95"] = mean_ci([_num(r.get(m)) for r in reps])
            e["values"] = [_num(r.get("accuracy")) for r in reps]
            if "minority_f1" in present:
                e["minority_f1_values"] = [_num(r.get("minority_f1")) for r in reps]
            recalls = [r["per_class_recall"] for r in reps if r.get("per_class_recall")]
            if recalls and len({len(x) for x in recalls}) == 1:
                with warnings.catch_warnings():  # a class missing from the test set gives an all-NaN column
                    warnings.simplefilter("ignore", RuntimeWarning)
                    e["per_class_recall_mean"] = np.nanmean(np.array(recalls, dtype=float), axis=0).tolist()
            if ref and strategy != reference:
                for m in (d for d in DIFF_METRICS if d in present):
                    common = [k for k in sorted(set(got) & set(ref))
                              if _finite(got[k].get(m)) and _finite(ref[k].get(m))]
                    if common:
                        key = f"{m}_diff_vs_{reference}"
                        e[key], e[f"{key}_ci95"] = paired_difference_ci([got[k][m] for k in common],
                                                                        [ref[k][m] for k in common])
            out.append(e)
    return out


def study_tables(summary: Sequence[dict], settings: Sequence[str], reference: str | None = "classic",
                 heading: str = "###") -> str:
    """One Markdown table per setting (``heading`` + setting name, then the table), in ``settings`` order."""
    parts = []
    for setting in settings:
        entries = [e for e in summary if e["setting"] == setting]
        if entries:
            parts += [f"{heading} {setting}", "", _setting_table(entries, reference)]
    return "\n".join(parts)


def _setting_table(entries: Sequence[dict], reference: str | None) -> str:
    def has(key):
        return any(_finite(e.get(key)) for e in entries)

    imbalanced = any(has(k) for k in _IMBALANCE_KEYS)
    cols = [(f"{m}_mean", title, d) for m, title, d in _COLUMNS if m in ("accuracy", "macro_f1")
            or has(f"{m}_mean") and (m != "balanced_accuracy" or imbalanced)]
    short = {"accuracy": "acc", "minority_f1": "minority F1", "val_accuracy": "validation acc"}
    diffs = [(f"{m}_diff_vs_{reference}", f"Δ {short[m]} vs {reference}")
             for m in DIFF_METRICS if reference and has(f"{m}_diff_vs_{reference}")]
    gens = [(f"{m}_mean", title, d) for m, title, d in _GEN_COLUMNS if has(f"{m}_mean")]
    titles = ["strategy", "repeats"] + [c[1] for c in cols] + [d[1] for d in diffs] + [g[1] for g in gens]
    lines = ["| " + " | ".join(titles) + " |", "|" + "---|" * len(titles)]
    for e in entries:
        flag = f" ⚠ degenerate in {e['degenerate']}/{e['repeats']}" if e.get("degenerate") else ""
        cells = [f"{e['strategy']}{flag}", str(e["repeats"])]
        cells += [_ci(e, key, d) for key, _, d in cols]
        cells += [_signed(e[key], e[f"{key}_ci95"]) if key in e else "—" for key, _ in diffs]
        cells += [_ci(e, key, d) for key, _, d in gens]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _ci(e: dict, key: str, digits: int) -> str:
    if not _finite(e.get(key)):
        return "—"
    return format_ci(e[key], e.get(key.replace("_mean", "_ci95"), float("nan")), digits)


def _index(seq: Sequence, value) -> int:
    return seq.index(value) if value in seq else len(seq)


def _link(path, base: Path) -> str:
    p = Path(path)
    return (os.path.relpath(p, base) if p.is_absolute() else str(p)).replace(os.sep, "/")


def _plots(folder: Path, summary: list[dict], settings, strategies, class_names) -> dict[str, Path]:
    """The study's figures in ``folder`` (title -> path); figures with nothing to show are skipped."""
    from tfaug.studies import plots

    made = {"accuracy": plots.accuracy_plot(folder / "accuracy.png", summary, settings, strategies),
            "minority F1": plots.accuracy_plot(folder / "minority_f1.png", summary, settings, strategies,
                                               metric="minority_f1"),
            "per-class recall": plots.recall_heatmap(folder / "recall.png", summary, class_names,
                                                     settings=settings, strategies=strategies),
            "CV estimate vs external test": plots.cv_vs_test_plot(folder / "cv_vs_test.png", summary, settings,
                                                                  strategies)}
    return {k: v for k, v in made.items() if v is not None}


def write_study_report(out: str | os.PathLike, *, name: str, dataset: str, rows: Sequence[dict],
                       settings: Sequence[str], strategies: Sequence[str], class_names: Sequence[str] | None,
                       notes: Sequence[str] = (), sample_grids: Mapping[str, str] | None = None,
                       reference: str | None = "classic") -> list[dict]:
    """Write ``results.csv``, ``summary.csv``, ``summary.md`` and the plots into ``out`` (atomically, file by file).

    Args:
        out: the study directory.
        name, dataset: shown in the title.
        rows: the runner's result rows (see :func:`summarize_study`).
        settings, strategies: their order in tables and plots.
        class_names: K names (columns ``recall_<class>``/``f1_<class>``, heatmap columns), or None (indices).
        notes: protocol lines listed under the title.
        sample_grids: title -> path of a sample grid image (linked relative to ``out``).
        reference: the control the paired differences are taken to (ignored when not among ``strategies``).

    Returns:
        The summary (:func:`summarize_study`).
    """
    out = Path(out)
    settings, strategies = list(settings), list(strategies)
    reference = reference if reference in strategies else None
    summary = summarize_study(rows, settings, strategies, reference)
    order = sorted(rows, key=lambda r: (_index(settings, r.get("setting")), r.get("repeat", 0),
                                        _index(strategies, r.get("strategy"))))
    write_csv(out / "results.csv", order, class_names)
    write_csv(out / "summary.csv", summary, class_names)
    figures = _plots(out, summary, settings, strategies, class_names)
    repeats = max((e["repeats"] for e in summary), default=0)
    lines = [f"# {name}", "", f"- dataset `{dataset}`; {len(settings)} setting(s) x {len(strategies)} strategies, "
             f"up to {repeats} repeat(s)."] + [f"- {n}" for n in notes]
    lines += ["- mean ± 95% CI over repeats (Student t; no interval with one repeat)"
              + (f"; Δ is the paired difference to `{reference}` (same setting and repeat)." if reference else "."),
              "- ⚠ marks degenerate classifiers (one predicted class) and in how many repeats.", "",
              "## Results", "", study_tables(summary, settings, reference)]
    if figures:
        lines += ["## Plots", ""] + [f"![{t}]({p.name})" for t, p in figures.items()] + [""]
    if sample_grids:
        lines += ["## Generated samples", ""] + [f"![{t}]({_link(p, out)})" for t, p in sample_grids.items()] + [""]
    atomic_write_text(out / "summary.md", "\n".join(lines))
    return summary


# -- docs/RESULTS.md ------------------------------------------------------------------------------------------


def results_document(studies: Mapping[str, str | os.PathLike], out: str | os.PathLike, *,
                     command: str | None = None, preface: str | None = None) -> Path:
    """Write one Markdown document (``docs/RESULTS.md``) from finished study directories, atomically.

    Args:
        studies: section key (``s3``, ``s1-naive`` ...; ``sN`` selects the published study SN) -> run directory
            holding ``study.json``, ``results.jsonl`` and optionally ``timing.json``
            (``{"wall_seconds", "command", "machine"}``) and sample-grid pngs.
        out: the document; its figures go to ``<out dir>/results/<key>/`` (regenerated from the rows; the run's
            own pngs are copied there too) and are linked relatively.
        command: the command that regenerates the document (shown at the top).
        preface: Markdown placed after the header (how the runs were made, what they show).

    Raises:
        TfaugError: a run directory lacks ``study.json`` or results.
    """
    out = Path(out)
    parts = ["# tfaug results", "",
             "Written by `scripts/results_doc.py` from the study runs' own output (`results.jsonl`); every number "
             "is a mean ± 95% CI over repeats (Student t), beside the published number where the study gives one.", ""]
    if command:
        parts += ["Regenerate with:", "", "```", command, "```", ""]
    if preface:
        parts += [preface.strip(), ""]
    for key, run in studies.items():
        parts.append(_study_section(str(key), Path(run), out.parent))
    return atomic_write_text(out, "\n".join(parts))


def study_section_markdown(key: str, run: Path, docs: Path) -> str:
    """One study run's ``docs/RESULTS.md`` section: heading, protocol line, tables, plots (into
    ``docs/results/<key>/``), beside the published study when ``key`` names one (``s3`` ...)."""
    return _study_section(key, Path(run), Path(docs))


def _study_section(key: str, run: Path, docs: Path) -> str:
    from tfaug.errors import TfaugError
    from tfaug.studies.published import PUBLISHED, comparison_table, study_key
    from tfaug.utils.io import read_json, read_jsonl

    if not (run / "study.json").is_file():
        raise TfaugError(f"{run} is not a study directory (no study.json); pass the --out of a `tfaug study` run")
    cfg = read_json(run / "study.json")
    rows = read_jsonl(run / "results.jsonl")
    if not rows:
        raise TfaugError(f"{run} has no results yet (results.jsonl is missing or empty)")
    timing = read_json(run / "timing.json") if (run / "timing.json").is_file() else {}
    settings = [s["name"] if isinstance(s, dict) else str(s) for s in cfg.get("settings", [])]
    strategies = [str(s) for s in cfg.get("strategies", [])]
    reference = "classic" if "classic" in strategies else None
    summary = summarize_study(rows, settings, strategies, reference)
    figdir = docs / "results" / key
    figures = _plots(figdir, summary, settings, strategies, cfg.get("class_names"))
    for png in sorted(run.glob("*.png")) + sorted(run.glob("samples/*.png")):
        if png.name not in {p.name for p in figures.values()}:
            figures[f"samples: {png.stem}"] = atomic_write_bytes(figdir / png.name, png.read_bytes())
    published = study_key(key)
    title = f"## {key} — {cfg.get('name', key)}"
    lines = [title, "", f"- dataset `{cfg.get('dataset')}`; settings {', '.join(settings)}; strategies "
             f"{', '.join(f'`{s}`' for s in strategies)}; {cfg.get('repeats', '?')} repeat(s); test {cfg.get('test')}"
             + (f"; CV {cfg['cv']}" if cfg.get("cv") else "")]
    if timing.get("command"):
        lines.append(f"- command: `{timing['command']}`")
    if "wall_seconds" in timing or "machine" in timing:
        lines.append(f"- wall time {_duration(timing.get('wall_seconds'))} on {_machine(timing.get('machine'))}")
    lines += ["", "### tfaug", "", study_tables(summary, settings, reference, heading="####")]
    if published:
        info = PUBLISHED[published]
        lines += [f"### Beside {published} ({info['title']})", "", f"Published protocol: {info['protocol']}", "",
                  comparison_table(published, summary, dataset=cfg.get("dataset"))]
    if figures:
        lines += ["### Plots", ""] + [f"![{t}]({_link(p.relative_to(docs), docs)})" for t, p in figures.items()] + [""]
    return "\n".join(lines)


def _machine(m) -> str:
    if isinstance(m, dict):  # the runner's {"platform", "cpu", "cpu_count", "threads", "tensorflow", "python"}
        threads = ", ".join(f"{k}={v}" for k, v in (m.get("threads") or {}).items())
        bits = [m.get("platform"), m.get("cpu"), f"{m['cpu_count']} CPU cores" if m.get("cpu_count") else None,
                threads or None,
                f"TensorFlow {m['tensorflow']}" if m.get("tensorflow") else None,
                f"Python {m['python']}" if m.get("python") else None]
        return ", ".join(b for b in bits if b) or "n/s"
    return str(m) if m else "n/s"


def _duration(seconds) -> str:
    if not _finite(seconds):
        return "n/s"
    s = int(round(float(seconds)))
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    return f"{s // 60} min {s % 60:02d} s" if s >= 60 else f"{s} s"
