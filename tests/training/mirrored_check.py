"""Subprocess helper of the mirrored-strategy tests (tests/training/test_distribute.py,
tests/training/test_classifier_runtime.py, tests/test_cli_runtime.py): needs a fresh Python (2 logical CPU devices
must be configured before TensorFlow initialises). Prints one JSON line ``RESULT {...}`` with:

* ``cli``: exit code, stdout and stderr of ``tfaug train-classifier --strategy mirrored`` run as this fresh
  interpreter's first work (as ``python -m tfaug`` runs it: the CLI itself splits the CPU before TensorFlow
  starts), into ``argv[2]``;
* ``diff[model]``: max |w_mirrored - w_default| over every network weight after ONE training step on the same
  global batch (cdcgan, wgan-gp, vae; DiffAugment and mode seeking off), from identical initial weights
  (mode seeking is a batch-level term: under sharding it compares pairs within a replica's shard only, so it
  is not exact and stays off here);
* ``diff["cdcgan-unsynced"]``: the same for cdcgan without synchronized BatchNorm (must differ: the test can fail);
* ``noise``: per-replica latents of ``batch_normal`` (must differ and equal the default strategy's global draw);
* ``bad_batch``: the TfaugError message of train_gan with a global batch not divisible by 2 replicas;
* ``classifier``: train_classifier under the mirrored runtime (see :func:`classifier_checks`), for
  tests/training/test_classifier_runtime.py.

The three test modules read the one run of this script through the session fixture ``mirrored_check`` of
tests/conftest.py (one fresh interpreter instead of one per module). argv: a run directory that must not be
created (the bad batch fails first), and the CLI run's ``--out``.
"""
import contextlib
import io
import json
import sys


def cli_run(out: str) -> dict:
    """``tfaug train-classifier --strategy mirrored`` in this process, before any TensorFlow work."""
    from tfaug.cli import main

    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        rc = main(["train-classifier", "--dataset", "digits", "--per-class", "4", "--classifier", "lenet5",
                   "--steps", "2", "--batch-size", "8", "--out", out, "--no-progress", "--strategy", "mirrored"])
    return {"rc": rc, "stdout": stdout.getvalue(), "stderr": stderr.getvalue()}


CLI = cli_run(sys.argv[2]) if __name__ == "__main__" else None

import numpy as np  # noqa: E402

from tfaug.config import GANConfig, RuntimeConfig  # noqa: E402
from tfaug.training import distribute  # noqa: E402

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
    out = {"cli": CLI, "diff": {}}
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
    out["classifier"] = classifier_checks()
    print("RESULT " + json.dumps(out), flush=True)


# lenet5 without dropout has no batch statistics and no randomness inside a step, so a mirrored step over two
# halves of a global batch must equal the single-device step on the whole batch (test_classifier_runtime.EXACT).
CLASSIFIER_EXACT = dict(name="lenet5", steps=3, batch_size=16, lr=1e-2, dropout=0.0, fc1=16, fc2=8, seed=4)


def classifier_checks() -> dict:
    """train_classifier under ``mirrored`` (2 replicas) against the single-device steps on the same batches."""
    import tempfile

    from tests_helpers import toy_images, toy_split

    from tfaug.config import ClassifierConfig
    from tfaug.errors import TfaugError
    from tfaug.training.classifier import predict_classes, save_classifier, train_classifier

    mirrored = RuntimeConfig(strategy="mirrored", devices=2)
    cfg = ClassifierConfig(**CLASSIFIER_EXACT)
    (xtr, ytr), (xte, yte) = toy_split(toy_images(n_per_class=16))

    def single_device(cfg, skip_iterators):
        # train_classifier's default path, with the shuffle advanced by `skip_iterators` opened iterators first.
        from tfaug.data.pipeline import make_pipeline
        from tfaug.models.networks.classifiers import build_classifier

        keras.utils.set_random_seed(cfg.seed)
        model = build_classifier(cfg.name, xtr.shape[1:], 3, width=cfg.width, dropout=cfg.dropout,
                                 kernel=cfg.kernel, fc1=cfg.fc1, fc2=cfg.fc2)
        model.compile(optimizer=keras.optimizers.Adam(cfg.lr),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
        ds = make_pipeline(xtr, ytr, cfg.batch_size, shuffle=True, seed=cfg.seed, repeat=True, drop_remainder=True)
        for _ in range(skip_iterators):
            next(iter(ds))
        fit = model.fit(ds, epochs=1, steps_per_epoch=cfg.steps, verbose=0, shuffle=False)
        return model.get_weights(), fit.history["loss"]

    def weight_diff(a, b):
        return max(float(np.abs(p - q).max()) for p, q in zip(a, b))

    one = train_classifier(xtr, ytr, num_classes=3, cfg=cfg, x_test=xte, y_test=yte)
    two = train_classifier(xtr, ytr, num_classes=3, cfg=cfg, x_test=xte, y_test=yte, runtime=mirrored)
    ref, ref_loss = single_device(cfg, 1)
    bn = ClassifierConfig(name="small_cnn", width=4, steps=2, batch_size=16, lr=1e-2, dropout=0.0, seed=1)
    bn_two = train_classifier(xtr, ytr, num_classes=3, cfg=bn, runtime=mirrored)
    res = {"config": CLASSIFIER_EXACT, "replicas": two.model.distribute_strategy.num_replicas_in_sync,
           "default_is_reference": weight_diff(single_device(cfg, 0)[0], one.model.get_weights()),
           "batchnorm_weight_diff": weight_diff(single_device(bn, 1)[0], bn_two.model.get_weights()),
           "max_weight_diff": weight_diff(ref, two.model.get_weights()),
           "loss_reference": ref_loss, "loss_mirrored": two.history["loss"],
           "accuracy_default": one.metrics["accuracy"], "accuracy_mirrored": two.metrics["accuracy"]}
    with tempfile.TemporaryDirectory() as d:
        path = save_classifier(two.model, f"{d}/m.keras")
        res["reloaded_same"] = bool((predict_classes(keras.models.load_model(path), xte) == two.predictions).all())
    try:
        train_classifier(xtr, ytr, num_classes=3, cfg=ClassifierConfig(steps=1, batch_size=7, width=4),
                         runtime=mirrored)
        res["odd_batch"] = "no error"
    except TfaugError as e:
        res["odd_batch"] = str(e)
    return res


if __name__ == "__main__":
    main()
