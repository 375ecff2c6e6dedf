"""Inversion (tfaug.fewshot.invert, tfaug.fewshot.latent) on a real, briefly trained gan/stylegan-quick run
(digits 8x8, 3 classes): the encoder recovers w of generated images, refinement lowers pixel error, the CLI
writes its report and reconstructions, bad input is one sentence."""
import contextlib
import dataclasses
import io
import json

import numpy as np
import pytest

from tfaug.errors import TfaugError

ENCODER_STEPS = 400


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from tfaug.config import PRESETS
    from tfaug.data.sources import load_dataset
    from tfaug.training import distribute
    from tfaug.training.gan_runner import train_gan

    ds = load_dataset("digits")
    idx = np.concatenate([np.flatnonzero(ds.labels == c)[:40] for c in range(3)])
    cfg = dataclasses.replace(PRESETS["gan/stylegan-quick"], steps=4)
    with pytest.MonkeyPatch.context() as mp:
        # A real run directory, not a good generator: a few eager steps (tracing the train step costs more than
        # everything else here).
        mp.setattr(distribute, "make_train_function", lambda step_fn, strategy, **kw: step_fn)
        return train_gan(ds.images[idx], ds.labels[idx], class_names=["0", "1", "2"], cfg=cfg,
                         out=tmp_path_factory.mktemp("invert") / "run", progress=False)


@pytest.fixture(scope="module")
def run_dir(run):
    return run.run_dir


@pytest.fixture(scope="module")
def command(run_dir):
    """``tfaug invert RUN --dataset digits``: (exit code, printed text, encoder directory)."""
    from tfaug.cli import main

    out = run_dir.parent / "encoder"
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        code = main(["invert", str(run_dir), "--dataset", "digits", "--steps", str(ENCODER_STEPS), "--refine-steps",
                     "20", "--seed", "1", "--out", str(out), "--no-progress"])
    return code, text.getvalue(), out


@pytest.fixture(scope="module")
def loaded(run):
    """What ``load_style_run`` gives, from the trained model in memory (the same weights as the checkpoint)."""
    from tfaug.fewshot.latent import style_parts
    from tfaug.utils.rundir import read_run_config

    return style_parts(run.model.sampling_network, run.model.discriminator), read_run_config(run.run_dir)


def test_encoder_recovers_w_of_generated_images(command, loaded, run_dir):
    from tfaug.fewshot.invert import build_encoder_network, evaluate_encoder, load_encoder
    from tfaug.fewshot.latent import latent_stats

    code, text, out = command
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    gen = report["generated"]
    parts, _ = loaded
    stats = latent_stats(parts, seed=1)
    untrained = build_encoder_network(parts.image_shape, parts.w_dim, parts.num_classes, width=16,
                                      w_mean=stats.w_mean, w_std=np.sqrt(stats.w_var))
    base = evaluate_encoder(parts, untrained, stats, seed=1)
    # An untrained encoder is no better than answering the mean w (relative error ~1); the trained one
    # recovers w to a fraction of its spread, reconstructs the pixels and tells the classes apart.
    assert base["w_relative_error"] > 0.9
    assert gen["w_relative_error"] < 0.5 and gen["w_relative_error"] < 0.5 * base["w_relative_error"]
    assert gen["pixel_mse"] < 0.5 * base["pixel_mse"]
    assert gen["feature_distance"] < 0.5 * base["feature_distance"]
    assert gen["class_accuracy"] > 0.6  # chance: 1/3
    # The saved encoder is the one that was evaluated.
    encoder, config = load_encoder(out, parts)
    assert evaluate_encoder(parts, encoder, stats, seed=1) == pytest.approx(gen, rel=1e-4)
    assert config["base_run"] == str(run_dir.resolve()) and config["steps"] == ENCODER_STEPS
    assert len((out / "history.jsonl").read_text().splitlines()) >= 10


def test_command_reports_real_images_and_draws_reconstructions(command):
    code, text, out = command
    report = json.loads((out / "report.json").read_text())
    real = report["images"]
    assert real["n"] == 1797 and 0.0 < real["pixel_mse"] < 4.0
    refined = real["refined"]
    assert refined["n"] == 32 and refined["refine_steps"] == 20
    assert refined["pixel_mse"] < refined["encoder_pixel_mse"]
    from PIL import Image

    png = Image.open(out / "reconstructions.png")
    assert png.size[0] >= 256 and png.size[1] >= 256  # 2 x (originals over reconstructions), upscaled
    lines = text.strip().splitlines()
    assert 3 <= len(lines) <= 6 and "w relative error" in text and "reconstructions" in lines[-1]


