"""`tfaug evaluate` on SavedModels from elsewhere (no tfaug metadata), what its progress bar says, KID without a
spread from one subset, and the near-identical-images warning."""
import json

import numpy as np
import pytest

from tfaug.cli import main
from tfaug.errors import TfaugError


def foreign_generator(path, class_means, noise, known_shape=True, channels=1):
    """A SavedModel written with plain TensorFlow (no tfaug metadata) that honours the serving signature:
    class_id int32 [N], seed int64 [N] -> images uint8 [N, 8, 8, C] (class mean + seeded noise)."""
    import tensorflow as tf

    means = tf.constant(class_means, tf.float32)  # [K, 8, 8, 1] in [-1, 1]

    class Gen(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.int32, name="class_id"),
                                      tf.TensorSpec([None], tf.int64, name="seed")])
        def serve(self, class_id, seed):
            def one(s):
                return tf.random.stateless_normal([8, 8, 1], seed=tf.stack([s, tf.constant(7, tf.int64)]))
            z = tf.map_fn(one, seed, fn_output_signature=tf.float32)
            x = tf.clip_by_value(tf.gather(means, class_id) + noise * z, -1.0, 1.0)
            x = tf.tile(x, [1, 1, 1, channels])
            if not known_shape:  # a signature that does not state its image size
                side = 8 + tf.cast(tf.reduce_sum(tf.zeros_like(seed)), tf.int32)  # 8, known only at run time
                x = tf.reshape(x, tf.stack([-1, side, side, channels]))
            images = tf.cast(tf.round((x + 1.0) * 127.5), tf.uint8)
            return {"images": images, "class_id": class_id, "seed": seed}

    gen = Gen()
    tf.saved_model.save(gen, str(path), signatures={"serving_default": gen.serve})
    return path


@pytest.fixture(scope="module")
def means():
    from tfaug.data.sources import load_dataset
    from tfaug.utils.images import to_float

    ds = load_dataset("digits")
    return np.stack([to_float(ds.images[ds.labels == c]).mean(0) for c in range(ds.num_classes)])


def test_evaluates_a_savedmodel_without_tfaug_metadata_and_says_what_trains(means, tmp_path, capsys):
    path = foreign_generator(tmp_path / "theirs" / "1", means, noise=0.6, known_shape=False)
    assert not (path / "assets" / "tfaug_metadata.json").exists()
    import tensorflow as tf

    assert tf.saved_model.load(str(path)).signatures["serving_default"].structured_outputs["images"].shape[1] is None
    out = tmp_path / "metrics.json"
    argv = ["evaluate", str(path), "--dataset", "digits", "--metrics", "kid,consistency,diversity",
            "--n-per-class", "6", "--extractor-steps", "60", "--cache-dir", str(tmp_path / "cache"), "--out", str(out)]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert f"training the feature extractor once; cached at {tmp_path / 'cache'}" in captured.err
    m = json.loads(out.read_text())
    assert m["protocol"]["n_generated"] == 60 and m["protocol"]["generator_kind"] == "savedmodel"
    assert m["protocol"]["image_shape"] == [8, 8, 1]
    assert m["consistency"] > 0.5  # class means + noise are recognisably their classes
    assert isinstance(m["kid"]["std"], float) and m["kid"]["subsets"] > 1 and "±" in captured.out
    assert not any("near-identical" in w for w in m["warnings"])
    assert main(argv) == 0  # the second run loads the cached extractor: nothing trains, no bar
    assert "training the feature extractor" not in capsys.readouterr().err


def test_one_kid_subset_has_no_spread_and_collapsed_images_are_flagged(means, tmp_path):
    from tfaug.metrics.evaluate import evaluate, summary_rows

    path = foreign_generator(tmp_path / "collapsed", means, noise=0.0)
    record = evaluate(path, "digits", metrics="kid,diversity", n_per_class=5, cache_dir=tmp_path / "cache",
                      extractor_config=_tiny_extractor(), options={"kid_subsets": 1}, progress=False)
    assert record["kid"]["std"] is None and record["kid"]["subsets"] == 1
    row = dict(summary_rows(record))["kid"]
    assert "±" not in row.replace("no ±", "") and "one subset" in row
    assert record["diversity"]["ssim"] > 0.95
    assert any("near-identical" in w and "SSIM" in w for w in record["warnings"])


def test_a_foreign_savedmodel_of_another_image_shape_is_one_sentence(means, tmp_path, capsys):
    path = foreign_generator(tmp_path / "rgb", means, noise=0.1, channels=3)
    argv = ["evaluate", str(path), "--dataset", "digits", "--metrics", "kid", "--out", str(tmp_path / "m.json")]
    assert main(argv) == 2
    assert "makes (8, 8, 3) images but digits has (8, 8, 1)" in capsys.readouterr().err


def test_without_metadata_or_hints_the_class_count_is_asked_for(means, tmp_path):
    from tfaug.synthesis.loader import load_generator

    path = foreign_generator(tmp_path / "plain", means, noise=0.1)
    with pytest.raises(TfaugError, match="no tfaug metadata.*num_classes"):
        load_generator(path)
    gen = load_generator(path, num_classes=10)
    assert gen.image_shape == (8, 8, 1) and gen.sample([3, 3], [1, 1]).shape == (2, 8, 8, 1)
    with pytest.raises(TfaugError, match="out of range"):
        gen.sample([10], [0])


def _tiny_extractor():
    import dataclasses

    from tfaug.metrics.features import DEFAULT_DOMAIN_CONFIG

    return dataclasses.replace(DEFAULT_DOMAIN_CONFIG, steps=60)
