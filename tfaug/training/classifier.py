"""Train a classifier on a data mix (real, duplicated, generated) and score it on real test data.

Training is step-based (``ClassifierConfig.steps``) rather than epoch-based, so that a strategy that adds
duplicates or generated images gets the same optimisation budget as the baseline and differences come from the
data, not from more gradient steps. Classic augmentation runs on the fly inside ``tf.data`` and never touches test
data.

A :class:`tfaug.config.RuntimeConfig` says where training runs: the model is built and compiled inside
``tfaug.training.distribute.runtime_scope`` (a ``tf.distribute`` strategy and the Keras dtype policy), and Keras'
``fit`` distributes the batches over the replicas. The batch size is the global batch, split evenly across them.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfaug.augment.kinds import resolve_augment
from tfaug.config import ClassifierConfig, RuntimeConfig
from tfaug.errors import TfaugError
from tfaug.training.longtail import posthoc_model, train_loss
from tfaug.utils.classification import classification_metrics
from tfaug.utils.images import as_float_images


@dataclass
class ClassifierResult:
    """A trained classifier and what it did.

    Attributes:
        model: the Keras model (float32 [-1, 1] images -> logits).
        metrics: scores on the test set (empty without one).
        history: per-step loss/accuracy lists; with a pretrain phase also ``pretrain_loss``/``pretrain_accuracy``.
        predictions: int64 [N] predicted classes of ``x_test``, or None without a test set.
        steps: optimisation steps of the main phase (``cfg.budget`` of the real training set).
        generated_model: with ``mixing={"sepbn": True}`` the twin of ``model`` that generated images trained
            through (own BatchNorm layers; of the first ensemble member), else None.
    """

    model: object
    metrics: dict
    history: dict
    predictions: np.ndarray | None = None
    steps: int = 0
    generated_model: object = None


def _checked(x, y, num_classes: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Images as float32 [-1, 1] and labels as int32, validated (non-empty, labels in [0, K))."""
    x = as_float_images(x)
    y = np.asarray(y, np.int32).reshape(-1)
    if len(x) == 0:
        raise TfaugError(f"no {what} images for the classifier")
    if len(x) != len(y):
        raise TfaugError(f"{what} set has {len(x)} images but {len(y)} labels")
    if y.min() < 0 or y.max() >= num_classes:
        raise TfaugError(f"{what} labels must be in [0, {num_classes})")
    return x, y


