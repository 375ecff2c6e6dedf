"""The demo (a preset study run by run_study) end to end in its quick form: table, report, plots, export; an
interrupted demo resumes."""
import dataclasses
import json

import pytest

from tfaug.errors import TfaugError
from tfaug.studies.demo import DemoConfig, run_demo
from tfaug.utils.io import read_jsonl


def test_quick_demo_writes_report_and_resumes(tmp_path):
    # Two strategies (the classic control and the generator) over the quick config's 2 repeats: every demo path
    # (per-repeat generator, report vs classic, export, resume) runs; each strategy's own mix is tested elsewhere.
    # The classifiers are LeNet-5s (the cheapest network to build: the control's preset choice trains up to 6 per
    # repeat).
    quick = DemoConfig.quick()
    cfg = DemoConfig.quick(per_class=5, test_fraction=0.3, strategies=("classic", "cdcgan"),
                           gan=dataclasses.replace(quick.gan, steps=20),
                           classifier=dataclasses.replace(quick.classifier, name="lenet5", steps=10))
    out = tmp_path / "demo"
    res = run_demo(cfg, out, saved_models=str(tmp_path / "sm"), progress=False)
    names = [e["strategy"] for e in res.summary]
    assert names == list(cfg.strategies)
    assert all(e["repeats"] == 2 for e in res.summary)
    for f in ("results.csv", "results.jsonl", "summary.csv", "report.md", "accuracy.png", "samples.png"):
        assert (out / f).exists(), f
    rows = read_jsonl(out / "results.jsonl")
    assert len(rows) == 4 and {r["n_real"] for r in rows} == {50}
    assert {r["n_synthetic"] for r in rows if r["strategy"].startswith("cdcgan")} == {50}
    # Leakage-safe: each repeat's generator trained on that repeat's draw only, and the test set is shared.
    for rep in (0, 1):
        info = json.loads((out / "generators" / "k=5" / f"r{rep}" / "cdcgan" / "config.json").read_text())["data"]
        assert info["repeat"] == rep and len(info["train_indices"]) == 50
        split = json.loads((out / "splits" / f"k=5_r{rep}.json").read_text())
        assert sorted(info["train_indices"]) == sorted(split["train"]) and not set(split["train"]) & set(split["test"])
    assert res.export_path is not None and (res.export_path / "saved_model.pb").exists()
    assert "Δ accuracy vs classic" in (out / "report.md").read_text()

    # Simulate an interruption: drop the last two cells (repeat 1's); rerunning only recomputes those.
    lines = (out / "results.jsonl").read_text().splitlines()
    (out / "results.jsonl").write_text("\n".join(lines[:-2]) + "\n")
    again = run_demo(cfg, out, saved_models=str(tmp_path / "sm"), progress=False)
    assert again.export_path == res.export_path.resolve()  # a rerun does not publish a second version
    assert sorted(p.name for p in (tmp_path / "sm" / cfg.export_name).iterdir()) == ["1"]
    assert len(read_jsonl(out / "results.jsonl")) == 4
    kept = {(r["strategy"], r["repeat"]): r["accuracy"] for r in again.rows}
    first = {(r["strategy"], r["repeat"]): r["accuracy"] for r in res.rows}
    assert all(kept[k] == first[k] for k in list(first)[:2])

    with pytest.raises(TfaugError, match="other settings"):
        run_demo(DemoConfig.quick(per_class=4), out, saved_models=None, progress=False)
    old = tmp_path / "old-demo"  # results of an older demo (no study.json): never mixed with this one's rows
    old.mkdir()
    (old / "results.jsonl").write_text(lines[0] + "\n")
    with pytest.raises(TfaugError, match="other settings"):
        run_demo(cfg, old, saved_models=None, progress=False)
    assert not (old / "study.json").exists()
