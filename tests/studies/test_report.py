import csv

import pytest

from tfaug.studies.report import bar_chart, markdown_table, summarize, write_csv


def _rows():
    rows = []
    for r, (b, c) in enumerate([(0.80, 0.85), (0.70, 0.78), (0.75, 0.80)]):
        rows.append({"strategy": "baseline", "repeat": r, "accuracy": b, "macro_f1": b - 0.01,
                     "per_class_recall": [b, b]})
        rows.append({"strategy": "classic", "repeat": r, "accuracy": c, "macro_f1": c - 0.01,
                     "per_class_recall": [c, c], "degenerate": False})
    return rows


def test_summary_paired_difference_and_table(tmp_path):
    s = summarize(_rows(), ["baseline", "classic"])
    base = s[0]
    assert base["repeats"] == 3
    assert base["accuracy_mean"] == pytest.approx(0.75)
    assert base["accuracy_diff_vs_classic"] == pytest.approx(-(0.05 + 0.08 + 0.05) / 3)
    assert "accuracy_diff_vs_classic" not in s[1]
    table = markdown_table(s)
    assert "| baseline | 3 | 0.750 ±" in table and "-0.060" in table
    bar_chart(tmp_path / "a.png", s, "t")
    assert (tmp_path / "a.png").read_bytes()[:4] == b"\x89PNG"


