import json

import numpy as np
import pytest

from tfaug.errors import TfaugError
from tfaug.synthesis.filters import (ConsistencyFilter, FilterSpec, LatentSphereFilter, NearDuplicateFilter,
                                     VarianceFilter, apply_filters, build_filters, chain, parse_filters)
from tests_helpers import toy_images


@pytest.fixture(scope="module")
def toy_float():
    """3 separable classes (band c lit), float32 [-1, 1] [60, 8, 8, 1], labels int32 [60]."""
    x, y = toy_images()
    return x.astype(np.float32) / 127.5 - 1.0, y


def _band_probabilities(images):
    """A stub classifier: softmax over the mean brightness of the three horizontal bands (class c = band c)."""
    x = np.asarray(images)[..., 0]
    bands = np.stack([x[:, 0:2].mean((1, 2)), x[:, 2:4].mean((1, 2)), x[:, 4:6].mean((1, 2))], axis=1)
    e = np.exp(2 * bands)
    return e / e.sum(1, keepdims=True)


def test_variance_drops_blank_images_absolute_and_relative(toy_float):
    x, y = toy_float
    blank = np.concatenate([np.full((3, 8, 8, 1), -1.0, np.float32), np.full((2, 8, 8, 1), 0.3, np.float32)])
    images, labels = np.concatenate([x[:10], blank]), np.concatenate([y[:10], [0, 1, 2, 0, 1]])
    res = VarianceFilter(min_std=0.02).apply(images, labels)
    np.testing.assert_array_equal(res.keep_mask, np.arange(15) < 10)
    assert (res.kept, res.dropped) == (10, 5)
    assert res.per_class == {0: {"kept": 10, "dropped": 2}, 1: {"kept": 0, "dropped": 2}, 2: {"kept": 0, "dropped": 1}}
    rel = VarianceFilter(percentile=50).fit(x)
    assert rel.min_std == pytest.approx(np.median(x.reshape(60, -1).std(1)))
    assert 20 <= rel.apply(x, y).kept <= 40  # half the real images sit below their median std
    with pytest.raises(TfaugError, match="fit"):
        VarianceFilter(percentile=5).apply(x, y)


def test_consistency_drops_images_of_the_wrong_class(toy_float):
    x, y = toy_float
    wrong = (y + 1) % 3
    images, labels = np.concatenate([x, x]), np.concatenate([y, wrong])
    res = ConsistencyFilter(_band_probabilities, threshold=0.5, batch_size=7).apply(images, labels)
    np.testing.assert_array_equal(res.keep_mask, np.arange(120) < 60)
    assert res.per_class[1] == {"kept": 20, "dropped": 20}
    strict = ConsistencyFilter(_band_probabilities, threshold=0.99).apply(x, y)
    assert strict.kept == 0  # the stub is about 0.96 confident, never 0.99


def test_sphere_keeps_its_share_of_real_images_and_drops_far_points(toy_float):
    x, y = toy_float
    encode = lambda im: (np.asarray(im).reshape(len(im), -1)[:, ::4], None)  # tuple output: first item used
    sphere = LatentSphereFilter(encode, keep=0.9).fit(x, y)
    res = sphere.apply(x, y)
    for c in range(3):
        assert res.per_class[c]["kept"] == 18  # the 0.9 quantile of 20 distances lies between the 18th and 19th
    far = x[:5] * -1.0
    assert sphere.apply(far, y[:5]).kept == 0
    swapped = sphere.apply(x[:20], np.full(20, 2))  # class-0 images judged against class 2's sphere
    assert swapped.kept == 0
    with pytest.raises(TfaugError, match="class"):
        LatentSphereFilter(encode).fit(x[y < 2], y[y < 2]).apply(x, y)
    seen = []
    cond = LatentSphereFilter(lambda im, c: seen.append(np.asarray(c)) or encode(im)[0], keep=0.9, batch_size=25,
                              conditional=True).fit(x, y)
    np.testing.assert_array_equal(np.concatenate(seen), y)  # class ids reach a conditional encoder, in order
    assert cond.apply(x, y).kept == res.kept


