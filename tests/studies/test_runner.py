"""The study runner end to end on 8x8 digits: rows, report, leakage of every trained model, resume."""
import json
from pathlib import Path

import numpy as np
import pytest

from tfaug.errors import TfaugError
from tfaug.studies import runner
from tfaug.studies.config import study_from_dict
from tfaug.studies.runner import run_study
from tfaug.utils.io import read_json, read_jsonl

TINY = {
    "dataset": "digits",
    "test": {"per_class": 20},
    "classifier": {"name": "lenet5", "steps": 12, "batch_size": 16},  # the cheapest network to build
    "generator": {"steps": 10, "width": 8, "batch_size": 16, "z_dim": 16, "sample_every": 0, "checkpoint_every": 0},
    "methods": {"m": 8, "L": 2, "N": 2, "model": "cdcgan", "encoder_steps": 10, "latent_dim": 4},
    "repeats": 1,
    "seed": 3,
}
COLUMNS = ("dataset", "setting", "strategy", "repeat", "seed", "accuracy", "macro_f1", "per_class_recall",
           "per_class_f1", "n", "predicted_classes", "degenerate", "n_real", "n_duplicates", "n_extra_real",
           "n_synthetic", "n_rejected", "generator_seconds", "train_seconds", "wall_seconds")


def study(**changes):
    return study_from_dict({**TINY, **changes})


def model_runs(out: Path):
    """(run directory, its recorded training indices) for every generator/encoder run, plus judge records."""
    runs = [(p.parent, read_json(p)["data"]["train_indices"]) for p in out.glob("generators/**/config.json")]
    runs += [(p, read_json(p)["train_indices"]) for p in out.glob("generators/**/judge*.json")]
    return runs


def split_of(out: Path, setting: str, repeat: int) -> dict:
    return read_json(out / "splits" / f"{setting}_r{repeat}.json")


def assert_no_leak(out: Path, scope_settings: dict):
    """Every model trained in ``out`` saw a subset of its cell's generator_train, nothing of test/test_large."""
    runs = model_runs(out)
    assert runs
    for run, indices in runs:
        rel = run.relative_to(out / "generators").parts
        scope, rep = rel[0], int(rel[1][1:])
        for setting in scope_settings[scope]:
            split = split_of(out, setting, rep)
            assert set(indices) <= set(split["generator_train"]), run
            held = set(split["test"]) | set(split["test_large"] or []) | set(split.get("validation") or [])
            assert not set(indices) & held, run


def test_end_to_end_digits(tmp_path):
    strategies = ["baseline", "cdcgan+classic+filter:variance", "curriculum", "source-flag", "m2"]
    cfg = study(name="e2e", per_class=[5], strategies=strategies,
                generator_metrics=["kid", "copies", "ssim", "consistency"])
    out = tmp_path / "study"
    res = run_study(cfg, out, progress=False)
    rows = read_jsonl(out / "results.jsonl")
    assert [r["strategy"] for r in rows] == strategies
    for r in rows:
        assert set(COLUMNS) <= set(r), set(COLUMNS) - set(r)
        assert r["n"] == 200 and len(r["per_class_recall"]) == 10 and 0.0 <= r["accuracy"] <= 1.0
        assert r["setting"] == "k=5" and r["seed"] == 3 and r["dataset"] == "digits"
    by = {r["strategy"]: r for r in rows}
    assert by["baseline"]["n_real"] == 50 and by["baseline"]["n_synthetic"] == 0
    assert by["curriculum"]["n_synthetic"] == 50 and by["source-flag"]["n_synthetic"] == 50
    gen_row = by["cdcgan+classic+filter:variance"]
    assert gen_row["n_synthetic"] + gen_row["n_rejected"] >= 50
    for name in ("cdcgan+classic+filter:variance", "curriculum", "m2"):
        assert {"gen_kid", "gen_copies", "gen_ssim", "gen_consistency"} <= set(by[name]), name
    assert "gen_kid" not in by["baseline"]
    # one generator per cell draw, shared by the strategies that use it; the encoder of m2, the judge and the
    # draw's classic-augmentation choice too
    runs = {p.name for p in (out / "generators" / "k=5" / "r0").iterdir()}
    assert runs == {"cdcgan", "encoder-vae", "judge.json", "augment.json"}
    assert_no_leak(out, {"k=5": ["k=5"]})
    split = split_of(out, "k=5", 0)
    assert split["train"] == split["generator_train"] and len(split["train"]) == 50
    assert not set(split["train"]) & set(split["test"]) and not set(split["pool"]) & set(split["test"])
    for f in ("results.csv", "summary.csv", "summary.md", "accuracy.png", "recall.png", "study.json", "timing.json",
              "samples/k=5_cdcgan.png"):
        assert (out / f).exists(), f
    assert len(res.summary) == len(strategies) and len(res.rows) == len(strategies)
    timing = read_json(out / "timing.json")
    assert timing["wall_seconds"] > 0 and timing["machine"]["cpu_count"] >= 1
    assert "samples/k=5_cdcgan.png" in (out / "summary.md").read_text()


