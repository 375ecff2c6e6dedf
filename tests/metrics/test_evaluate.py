"""`tfaug evaluate` end to end on a tiny trained run, the reference split rule, and one-line bad-input errors."""
import json
import types

import numpy as np
import pytest

from tfaug.cli import main
from tfaug.config import PRESETS, replace
from tfaug.data.experiment import draw_experiment
from tfaug.data.sources import load_dataset
from tfaug.metrics.evaluate import reference_split

# every metric but CAS, whose three classifier trainings would double the run time (CAS wiring: test_registry)
ALL = "fid,kid,is,pr,per_class,consistency,diversity,memorisation"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A fake run directory (config.json + checkpoints/generator.keras, as `tfaug train-gan` writes): a tiny
    conditional generator whose class embedding starts at the class-mean training digit, trained on the recorded
    indices."""
    import keras

    from tfaug.utils.images import to_float
    from tfaug.utils.io import write_json
    from tfaug.utils.rundir import CHECKPOINTS, CONFIG, GENERATOR

    ds = load_dataset("digits")
    split = draw_experiment(ds.labels, test_fraction=0.3, per_class=20, seed=0)
    means = np.stack([to_float(ds.images[split.train][ds.labels[split.train] == c]).mean(0).ravel()
                      for c in range(10)])
    z, c = keras.Input((4,), name="z"), keras.Input((), dtype="int32", name="class_id")
    emb = keras.layers.Embedding(10, 64, embeddings_initializer=keras.initializers.Constant(means))(c)
    x = keras.layers.Reshape((8, 8, 1))(keras.layers.Add()([emb, keras.layers.Dense(64)(z)]))
    model = keras.Model([z, c], keras.layers.Activation("tanh")(x))
    out = tmp_path_factory.mktemp("gan") / "run"
    (out / CHECKPOINTS).mkdir(parents=True)
    model.save(str(out / CHECKPOINTS / GENERATOR))
    write_json(out / CONFIG, {"kind": "fake", "gan": {"z_dim": 4},
                              "data": {"spec": "digits", "num_classes": 10, "class_names": list(ds.class_names),
                                       "train_indices": split.train.tolist()}})
    return out


@pytest.fixture(scope="module")
def evaluated(run_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("eval")
    argv = ["evaluate", str(run_dir), "--dataset", "digits", "--metrics", ALL, "--n-per-class", "12",
            "--extractor-steps", "60", "--cache-dir", str(tmp / "cache"),
            "--out", str(tmp / "metrics.json"), "--log", str(tmp / "log.jsonl"), "--no-progress"]
    return tmp, argv


def test_evaluate_writes_every_requested_metric_and_the_protocol(evaluated, capsys):
    tmp, argv = evaluated
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "120 generated vs 1597 real images, domain features" in printed and "fid" in printed
    m = json.loads((tmp / "metrics.json").read_text())
    assert isinstance(m["fid"], float) and m["fid"] > 0
    for key in ("kid", "is"):
        assert set(m[key]) >= {"mean", "std"}
    for key in ("precision", "recall", "density", "coverage", "consistency"):
        assert isinstance(m[key], float), key
    assert set(m["diversity"]) >= {"ssim", "feature"} and 0 <= m["memorisation"]["share_copies"] <= 1
    assert set(m["per_class"]) == {str(i) for i in range(10)}
    p = m["protocol"]
    assert p["n_generated"] == 120 and p["n_train"] == 200 and p["n_real"] == 1597 and p["seed"] == 0
    assert "recorded training images" in p["reference_split"] and p["extractor"]["name"] == "domain"
    assert p["image_shape"] == [8, 8, 1] and p["tfaug_version"] and "resize" in p["extractor"]
    assert any("kid: subsets of 120" in w for w in m["warnings"])
    assert len((tmp / "log.jsonl").read_text().splitlines()) == 1
    assert (tmp / "closest_pairs.png").is_file()


def test_fallback_split_when_the_generator_records_no_indices():
    ds = load_dataset("digits")
    gen = types.SimpleNamespace(metadata={})
    train, ref, desc = reference_split(gen, ds, "digits", seed=1)
    assert len(np.intersect1d(train, ref)) == 0 and len(train) + len(ref) == len(ds.labels)
    assert desc.startswith("stratified split (seed 1") and "records no training indices" in desc
    other = types.SimpleNamespace(metadata={"config": {"data": {"spec": "npz:x.npz", "train_indices": [0, 1]}}})
    assert "trained on 'npz:x.npz'" in reference_split(other, ds, "digits")[2]
    # SavedModel metadata keeps the run config under training_config
    saved = types.SimpleNamespace(metadata={"training_config": {"data": {"spec": "digits", "train_indices": [3, 1]}}})
    train, ref, desc = reference_split(saved, ds, "digits")
    assert train.tolist() == [1, 3] and len(ref) == len(ds.labels) - 2 and "recorded training images" in desc


def _one_line_error(capsys, argv, match):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and match in err, err


def test_bad_inputs_exit_2_with_one_line(run_dir, tmp_path, capsys):
    out = str(tmp_path / "m.json")
    _one_line_error(capsys, ["evaluate", str(run_dir), "--dataset", "digits", "--metrics", "fid,nope", "--out", out],
                    "unknown metric nope; valid metrics: fid, kid, is, pr")
    _one_line_error(capsys, ["evaluate", str(run_dir), "--dataset", f"npz:{tmp_path}/missing.npz", "--out", out],
                    "does not exist")
    np.savez(tmp_path / "big.npz", x=np.zeros((20, 12, 12, 1), np.uint8), y=np.arange(20) % 10)
    _one_line_error(capsys, ["evaluate", str(run_dir), "--dataset", f"npz:{tmp_path}/big.npz", "--out", out],
                    "the generator makes (8, 8, 1) images")
    _one_line_error(capsys, ["evaluate", str(tmp_path), "--dataset", "digits", "--out", out], "is not a generator")
    _one_line_error(capsys, ["evaluate", str(run_dir), "--dataset", "digits", "--extractor", "inception:/no/file.h5",
                             "--out", out, "--no-progress"], "never downloads")
    assert not (tmp_path / "m.json").exists()


def test_a_savedmodel_is_judged_like_its_run_directory(run_dir, evaluated, tmp_path):
    """Any generator that honours the serving signature can be judged: the export of the run gives the same
    images (up to uint8 rounding), so the same reference split and nearly the same scores."""
    from tfaug.export.savedmodel import export_run

    tmp, _ = evaluated
    saved = export_run(run_dir, name="fake", base=tmp_path / "saved_models")
    common = ["--dataset", "digits", "--metrics", "fid,consistency", "--n-per-class", "12", "--extractor-steps", "60",
              "--cache-dir", str(tmp / "cache"), "--no-progress"]
    assert main(["evaluate", str(run_dir), *common, "--out", str(tmp_path / "run.json")]) == 0
    assert main(["evaluate", str(saved), *common, "--out", str(tmp_path / "saved.json")]) == 0
    from_run = json.loads((tmp_path / "run.json").read_text())
    from_saved = json.loads((tmp_path / "saved.json").read_text())
    assert "recorded training images" in from_saved["protocol"]["reference_split"]
    assert from_saved["protocol"]["n_real"] == from_run["protocol"]["n_real"] == 1597
    assert from_saved["consistency"] == pytest.approx(from_run["consistency"], abs=0.02)
    assert from_saved["fid"] == pytest.approx(from_run["fid"], rel=0.05, abs=0.05)