def test_refinement_lowers_pixel_error(command, loaded, run_dir):
    from tfaug.fewshot.invert import invert_images
    from tfaug.fewshot.latent import sample_pairs

    parts, _ = loaded
    ids = np.array([0, 1, 2, 0, 1, 2], np.int32)
    w, x = sample_pairs(parts, ids, seed=123)
    plain = invert_images(run_dir, x, encoder_dir=command[2], refine_steps=0, _loaded=loaded)
    refined = invert_images(run_dir, x, encoder_dir=command[2], refine_steps=30, _loaded=loaded)
    np.testing.assert_allclose(refined.initial_pixel_mse, plain.pixel_mse, rtol=1e-5)
    assert refined.pixel_mse.mean() < 0.5 * plain.pixel_mse.mean()
    assert np.all(refined.pixel_mse <= plain.pixel_mse * 1.0001)  # each image keeps its best w
    assert refined.w.shape == (6, parts.w_dim) and refined.reconstructions.shape == x.shape
    np.testing.assert_array_equal(refined.class_ids, plain.class_ids)
    # Without an encoder: start from the given class's centroid, then optimise.
    cold = invert_images(run_dir, x, class_ids=ids, refine_steps=30, _loaded=loaded)
    np.testing.assert_array_equal(cold.class_ids, ids)
    assert cold.pixel_mse.mean() < 0.5 * cold.initial_pixel_mse.mean()


def test_bad_input_is_one_sentence(command, loaded, run_dir, tmp_path):
    from tfaug.fewshot.invert import invert_images, load_encoder, train_encoder

    with pytest.raises(TfaugError, match="already exists"):
        train_encoder(run_dir, out=command[2], steps=1, _loaded=loaded)
    with pytest.raises(TfaugError, match="images must be"):
        invert_images(run_dir, np.zeros((2, 9, 9, 1), np.float32), _loaded=loaded)
    with pytest.raises(TfaugError, match="class_ids"):
        invert_images(run_dir, np.zeros((2, 8, 8, 1), np.float32), class_ids=[0, 3], _loaded=loaded)
    with pytest.raises(TfaugError, match="not an encoder directory"):
        load_encoder(tmp_path)
    from tfaug.cli import main

    assert main(["invert", str(tmp_path), "--out", str(tmp_path / "enc")]) == 2  # not a run directory


def test_age_network_starts_from_the_encoder(command, loaded, run):
    """AGE with an encoder directory: the centroid is the mean of the encoder's (unrefined) w of the images."""
    from tfaug.fewshot.age import age_class_network
    from tfaug.fewshot.invert import load_encoder
    from tfaug.fewshot.latent import sample_pairs

    parts, _ = loaded
    _, x = sample_pairs(parts, np.full(4, 2, np.int32), seed=5)
    net, info = age_class_network(run.model.sampling_network, x, encoder_dir=command[2], refine_steps=0)
    w_hat = np.asarray(load_encoder(command[2])[0](x)[0])
    np.testing.assert_allclose(np.asarray(net.get_layer("age_latent").centroid), w_hat.mean(0), atol=1e-5)
    assert info["k"] == 4 and info["class_ids"] == [2, 2, 2, 2]


def test_fit_images_resizes_and_converts_channels():
    from tfaug.fewshot.invert import fit_images

    rgb = np.zeros((2, 16, 16, 3), np.uint8)
    rgb[:, :8] = 255  # top half white
    x, notes = fit_images(rgb, (8, 8, 1))
    assert x.shape == (2, 8, 8, 1) and x.dtype == np.float32 and len(notes) == 2
    np.testing.assert_allclose(x[:, :3], 1.0, atol=1e-5)  # rows 3-4 blend across the edge (antialiasing)
    np.testing.assert_allclose(x[:, 5:], -1.0, atol=1e-5)
    same, none = fit_images(rgb[..., :1], (16, 16, 1))
    assert none == [] and same.shape == (2, 16, 16, 1)
