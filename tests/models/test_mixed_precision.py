"""Mixed precision and XLA on the CPU (correctness only): the runner's runtime trains cdcgan and vae under
``mixed_float16`` (fp16) with loss-scaled optimizers, cdcgan under ``mixed_bfloat16`` (bf16; resumed and loaded in
it), every zoo model in bf16 (slow), and cdcgan with an XLA-compiled step."""
import json

import keras
import numpy as np
import pytest

from tfaug.config import GANConfig, RuntimeConfig
from tfaug.training.gan_runner import train_gan

CFG = dict(steps=2, batch_size=8, width=4, z_dim=4, sample_every=0, checkpoint_every=0, diffaugment="translation",
           seed=1)


@pytest.fixture(scope="module")
def toy():
    from tests_helpers import toy_images

    return toy_images(n_per_class=4, num_classes=3, size=8)


def _train(toy, tmp_path, model, runtime):
    x, y = toy
    return train_gan(x, y, class_names=list("abc"), cfg=GANConfig(model=model, **CFG), out=tmp_path / model,
                     progress=False, log_every=1, runtime=runtime)


@pytest.mark.parametrize("model", ["cdcgan", "vae"])
def test_mixed_precision_trains_with_loss_scaling(toy, tmp_path, model):
    assert keras.mixed_precision.global_policy().name == "float32"
    run = _train(toy, tmp_path, model, RuntimeConfig(mixed_precision="fp16"))
    assert keras.mixed_precision.global_policy().name == "float32"  # restored after the run
    opts = [opt for opt, _ in run.model.optimizers().values()]
    assert len(opts) == (2 if model == "cdcgan" else 1)
    assert all(isinstance(o, keras.optimizers.LossScaleOptimizer) for o in opts)
    net = run.model.sampling_network
    assert any(layer.dtype_policy.name == "mixed_float16" for layer in net.layers)  # float16 compute inside
    losses = [v for r in run.history for k, v in r.items() if k not in ("step", "time_s")]
    assert len(run.history) == 2 and np.all(np.isfinite(losses))
    images = run.model.sample(np.array([0, 1, 2]), np.array([5, 6, 7]))
    assert images.dtype == np.float32 and images.min() >= -1.0 and images.max() <= 1.0
    cfg = json.loads((run.run_dir / "config.json").read_text())
    assert cfg["runtime"]["mixed_precision"] == "fp16"
    # generator.keras loads back (float16 layers, float32 output) and samples
    import tensorflow as tf

    from tfaug.models.sampling import generator_images

    loaded = keras.models.load_model(run.run_dir / "checkpoints" / "generator.keras")
    again = np.asarray(generator_images(loaded, 4, tf.constant([0, 1, 2], tf.int32), tf.constant([5, 6, 7], tf.int64)))
    assert again.dtype == np.float32
    np.testing.assert_allclose(again, images, atol=1e-3)


def test_xla_step_trains_cdcgan(toy, tmp_path):
    run = _train(toy, tmp_path, "cdcgan", RuntimeConfig(jit_compile=True))
    ref = _train(toy, tmp_path / "ref", "cdcgan", RuntimeConfig())
    assert run.step == 2 and all(np.isfinite(r["d_loss"]) and np.isfinite(r["g_loss"]) for r in run.history)
    # Same seeds, same data: XLA changes only the floating-point schedule.
    for a, b in zip(run.history, ref.history):
        assert a["d_loss"] == pytest.approx(b["d_loss"], abs=1e-3)
        assert a["g_loss"] == pytest.approx(b["g_loss"], abs=1e-3)


def _policies(net) -> set:
    return {layer.dtype_policy.name for layer in net.layers}


