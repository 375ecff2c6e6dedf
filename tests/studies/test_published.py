"""Published numbers: stored as the studies printed them, matched to our rows, compared verbatim."""
import pytest

from tfaug.errors import TfaugError
from tfaug.studies.published import PUBLISHED, Num, comparison_table, published_setting, study_key
from tfaug.studies.report import summarize_study


def _summary(cells, settings):
    """cells: {(setting, strategy): [accuracies...]}, optional minority F1 = accuracy - 0.01."""
    rows = [{"setting": s, "strategy": t, "repeat": r, "accuracy": a, "minority_f1": a - 0.01}
            for (s, t), values in cells.items() for r, a in enumerate(values)]
    return summarize_study(rows, settings, list(dict.fromkeys(t for _, t in cells)), reference=None)


def test_num_keeps_the_printed_text():
    assert Num("38.2", percent=True) == pytest.approx(0.382) and Num("38.2", percent=True).text == "38.2%"
    assert Num("0.9820") == pytest.approx(0.982) and Num("0.9820").text == "0.9820"
    r = Num("0.556-0.587")
    assert (float(r), r.low, r.text) == (0.587, 0.556, "0.556-0.587")
    assert float(Num("~0.50")) == 0.5 and Num("~0.50").text == "~0.50"


def test_published_numbers_match_studies_md():
    s3 = PUBLISHED["S3"]["results"]["MNIST"]
    assert [s3[f"k={k}"]["M2"]["accuracy"].text for k in (1, 2, 5, 10, 100)] == ["44.6%", "47.1%", "63.2%", "67.4%", "71.3%"]
    assert s3["k=100"]["discriminator bank"]["accuracy"] == pytest.approx(0.893)
    assert s3["k=20"]["GAN, after quality filter"]["accuracy"].text == "30.9%"
    assert PUBLISHED["S3"]["results"]["CIFAR-100"]["k=10"]["GAN, after quality filter"]["accuracy"].text == "29.5%"
    s5 = PUBLISHED["S5"]["results"]
    assert s5["MNIST"]["minority=4,keep=0.25"]["BAGAN"]["minority_f1"].text == "0.9806"
    assert s5["CIFAR-10"]["minority=8,keep=0.25"]["balanced"]["minority_f1"].text == "0.8312"
    s4 = PUBLISHED["S4"]["results"]["MNIST"]
    assert s4["real=60000,synthetic=60000"]["cDCGAN grid"]["accuracy"].text == "96.25%"
    assert s4["real=600,synthetic=60000"]["cDCGAN grid"]["accuracy"].text == "89.0%"
    assert PUBLISHED["S1"]["results"]["coins"]["*"]["bootstrapped"]["cv_accuracy"].text == "0.894"


def test_study_key_and_s4_grid_scaling():
    assert (study_key("s3"), study_key("S1-naive"), study_key("s5_quick"), study_key("demo")) == ("S3", "S1", "S5", None)
    grid = ["real=0,synthetic=600", "real=600,synthetic=0", "real=3000,synthetic=3000"]
    assert published_setting("S4", "real=3000,synthetic=3000", grid) == "real=60000,synthetic=60000"
    assert published_setting("S4", "real=0,synthetic=600", grid) == "real=0,synthetic=12000"
    assert published_setting("S3", "k=5", ["k=5"]) == "k=5"


def test_s3_table_has_published_numbers_verbatim_and_best_row():
    cells = {("k=1", "m2"): [0.40, 0.42, 0.44], ("k=1", "classic"): [0.60, 0.62, 0.64],
             ("k=1", "extra-real"): [0.90, 0.90, 0.90], ("k=7", "classic"): [0.8, 0.8, 0.8]}
    table = comparison_table("S3", _summary(cells, ["k=1", "k=7"]))
    assert "| k=1 | m2 | M2 | 44.6% | 42.0 ± 5.0% | -2.6 pts |" in table
    # the control with more real images never counts as the best tfaug strategy
    assert "| k=1 | **best tfaug: classic** | **best published: M2** | 44.6% | 62.0 ± 5.0% | +17.4 pts |" in table
    assert "k=7" not in table  # no published counterpart


def test_s5_table_picks_the_dataset_and_shows_both_metrics():
    cells = {("minority=4,keep=0.25", "baseline"): [0.98, 0.99], ("minority=4,keep=0.25", "bagan"): [0.985, 0.985],
             ("minority=4,keep=0.25", "extra-real"): [0.99, 0.99]}
    summary = _summary(cells, ["minority=4,keep=0.25"])
    mnist = comparison_table("S5", summary, dataset="npz:../shared/data/mnist10k.npz")
    assert "| unbalanced | 0.9820 | 0.985 ± 0.064 | 0.9793 | 0.975 ± 0.064 | +0.003 |" in mnist
    assert "| BAGAN | 0.9842 |" in mnist and "| balanced original | 0.9860 |" in mnist
    assert "No setting" in comparison_table("S5", summary, dataset="cifar10")  # CIFAR's minority is class 8
    cifar = comparison_table("S5", _summary({("minority=8,keep=0.25", "extra-real"): [0.7, 0.72]},
                                            ["minority=8,keep=0.25"]), dataset="cifar10")
    assert "| balanced | 0.7177 |" in cifar


def test_s1_mapping_override_and_unknown_study():
    summary = _summary({("k=70", "cdcgan+filter:variance"): [0.6, 0.62], ("k=70", "bootstrap"): [0.55, 0.57]}, ["k=70"])
    default = comparison_table("S1", summary)
    assert "| GAN filtered | 0.556-0.587 |" in default and "| bootstrapped | 0.580 |" in default and "0.894" in default
    mine = comparison_table("S1", summary, mapping={"bootstrap": "GAN unfiltered"})
    assert "| GAN unfiltered | ~0.50 |" in mine and "GAN filtered | 0.556" not in mine
    with pytest.raises(TfaugError, match="no published numbers"):
        comparison_table("S9", summary)