def train_classifier(
    x_train: np.ndarray,
    y_train: np.ndarray,
    *,
    num_classes: int,
    cfg: ClassifierConfig,
    x_test: np.ndarray | None = None,
    y_test: np.ndarray | None = None,
    augment: str | None = None,
    minority: int | None = None,
    progress: bool | str = False,
    pretrain: tuple | None = None,
    flag_channels: int = 0,
    runtime: RuntimeConfig | None = None,
    budget_images: int | None = None,
    log_dir: str | os.PathLike | None = None,
    class_weights=None,
    logit_adjust_tau: float | None = None,
    posthoc: bool = False,
    balanced: bool = False,
    targets=None,
    synthetic=None,
    mixing: dict | None = None,
) -> ClassifierResult:
    """Train ``cfg.name`` on (x_train, y_train) and evaluate on (x_test, y_test).

    The network is built from ``x_train.shape[1:]``, so any channel count works (e.g. C + 1 with S4's
    source-flag channel; ``x_test`` must then carry the same channels).

    Args:
        x_train: [N, H, W, C] uint8 or float32 in [-1, 1]; N >= 1.
        y_train: int [N] class ids in [0, num_classes).
        num_classes: K >= 2.
        cfg: classifier configuration (network incl. ``kernel``/``fc1``/``fc2`` of ``lenet5``, steps, batch
            size, lr, seed).
        x_test, y_test: real held-out test data (never augmented); metrics are empty without it.
        augment: classic augmentation spec for training batches (``classic:PRESET`` ...) or None; a bare
            ``classic`` takes the preset of the training images' guessed kind (``tfaug.augment.kinds``).
            With ``pretrain`` the same augmenter runs in both phases (one spec for the whole training run, so a
            curriculum differs from its baseline only in the pretraining data).
        minority: class id whose F1 is reported as ``minority_f1``.
        progress: show a progress bar over steps; a string shows it with that text (what is being trained).
        pretrain: optional ``(x, y, steps)``: first ``steps`` >= 0 steps on (x [M, H, W, C] as x_train, y int
            [M]) with the same model and optimizer (S4's curriculum: pretrain on generated images), then
            ``cfg.steps`` steps on (x_train, y_train). None trains exactly as without the argument.
        flag_channels: the last ``flag_channels`` >= 0 channels are flags (S4's source flag), not image: classic
            augmentation leaves them untouched (a rotation's fill or a brightness shift would corrupt a flag).
        budget_images: size of the real training set that sets the step budget (``cfg.budget``); None uses
            ``len(x_train)``. A strategy that adds duplicated or generated images passes its real draw's size, so
            it trains exactly as long as its control.
        runtime: where training runs (strategy, mixed precision, XLA); None is ``RuntimeConfig()`` (one device,
            float32, no XLA). Under ``mixed_float16`` the logits stay float32; the global dtype policy is restored
            afterwards. With a distributed strategy the batch (``min(cfg.batch_size, N)``) is the global batch
            (divisible by the replica count), BatchNormalization uses global-batch statistics, and the batches
            come in another seeded order than on one device: Keras' ``fit`` opens the dataset once to build the
            model before training, which advances the shuffle's seed (the same step on the same batch, tested;
            another draw of batches).
        log_dir: write TensorBoard logs (loss and accuracy every step) there, a pretrain phase's under
            ``log_dir/pretrain``, ensemble member i > 0's under ``log_dir/member_i``; None writes none
            (``tfaug.training.tensorboard.classifier_callbacks``).
        class_weights: optional K per-class loss weights >= 0 (e.g. ``tfaug.training.longtail.
            effective_number_weights``: Cui et al. 2019's class-balanced loss).
        logit_adjust_tau: optional tau >= 0: train with the logit-adjusted loss on the prior of ``y_train`` (Menon
            et al. 2021, eq. 10), or with ``posthoc`` train plainly and return a model whose logits are
            ``f(x) - tau * log(prior)`` (eq. 9).
        posthoc: post-hoc logit adjustment instead of the adjusted loss (needs ``logit_adjust_tau``).
        balanced: class-balanced sampling (every class equally likely in each batch, seeded) in every phase.
        targets: optional float [N, K] training targets (rows >= 0 summing to 1, e.g. a teacher's soft targets on
            generated rows) used instead of the one-hot labels; label smoothing applies to them alike.
        synthetic: bool [N], True on generated rows (needed by ``mixing``).
        mixing: how generated rows enter the batches (``tfaug.training.mixing``): ``weight`` W >= 0 (fixed
            proportion, loss weight W), ``swap`` P in [0, 1] (replace real images by generated ones of their
            class), ``sepbn`` True (own BatchNorm for generated images). Not with ``pretrain``, long-tail losses or
            ``balanced``; weight and sepbn on one device only. With mixing the batch size is the real batch;
            generated rows come on top. Without any generated row it trains plainly.

    Returns:
        A :class:`ClassifierResult`; ``history`` holds ``loss``/``accuracy`` of the main phase (of the first
        member of an ensemble) and, with ``pretrain``,
        ``pretrain_loss``/``pretrain_accuracy``.

    Raises:
        TfaugError: bad data or arguments, or a batch size not divisible by the strategy's replica count.
    """
    x_train, y_train = _checked(x_train, y_train, num_classes, "training")
    if posthoc and logit_adjust_tau is None:
        raise TfaugError("post-hoc logit adjustment needs logit_adjust_tau (1.0 is the paper's default)")
    loss = train_loss(y_train, num_classes, class_weights=class_weights, logit_adjust_tau=logit_adjust_tau,
                      posthoc=posthoc, label_smoothing=cfg.label_smoothing)
    extra = _mixing_inputs(x_train, num_classes, targets, synthetic, mixing, loss, balanced, pretrain)
    phases = []
    if pretrain is not None:
        if not isinstance(pretrain, (tuple, list)) or len(pretrain) != 3:
            raise TfaugError("pretrain must be a tuple (images, labels, steps)")
        x_pre, y_pre = _checked(pretrain[0], pretrain[1], num_classes, "pretraining")
        pre_steps = pretrain[2]
        if isinstance(pre_steps, bool) or not isinstance(pre_steps, (int, np.integer)) or pre_steps < 0:
            raise TfaugError(f"pretrain steps must be an integer >= 0, got {pre_steps!r}")
        if x_pre.shape[1:] != x_train.shape[1:]:
            raise TfaugError(f"pretraining images have shape {x_pre.shape[1:]} but training images {x_train.shape[1:]}")
        if pre_steps > 0:
            phases.append(("pretrain_", x_pre, y_pre, int(pre_steps), {}))
    steps = cfg.budget(len(x_train) if budget_images is None else budget_images)
    phases.append(("", x_train, y_train, steps, extra))
    _check_flags(flag_channels, x_train.shape[-1])
    if x_test is not None and np.ndim(x_test) == 4 and len(x_test) and np.shape(x_test)[1:] != x_train.shape[1:]:
        raise TfaugError(f"test images have shape {np.shape(x_test)[1:]} but training images {x_train.shape[1:]}")
    runtime = runtime or RuntimeConfig()
    augment = resolve_augment(augment, x_train[..., : x_train.shape[-1] - flag_channels]) if augment else None
    members, history, twin = [], {}, None
    for member in range(cfg.ensemble):
        seed = cfg.seed + member
        model, fit_history, gen_model = _train_member(cfg, seed, phases, num_classes, x_train.shape[1:], augment,
                                                      loss, balanced, flag_channels, runtime, progress,
                                                      name=cfg.name if cfg.ensemble == 1 else f"{cfg.name}_{member}",
                                                      log_dir=log_dir if member == 0 or log_dir is None
                                                      else os.path.join(log_dir, f"member_{member}"))
        members.append(model)
        if member == 0:
            history, twin = fit_history, gen_model
    model = members[0] if len(members) == 1 else _ensemble_model(members, runtime)
    if posthoc:
        model = posthoc_model(model, y_train, num_classes, logit_adjust_tau)
    metrics, pred = {}, None
    if x_test is not None and y_test is not None and len(x_test):
        pred = predict_classes(model, x_test)
        metrics = classification_metrics(y_test, pred, num_classes, minority=minority)
    return ClassifierResult(model=model, metrics=metrics, history=history, predictions=pred, steps=steps,
                            generated_model=twin)