def test_bf16_trains_without_loss_scaling_and_resumes_and_loads_in_bf16(toy, tmp_path):
    """bf16 (``mixed_bfloat16``): bfloat16 compute, float32 outputs and losses, no LossScaleOptimizer; the run
    records ``bf16``; a resume without a runtime keeps it, and ``generator.keras`` loads back in bf16."""
    import tensorflow as tf

    from tfaug.models.sampling import generator_images

    run = _train(toy, tmp_path, "cdcgan", RuntimeConfig(mixed_precision="bf16"))
    assert keras.mixed_precision.global_policy().name == "float32"
    assert not any(isinstance(o, keras.optimizers.LossScaleOptimizer) for o, _ in run.model.optimizers().values())
    assert "mixed_bfloat16" in _policies(run.model.sampling_network)
    assert "mixed_bfloat16" in _policies(run.model.discriminator)
    assert run.model.generator.output.dtype == "float32" and run.model.discriminator.output.dtype == "float32"
    losses = [v for r in run.history for k, v in r.items() if k not in ("step", "time_s")]
    assert np.all(np.isfinite(losses))
    assert json.loads((run.run_dir / "config.json").read_text())["runtime"]["mixed_precision"] == "bf16"
    images = run.model.sample(np.array([0, 1, 2]), np.array([5, 6, 7]))
    assert images.dtype == np.float32 and images.min() >= -1.0 and images.max() <= 1.0
    loaded = keras.models.load_model(run.run_dir / "checkpoints" / "generator.keras")
    assert "mixed_bfloat16" in _policies(loaded)
    again = np.asarray(generator_images(loaded, 4, tf.constant([0, 1, 2], tf.int32), tf.constant([5, 6, 7], tf.int64)))
    np.testing.assert_allclose(again, images, atol=1e-2)  # same weights, bf16 rounding only
    x, y = toy
    resumed = train_gan(x, y, class_names=list("abc"), cfg=GANConfig(model="cdcgan", **{**CFG, "steps": 3}),
                        out=run.run_dir, resume=True, progress=False, log_every=1)
    assert resumed.step == 3 and "mixed_bfloat16" in _policies(resumed.model.sampling_network)
    assert json.loads((run.run_dir / "config.json").read_text())["runtime"]["mixed_precision"] == "bf16"
    assert keras.mixed_precision.global_policy().name == "float32"


def test_old_boolean_run_resumes_in_fp16(toy, tmp_path):
    """A run directory written before bf16 existed stored ``"mixed_precision": true``: it resumes in fp16."""
    from tfaug.training.gan_runner import stored_runtime

    run = _train(toy, tmp_path, "vae", RuntimeConfig(mixed_precision="fp16"))
    path = run.run_dir / "config.json"
    cfg = json.loads(path.read_text())
    cfg["runtime"]["mixed_precision"] = True
    path.write_text(json.dumps(cfg))
    assert stored_runtime(run.run_dir) == RuntimeConfig(mixed_precision="fp16")
    assert stored_runtime(tmp_path / "nowhere") is None
    x, y = toy
    resumed = train_gan(x, y, class_names=list("abc"), cfg=GANConfig(model="vae", **{**CFG, "steps": 3}),
                        out=run.run_dir, resume=True, progress=False, log_every=1)
    assert resumed.step == 3 and "mixed_float16" in _policies(resumed.model.sampling_network)


@pytest.mark.slow
@pytest.mark.parametrize("model", ["dcgan", "acgan", "wgan-gp", "vae", "cvae", "bagan", "cvae-gan", "gan-bank",
                                   "stylegan"])
def test_every_zoo_model_trains_in_bf16(toy, tmp_path, model):
    """Every zoo model (cdcgan above) trains two steps under bf16 with ADA and R1 on, finite losses, float32
    images."""
    x, y = toy
    cfg = GANConfig(model=model, **{**CFG, "ada_target": 0.6, "r1": 0.1})
    run = train_gan(x, y, class_names=list("abc"), cfg=cfg, out=tmp_path / model, progress=False, log_every=1,
                    runtime=RuntimeConfig(mixed_precision="bf16"))
    assert run.step == 2 and keras.mixed_precision.global_policy().name == "float32"
    assert any("mixed_bfloat16" in _policies(net) for net in run.model.networks().values())
    losses = [v for r in run.history for k, v in r.items() if k not in ("step", "time_s")]
    assert np.all(np.isfinite(losses)), run.history
    images = run.model.sample(np.array([0, 1, 2]), np.array([5, 6, 7]))
    assert images.dtype == np.float32 and np.all(np.abs(images) <= 1.0)
