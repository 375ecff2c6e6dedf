"""The choice rule (validation only) and the test CIs."""
import numpy as np

from tfaug.enrich.verdict import bootstrap_ci, candidate_table, choose


def _rows(table):
    return [{"kind": "score", "candidate": c, "repeat": r, "accuracy": a, "macro_f1": a, "seconds": 1.0}
            for c, accs in table.items() for r, a in enumerate(accs)]


def test_generator_wins_only_with_a_paired_ci_above_zero():
    cands = ["baseline", "classic", "cdcgan"]
    clear = _rows({"baseline": [0.70, 0.72, 0.71], "classic": [0.80, 0.82, 0.78], "cdcgan": [0.85, 0.86, 0.84]})
    assert choose(clear, cands)[0] == "cdcgan"
    noisy = _rows({"baseline": [0.70, 0.72, 0.71], "classic": [0.80, 0.82, 0.78], "cdcgan": [0.95, 0.70, 0.84]})
    chosen, why = choose(noisy, cands)
    assert chosen == "classic" and "no enrichment beat it" in why


def test_table_reports_paired_delta_and_stops():
    rows = _rows({"classic": [0.8, 0.8, 0.9], "cdcgan": [0.7, 0.75, 0.8]})
    rows.append({"kind": "stop", "candidate": "cdcgan", "repeat": 2, "reason": "cannot win"})
    t = {r["candidate"]: r for r in candidate_table(rows, ["classic", "cdcgan"])}
    assert np.isclose(t["cdcgan"]["delta_vs_classic"]["mean"], -0.25 / 3)
    assert t["cdcgan"]["stopped"] == "cannot win" and t["classic"]["repeats"] == 3


def test_bootstrap_matches_sklearn_and_brackets_the_estimate():
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 200)
    p = np.where(rng.random(200) < 0.7, y, rng.integers(0, 4, 200))
    res = bootstrap_ci(y, p, 4, n=300)
    assert np.isclose(res["accuracy"]["mean"], np.mean(y == p))
    assert np.isclose(res["macro_f1"]["mean"], f1_score(y, p, average="macro"))
    for key in ("accuracy", "macro_f1"):
        assert res[key]["ci_low"] < res[key]["mean"] < res[key]["ci_high"]