def _mixing_inputs(x_train, num_classes: int, targets, synthetic, mixing, loss, balanced: bool, pretrain) -> dict:
    """Validated ``targets`` / ``synthetic`` / ``mixing`` of the main phase (``{}`` when none is given)."""
    out: dict = {}
    if targets is not None:
        t = np.asarray(targets, np.float32)
        if t.shape != (len(x_train), num_classes) or not np.all(np.isfinite(t)) or np.any(t < 0) \
                or not np.allclose(t.sum(axis=1), 1.0, atol=1e-4):
            raise TfaugError(f"targets must be [{len(x_train)}, {num_classes}] rows of numbers >= 0 summing to 1")
        out["targets"] = t
    if mixing:
        unknown = sorted(set(mixing) - {"weight", "swap", "sepbn"})
        if unknown:
            raise TfaugError(f"unknown mixing option(s) {', '.join(unknown)} (weight, swap, sepbn)")
        if synthetic is None or np.shape(synthetic) != (len(x_train),):
            raise TfaugError(f"mixing needs synthetic: one bool per training image ({len(x_train)})")
        if balanced or pretrain is not None:
            raise TfaugError("weight, swap and sepbn do not combine with class-balanced sampling or a pretrain phase")
        if np.any(synthetic):  # no generated row (a filter kept none): plain training on the real rows
            out["synthetic"] = np.asarray(synthetic, bool)
            out["mixing"] = dict(mixing)
    elif "targets" in out and balanced:
        raise TfaugError("soft targets do not combine with class-balanced sampling")
    return out