def test_imbalance_and_grid_regimes_train_generators_on_their_draws(tmp_path):
    imb = study(name="imb", imbalance={"minority": 1, "keep": [0.5], "per_class": 4}, strategies=["m1"],
                test={"per_class": 10, "validation_per_class": 5})
    out = tmp_path / "imb"
    row = run_study(imb, out, progress=False).rows[0]
    assert row["setting"] == "minority=1,keep=0.5" and "minority_f1" in row and row["n_real"] == 38
    assert 0.0 <= row["val_accuracy"] <= 1.0 and "val_balanced_accuracy" in row  # 5 per class, never trained on
    assert all(0.0 <= row[f"{g}_accuracy"] <= 1.0 for g in ("head", "middle", "tail"))  # thirds by training count
    split = split_of(out, "minority=1,keep=0.5", 0)
    assert len(split["train"]) == 38 and split["generator_train"] == split["train"]
    assert len(split["validation"]) == 50 and not set(split["validation"]) & (set(split["pool"]) | set(split["test"]))
    assert_no_leak(out, {"minority=1,keep=0.5": ["minority=1,keep=0.5"]})

    grid = study(name="grid", grid={"real": [30, 10], "synthetic": [20]}, strategies=["m1"],
                 test={"per_class": 10, "large_per_class": 15})
    out = tmp_path / "grid"
    rows = run_study(grid, out, progress=False).rows
    assert [r["setting"] for r in rows] == ["real=30,synthetic=20", "real=10,synthetic=20"]
    assert all(r["n"] == 100 and "accuracy_large" in r for r in rows)
    # one generator per repeat, shared by all grid settings, trained on the largest real draw
    assert [p.name for p in (out / "generators").iterdir()] == ["grid"]
    big, small = split_of(out, "real=30,synthetic=20", 0), split_of(out, "real=10,synthetic=20", 0)
    assert big["generator_train"] == small["generator_train"] == big["train"]
    assert set(small["train"]) < set(big["train"]) and len(small["train"]) == 10
    assert set(big["test"]) < set(big["test_large"])
    assert_no_leak(out, {"grid": ["real=30,synthetic=20", "real=10,synthetic=20"]})
    info = read_json(out / "generators" / "grid" / "r0" / "cdcgan" / "config.json")["data"]
    assert info["train_indices"] == big["generator_train"]


def _interrupt_after(monkeypatch, n: int):
    real = runner._State.run_cell
    calls = {"n": 0}

    def run_cell(self, cell):
        calls["n"] += 1
        if calls["n"] > n:
            raise KeyboardInterrupt
        return real(self, cell)

    monkeypatch.setattr(runner._State, "run_cell", run_cell)
    return calls


def _table(path: Path) -> list[str]:
    """results.csv without the wall-time columns."""
    import csv

    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return [{k: v for k, v in r.items() if k not in runner.TIME_FIELDS} for r in rows]


