"""Subprocess helper of tests/training/test_distribute.py: needs a fresh Python (2 logical CPU devices must be
configured before TensorFlow initialises). Prints one JSON line ``RESULT {...}`` with:

* ``diff[model]``: max |w_mirrored - w_default| over every network weight after ONE training step on the same
  global batch (cdcgan, wgan-gp, vae; DiffAugment and mode seeking off), from identical initial weights
  (mode seeking is a batch-level term: under sharding it compares pairs within a replica's shard only, so it
  is not exact and stays off here);
* ``diff["cdcgan-unsynced"]``: the same for cdcgan without synchronized BatchNorm (must differ: the test can fail);
* ``noise``: per-replica latents of ``batch_normal`` (must differ and equal the default strategy's global draw);
* ``bad_batch``: the TfaugError message of train_gan with a global batch not divisible by 2 replicas.
"""
import json
import sys

import numpy as np

from tfaug.config import GANConfig, RuntimeConfig
from tfaug.training import distribute

MIRRORED = distribute.make_strategy(RuntimeConfig(strategy="mirrored", devices=2))  # before any TF work

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfaug.models.zoo import build_model  # noqa: E402

SHAPE, K, BATCH = (8, 8, 1), 3, 8
CFGS = {
    "cdcgan": GANConfig(model="cdcgan", width=4, z_dim=4, batch_size=BATCH, diffaugment="", mode_seeking=0.0,
                        seed=3),
    "wgan-gp": GANConfig(model="wgan-gp", width=4, z_dim=4, batch_size=BATCH, diffaugment="", mode_seeking=0.0, seed=3,
                         options={"n_critic": 1}),
    "vae": GANConfig(model="vae", width=4, z_dim=4, batch_size=BATCH, seed=3),
}


def batch():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (BATCH, *SHAPE)).astype("float32")
    y = (np.arange(BATCH) % K).astype("int32")
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH, drop_remainder=True)


def one_step(name, strategy, init=None, sync=True):
    keras.utils.set_random_seed(7)
    with strategy.scope():
        model = build_model(CFGS[name].model, SHAPE, K, CFGS[name])
        if name == "wgan-gp":
            # Adam's first step is lr * sign(g): it turns float noise in an exactly-zero gradient (the critic's
            # output bias under a Wasserstein loss) into +-lr. SGD makes this a comparison of the gradients.
            model.d_optimizer, model.g_optimizer = keras.optimizers.SGD(0.05), keras.optimizers.SGD(0.05)
            model.build_optimizers()
    nets = model.networks()
    if init is not None:
        for key, net in nets.items():
            net.set_weights(init[key])
    start = {k: n.get_weights() for k, n in nets.items()}
    if sync:
        distribute.synchronize_batchnorm(nets.values(), strategy)
    step = distribute.make_train_function(model.train_step, strategy)
    logs = step(next(iter(distribute.distribute_dataset(batch(), strategy))))
    assert all(np.isfinite(float(v)) for v in logs.values()), logs
    return start, {k: n.get_weights() for k, n in nets.items()}


def max_diff(a, b):
    return max(float(np.max(np.abs(x - y))) for k in a for x, y in zip(a[k], b[k]))


def main():
    default = tf.distribute.get_strategy()
    out = {"diff": {}}
    for name in CFGS:
        init, ref = one_step(name, default)
        _, got = one_step(name, MIRRORED, init)
        out["diff"][name] = max_diff(ref, got)
        out.setdefault("moved", {})[name] = max_diff(init, ref)  # the step changed the weights at all
        if name == "cdcgan":
            _, unsynced = one_step(name, MIRRORED, init, sync=False)
            out["diff"]["cdcgan-unsynced"] = max_diff(ref, unsynced)

    # Noise: each replica draws its own rows of one global draw.
    with MIRRORED.scope():
        model = build_model("vae", SHAPE, K, CFGS["vae"])
    per_replica = MIRRORED.run(tf.function(lambda: model.batch_normal(2, 3)))
    rows = [np.asarray(v) for v in MIRRORED.experimental_local_results(per_replica)]
    with tf.distribute.get_strategy().scope():
        ref_model = build_model("vae", SHAPE, K, CFGS["vae"])
    ref = np.asarray(ref_model.batch_normal(4, 3))
    out["noise"] = {"replicas_differ": bool(np.max(np.abs(rows[0] - rows[1])) > 1e-3),
                    "equals_global_draw": bool(np.allclose(np.concatenate(rows), ref, atol=1e-6))}

    from tfaug.errors import TfaugError
    from tfaug.training.gan_runner import train_gan

    x = np.random.default_rng(1).integers(0, 255, (14, *SHAPE), dtype=np.uint8)
    try:
        train_gan(x, np.arange(14) % K, class_names=list("abc"), out=sys.argv[1], progress=False,
                  cfg=GANConfig(steps=1, batch_size=7, width=4, z_dim=4, sample_every=0, checkpoint_every=0),
                  runtime=RuntimeConfig(strategy="mirrored", devices=2))
        out["bad_batch"] = None
    except TfaugError as exc:
        out["bad_batch"] = str(exc)
    print("RESULT " + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
