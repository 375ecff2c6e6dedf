"""Study plots: PNGs for per-class, imbalance and grid settings; axes chosen from the settings; None when empty."""
import struct

import pytest

from tfaug.studies import plots
from tfaug.studies.report import summarize_study

STRATEGIES = ["baseline", "classic", "cdcgan"]


def _rows(settings, classes=3, cv=False):
    rows = []
    for i, s in enumerate(settings):
        for r in range(2):
            for j, t in enumerate(STRATEGIES):
                a = 0.4 + 0.05 * i + 0.03 * j + 0.01 * r
                row = {"setting": s, "strategy": t, "repeat": r, "accuracy": a, "macro_f1": a,
                       "per_class_recall": [a] * classes, "minority_f1": a - 0.1}
                if cv:
                    row["cv_accuracy"] = min(1.0, a + 0.3)
                rows.append(row)
    return rows


def _png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
    return struct.unpack(">II", data[16:24])  # IHDR width, height


@pytest.fixture
def figures(monkeypatch):
    """Capture each figure's first axes before it is saved (the PNG is still written)."""
    seen = []
    save = plots._save

    def spy(fig, path):
        seen.append(fig.axes[0])
        return save(fig, path)

    monkeypatch.setattr(plots, "_save", spy)
    return seen


@pytest.mark.parametrize("settings, scale, categorical", [
    (["k=1", "k=2", "k=5", "k=10", "k=100"], "log", False),
    (["k=1", "k=2", "k=5"], "linear", False),
    (["minority=4,keep=0.5", "minority=4,keep=0.25"], "linear", True),
    (["real=0,synthetic=600", "real=600,synthetic=0", "real=600,synthetic=600"], "linear", True),
])
def test_accuracy_plot_axes(tmp_path, figures, settings, scale, categorical):
    summary = summarize_study(_rows(settings), settings, STRATEGIES)
    path = plots.accuracy_plot(tmp_path / "a.png", summary, settings, STRATEGIES)
    assert path == tmp_path / "a.png" and _png_size(path)[0] > 300
    ax = figures[-1]
    assert ax.get_xscale() == scale
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == (settings if categorical else [s[2:] for s in settings])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == STRATEGIES
    if categorical and settings[0].startswith("minority"):
        assert plots.accuracy_plot(tmp_path / "m.png", summary, settings, STRATEGIES, metric="minority_f1")


def test_recall_heatmap_from_summary_or_rows_grows_with_rows(tmp_path, figures):
    small = ["k=1"]
    big = [f"k={k}" for k in (1, 2, 5, 10, 100)]
    s_small = summarize_study(_rows(small, classes=10), small, STRATEGIES)
    w1, h1 = _png_size(plots.recall_heatmap(tmp_path / "s.png", s_small, [f"c{i}" for i in range(10)]))
    assert [t.get_text() for t in figures[-1].get_yticklabels()] == STRATEGIES
    w2, h2 = _png_size(plots.recall_heatmap(tmp_path / "r.png", _rows(big, classes=10), None))
    assert h2 > 2 * h1
    assert [t.get_text() for t in figures[-1].get_yticklabels()][:2] == ["k=1 / baseline", "k=1 / classic"]


def test_cv_vs_test_plot(tmp_path, figures):
    settings = ["k=70"]
    summary = summarize_study(_rows(settings, cv=True), settings, STRATEGIES)
    _png_size(plots.cv_vs_test_plot(tmp_path / "cv.png", summary))
    heights = [round(p.get_height(), 3) for p in figures[-1].patches]
    assert heights[:3] == [0.705, 0.735, 0.765] and heights[3:] == [0.405, 0.435, 0.465]  # CV bars, then test bars


def test_plots_skip_when_nothing_to_plot(tmp_path):
    assert plots.accuracy_plot(tmp_path / "a.png", [], ["k=1"], STRATEGIES) is None
    assert plots.recall_heatmap(tmp_path / "r.png", [], None) is None
    no_cv = summarize_study(_rows(["k=1"]), ["k=1"], STRATEGIES)
    assert plots.cv_vs_test_plot(tmp_path / "c.png", no_cv) is None
    assert plots.accuracy_plot(tmp_path / "g.png", no_cv, ["k=1"], STRATEGIES, metric="gen_kid") is None
    no_recall = [{k: v for k, v in e.items() if k != "per_class_recall_mean"} for e in no_cv]
    assert plots.recall_heatmap(tmp_path / "r.png", no_recall, None) is None
    assert list(tmp_path.iterdir()) == []


def test_recall_by_class_plot_orders_classes_head_to_tail(tmp_path, figures):
    setting = "exponential,ratio=10"
    rows = [{"setting": setting, "strategy": t, "repeat": r, "per_class_recall": [0.9, 0.1 * (j + 1), 0.5]}
            for r in range(2) for j, t in enumerate(STRATEGIES)]
    rows.append({"setting": "other", "strategy": "baseline", "repeat": 0, "per_class_recall": [0.0, 0.0, 0.0]})
    path = plots.recall_by_class_plot(tmp_path / "lt.png", rows, setting, [50, 5, 22], ["a", "b", "c"])
    assert _png_size(path)[0] > 300
    ax = figures[-1]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a (50)", "c (22)", "b (5)"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == STRATEGIES
    assert list(ax.get_lines()[1].get_ydata()) == pytest.approx([0.9, 0.5, 0.2])  # classic, reordered head -> tail
    assert plots.recall_by_class_plot(tmp_path / "none.png", rows, "missing", [1, 2, 3]) is None
    assert plots.recall_by_class_plot(tmp_path / "none.png", rows, setting, [1, 2]) is None  # K differs
    assert not (tmp_path / "none.png").exists()
