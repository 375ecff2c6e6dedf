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