def _train_member(cfg: ClassifierConfig, seed: int, phases: list, num_classes: int, shape, augment, loss,
                  balanced: bool, flag_channels: int, runtime: RuntimeConfig, progress: bool, name: str, log_dir=None):
    """Build, compile and fit one network through every phase; returns (model, history of its phases, the sepbn
    twin or None)."""
    import keras

    from tfaug.augment.classic import build_augmenter
    from tfaug.data.pipeline import make_pipeline
    from tfaug.models.networks.classifiers import build_classifier
    from tfaug.training.distribute import check_global_batch, num_replicas, runtime_scope, synchronize_batchnorm
    from tfaug.training.mixing import domain_models, mixed_dataset

    total = sum(p[3] for p in phases)
    mixing = next((p[4]["mixing"] for p in phases if p[4].get("mixing")), None)
    # Model, optimizer and loss scaling are made under the strategy and dtype policy; fit runs outside the scope
    # (Keras keeps the model's strategy), so the augmenter's layers stay float32 and off the replicas.
    with runtime_scope(runtime) as strategy:
        for _, x, _, _, _ in phases:
            check_global_batch(min(cfg.batch_size, len(x)), strategy)
        keras.utils.set_random_seed(seed)
        model = build_classifier(cfg.name, shape, num_classes, width=cfg.width, dropout=cfg.dropout,
                                 kernel=cfg.kernel, fc1=cfg.fc1, fc2=cfg.fc2, model_name=name)
        synchronize_batchnorm([model], strategy)  # global-batch statistics, as on one device
        trained, twin = model, None
        if mixing and (mixing.get("sepbn") or "weight" in mixing) and num_replicas(strategy) > 1:
            raise TfaugError("weight and sepbn train on one device for now (their batches are not split across "
                             "replicas); use --strategy default")
        if mixing and mixing.get("sepbn"):
            trained, twin = domain_models(model)
            synchronize_batchnorm([twin], strategy)
        trained.compile(
            optimizer=make_optimizer(cfg, total),
            loss=loss or keras.losses.CategoricalCrossentropy(from_logits=True,
                                                       label_smoothing=cfg.label_smoothing),
            metrics=["accuracy"],
            jit_compile=runtime.jit_compile,
        )
    augmenter = build_augmenter(augment, seed=seed, channels=shape[-1] - flag_channels) if augment else None
    # the generated stream's own augmenter (weight/sepbn), so the real batches see the real-only run's draws
    aug_gen = build_augmenter(augment, seed=seed + 1, channels=shape[-1]) if augment and mixing else None
    if augmenter is not None and flag_channels:
        augmenter = image_channels_only(augmenter, flag_channels, shape[-1])
    from tfaug.training.tensorboard import classifier_callbacks

    history: dict = {}
    for prefix, x, y, steps, extra in phases:
        batch = min(cfg.batch_size, len(x))
        targets = extra.get("targets")
        if extra.get("mixing"):
            synthetic = extra["synthetic"]
            batch = min(cfg.batch_size, int(np.count_nonzero(~synthetic)))
            ds = mixed_dataset(x, np.eye(num_classes, dtype=np.float32)[y] if targets is None else targets,
                               synthetic, batch, seed=seed, mixing=extra["mixing"], augment=augmenter,
                               augment_generated=aug_gen)
        else:
            ds = make_pipeline(x, y, batch, shuffle=True, seed=seed, augment=augmenter, repeat=True,
                               drop_remainder=True, one_hot=0 if loss else num_classes, balanced=balanced,
                               targets=targets)
        desc = "pretrain-classifier" if prefix else (progress if isinstance(progress, str) else "train-classifier")
        if prefix == phases[0][0]:  # before the first fit
            prebuild(trained, ds, strategy)
        board = classifier_callbacks(log_dir, phase=prefix.rstrip("_"))
        callbacks = ([_tqdm_callback(steps, desc)] if progress else []) + board
        fit = trained.fit(ds, epochs=1, steps_per_epoch=steps, verbose=0, callbacks=callbacks, shuffle=False)
        history.update({prefix + k: [float(v) for v in vs] for k, vs in fit.history.items()})
    return model, history, twin


def prebuild(model, dataset, strategy) -> None:
    """Create a compiled model's optimizer slots and metric variables before its first ``fit``.

    Keras 3 builds them ahead of time only under a non-default distribution strategy; otherwise the first trace of
    the train step creates them, and TensorFlow then traces the step a second time (a ``tf.function`` that created
    variables is retraced without them). Tracing is most of a short fit's time: building first saves one trace per
    fit (tests/training/test_mixing.py, 15 small fits: 36 s before, 21-27 s after, idle 2-core Xeon). The
    variables are the same, created empty; training is unchanged (tests/training/test_classifier.py checks
    bit-identical weights against Keras' own fit). ``Model._symbolic_build`` is Keras' own pre-build (what ``fit``
    runs under a strategy); where a Keras version lacks it, only the optimizer is built."""
    with strategy.scope():
        build = getattr(model, "_symbolic_build", None)
        if build is not None:
            build(data_batch=dataset.element_spec)
        elif model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)