def test_interrupted_study_resumes_to_the_same_table_and_added_repeats_run_alone(tmp_path, monkeypatch):
    cfg = study(name="resume", per_class=[3], strategies=["m1", "m3", "cdcgan"])
    run_study(cfg, tmp_path / "a", progress=False)

    out = tmp_path / "b"
    _interrupt_after(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        run_study(cfg, out, progress=False)
    assert [r["strategy"] for r in read_jsonl(out / "results.jsonl")] == ["m1", "m3"]
    monkeypatch.undo()
    run_study(cfg, out, progress=False)
    assert len(read_jsonl(out / "results.jsonl")) == 3
    assert _table(out / "results.csv") == _table(tmp_path / "a" / "results.csv")

    calls = _interrupt_after(monkeypatch, 10)
    more = study(name="resume", per_class=[3], strategies=["m1", "m3", "cdcgan"], repeats=2)
    res = run_study(more, out, progress=False)
    assert calls["n"] == 3  # only repeat 1's cells ran
    assert [(r["strategy"], r["repeat"]) for r in res.rows] == [("m1", 0), ("m3", 0), ("cdcgan", 0),
                                                                 ("m1", 1), ("m3", 1), ("cdcgan", 1)]
    assert split_of(out, "k=3", 0)["train"] != split_of(out, "k=3", 1)["train"]
    assert read_json(out / "study.json")["repeats"] == 2


def test_other_study_in_out_is_refused_before_training(tmp_path, monkeypatch):
    out = tmp_path / "s"
    out.mkdir()
    cfg = study(name="x", per_class=[3], strategies=["baseline"])
    (out / "study.json").write_text(json.dumps(runner.study_config.as_dict(cfg)))
    monkeypatch.setattr(runner._State, "run_cell", lambda *a: pytest.fail("trained despite a config mismatch"))
    with pytest.raises(TfaugError, match="'seed' differs.*another --out"):
        run_study(study(name="x", per_class=[3], strategies=["baseline"], seed=4), out, progress=False)
    with pytest.raises(TfaugError, match="'strategies' differs"):
        run_study(study(name="x", per_class=[3], strategies=["classic"]), out, progress=False)


def test_cross_validation_protocols(tmp_path, monkeypatch):
    """Group-aware CV trains per source fold on the fold's originals only; naive CV splits the enriched mix."""
    from tfaug.studies import cv

    seen, crossing = [], []
    real_train = runner._State.train

    def train(self, mix, seed, rows=None):
        groups = mix.groups if rows is None else mix.groups[rows]
        seen.append(set(int(g) for g in groups if g >= 0))
        if rows is not None:
            val = np.setdiff1d(np.arange(len(mix.groups)), rows)
            crossing.append(len(cv.crossing_groups(mix.groups, rows, val)))
        return real_train(self, mix, seed, rows)

    monkeypatch.setattr(runner._State, "train", train)
    aware = study(name="cv", per_class=[4], strategies=["bootstrap"], cv={"folds": 2, "group_aware": True},
                  classifier={"name": "lenet5", "steps": 5, "batch_size": 16})
    row = run_study(aware, tmp_path / "aware", progress=False).rows[0]
    assert row["n_duplicates"] == 3 * row["n_real"]  # bootstrap x4 (S1)
    assert row["cv_protocol"] == "group_aware" and len(row["cv_folds"]) == 2
    assert row["cv_accuracy"] == pytest.approx(np.mean(row["cv_folds"]))
    train = set(split_of(tmp_path / "aware", "k=4", 0)["train"])
    main, folds = seen[0], seen[1:]
    assert main == train and len(folds) == 2
    assert not folds[0] & folds[1] and folds[0] | folds[1] == train  # each original validated exactly once

    seen.clear()
    naive = study(name="cv", per_class=[4], strategies=["bootstrap"], cv={"folds": 2, "group_aware": False},
                  classifier={"name": "lenet5", "steps": 5, "batch_size": 16})
    row = run_study(naive, tmp_path / "naive", progress=False).rows[0]
    assert row["cv_protocol"] == "naive" and len(row["cv_folds"]) == 2
    assert len(seen) == 3 and min(crossing) > 0  # duplicates put one source on both sides: the leak


def test_a_study_written_before_a_config_field_existed_resumes(tmp_path):
    """study.json of an earlier version lacks fields added since (GANConfig.class_balanced): their defaults keep
    the old behaviour, so the study resumes; a non-default value is still a different study."""
    import dataclasses

    from tfaug.config import ClassifierConfig, GANConfig, to_dict

    record = {"name": "s", "generator": to_dict(GANConfig()), "classifier": to_dict(ClassifierConfig()),
              "strategies": ["classic"], "settings": ["a"], "repeats": 1}
    old = json.loads(json.dumps(record))
    del old["generator"]["class_balanced"]
    (tmp_path / "study.json").write_text(json.dumps(old))
    runner._check_or_write_study(tmp_path, record)  # no error
    changed = {**record, "generator": to_dict(dataclasses.replace(GANConfig(), class_balanced=True))}
    (tmp_path / "study.json").write_text(json.dumps(old))
    with pytest.raises(TfaugError, match="'generator' differs"):
        runner._check_or_write_study(tmp_path, changed)
