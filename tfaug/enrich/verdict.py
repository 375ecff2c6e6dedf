"""The choice and the verdict: candidate statistics, the choice rule, the single test read, bootstrap CIs.

Choice rule (on validation only): the leader among the controls (highest mean accuracy; ties to the earlier,
simpler one) wins unless a non-control candidate has a higher mean accuracy AND its paired difference to that
control has a 95 % CI entirely above 0 over at least two common repeats; then the best such candidate wins. An
enrichment must show that it helps before it is chosen.
"""
from __future__ import annotations

import math

import numpy as np

from tfaug.enrich.candidates import CONTROLS, LONG_TAIL, REFERENCE
from tfaug.enrich.select import paired, scores

BOOTSTRAP = 2000  # resamples of the test images for the test CIs


def _ci(mean: float, half: float) -> dict:
    ok = np.isfinite(half)
    return {"mean": mean, "ci_low": mean - half if ok else None, "ci_high": mean + half if ok else None,
            "half_width": half if ok else None}


def candidate_table(rows: list[dict], candidates: list[str]) -> list[dict]:
    """One record per candidate: repeats, mean accuracy with 95 % CI, paired difference to ``classic`` with CI,
    mean macro-F1, mean seconds per fit, and whether/why it stopped."""
    from tfaug.metrics.stats import mean_ci, paired_difference_ci

    table = scores(rows)
    f1 = {}
    for r in rows:
        if r.get("kind") == "score":
            f1.setdefault(r["candidate"], []).append(float(r["macro_f1"]))
    # a stop counts when no score of the candidate came after it (a budget skip may be followed by more fits)
    stops = {r["candidate"]: r["reason"] for r in rows if r.get("kind") == "stop"
             and int(r["repeat"]) >= max(table.get(r["candidate"], {-1: None}))}
    out = []
    for cand in candidates:
        accs = table.get(cand, {})
        mean, half = mean_ci(list(accs.values()))
        a, b = paired(accs, table.get(REFERENCE, {}))
        dmean, dhalf = paired_difference_ci(a, b) if len(a) else (float("nan"), float("nan"))
        secs = [float(r["seconds"]) for r in rows if r.get("kind") == "score" and r["candidate"] == cand]
        out.append({"candidate": cand, "control": cand in CONTROLS or cand in LONG_TAIL, "repeats": len(accs),
                    "accuracy": _ci(mean, half), "delta_vs_classic": _ci(dmean, dhalf), "paired_repeats": len(a),
                    "macro_f1": float(np.mean(f1[cand])) if f1.get(cand) else None,
                    "seconds_per_fit": float(np.mean(secs)) if secs else None, "stopped": stops.get(cand)})
    return out


def choose(rows: list[dict], candidates: list[str]) -> tuple[str, str]:
    """``(chosen strategy, one sentence why)`` by the module's rule; validation scores only."""
    from tfaug.metrics.stats import paired_difference_ci

    table = scores(rows)
    mean = {c: float(np.mean(list(v.values()))) for c, v in table.items() if v}
    controls = [c for c in candidates if c in mean and (c in CONTROLS or c in LONG_TAIL)]
    if not controls:
        others = [c for c in candidates if c in mean]
        if not others:
            from tfaug.errors import TfaugError

            raise TfaugError("no candidate finished a single validation fit within the budget; raise --budget")
        best = max(others, key=lambda c: (mean[c], -candidates.index(c)))
        return best, f"{best} has the best mean validation accuracy (no control finished within the budget)"
    control = max(controls, key=lambda c: (mean[c], -candidates.index(c)))
    winners = []
    for c in candidates:
        if c in controls or c not in mean or mean[c] <= mean[control]:
            continue
        a, b = paired(table[c], table[control])
        if len(a) >= 2:
            d, h = paired_difference_ci(a, b)
            if np.isfinite(h) and d - h > 0:
                winners.append(c)
    if winners:
        best = max(winners, key=lambda c: (mean[c], -candidates.index(c)))
        return best, (f"{best} beats the best control {control} on validation (paired 95 % CI of the difference "
                      "above 0)")
    return control, (f"{control} is the best control and no enrichment beat it on validation with a paired 95 % CI "
                     "above 0")


def bootstrap_ci(y_true, y_pred, num_classes: int, seed: int = 0, n: int = BOOTSTRAP) -> dict:
    """Test accuracy and macro-F1 with 95 % percentile-bootstrap CIs over the test images (seeded)."""
    from tfaug.utils.classification import classification_metrics

    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    m = classification_metrics(y_true, y_pred, num_classes)
    rng = np.random.default_rng(seed)
    accs, f1s = [], []
    for _ in range(n):
        i = rng.integers(0, len(y_true), len(y_true))
        accs.append(np.mean(y_true[i] == y_pred[i]))
        f1s.append(_macro_f1(y_true[i], y_pred[i], num_classes))
    lo, hi = np.percentile(accs, [2.5, 97.5]), np.percentile(f1s, [2.5, 97.5])
    return {"accuracy": {"mean": m["accuracy"], "ci_low": float(lo[0]), "ci_high": float(lo[1])},
            "macro_f1": {"mean": m["macro_f1"], "ci_low": float(hi[0]), "ci_high": float(hi[1])},
            "per_class_recall": m["per_class_recall"], "n": m["n"], "bootstrap_resamples": int(n)}


def _macro_f1(t: np.ndarray, p: np.ndarray, k: int) -> float:
    """Macro-F1 over the classes present in ``t`` (as ``classification_metrics``), vectorised for the bootstrap."""
    tp = np.bincount(t[t == p], minlength=k).astype(float)
    support, predicted = np.bincount(t, minlength=k), np.bincount(p, minlength=k)
    denom = support + predicted
    f1 = np.divide(2 * tp, denom, out=np.zeros(k), where=denom > 0)
    present = support > 0
    return float(f1[present].mean()) if present.any() else math.nan