def make_optimizer(cfg: ClassifierConfig, total_steps: int):
    """Adam (AdamW when ``cfg.weight_decay`` > 0, BatchNorm and biases not decayed) at ``cfg.lr``, constant or
    with linear warm-up and cosine decay to 0 over ``total_steps`` >= 1 steps."""
    import keras

    lr = cfg.lr
    if cfg.schedule == "cosine":
        warm = int(round(cfg.warmup * total_steps))
        lr = keras.optimizers.schedules.CosineDecay(
            cfg.lr if warm == 0 else cfg.lr * 0.1, max(1, total_steps - warm), alpha=0.0,
            warmup_target=cfg.lr if warm else None, warmup_steps=warm)
    if cfg.weight_decay > 0:
        opt = keras.optimizers.AdamW(lr, weight_decay=cfg.weight_decay)
        opt.exclude_from_weight_decay(var_names=["_bn", "bias", "beta", "gamma"])
        return opt
    return keras.optimizers.Adam(lr)


def _ensemble_model(members: list, runtime: RuntimeConfig):
    """The members as one model averaging their probabilities (built under the run's strategy)."""
    from tfaug.models.networks.classifiers import ensemble_classifier
    from tfaug.training.distribute import runtime_scope

    with runtime_scope(runtime):
        return ensemble_classifier(members)


def image_channels_only(augmenter, flag_channels: int, channels: int):
    """Wrap ``augmenter`` so it sees only the first ``channels - flag_channels`` channels of a batch.

    Args:
        augmenter: a callable on float32 [B, H, W, C'] batches in [-1, 1] (``training=`` is passed through).
        flag_channels: trailing channels passed through unchanged, in [0, channels).
        channels: total channels C of the batches.

    Returns:
        A callable float32 [B, H, W, C] -> [B, H, W, C] (image channels augmented, flags untouched).
    """
    keep = int(channels) - _check_flags(flag_channels, channels)

    def apply(images, training: bool = True):
        import tensorflow as tf

        out = augmenter(images[..., :keep], training=training)
        return tf.concat([tf.cast(out, images.dtype), images[..., keep:]], axis=-1)

    return apply


def _check_flags(flag_channels, channels: int) -> int:
    if isinstance(flag_channels, bool) or not isinstance(flag_channels, (int, np.integer)) \
            or not 0 <= flag_channels < channels:
        raise TfaugError(f"flag_channels must be an integer in [0, {channels}), got {flag_channels!r}")
    return int(flag_channels)


def predict_classes(model, images: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """argmax class ids int64 [N] for uint8 or [-1, 1] float images."""
    # Direct calls instead of model.predict: predict builds a new tf.function per model, which floods the log
    # with retracing warnings when a study trains many classifiers.
    x = as_float_images(images)
    out = [np.argmax(np.asarray(model(x[i : i + batch_size], training=False)), axis=-1)
           for i in range(0, len(x), batch_size)]
    return np.concatenate(out).astype(np.int64) if out else np.zeros(0, np.int64)


def predict_probabilities(model, images, num_classes: int, batch_size: int = 512) -> np.ndarray:
    """Softmax probabilities float32 [N, K] of a logits classifier for float images in [-1, 1] [N, H, W, C]."""
    import tensorflow as tf

    x = np.asarray(images, np.float32)
    out = [tf.nn.softmax(model(x[i:i + batch_size], training=False)).numpy() for i in range(0, len(x), batch_size)]
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0, num_classes), np.float32)


def save_classifier(model, path: str | os.PathLike) -> Path:
    """Save a classifier as a .keras file atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    model.save(str(tmp))
    os.replace(tmp, path)
    return path


def _tqdm_callback(total: int, desc: str = "train-classifier"):
    """A Keras callback showing a tqdm bar over training batches (keras imported lazily)."""
    import keras
    from tqdm.auto import tqdm

    class TqdmSteps(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.bar = tqdm(total=total, desc=desc, unit="step", dynamic_ncols=True)

        def on_train_batch_end(self, batch, logs=None):
            self.bar.update(1)
            if logs and "loss" in logs:
                self.bar.set_postfix(loss=f"{float(logs['loss']):.3f}")

        def on_train_end(self, logs=None):
            self.bar.close()

    return TqdmSteps()
