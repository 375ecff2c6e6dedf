"""Unconditional DCGAN: S1's 64x64x3 configuration, a few steps on tiny data, sampling contract, R1 guard."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from tfaug.config import GANConfig, preset
from tfaug.errors import TfaugError
from tfaug.models.dcgan import build_dcgan

CFG = GANConfig(model="dcgan", z_dim=8, width=8, diffaugment="translation", ema_decay=0.5, mode_seeking=0.05)


def _float(x):
    return x.astype(np.float32) / 127.5 - 1.0


def test_s1_64x64_rgb_configuration_layer_sizes():
    """S1: z=100, G ConvT 4x4 512->256->128->64->3 from 4x4, D Conv 4x4 64->128->256->512->1, BN, LReLU 0.2."""
    keras.utils.set_random_seed(0)
    cfg = preset("gan/dcgan64")
    gan = build_dcgan((64, 64, 3), 2, cfg)
    g, d = gan.generator, gan.discriminator
    assert g.inputs[0].shape[-1] == 100 and g.output_shape == (None, 64, 64, 3)
    assert g.get_layer("start_grid").output.shape[1:] == (4, 4, 512)
    convt = [layer for layer in g.layers if isinstance(layer, keras.layers.Conv2DTranspose)]
    assert [layer.filters for layer in convt] == [256, 128, 64, 3]
    assert all(layer.kernel_size == (4, 4) and layer.strides == (2, 2) and not layer.use_bias for layer in convt)
    assert [layer.output.shape[1] for layer in convt] == [8, 16, 32, 64]
    assert sum(isinstance(layer, keras.layers.BatchNormalization) for layer in g.layers) == 4  # not on the output
    convs = [layer for layer in d.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [layer.filters for layer in convs] == [64, 128, 256, 512]
    assert all(layer.kernel_size == (4, 4) and layer.strides == (2, 2) for layer in convs)
    assert convs[-1].output.shape[1:3] == (4, 4) and d.output_shape == (None, 1)
    assert sum(isinstance(layer, keras.layers.BatchNormalization) for layer in d.layers) == 3  # middle layers
    assert {layer.negative_slope for layer in d.layers if isinstance(layer, keras.layers.LeakyReLU)} == {0.2}
    assert abs(float(np.std(convt[0].get_weights()[0])) - 0.02) < 0.002  # N(0, 0.02) init
    assert float(gan.g_optimizer.learning_rate.numpy()) == pytest.approx(5e-4)


def test_train_steps_and_sampling_contract(toy):
    keras.utils.set_random_seed(1)
    x, y = toy
    gan = build_dcgan((8, 8, 1), 3, CFG)
    step = tf.function(gan.train_step)
    for i in range(3):
        logs = step((tf.constant(_float(x[i * 16:(i + 1) * 16])), tf.constant(y[i * 16:(i + 1) * 16])))
    assert set(logs) == {"d_loss", "g_loss", "d_real", "d_fake"}
    assert all(np.isfinite(float(v)) for v in logs.values())
    one = gan.sample([2], [7])
    batch = gan.sample([0, 1, 2, 0], [3, 7, 7, 9])
    assert batch.shape == (4, 8, 8, 1) and batch.dtype == np.float32 and np.all(np.abs(batch) <= 1.0)
    np.testing.assert_allclose(one[0], batch[2], atol=1e-5)  # batch-independent
    np.testing.assert_allclose(batch[1], batch[2], atol=1e-6)  # unconditional: the class id is ignored
    assert not np.allclose(batch[0], batch[3])


@pytest.mark.parametrize("shape", [(25, 25, 1), (12, 16, 3)])
def test_odd_and_non_square_shapes(shape):
    keras.utils.set_random_seed(2)
    gan = build_dcgan(shape, 2, CFG)
    assert gan.image_shape == shape and gan.sample([0, 1], [1, 2]).shape == (2, *shape)


def test_r1_needs_a_discriminator_without_batchnorm(toy):
    with pytest.raises(TfaugError, match="d_norm=none"):  # 16x16: D has a BatchNorm block
        build_dcgan((16, 16, 1), 3, GANConfig(**{**CFG.__dict__, "r1": 1.0}))
    with pytest.raises(TfaugError, match="no option 'depth'"):
        build_dcgan((8, 8, 1), 3, GANConfig(**{**CFG.__dict__, "options": {"depth": 3}}))
    keras.utils.set_random_seed(3)
    x, y = toy
    gan = build_dcgan((8, 8, 1), 3, GANConfig(**{**CFG.__dict__, "r1": 1.0, "options": {"d_norm": "none"}}))
    logs = gan.train_step((tf.constant(_float(x[:8])), tf.constant(y[:8])))
    assert float(logs["r1"]) > 0 and np.isfinite(float(logs["d_loss"]))
