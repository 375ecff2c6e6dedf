"""The metric registry on `digits`: degraded "generators" rank worse than held-out real digits; names, warnings,
JSON output, and the memorisation/CAS wiring."""
import json

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from tfaug.config import ClassifierConfig
from tfaug.data.sources import load_dataset
from tfaug.data.subsets import stratified_split
from tfaug.errors import TfaugError
from tfaug.metrics import registry as R
from tfaug.metrics.features import domain_extractor
from tfaug.utils.images import to_float

TINY = ClassifierConfig(name="lenet5", steps=120, batch_size=64, dropout=0.0, seed=0)  # same key as test_features


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    ds = load_dataset("digits")
    train, _, test = stratified_split(ds.labels, test=0.5, seed=0)
    ext = domain_extractor("digits", ds.images[train], ds.labels[train], config=TINY, progress=False,
                           cache_dir=tmp_path_factory.getbasetemp() / "tfaug-feature-cache",
                           split_desc={"indices": train.tolist()})
    return ext, ds, train, test


def _ctx(setup, generated, labels, **kw):
    ext, ds, train, _ = setup
    return R.MetricContext(generated=generated, generated_labels=labels, reference=to_float(ds.images[train]),
                           reference_labels=ds.labels[train], extractor=ext, num_classes=10,
                           class_names=ds.class_names, **kw)


@pytest.fixture(scope="module")
def scores(setup):
    """Metric values for held-out real digits and three degraded sets with the same requested labels."""
    _, ds, _, test = setup
    x, y = to_float(ds.images[test]), ds.labels[test]
    rng = np.random.default_rng(0)
    sets = {
        "real": x,
        "noise": rng.uniform(-1, 1, x.shape).astype(np.float32),
        "blurred": gaussian_filter(x, sigma=(0, 1.5, 1.5, 0)).astype(np.float32),
        "collapsed": x[[np.flatnonzero(y == c)[0] for c in y]],  # one image per class, repeated
    }
    out = {}
    for name, images in sets.items():
        ctx = _ctx(setup, images, y, options={"kid_subsets": 20})
        out[name] = R.compute_metrics("fid,kid,is,pr,consistency,diversity", ctx)[0]
    return out


@pytest.mark.parametrize("bad", ["noise", "blurred", "collapsed"])
def test_degraded_generators_rank_worse_than_real_digits(scores, bad):
    real, worse = scores["real"], scores[bad]
    assert worse["fid"] > 2 * real["fid"]
    assert worse["kid"]["mean"] > real["kid"]["mean"] + 3 * max(worse["kid"]["std"], real["kid"]["std"])
    if bad == "collapsed":
        assert worse["recall"] < real["recall"] and worse["coverage"] < real["coverage"]
        assert worse["diversity"]["ssim"] == pytest.approx(1.0) and real["diversity"]["ssim"] < 0.9
        # identical images: zero up to float rounding of the extractor (batch position can change the last bits)
        assert worse["diversity"]["feature"] < 1e-5 * real["diversity"]["feature"]
    else:
        assert worse["precision"] < real["precision"] and worse["density"] < real["density"]
        assert worse["consistency"] < real["consistency"] and worse["is"]["mean"] < real["is"]["mean"]


def test_real_digits_score_like_real_data(scores):
    real = scores["real"]
    assert real["consistency"] > 0.6 and real["precision"] > 0.6 and real["coverage"] > 0.5
    assert set(real["is"]) == {"mean", "std"} and 1.0 <= real["is"]["mean"] <= 10.0


def test_names_are_validated_and_all_expands():
    assert R.parse_metric_names("fid, kid,fid") == ["fid", "kid"]
    assert R.parse_metric_names("all") == R.metric_names()
    assert {"fid", "kid", "is", "pr", "per_class", "consistency", "diversity", "memorisation", "cas"} <= set(R.METRICS)
    with pytest.raises(TfaugError, match="unknown metric bogus; valid metrics: fid, kid"):
        R.parse_metric_names("fid,bogus")


def test_small_n_is_flagged_and_features_are_cached(setup):
    _, ds, _, test = setup
    # 4 images of classes 0-8 and a single 9: 37 images, fewer than the 84 feature dimensions
    idx = np.concatenate([test[ds.labels[test] == c][: 4 if c < 9 else 1] for c in range(10)])
    ctx = _ctx(setup, to_float(ds.images[idx]), ds.labels[idx], options={"kid_subsets": 5})
    calls = []
    extract = ctx.extractor.extract
    ctx.extractor = type("Counting", (), {"extract": lambda self, x: calls.append(len(x)) or extract(x),
                                          "num_classes": 10, "name": "domain"})()
    res, timings = R.compute_metrics(["fid", "kid", "pr", "per_class"], ctx)
    assert set(res) >= {"fid", "kid", "precision", "recall", "density", "coverage", "per_class"}
    assert set(timings) == {"fid", "kid", "pr", "per_class"}
    assert len(calls) == 2  # one extraction per set, whatever the number of metrics
    text = " ".join(ctx.warnings)
    assert "37 samples is fewer than the 84 feature dimensions" in text and "kid: subsets of 37" in text
    assert "too few images for class(es) 9" in text and res["per_class"]["9"]["fid"] is None
    assert res["kid"]["subset_size"] == 37


def test_consistency_needs_the_dataset_classes(setup):
    _, ds, _, test = setup
    ctx = _ctx(setup, to_float(ds.images[test[:20]]), ds.labels[test[:20]])
    ctx.num_classes = 5
    with pytest.raises(TfaugError, match="--extractor domain"):
        R.compute_metrics(["consistency"], ctx)


def test_write_metrics_json_and_jsonl(tmp_path):
    record = {"fid": float("nan"), "kid": {"mean": np.float32(0.5), "std": 0.1}, "protocol": {"n_real": np.int64(3)}}
    R.write_metrics(tmp_path / "m.json", record, log=tmp_path / "log.jsonl")
    R.write_metrics(None, record, log=tmp_path / "log.jsonl")
    data = json.loads((tmp_path / "m.json").read_text())
    assert data == {"fid": None, "kid": {"mean": 0.5, "std": 0.1}, "protocol": {"n_real": 3}}
    assert len((tmp_path / "log.jsonl").read_text().splitlines()) == 2


def test_memorisation_is_wired_and_spots_copies(setup, tmp_path):
    _, ds, train, test = setup
    copies = to_float(ds.images[train[:100]])
    ctx = _ctx(setup, copies, ds.labels[train[:100]], train=to_float(ds.images[train]),
               train_labels=ds.labels[train], artifacts_dir=tmp_path)
    ctx.reference, ctx.reference_labels = to_float(ds.images[test]), ds.labels[test]
    res = R.compute_metrics(["memorisation"], ctx)[0]["memorisation"]
    assert res["share_copies"] == pytest.approx(1.0) and "nearest_index" not in res
    assert (tmp_path / "closest_pairs.png").is_file()
    ctx2 = _ctx(setup, to_float(ds.images[test[:100]]), ds.labels[test[:100]], train=to_float(ds.images[train]),
                train_labels=ds.labels[train])
    assert R.compute_metrics(["memorisation"], ctx2)[0]["memorisation"]["share_copies"] < 0.2


def test_cas_is_wired(setup):
    _, ds, train, test = setup
    ctx = _ctx(setup, to_float(ds.images[test]), ds.labels[test], options={"cas_steps": 30, "cas_width": 8})
    res = R.compute_metrics(["cas"], ctx)[0]
    assert 0.0 <= res["cas"] <= 1.0 and set(res) <= {"cas", "cas_detail"}
