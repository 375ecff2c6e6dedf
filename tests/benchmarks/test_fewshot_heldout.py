"""The held-out-class few-shot benchmark: its data protocol, its work sharing, and the shipped config's quick run
end to end (pretrain phase alone, then every cell, then a rerun that skips everything), plus the results_doc
option that puts its section into docs/RESULTS.md."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "benchmarks" / "configs" / "fewshot-heldout-mnist.yaml"


def _load(name: str, folder: str = "benchmarks"):
    """Import ``<folder>/<name>.py`` (benchmarks/ and scripts/ are not packages)."""
    path = str(ROOT / folder)
    if path not in sys.path:
        sys.path.insert(0, path)
    return __import__(name)


def test_splits_are_disjoint_nested_and_leave_the_held_out_class_out_of_pretraining():
    fh = _load("fewshot_heldout")
    cfg = fh.load_config(CONFIG)  # the full protocol: MNIST-sized classes, k = 5, 10, 30
    labels = np.repeat(np.arange(10), 120)
    cfg = {**cfg, "judge_per_class": 30, "pretrain_per_class": 20}
    sp = fh.make_splits(labels, 10, cfg)
    assert len(sp.judge) == 300 and sorted(set(labels[sp.judge])) == list(range(10))
    for h in cfg["held_out"]:
        assert h not in set(labels[sp.pretrain[h]]) and len(sp.pretrain[h]) == 9 * 20
        assert set(labels[sp.adapt[h]]) == {h} and len(sp.adapt[h]) == max(cfg["k"]) == 30
        assert set(labels[sp.unseen[h]]) == {h} and len(sp.unseen[h]) == 120 - 30 - 30 - 20
        for a, b in [(sp.judge, sp.unseen[h]), (sp.adapt[h], sp.unseen[h]), (sp.judge, sp.adapt[h]),
                     (sp.judge, sp.pretrain[h]), *[(sp.pretrain[g], sp.unseen[h]) for g in cfg["held_out"]]]:
            assert not set(a) & set(b)  # unseen images are outside every generator's training set
    # the same seed gives the same draws; the k = 5 draw is the start of the k = 30 draw by construction
    again = fh.make_splits(labels, 10, cfg)
    assert all(np.array_equal(sp.adapt[h], again.adapt[h]) for h in cfg["held_out"])
    other = fh.make_splits(labels, 10, {**cfg, "seed": 1})
    assert not np.array_equal(sp.adapt[2], other.adapt[2])
    from tfaug.errors import TfaugError

    with pytest.raises(TfaugError, match="class 0 has 120 images; this config needs 150"):
        fh.make_splits(labels, 10, {**cfg, "judge_per_class": 100})


def test_claims_exclude_live_holders_and_take_over_dead_ones(tmp_path):
    fh = _load("fewshot_heldout")
    claims = fh.Claims(tmp_path)
    with claims.claim("a") as mine:
        assert mine
        with fh.Claims(tmp_path).claim("a") as again:  # held (by this very process)
            assert not again
    assert not list((tmp_path / "claims").iterdir())  # released
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    try:
        host = claims.me.split()[0]
        (tmp_path / "claims" / "b.claim").write_text(f"{host} {live.pid}")
        (tmp_path / "claims" / "c.claim").write_text(f"{host} {int(dead.stdout)}")
        with claims.claim("b") as mine:
            assert not mine
        with claims.claim("c") as mine:
            assert mine and (tmp_path / "claims" / "c.claim").read_text() == claims.me
    finally:
        live.kill()
        live.wait()


def test_config_errors_are_one_sentence(tmp_path, capsys):
    fh = _load("fewshot_heldout")
    bad = tmp_path / "bad.yaml"
    bad.write_text(CONFIG.read_text().replace("held_out: [2, 5, 9]", "held_out: [2, 5, 9]\nrepeats: 3"))
    assert fh.main(["--config", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "unknown key 'repeats' in the config" in capsys.readouterr().err
    missing = tmp_path / "missing.yaml"
    missing.write_text(CONFIG.read_text().replace("/work/shared/data/mnist10k.npz", str(tmp_path / "none.npz")))
    assert fh.main(["--config", str(missing), "--out", str(tmp_path / "o2"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "none.npz is missing" in err and "Traceback" not in err
    assert [line for line in err.splitlines() if line.startswith("error:")] == [err.strip().splitlines()[-1]]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """The shipped config's quick block: pretrain phase alone, then everything, then a rerun."""
    fh = _load("fewshot_heldout")
    out = tmp_path_factory.mktemp("heldout") / "run"
    base = ["--config", str(CONFIG), "--quick", "--out", str(out), "--no-progress"]
    assert fh.main([*base, "--phase", "pretrain"]) == 0
    after_pretrain = sorted(p.name for p in out.iterdir())
    assert fh.main(base) == 0
    first = (out / "results.jsonl").read_text()
    stamps = {p: p.stat().st_mtime_ns for p in (out / "cells").iterdir()}
    assert fh.main(base) == 0
    return {"fh": fh, "out": out, "after_pretrain": after_pretrain, "first": first, "stamps": stamps}


