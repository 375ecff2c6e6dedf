"""Budgeted selection with a stand-in fit (no training): early stop, budget, resume."""
import time
from pathlib import Path

import numpy as np
import pytest

from tfaug.enrich import select
from tfaug.enrich.candidates import Fit
from tfaug.enrich.protocol import EnrichConfig
from tfaug.enrich.run import TrainSide
from tfaug.utils.io import read_jsonl

# per-candidate probability of predicting the right class (a stand-in classifier of known quality)
SKILL = {"baseline": 0.6, "classic": 0.9, "cdcgan": 0.3, "cdcgan+classic": 0.88}


def _side(n_per_class=40, k=3):
    y = np.repeat(np.arange(k), n_per_class).astype(np.int32)
    return TrainSide(np.zeros((len(y), 4, 4, 1), np.uint8), y, np.arange(len(y)), [str(i) for i in range(k)])


@pytest.fixture
def fake_fit(monkeypatch):
    calls = []

    def fit(text, x, y, x_val, y_val, res, cfg, seed, *, num_classes, progress=False):
        calls.append((text, seed))
        time.sleep(0.05)
        rng = np.random.default_rng(seed * 31 + len(text))
        right = rng.random(len(y_val)) < SKILL[text]
        pred = np.where(right, y_val, (y_val + 1) % num_classes)
        return Fit(None, np.eye(num_classes)[pred], 0)

    monkeypatch.setattr(select, "fit_candidate", fit)
    monkeypatch.setattr(select, "draw_resources", lambda *a, **k: None)
    return calls


def test_hopeless_candidate_stops_early_and_rows_are_appended(tmp_path, fake_fit):
    cands = list(SKILL)
    rows = select.run_selection(tmp_path, _side(), cands, EnrichConfig(max_repeats=6, min_repeats=3),
                                select.Budget(600), progress=False)
    stops = {r["candidate"]: r for r in rows if r["kind"] == "stop"}
    assert stops["cdcgan"]["reason"] == "cannot win" and stops["cdcgan"]["repeat"] == 2
    table = select.scores(rows)
    assert len(table["cdcgan"]) == 3 and len(table["classic"]) == 6
    assert read_jsonl(tmp_path / select.RESULTS) == rows  # every fit is on disk as it finishes


def test_rerun_skips_finished_fits(tmp_path, fake_fit):
    cfg = EnrichConfig(max_repeats=2, min_repeats=2)
    select.run_selection(tmp_path, _side(), ["baseline", "classic"], cfg, select.Budget(600), progress=False)
    n = len(fake_fit)
    cfg3 = EnrichConfig(max_repeats=3, min_repeats=2)
    select.run_selection(tmp_path, _side(), ["baseline", "classic"], cfg3, select.Budget(600), progress=False)
    assert len(fake_fit) == n + 2  # only repeat 2 is new


def test_budget_stops_fits_that_would_not_fit(tmp_path, fake_fit, monkeypatch):
    from tfaug.utils.classification import classification_metrics

    classification_metrics([0, 1], [0, 1], 2)  # import scikit-learn before the clock starts
    monkeypatch.setattr(select, "FINAL_OVERHEAD_S", 0.0)
    t0 = time.monotonic()
    rows = select.run_selection(tmp_path, _side(), list(SKILL), EnrichConfig(max_repeats=1000),
                                select.Budget(2.0), progress=False)
    assert time.monotonic() - t0 <= 1.2 * 2.0
    assert any(r["kind"] == "stop" and r["reason"] == "budget" for r in rows)


def test_ctrl_c_keeps_finished_fits_and_a_rerun_continues(tmp_path, fake_fit, monkeypatch):
    inner = select.fit_candidate

    def interrupted(*args, **kwargs):
        if len(fake_fit) == 3:
            raise KeyboardInterrupt
        return inner(*args, **kwargs)

    monkeypatch.setattr(select, "fit_candidate", interrupted)
    cfg = EnrichConfig(max_repeats=2, min_repeats=2)
    with pytest.raises(KeyboardInterrupt):
        select.run_selection(tmp_path, _side(), ["baseline", "classic"], cfg, select.Budget(600), progress=False)
    assert [(r["candidate"], r["repeat"]) for r in read_jsonl(tmp_path / select.RESULTS)] == [("baseline", 0),
                                                                                              ("classic", 0),
                                                                                              ("baseline", 1)]
    monkeypatch.setattr(select, "fit_candidate", inner)
    rows = select.run_selection(tmp_path, _side(), ["baseline", "classic"], cfg, select.Budget(600), progress=False)
    assert sorted((r["candidate"], r["repeat"]) for r in rows) == [("baseline", 0), ("baseline", 1), ("classic", 0),
                                                                   ("classic", 1)]
