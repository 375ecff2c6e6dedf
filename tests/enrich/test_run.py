"""End to end on a tiny class folder: budget, the single test read, the saved classifier, the outputs, resume."""
import json
import time

import numpy as np
import pytest

from enrich_helpers import tiny_config, write_folder
from tfaug.enrich import protocol
from tfaug.enrich.run import run_enrich

BUDGET_MIN = 1.5


@pytest.fixture(scope="module")
def enriched(tmp_path_factory):
    """One run (3 classes x 20 images of 8x8): (verdict, out, seconds, reads seen as (choice existed, count))."""
    root = tmp_path_factory.mktemp("enrich")
    data = write_folder(root / "data")
    out = root / "out"
    reads = []
    original = protocol.SealedTest.read

    def spy(self):
        reads.append((out / "choice.json").exists())  # the choice must be on disk before the test set is read
        return original(self)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(protocol.SealedTest, "read", spy)
        t0 = time.monotonic()
        verdict = run_enrich(f"folder:{data}", out, budget_minutes=BUDGET_MIN, cfg=tiny_config(), progress=False)
        seconds = time.monotonic() - t0
    return verdict, out, seconds, reads, data


def test_budget_is_kept_within_20_percent(enriched):
    verdict, out, seconds, _, _ = enriched
    assert seconds <= 1.2 * 60 * BUDGET_MIN
    assert verdict["budget"]["seconds_used"] <= 1.2 * 60 * BUDGET_MIN


def test_test_set_is_read_once_after_the_choice(enriched):
    verdict, out, _, reads, _ = enriched
    assert reads == [True]
    assert verdict["protocol"]["test_reads"] == 1 and "warning" not in verdict
    assert json.loads((out / "choice.json").read_text())["chosen"] == verdict["chosen"]


def test_claimed_test_accuracy_is_what_the_saved_classifier_scores(enriched):
    import tensorflow as tf

    verdict, out, _, _, _ = enriched
    split = np.load(out / "test_split.npz")
    model = tf.saved_model.load(str(out / verdict["outputs"]["classifier"]))
    probs = model.signatures["serving_default"](images=tf.constant(split["x"]))["probabilities"].numpy()
    assert probs.shape == (len(split["y"]), 3) and np.allclose(probs.sum(-1), 1, atol=1e-4)
    assert verdict["test"]["accuracy"]["mean"] == pytest.approx(np.mean(probs.argmax(-1) == split["y"]))
    from tfaug.export.savedmodel import read_metadata

    assert read_metadata(out / verdict["outputs"]["classifier"])["class_names"] == ["a", "b", "c"]
    proto = json.loads((out / "protocol.json").read_text())["protocol"]
    assert sorted(split["indices"].tolist()) == proto["test"]


def test_verdict_lists_every_candidate_and_the_protocol(enriched):
    verdict, out, _, _, _ = enriched
    on_disk = json.loads((out / "verdict.json").read_text())
    assert on_disk["chosen"] == verdict["chosen"]
    names = [c["candidate"] for c in on_disk["candidates"]]
    assert names == ["baseline", "classic", "cdcgan", "cdcgan+classic"]
    assert all(c["repeats"] >= 1 for c in on_disk["candidates"])  # generative candidates ran within the budget
    assert on_disk["protocol"]["name"] == "holdout" and on_disk["protocol"]["n_test"] == 18
    for key in ("accuracy", "macro_f1"):
        t = on_disk["test"][key]
        assert t["ci_low"] <= t["mean"] <= t["ci_high"]
    page = (out / "report.html").read_text()
    assert verdict["chosen"] in page and "data:image/png;base64," in page and "http" not in page.split("<pre>")[0]


def test_rerun_continues_without_refitting(enriched, monkeypatch):
    verdict, out, _, _, data = enriched
    from tfaug.enrich import select

    n_rows = len((out / "results.jsonl").read_text().splitlines())
    monkeypatch.setattr(select, "FINAL_OVERHEAD_S", 1e9)  # no new fit is affordable: everything must come from disk
    again = run_enrich(f"folder:{data}", out, budget_minutes=BUDGET_MIN, cfg=tiny_config(), progress=False)
    assert again["chosen"] == verdict["chosen"]
    scores = [json.loads(r) for r in (out / "results.jsonl").read_text().splitlines()]
    assert len([r for r in scores if r["kind"] == "score"]) == len([r for r in scores[:n_rows] if r["kind"] == "score"])
    assert again["protocol"]["test_reads"] == 2 and "warning" not in again  # the same choice read it again
    from tfaug.enrich import verdict as verdict_mod

    other = "classic" if verdict["chosen"] != "classic" else "baseline"
    monkeypatch.setattr(verdict_mod, "choose", lambda rows, cands: (other, "forced by the test"))
    third = run_enrich(f"folder:{data}", out, budget_minutes=BUDGET_MIN, cfg=tiny_config(), progress=False)
    assert verdict["chosen"] in third["warning"] and "no longer a single clean read" in third["warning"]
    assert "no longer a single clean read" in (out / "report.html").read_text()


def test_another_dataset_in_the_same_out_is_one_sentence(enriched):
    from tfaug.errors import TfaugError

    _, out, _, _, _ = enriched
    with pytest.raises(TfaugError, match="holds an enrich run of another dataset"):
        run_enrich("digits", out, budget_minutes=0.1, cfg=tiny_config(), progress=False)