def test_pretrain_phase_trains_only_the_base_generator(quick_run):
    out = quick_run["out"]
    assert "pretrain" in quick_run["after_pretrain"] and "results.jsonl" not in quick_run["after_pretrain"]
    config = json.loads((out / "pretrain" / "heldout-3" / "config.json").read_text())
    assert config["data"]["class_names"] == ["0", "1", "2", "4", "5", "6", "7", "8", "9"]
    assert config["kind"] == "stylegan" and config["gan"]["steps"] == 4


def test_quick_run_scores_every_cell_in_range(quick_run):
    out = quick_run["out"]
    rows = {r["id"]: r for r in map(json.loads, quick_run["first"].splitlines())}
    assert set(rows) == {"h3-reference", "h3-k3-svd", "h3-k3-scratch"}
    for cid in ("h3-k3-svd", "h3-k3-scratch"):
        r = rows[cid]
        assert 0.0 <= r["consistency"] <= 1.0 and 0.0 <= r["copies"] <= 1.0 and 0.0 <= r["copies_pixel"] <= 1.0
        assert np.isfinite(r["kid"]) and r["kid"] > -0.05 and r["n_eval"] == 24 and r["k"] == 3
        assert r["seconds"] > 0 and r["trainable_parameters"] > 0
        assert (out / "grids" / f"{cid}.png").stat().st_size > 1000
    # svd trains only singular values (and the new embedding row): far fewer scalars than a whole generator
    assert rows["h3-k3-svd"]["trainable_parameters"] < rows["h3-k3-scratch"]["trainable_parameters"] / 5
    ref = rows["h3-reference"]
    assert 0.0 <= ref["pretrain_consistency"] <= 1.0 and ref["pretrain_steps"] == 4 and ref["n_unseen"] > 100
    md = (out / "results.md").read_text()
    for cid, method in (("h3-k3-svd", "svd"), ("h3-k3-scratch", "scratch")):
        assert f"| {method} | 3 | {rows[cid]['consistency']:.3f} | {rows[cid]['kid']:.4f} |" in md
    assert "Commands:" in md and "--quick" in md and "CPU cores" in md
    data = json.loads((out / "results.json").read_text())
    assert [(s["method"], s["k"]) for s in data["summary"]] == [("svd", 3), ("scratch", 3)]
    assert "](grids/overview-h3.png)" in (out / "section.md").read_text()


def test_rerun_skips_finished_cells_and_another_config_is_refused(quick_run, tmp_path, capsys):
    out = quick_run["out"]
    assert (out / "results.jsonl").read_text() == quick_run["first"]
    assert {p: p.stat().st_mtime_ns for p in (out / "cells").iterdir()} == quick_run["stamps"]
    assert not list((out / "claims").iterdir())
    other = tmp_path / "other.yaml"
    other.write_text(CONFIG.read_text().replace("eval: {n: 24,", "eval: {n: 30,"))
    fh = quick_run["fh"]
    capsys.readouterr()
    assert fh.main(["--config", str(other), "--quick", "--out", str(out), "--no-progress"]) == 2
    assert "differs in: eval" in capsys.readouterr().err


def test_results_doc_puts_the_section_in_place(quick_run, tmp_path):
    rd = _load("results_doc", "scripts")
    doc = tmp_path / "docs" / "RESULTS.md"
    doc.parent.mkdir()
    doc.write_text("# tfaug results\n\n## s3 — kept as is\n")
    section = str(quick_run["out"] / "section.md")
    for _ in range(2):  # the second run replaces the block instead of adding one
        assert rd.main(["--section", f"fewshot-heldout={section}", "--out", str(doc)]) == 0
    text = doc.read_text()
    assert text.startswith("# tfaug results\n\n## s3 — kept as is\n") and text.count("<!-- section: fewshot-heldout -->") == 1
    assert "](results/fewshot-heldout/overview-h3.png)" in text
    assert (doc.parent / "results" / "fewshot-heldout" / "overview-h3.png").is_file()
    assert rd.main(["--section", f"fewshot-heldout={section}", "--out", str(tmp_path / "none.md")]) == 2
