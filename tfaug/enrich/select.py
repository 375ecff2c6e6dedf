"""Budgeted selection on the training side: repeats of paired validation, early stops, a wall-time budget.

Repeat ``r`` trains every still-active candidate on the same split (``protocol.validation_split``) with the same
seed, so each candidate's accuracy is paired with ``classic``'s. Every finished fit is appended to
``DIR/results.jsonl`` at once (``{"kind": "score", "candidate", "repeat", "accuracy", "macro_f1", "seconds"}``), so
a rerun skips it and Ctrl-C loses only the fit in progress; stops are recorded as ``{"kind": "stop", ...}``.

Early stop: after ``min_repeats`` paired repeats, a candidate whose 95 % CI of the paired accuracy difference to the
current leader lies entirely below 0 cannot win and trains no more. Budget: a fit starts only when its estimated
time (its own latest fit, else ``PRIOR_FACTOR`` times the latest fit) plus the estimated final stage of the
slowest candidate so far still fits in the budget's wall time; a skipped candidate is asked again next repeat
(recorded once per run as ``{"kind": "stop", "reason": "budget"}``), and selection ends when nothing left fits.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np

from tfaug.enrich.candidates import REFERENCE, draw_resources, fit_candidate, is_generative
from tfaug.enrich.protocol import EnrichConfig, validation_split
from tfaug.utils.io import append_jsonl, read_jsonl

RESULTS = "results.jsonl"
PRIOR_FACTOR = 3.0       # a generative candidate's first fit trains a generator too
COLD_FACTOR = 0.5        # share of a process's first fit that recurs (the rest is TensorFlow's start-up)
FINAL_OVERHEAD_S = 10.0  # classifier export, test read, report (about 4-6 s on 2 cores for small data)
GENERATOR_EXPORT_S = 10.0  # generator export and the enriched dataset, when a generator wins
_FITS_IN_PROCESS = [0]   # fits run by this process so far (the first one is cold)


class Budget:
    """Wall time since construction against ``seconds`` > 0."""

    def __init__(self, seconds: float):
        self.seconds, self.start = float(seconds), time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def left(self) -> float:
        return self.seconds - self.elapsed()


def scores(rows: list[dict]) -> dict[str, dict[int, float]]:
    """{candidate: {repeat: accuracy}} from the score rows."""
    out: dict[str, dict[int, float]] = {}
    for r in rows:
        if r.get("kind") == "score":
            out.setdefault(r["candidate"], {})[int(r["repeat"])] = float(r["accuracy"])
    return out


def paired(a: dict[int, float], b: dict[int, float]) -> tuple[np.ndarray, np.ndarray]:
    """The accuracies of two candidates on their common repeats (sorted by repeat)."""
    common = sorted(set(a) & set(b))
    return np.array([a[r] for r in common]), np.array([b[r] for r in common])


def leader(table: dict[str, dict[int, float]], order: list[str]) -> str | None:
    """The candidate with the highest mean accuracy (ties: the earlier, simpler one)."""
    means = [(np.mean(list(table[c].values())), -i, c) for i, c in enumerate(order) if table.get(c)]
    return max(means)[2] if means else None


def run_selection(out: Path, side, candidates: list[str], cfg: EnrichConfig, budget: Budget, *,
                  progress: bool = True) -> list[dict]:
    """Score the candidates by repeated paired validation until done, stopped or out of budget.

    Args:
        out: the run directory (``results.jsonl`` is appended; generators go to ``work/r<repeat>``).
        side: the training side (``images`` uint8 [N, H, W, C], ``labels`` int [N], ``indices``, ``class_names``).
        candidates: strategy texts in order; the first ones should be the controls.
        cfg: the run's settings.
        budget: the wall-time budget of the whole run (selection and final stage).
        progress: show the time bar (candidates, ETA, leader).

    Returns:
        Every row of ``results.jsonl`` (scores and stops), old and new.
    """
    path = out / RESULTS
    rows = read_jsonl(path)
    # "cannot win" is final; a budget stop is not (a resumed run has a new budget)
    stopped = {r["candidate"] for r in rows if r.get("kind") == "stop" and r.get("reason") != "budget"}
    noted: set = set()  # candidates whose budget skip is already recorded in this run
    bar = _bar(progress, budget)
    ticking = threading.Event()
    if bar is not None:  # the bar keeps moving during long fits (a generator can train for minutes)
        threading.Thread(target=_tick, args=(bar, budget, ticking), daemon=True).start()
    try:
        for repeat in range(cfg.max_repeats):
            res, skipped, todo = None, 0, 0
            for cand in candidates:
                table = scores(rows)
                if cand in stopped or repeat in table.get(cand, {}):
                    continue
                todo += 1
                if not _affordable(cand, rows, table, budget, cfg):
                    skipped += 1
                    if cand not in noted:  # skipped this repeat; later repeats ask again (estimates improve)
                        noted.add(cand)
                        _stop(path, rows, set(), cand, repeat, "budget")
                    continue
                _show(bar, budget, cand, repeat, candidates, stopped, table)
                if res is None:
                    fit_idx, val_idx = validation_split(side.labels, repeat, cfg)
                    res = draw_resources(out / "work" / f"r{repeat}", side.images[fit_idx], side.labels[fit_idx],
                                         side.indices[fit_idx], side.class_names, cfg.gan, cfg.seed + repeat)
                row = _score(cand, repeat, side, fit_idx, val_idx, res, cfg)
                append_jsonl(path, row)
                rows.append(row)
            table = scores(rows)
            for cand in candidates:
                if cand not in stopped and _cannot_win(cand, table, candidates, cfg):
                    _stop(path, rows, stopped, cand, repeat, "cannot win")
            if all(c in stopped for c in candidates) or (todo and skipped == todo):
                break  # everything is decided, or nothing that is left fits in the budget any more
    finally:
        ticking.set()
        if bar is not None:
            _show(bar, budget, "done", None, candidates, stopped, scores(rows))
            bar.close()
    return rows


def _score(cand: str, repeat: int, side, fit_idx, val_idx, res, cfg: EnrichConfig) -> dict:
    from tfaug.utils.classification import classification_metrics

    t0, g0 = time.monotonic(), res.seconds if res is not None else 0.0
    k = len(side.class_names)
    fit = fit_candidate(cand, side.images[fit_idx], side.labels[fit_idx], side.images[val_idx],
                        side.labels[val_idx], res, cfg.classifier, cfg.seed + repeat, num_classes=k)
    gen_seconds = (res.seconds if res is not None else 0.0) - g0
    _FITS_IN_PROCESS[0] += 1
    m = classification_metrics(side.labels[val_idx], np.argmax(fit.probabilities, axis=-1), k)
    return {"kind": "score", "candidate": cand, "repeat": repeat, "accuracy": m["accuracy"],
            "macro_f1": m["macro_f1"], "per_class_recall": m["per_class_recall"], "n_fit": int(len(fit_idx)),
            "n_val": int(len(val_idx)), "n_synthetic": fit.n_synthetic, "seconds": round(time.monotonic() - t0, 3),
            "generator_seconds": round(gen_seconds, 3), "cold": _FITS_IN_PROCESS[0] == 1}


def _seconds(rows: list[dict], cand: str | None = None, key: str = "seconds") -> list[float]:
    """Seconds of the score rows (of ``cand``); warm fits only when there are any, else cold ones scaled by
    ``COLD_FACTOR``."""
    mine = [r for r in rows if r.get("kind") == "score" and (cand is None or r["candidate"] == cand)]
    warm = [float(r.get(key, 0.0)) for r in mine if not r.get("cold")]
    return warm or [COLD_FACTOR * float(r.get(key, 0.0)) for r in mine]


def _fit_guess(cand: str, rows) -> float:
    """Expected seconds of the next fit of ``cand``: its own latest fit; else the latest fit's classifier time
    plus, for a generative candidate, the latest generator's training time (``PRIOR_FACTOR`` times the classifier
    time before any generator was trained); 0 before any fit."""
    own = _seconds(rows, cand)
    if own:
        return own[-1]
    every, gens = _seconds(rows), [g for g in _seconds(rows, key="generator_seconds") if g > 0]
    if not every:
        return 0.0
    clf = max(0.0, every[-1] - _seconds(rows, key="generator_seconds")[-1])
    if not is_generative(cand):
        return clf
    return clf + (gens[-1] if gens else (PRIOR_FACTOR - 1.0) * clf)


def _final_guess(cand: str, rows, cfg: EnrichConfig) -> float:
    """Expected seconds of the final stage for ``cand``: its classifier on the whole training side (``1 /
    (1 - val_fraction)`` times a repeat's part), a generator when it needs one, and the fixed overhead."""
    fit = _fit_guess(cand, rows)
    gens = [g for g in _seconds(rows, key="generator_seconds") if g > 0]
    gen = (gens[-1] if gens else fit) if is_generative(cand) else 0.0
    extra = GENERATOR_EXPORT_S if is_generative(cand) else 0.0
    return max(0.0, fit - gen) / (1.0 - cfg.val_fraction) + gen + FINAL_OVERHEAD_S + extra


def _affordable(cand: str, rows, table, budget: Budget, cfg: EnrichConfig) -> bool:
    """Whether a fit of ``cand`` plus the final stage of the slowest candidate that could win still fits."""
    guess = _fit_guess(cand, rows)
    if guess == 0.0:
        return True  # the very first fit always runs: without it nothing can be chosen
    finals = [_final_guess(c, rows, cfg) for c in list(table) + [cand]]
    return guess + max(finals) <= budget.left()


def _cannot_win(cand: str, table, candidates, cfg: EnrichConfig) -> bool:
    from tfaug.metrics.stats import paired_difference_ci

    lead = leader(table, candidates)
    if cand == lead or cand == REFERENCE or lead is None:
        return False
    a, b = paired(table.get(cand, {}), table[lead])
    if len(a) < cfg.min_repeats:
        return False
    mean, half = paired_difference_ci(a, b)
    return bool(np.isfinite(half) and mean + half < 0)


def _stop(path: Path, rows: list, stopped: set, cand: str, repeat: int, reason: str) -> None:
    row = {"kind": "stop", "candidate": cand, "repeat": repeat, "reason": reason}
    append_jsonl(path, row)
    rows.append(row)
    stopped.add(cand)


def _bar(enabled: bool, budget: Budget):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    end = time.strftime("%H:%M:%S", time.localtime(time.time() + budget.left()))
    return tqdm(total=int(budget.seconds), desc="enrich", unit="s", dynamic_ncols=True,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s of the budget, which ends at "
                           + end + "{postfix}")


def _tick(bar, budget: Budget, stop) -> None:
    while not stop.wait(1.0):
        bar.n = min(bar.total, int(budget.elapsed()))
        bar.refresh()


def _show(bar, budget: Budget, cand: str, repeat, candidates, stopped, table) -> None:
    if bar is None:
        return
    bar.n = min(bar.total, int(budget.elapsed()))
    lead = leader(table, candidates)
    lead_text = f"{lead} {np.mean(list(table[lead].values())):.3f}" if lead else "-"
    active = len([c for c in candidates if c not in stopped])
    now = f"{cand} r{repeat}" if repeat is not None else cand
    bar.set_postfix_str(f"now {now} | {active}/{len(candidates)} candidates active | leader {lead_text}")
    bar.refresh()