def test_near_duplicate_drops_copies_and_keeps_others(toy_float):
    x, y = toy_float
    train, fresh = x[::2], x[1::2]
    gen = np.concatenate([train[:7], fresh])
    res = NearDuplicateFilter(train).apply(gen, np.concatenate([y[::2][:7], y[1::2]]))
    assert res.details["threshold_source"] == "reference_leave_one_out"
    assert res.keep_mask[:7].sum() == 0 and res.keep_mask[7:].mean() >= 0.9
    feats = lambda im: np.asarray(im).reshape(len(im), -1).mean(axis=1, keepdims=True)  # 1-D embedding
    emb = NearDuplicateFilter(feats(train), embed_fn=feats, threshold=0.0).apply(train[:3], y[:3])
    assert emb.dropped == 3 and emb.details["threshold_source"] == "absolute"
    held = NearDuplicateFilter(train, heldout=fresh, percentile=1.0).apply(train[:4], y[:4])
    assert held.dropped == 4 and held.details["threshold_source"] == "heldout"


def test_chain_and_apply_filters_report_per_filter_and_per_class(toy_float):
    x, y = toy_float
    blank = np.full((4, 8, 8, 1), -1.0, np.float32)
    images = np.concatenate([x, blank, x[:6]])
    labels = np.concatenate([y, [0, 0, 1, 2], (y[:6] + 1) % 3])  # 4 blank, 6 with the wrong class
    filters = [VarianceFilter(), ConsistencyFilter(_band_probabilities, 0.6)]
    kept_x, kept_y, report = apply_filters(filters, images, labels)
    assert len(kept_x) == len(kept_y) == 60
    np.testing.assert_array_equal(kept_y, y)
    assert [r["name"] for r in report] == ["variance", "consistency", "total"]
    assert (report[0]["kept"], report[0]["dropped"]) == (66, 4)
    assert (report[1]["kept"], report[1]["dropped"]) == (60, 6)
    assert report[1]["per_class"][1] == {"kept": 20, "dropped": 6}
    assert report[2]["per_class"][0] == {"kept": 20, "dropped": 2}
    json.dumps(report)  # reports go to JSON as they are
    res = chain(*filters).apply(images, labels)
    assert res.kept == 60 and res.details["steps"] == report[:2]


def test_parse_and_build_filters():
    parsed = parse_filters("variance, consistency:0.8,sphere:0.9,near_duplicate:p5, variance:p2")
    assert parsed == [FilterSpec("variance"), FilterSpec("consistency", 0.8), FilterSpec("sphere", 0.9),
                      FilterSpec("near-duplicate", 5.0, True), FilterSpec("variance", 2.0, True)]
    assert parse_filters("none") == parse_filters("") == parse_filters(None) == []
    with pytest.raises(TfaugError, match="'blur'.*valid filters: variance, consistency, teacher, sphere, near-duplicate"):
        parse_filters("variance,blur:3")
    with pytest.raises(TfaugError, match="'consistency:high'"):
        parse_filters("consistency:high")
    ref = np.zeros((3, 8, 8, 1), np.float32)
    built = build_filters("variance:0.1,consistency:0.8,sphere:0.9,near-duplicate:p5",
                          probabilities_fn=_band_probabilities, encode_fn=_band_probabilities, reference=ref)
    assert [type(f).__name__ for f in built] == ["VarianceFilter", "ConsistencyFilter", "LatentSphereFilter",
                                                  "NearDuplicateFilter"]
    assert (built[0].min_std, built[1].threshold, built[2].keep, built[3].percentile) == (0.1, 0.8, 0.9, 5.0)
    with pytest.raises(TfaugError, match="'consistency' needs"):
        build_filters("consistency")
    with pytest.raises(TfaugError, match="threshold must be in"):
        build_filters("consistency:1.5", probabilities_fn=_band_probabilities)
    with pytest.raises(TfaugError, match="'teacher' needs"):
        build_filters("teacher")


def test_teacher_filter_keeps_the_requested_class_at_the_threshold_even_when_not_on_top():
    probs = np.array([[0.45, 0.5, 0.05], [0.3, 0.3, 0.4], [0.9, 0.05, 0.05], [0.2, 0.2, 0.6]], np.float32)
    x = np.zeros((4, 8, 8, 1), np.float32)
    y = np.array([0, 0, 0, 2])
    (flt,) = build_filters("teacher:0.4", teacher_fn=lambda images: probs[: len(images)])
    res = flt.apply(x, y)
    # p(requested) = 0.45, 0.3, 0.9, 0.6: the first is kept although class 1 is the teacher's top class
    assert res.keep_mask.tolist() == [True, False, True, True] and res.name == "teacher"
    (consistency,) = build_filters("consistency:0.4", probabilities_fn=lambda images: probs[: len(images)])
    assert consistency.apply(x, y).keep_mask.tolist() == [False, False, True, True]
    (default,) = build_filters("teacher", teacher_fn=lambda images: probs[: len(images)])
    assert default.threshold == 0.5