def test_csv_expands_per_class_columns(tmp_path):
    write_csv(tmp_path / "r.csv", _rows(), class_names=["cat", "dog"])
    with open(tmp_path / "r.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6 and "recall_cat" in rows[0] and "recall_dog" in rows[0]


# -- studies ---------------------------------------------------------------------------------------------------

import json
import math
import statistics

from tfaug.errors import TfaugError
from tfaug.studies.report import results_document, summarize_study, write_study_report
from tfaug.utils.io import append_jsonl, write_json

T975_DF2 = 4.302652729911275  # Student t quantile, 97.5%, 2 degrees of freedom
T975_DF1 = 12.706204736174707


def _study_rows():
    """k=1 and k=10, baseline/classic/cdcgan, 3 repeats (classic lacks repeat 2 at k=10), 2 classes."""
    acc = {("k=1", "baseline"): [0.50, 0.60, 0.70], ("k=1", "classic"): [0.55, 0.70, 0.72],
           ("k=1", "cdcgan"): [0.50, 0.50, 0.66], ("k=10", "baseline"): [0.80, 0.82, 0.90],
           ("k=10", "classic"): [0.85, 0.86], ("k=10", "cdcgan"): [0.84, 0.80, 0.88]}
    rows = []
    for (setting, strategy), values in acc.items():
        for r, a in enumerate(values):
            rows.append({"dataset": "toy", "setting": setting, "strategy": strategy, "repeat": r, "seed": r,
                         "accuracy": a, "macro_f1": a - 0.02, "per_class_recall": [a, 1.0 - a],
                         "per_class_f1": [a, a], "n": 20, "predicted_classes": 1 if a == 0.50 else 2,
                         "degenerate": a == 0.50, "minority_f1": None if r == 2 else a / 2,
                         "cv_accuracy": a + 0.1, "cv_folds": [a + 0.05, a + 0.15]})
    return rows


def test_summarize_study_means_cis_and_paired_differences():
    rows = _study_rows()
    rows.append(dict(rows[0], accuracy=0.9))  # a resumed cell: the later row wins ...
    rows.append(dict(rows[0]))                # ... and here it is the original again
    s = summarize_study(rows, ["k=1", "k=10"], ["baseline", "classic", "cdcgan"])
    by = {(e["setting"], e["strategy"]): e for e in s}
    assert [(e["setting"], e["strategy"]) for e in s][:3] == [("k=1", "baseline"), ("k=1", "classic"), ("k=1", "cdcgan")]
    base = by[("k=1", "baseline")]
    assert base["repeats"] == 3 and base["values"] == [0.50, 0.60, 0.70]
    assert base["accuracy_mean"] == pytest.approx(0.6)
    assert base["accuracy_ci95"] == pytest.approx(T975_DF2 * 0.1 / math.sqrt(3))
    # paired differences to classic: (-0.05, -0.10, -0.02)
    d = [-0.05, -0.10, -0.02]
    assert base["accuracy_diff_vs_classic"] == pytest.approx(sum(d) / 3)
    assert base["accuracy_diff_vs_classic_ci95"] == pytest.approx(T975_DF2 * statistics.stdev(d) / math.sqrt(3))
    # minority F1 is None in repeat 2: ignored (2 values), and the paired difference uses repeats 0 and 1 only
    assert base["minority_f1_mean"] == pytest.approx(0.275)
    assert base["minority_f1_diff_vs_classic"] == pytest.approx((-0.025 - 0.05) / 2)
    assert base["minority_f1_diff_vs_classic_ci95"] == pytest.approx(T975_DF1 * statistics.stdev([-0.025, -0.05]) / math.sqrt(2))
    # at k=10 classic has repeats 0 and 1 only: the difference pairs the same repeats, never repeat 2
    b10 = by[("k=10", "baseline")]
    assert b10["accuracy_diff_vs_classic"] == pytest.approx(((0.80 - 0.85) + (0.82 - 0.86)) / 2)
    assert by[("k=10", "classic")]["repeats"] == 2
    assert "accuracy_diff_vs_classic" not in by[("k=1", "classic")]
    assert by[("k=1", "cdcgan")]["degenerate"] == 2 and base["degenerate"] == 1
    assert by[("k=1", "cdcgan")]["cv_accuracy_mean"] == pytest.approx((0.6 + 0.6 + 0.76) / 3)
    assert base["per_class_recall_mean"] == pytest.approx([0.6, 0.4])
    assert "gen_kid_mean" not in base  # absent metrics are not invented


def test_summarize_study_single_repeat_has_nan_interval_and_no_reference():
    rows = [r for r in _study_rows() if r["repeat"] == 0 and r["strategy"] != "classic"]
    s = summarize_study(rows, ["k=1"], ["baseline", "cdcgan"], reference="classic")
    assert len(s) == 2 and math.isnan(s[0]["accuracy_ci95"]) and s[0]["accuracy_mean"] == 0.5
    assert not any(k.endswith("_diff_vs_classic") for k in s[0])


def test_write_study_report_files(tmp_path):
    rows = _study_rows()[::-1]  # written in any order, reported in settings/repeat/strategy order
    grid = tmp_path / "samples" / "k=1_cdcgan.png"
    summary = write_study_report(tmp_path, name="toy study", dataset="toy", rows=rows, settings=["k=1", "k=10"],
                                 strategies=["baseline", "classic", "cdcgan"], class_names=["cat", "dog"],
                                 notes=["Test set: 10 per class."], sample_grids={"k=1 / cdcgan": str(grid)})
    assert len(summary) == 6
    with open(tmp_path / "results.csv") as f:
        table = list(csv.DictReader(f))
    assert {"recall_cat", "recall_dog", "f1_cat", "f1_dog"} <= set(table[0])
    assert "per_class_recall" not in table[0] and table[0]["cv_folds"] == "0.55;0.65"
    order = [(r["setting"], r["repeat"], r["strategy"]) for r in table]
    assert order[:4] == [("k=1", "0", "baseline"), ("k=1", "0", "classic"), ("k=1", "0", "cdcgan"), ("k=1", "1", "baseline")]
    assert float(table[0]["recall_dog"]) == pytest.approx(0.5)
    with open(tmp_path / "summary.csv") as f:
        assert len(list(csv.DictReader(f))) == 6
    md = (tmp_path / "summary.md").read_text()
    assert md.startswith("# toy study") and "- Test set: 10 per class." in md
    assert "### k=1" in md and "### k=10" in md and "Δ acc vs classic" in md and "minority F1" in md
    assert "cdcgan ⚠ degenerate in 2/3" in md and "CV acc." in md
    assert "| baseline ⚠ degenerate in 1/3 | 3 | 0.600 ± 0.248 |" in md
    for png in ("accuracy.png", "recall.png", "cv_vs_test.png", "minority_f1.png"):
        assert f"]({png})" in md and (tmp_path / png).read_bytes()[:4] == b"\x89PNG"
    assert "](samples/k=1_cdcgan.png)" in md


def _fake_run(path, name, settings, strategies, rows, timing=None):
    write_json(path / "study.json", {"name": name, "dataset": "npz:../shared/data/mnist10k.npz",
                                     "settings": [{"name": s, "kind": "per_class"} for s in settings],
                                     "strategies": strategies, "repeats": 3, "test": {"per_class": 100}, "cv": None})
    for r in rows:
        append_jsonl(path / "results.jsonl", r)
    if timing:
        write_json(path / "timing.json", timing)
    (path / "samples").mkdir()
    (path / "samples" / "k=1_gan-bank.png").write_bytes(b"\x89PNG fake")


def test_results_document_on_two_fake_study_dirs(tmp_path):
    s3, s1 = tmp_path / "runs" / "s3", tmp_path / "runs" / "s1"
    s3.mkdir(parents=True), s1.mkdir(parents=True)
    rows3 = [dict(r, strategy={"baseline": "m2", "classic": "classic", "cdcgan": "disc-bank"}[r["strategy"]])
             for r in _study_rows()]
    _fake_run(s3, "S3 toy", ["k=1", "k=10"], ["disc-bank", "m2", "classic"], rows3,
              timing={"wall_seconds": 3661.2, "command": "tfaug study configs/s3-mnist.yaml --out runs/s3",
                      "machine": {"platform": "Linux", "cpu_count": 2, "tensorflow": "2.21.0", "python": "3.12"}})
    rows1 = [dict(r, setting="k=70") for r in _study_rows() if r["setting"] == "k=1"]
    _fake_run(s1, "S1 toy", ["k=70"], ["baseline", "classic", "cdcgan"], rows1)
    out = tmp_path / "docs" / "RESULTS.md"
    results_document({"s3": s3, "s1-naive": s1}, out, command="python scripts/results_doc.py --study s3=runs/s3")
    doc = out.read_text()
    assert doc.index("## s3 — S3 toy") < doc.index("## s1-naive — S1 toy")
    assert "`tfaug study configs/s3-mnist.yaml --out runs/s3`" in doc and "1 h 01 min" in doc and "2 CPU cores" in doc
    assert "python scripts/results_doc.py --study s3=runs/s3" in doc
    # published beside ours: S3's M2 at k=1 is 44.6%; ours (m2 = the fake baseline rows) 60.0%
    assert "| k=1 | m2 | M2 | 44.6% | 60.0 ± 24.8% | +15.4 pts |" in doc
    assert "| k=1 | disc-bank | discriminator bank | 38.2% |" in doc and "| 61.2% |" in doc
    assert "**best published: M2** | 67.4% | 85.5 ± 6.4% | +18.1 pts |" in doc  # best at k=10: classic vs M2
    assert "89.3%" not in doc  # k=100 was not run
    assert "0.590" in doc and "0.894" in doc and "~0.50" in doc
    links = [line.split("](")[1].rstrip(")") for line in doc.splitlines() if line.startswith("![")]
    assert "results/s3/accuracy.png" in links and "results/s3/k=1_gan-bank.png" in links
    assert "results/s1-naive/cv_vs_test.png" in links
    assert all((out.parent / link).is_file() for link in links)


def test_results_document_rejects_a_directory_without_a_study(tmp_path):
    with pytest.raises(TfaugError, match="no study.json"):
        results_document({"s3": tmp_path}, tmp_path / "R.md")
    write_json(tmp_path / "study.json", {"name": "x", "settings": [], "strategies": []})
    with pytest.raises(TfaugError, match="no results"):
        results_document({"s3": tmp_path}, tmp_path / "R.md")


def test_results_doc_script(tmp_path, capsys):
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("results_doc", Path(__file__).parents[2] / "scripts" / "results_doc.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    run = tmp_path / "run"
    run.mkdir()
    rows = [r for r in _study_rows() if r["setting"] == "k=1"]
    _fake_run(run, "toy", ["k=1"], ["baseline", "classic"], rows)
    out = tmp_path / "docs" / "RESULTS.md"
    assert script.main(["--study", f"s5={run}", "--out", str(out)]) == 0
    assert "## s5 — toy" in out.read_text()
    preface = tmp_path / "preface.md"
    preface.write_text("Runs made two at a time.\n")
    assert script.main(["--study", f"s5={run}", "--out", str(out), "--preface", str(preface)]) == 0
    text = out.read_text()
    assert text.index("Runs made two at a time.") < text.index("## s5 — toy")
    assert script.main(["--study", f"s5={run}", "--out", str(out), "--preface", str(tmp_path / "nope.md")]) == 2
    assert script.main(["--study", str(run), "--out", str(out)]) == 2
    assert "KEY=RUN_DIR" in capsys.readouterr().err


def test_long_tail_columns_appear_only_for_imbalanced_settings():
    from tfaug.studies.report import study_tables, summarize_study

    rows = []
    for r in range(2):
        for t, a in (("baseline", 0.7), ("logit-adjust", 0.8)):
            rows.append({"setting": "exponential,ratio=100", "strategy": t, "repeat": r, "accuracy": a,
                         "macro_f1": a, "balanced_accuracy": a - 0.05, "head_accuracy": 0.95, "middle_accuracy": 0.8,
                         "tail_accuracy": a - 0.3 + 0.01 * r})
            rows.append({"setting": "k=10", "strategy": t, "repeat": r, "accuracy": a, "macro_f1": a,
                         "balanced_accuracy": a})
    settings = ["exponential,ratio=100", "k=10"]
    summary = summarize_study(rows, settings, ["baseline", "logit-adjust"], reference="baseline")
    assert summary[1]["tail_accuracy_mean"] == pytest.approx(0.505)
    text = study_tables(summary, settings, reference="baseline")
    long_tail, balanced = text.split("k=10")
    assert "balanced acc. | head acc. | middle acc. | tail acc." in long_tail
    assert "balanced acc." not in balanced and "tail acc." not in balanced


def test_results_doc_study_section_replaces_one_section_and_keeps_the_rest(tmp_path, monkeypatch):
    import runpy
    import sys
    from pathlib import Path

    run = tmp_path / "runs" / "few"
    run.mkdir(parents=True)
    _fake_run(run, "few toy", ["k=1", "k=10"], ["classic", "cdcgan"], _study_rows())
    out = tmp_path / "docs" / "RESULTS.md"
    out.parent.mkdir()
    out.write_text("# tfaug results\n\n## kept — an older section\n\nkeep me\n")
    notes = tmp_path / "notes.md"
    notes.write_text("What the tables say.")
    script = str(Path(__file__).resolve().parents[2] / "scripts" / "results_doc.py")
    argv = [script, "--study-section", f"few={run}", "--notes", f"few={notes}", "--out", str(out)]
    for _ in range(2):  # the second run replaces the section instead of appending another
        monkeypatch.setattr(sys, "argv", argv)
        with pytest.raises(SystemExit) as exc:
            runpy.run_path(script, run_name="__main__")
        assert exc.value.code == 0
    doc = out.read_text()
    assert "keep me" in doc and doc.count("<!-- section: few -->") == 1 and doc.count("## few — few toy") == 1
    assert doc.index("## few — few toy") < doc.index("What the tables say.") < doc.index("#### k=1")
    assert "Regenerate: `python scripts/results_doc.py --study-section" in doc
    assert (out.parent / "results" / "few" / "accuracy.png").is_file()
    monkeypatch.setattr(sys, "argv", [script, "--study-section", f"few={run}", "--notes", f"other={notes}",
                                      "--out", str(out)])
    with pytest.raises(SystemExit) as exc:
        runpy.run_path(script, run_name="__main__")
    assert exc.value.code == 2
