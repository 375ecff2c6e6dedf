"""A generator wins: its SavedModel, the enriched dataset, and report.html rendered in headless Chromium."""
import json
import shutil
import subprocess

import numpy as np
import pytest

from enrich_helpers import tiny_config, write_folder
from tfaug.enrich import verdict as verdict_mod
from tfaug.enrich.run import run_enrich


@pytest.fixture(scope="module")
def generator_won(tmp_path_factory):
    """A run whose choice is forced to ``cdcgan`` (the rule itself is tested in test_verdict.py)."""
    root = tmp_path_factory.mktemp("enrich_gen")
    data = write_folder(root / "data")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(verdict_mod, "choose", lambda rows, cands: ("cdcgan", "forced by the test"))
        v = run_enrich(f"folder:{data}", root / "out", budget_minutes=3, progress=False,
                       cfg=tiny_config(strategies=("cdcgan",), max_repeats=1, min_per_class=20))
    return v, root / "out"


def test_generator_exported_and_enriched_dataset_written(generator_won):
    from tfaug.data.sources import load_dataset
    from tfaug.export.savedmodel import read_metadata

    v, out = generator_won
    assert [c["candidate"] for c in v["candidates"]] == ["classic", "cdcgan"]
    gen = out / v["outputs"]["generator"]
    assert gen.parts[-3:] == ("saved_models", "data_cdcgan", "1")
    assert read_metadata(gen)["class_names"] == ["a", "b", "c"]
    ds = load_dataset(f"folder:{out / v['outputs']['enriched']}")
    assert np.bincount(ds.labels).tolist() == [20, 20, 20]  # 14 real training images + 6 generated per class
    assert int(ds.synthetic.sum()) == 18 and (out / "enriched" / "manifest.csv").exists()
    test_idx = json.loads((out / "protocol.json").read_text())["protocol"]["test"]
    assert len(ds) - int(ds.synthetic.sum()) == 60 - len(test_idx)  # no test image in the enriched dataset


def test_report_renders_in_headless_chromium(generator_won, tmp_path):
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium); the report is not rendered")
    v, out = generator_won
    page = (out / "report.html").read_text()
    assert "<link" not in page and "<script" not in page and 'src="http' not in page  # self-contained
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--user-data-dir={tmp_path}/p"]
    url = (out / "report.html").as_uri()
    dom = subprocess.run([exe, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
    assert 'id="verdict"' in dom and "Chosen:" in dom and "cdcgan" in dom
    assert dom.count("data:image/png;base64,") >= 3 + 8  # plot, real and generated grids, nearest-image pairs
    shot = tmp_path / "report.png"
    subprocess.run([exe, *flags, f"--screenshot={shot}", "--window-size=1100,1400", url], capture_output=True,
                   timeout=120)
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("L"), np.float32)
    assert pixels.shape == (1400, 1100) and pixels.std() > 10  # not a blank page


def test_report_without_test_set_says_why(tmp_path):
    from types import SimpleNamespace

    from tfaug.enrich.report_html import write_report

    ci = {"mean": 0.9, "ci_low": 0.85, "ci_high": 0.95, "half_width": 0.05}
    zero = {"mean": 0.0, "ci_low": -0.01, "ci_high": 0.01, "half_width": 0.01}
    row = {"candidate": "classic", "control": True, "repeats": 3, "accuracy": ci, "delta_vs_classic": zero,
           "paired_repeats": 3, "macro_f1": 0.9, "seconds_per_fit": 2.0, "stopped": None}
    reason = "class 'few' has only 4 images, too few to spare 2 for a test set"
    v = {"dataset": "folder:x", "chosen": "classic", "why": "classic is the best control", "generative": False,
         "validation_accuracy": ci, "delta_vs_classic": zero, "test": None, "class_names": ["a", "few"],
         "protocol": {"name": "repeated-cv", "reason": reason, "n_train": 24, "n_test": 0, "test_fraction": 0.3,
                      "val_fraction": 0.25, "max_repeats": 3, "min_repeats": 2, "seed": 0, "classifier": "res_cnn"},
         "candidates": [row], "outputs": {"classifier": "saved_models/classifier/1"},
         "budget": {"minutes": 1, "seconds_used": 30.0}, "command": "tfaug enrich --dataset folder:x --out o",
         "machine": "test"}
    side = SimpleNamespace(images=np.zeros((24, 8, 8, 1), np.uint8), labels=np.repeat([0, 1], [20, 4]),
                           class_names=["a", "few"])
    page = write_report(tmp_path, v, None, side).read_text()
    import html

    assert "No test set: " + html.escape(reason) in page and "repeated-cv" in page and "90.0 [85.0, 95.0]" in page
    assert "No generator was trained" in page
