"""CVAE-GAN: training steps update E, G, D and C with finite losses, the loss weights are options, and the
sampling network (EMA G on z ~ N(0, I) + class) follows the sampling contract."""
import keras
import numpy as np
import pytest

from tfaug.config import GANConfig
from tfaug.errors import TfaugError
from tfaug.models.cvae_gan import DEFAULTS
from tfaug.models.zoo import build_model
from tests_helpers import toy_images

K = 3


CFG = GANConfig(model="cvae-gan", steps=40, z_dim=8, width=8, batch_size=12, diffaugment="translation",
                ema_decay=0.5, sample_every=0, checkpoint_every=0, options={"adv": 0.1, "cls": 0.1})


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 40-step CVAE-GAN run with all six loss terms on, on the toy bands (~4 s)."""
    from tfaug.training.gan_runner import train_gan

    x, y = toy_images(n_per_class=12, num_classes=K)
    keras.utils.set_random_seed(CFG.seed)  # the runner builds with the same seed: these are its initial weights
    before = {n: net.get_weights() for n, net in build_model("cvae-gan", (8, 8, 1), K, CFG).networks().items()}
    run_dir = tmp_path_factory.mktemp("cvae_gan") / "run"
    run = train_gan(x, y, class_names=["a", "b", "c"], cfg=CFG, out=run_dir, progress=False, log_every=1)
    return run.model, run_dir, before, [{k: v for k, v in r.items() if k not in ("step", "time_s")}
                                        for r in run.history]


def test_every_network_trains_with_finite_losses(trained):
    model, _, before, logs = trained
    assert set(logs[-1]) == {"d_loss", "c_loss", "g_loss", "kl", "recon", "d_real", "d_fake"}
    assert all(np.isfinite(v) for r in logs for v in r.values())
    for name, net in model.networks().items():
        assert any(not np.array_equal(a, b) for a, b in zip(before[name], net.get_weights())), name
    # The VAE part learns: the pixel reconstruction error falls.
    assert np.mean([r["recon"] for r in logs[-5:]]) < np.mean([r["recon"] for r in logs[:5]])
    assert {n for n in model.optimizers()} == {"d", "c", "g"}


def test_paper_default_weights_and_option_errors():
    assert DEFAULTS == {"kl": 3.0, "recon": 1.0, "fm_d": 1e-3, "fm_c": 1e-3, "adv": 0.0, "cls": 0.0}
    with pytest.raises(TfaugError, match="no option"):
        build_model("cvae-gan", (8, 8, 1), 2, GANConfig(options={"lambda1": 3}))
    with pytest.raises(TfaugError, match="kl"):
        build_model("cvae-gan", (8, 8, 1), 2, GANConfig(options={"kl": -1.0}))


def test_sample_contract(trained):
    model = trained[0]
    a = model.sample([0, 1, 2, 2], [1, 2, 3, 4])
    assert a.shape == (4, 8, 8, 1) and a.dtype == np.float32 and a.min() >= -1.0 and a.max() <= 1.0
    np.testing.assert_allclose(model.sample([2], [3])[0], a[2], atol=1e-6)
    np.testing.assert_array_equal(model.sample([0, 1, 2, 2], [1, 2, 3, 4]), a)
    assert not np.allclose(a[2], a[3])
    # The class input matters (same seed, other class).
    assert not np.allclose(model.sample([0], [3])[0], a[2])
    assert model.sampling_network is model.ema_generator


def test_run_dir_generator_and_export_match_sample(trained, tmp_path):
    from tfaug.export.savedmodel import export_run
    from tfaug.synthesis.loader import load_generator

    model, run_dir = trained[:2]
    ids, seeds = np.array([0, 1, 2], np.int32), np.array([7, 8, 9], np.int64)
    want = model.sample(ids, seeds)
    np.testing.assert_allclose(load_generator(run_dir).sample(ids, seeds), want, atol=1e-5)
    served = load_generator(export_run(run_dir, "cvae_gan", base=tmp_path / "saved_models")).sample(ids, seeds)
    np.testing.assert_allclose(served, want, atol=1.5 / 127.5)
