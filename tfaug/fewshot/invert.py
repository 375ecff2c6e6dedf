"""GAN inversion for style-based generators (``tfaug invert``): images -> w, by an encoder and by optimisation.

A ``stylegan`` sampling network holds a ``mapping`` network ``[z, class_id] -> w [N, w_dim]`` and a ``synthesis``
network ``w -> images``. Inverting an image means finding the w whose synthesis reconstructs it:

* :func:`train_encoder` trains a convolutional encoder ``image -> [w, class_logits]`` on pairs the run's EMA
  generator makes (``z ~ N(0, I)``, classes uniform, target ``w = mapping(z, c)``) with four losses: squared w
  error normalised by w's per-dimension variance, pixel MSE of ``synthesis(w_hat)``, a domain-feature loss (the
  run's discriminator layer ``d_features``, normalised by the features' per-dimension variance) and class
  cross-entropy; optionally also on real images (pixel + feature losses: their w is unknown). This is the
  encoder of "in-domain" inversion (Zhu et al. 2020, "In-Domain GAN Inversion for Real Image Editing").
* :func:`invert_images` starts from the encoder's w (or, without an encoder, from the nearest class centroid
  in w) and refines each image's w with Adam on pixel + feature loss (Abdal et al. 2019, "Image2StyleGAN").
  The w-space toolkit behind both (statistics, sampling, refinement) is :mod:`tfaug.fewshot.latent`.

Errors are reported relative to the spread of w: ``w_relative_error = sqrt(sum ||w_hat - w||^2 /
sum ||w - mean(w)||^2)``, 1.0 being no better than always answering the mean w. Images are float32 NHWC in
[-1, 1]; pixel MSE is measured on that scale.

Encoder directory (written atomically): ``encoder.keras``, ``config.json`` (base run and settings),
``report.json``, ``history.jsonl``; with real images (``tfaug invert --dataset``) also ``reconstructions.png``:
up to 32 of them over their refined reconstructions.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tfaug.errors import TfaugError
from tfaug.fewshot.latent import (CHUNK, LatentStats, StyleParts, check_images, class_centroids, feature_distance,
                                  latent_stats, nearest_centroids, normalised_sq, pixel_sq, progress_bar, refine_w,
                                  sample_pairs, style_parts, synthesize_all)

ENCODER_FILE = "encoder.keras"
W_WEIGHT, PIXEL_WEIGHT, FEATURE_WEIGHT, CLASS_WEIGHT = 1.0, 1.0, 0.1, 1.0  # encoder training losses
EVAL_SAMPLES = 256  # held-out generated images of the report
_EVAL_STREAM = 0x1E7A  # seed stream of the held-out images
SHOWN = 32  # real images inverted with refinement and drawn in reconstructions.png
RECONSTRUCTIONS = "reconstructions.png"
GRID_COLUMNS = 16
_TRAIN_STREAMS = 1 << 40  # training pairs use streams from here on, so they never meet the held-out images'


def build_encoder_network(image_shape, w_dim: int, num_classes: int, *, width: int = 32,
                          w_mean=None, w_std=None) -> keras.Model:
    """Encoder ``images float32 [N, H, W, C] in [-1, 1] -> [w float32 [N, w_dim], class_logits float32 [N, K]]``.

    The shared conv trunk of ``tfaug.models.networks.encoders`` and two Dense heads; the w head starts at
    ``w_mean`` with outputs spread like ``w_std`` (per dimension), so training starts near the mean w.
    """
    from tfaug.models.networks.encoders import conv_trunk

    images = keras.Input(shape=tuple(int(v) for v in image_shape), dtype="float32", name="images")
    feats = keras.layers.Dense(4 * width, activation="relu", name="head")(conv_trunk(images, int(width)))
    w_head = keras.layers.Dense(int(w_dim), dtype="float32", name="w")
    w = w_head(feats)
    logits = keras.layers.Dense(int(num_classes), dtype="float32", name="class_logits")(feats)
    model = keras.Model(images, [w, logits], name="encoder")
    kernel, bias = w_head.get_weights()
    if w_std is not None:
        kernel = kernel * np.asarray(w_std, np.float32)[None, :]
    if w_mean is not None:
        bias = np.asarray(w_mean, np.float32)
    w_head.set_weights([kernel, bias])
    return model


def evaluate_encoder(parts: StyleParts, encoder: keras.Model, stats: LatentStats, *, n: int = EVAL_SAMPLES,
                     seed: int = 0) -> dict:
    """Reconstruction of ``n`` held-out generated images (their own seed stream) by ``encoder`` alone.

    Returns:
        ``{"n", "w_relative_error", "pixel_mse", "feature_distance" (None without features), "class_accuracy"}``;
        ``w_relative_error`` is relative to the spread of the true w (1.0 = answering the mean w).
    """
    ids = np.arange(n, dtype=np.int32) % parts.num_classes
    w, x = sample_pairs(parts, ids, seed, _EVAL_STREAM)
    w_hat, logits = _encode(encoder, x)
    x_hat = synthesize_all(parts, w_hat)
    report = {"n": int(n),
              "w_relative_error": float(np.sqrt(np.sum((w_hat - w) ** 2) / np.sum((w - w.mean(0)) ** 2))),
              "pixel_mse": float(np.mean((x_hat - x) ** 2)),
              "class_accuracy": float(np.mean(np.argmax(logits, -1) == ids)),
              "feature_distance": feature_distance(parts, x, x_hat, stats)}
    return report


def _reconstruction_report(parts: StyleParts, x: np.ndarray, x_hat: np.ndarray, stats: LatentStats) -> dict:
    return {"n": int(len(x)), "pixel_mse": float(np.mean((x_hat - x) ** 2)),
            "feature_distance": feature_distance(parts, x, x_hat, stats)}


def fit_encoder(parts: StyleParts, *, steps: int, batch_size: int, images: np.ndarray | None = None, seed: int = 0,
                width: int = 32, learning_rate: float = 3e-3, stats: LatentStats | None = None,
                progress: bool = True) -> tuple[keras.Model, list[dict], LatentStats]:
    """Train an encoder for ``parts`` (see the module docstring); returns ``(encoder, history, stats)``.

    Args:
        parts: the generator (and, for the feature loss, its discriminator's features).
        steps, batch_size: Adam steps and generated pairs per step (>= 1).
        images: optional real images float32 ``[M, H, W, C]`` in [-1, 1] (pixel + feature losses).
        seed: seeds the pairs, the real batches and the encoder's initial weights.
        width: base channel count of the encoder's trunk.
        learning_rate: Adam's initial learning rate (cosine decay to 0 over ``steps``).
        stats: w and feature statistics (default: :func:`latent_stats` of ``parts``).
        progress: tqdm bar.
    """
    stats = stats or latent_stats(parts, seed)
    keras.utils.set_random_seed(int(seed))
    encoder = build_encoder_network(parts.image_shape, parts.w_dim, parts.num_classes, width=width,
                                    w_mean=stats.w_mean, w_std=np.sqrt(stats.w_var))
    # Cosine decay to 0: short schedules end well converged.
    opt = keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(learning_rate, max(1, steps)))
    variables = encoder.trainable_variables
    opt.build(variables)
    w_var, f_var, k = stats.w_var, stats.feature_var, parts.num_classes
    has_features = parts.features is not None

    def terms_of(x, w_true=None, c_true=None, prefix=""):
        w_hat, logits = encoder(x, training=True)
        x_hat = parts.synthesize(w_hat)
        terms = {f"{prefix}pixel": tf.reduce_mean(pixel_sq(x_hat, x))}
        if has_features:
            terms[f"{prefix}feature"] = tf.reduce_mean(normalised_sq(parts.feature(x_hat), parts.feature(x), f_var))
        if w_true is not None:
            terms["w"] = tf.reduce_mean(normalised_sq(w_hat, w_true, w_var))
            terms["class"] = tf.reduce_mean(
                keras.losses.sparse_categorical_crossentropy(c_true, logits, from_logits=True))
        return terms

    weights = {"w": W_WEIGHT, "pixel": PIXEL_WEIGHT, "feature": FEATURE_WEIGHT, "class": CLASS_WEIGHT,
               "real_pixel": PIXEL_WEIGHT, "real_feature": FEATURE_WEIGHT}

    def make_step(with_real: bool):
        @tf.function
        def step(i, real):
            key = tf.stack([tf.constant(int(seed), tf.int64), _TRAIN_STREAMS + 2 * tf.cast(i, tf.int64)])
            z = tf.random.stateless_normal([batch_size, parts.z_dim], seed=key)
            c = tf.random.stateless_uniform([batch_size], seed=key + tf.constant([0, 1], tf.int64), minval=0,
                                            maxval=k, dtype=tf.int32)
            w = parts.map(z, c)
            x = parts.synthesize(w)
            with tf.GradientTape() as tape:
                terms = terms_of(x, w, c)
                if with_real:
                    terms.update(terms_of(real, prefix="real_"))
                loss = tf.add_n([weights[name] * value for name, value in terms.items()])
            opt.apply(tape.gradient(loss, variables), variables)
            return {"loss": loss, **terms}

        return step

    rng = np.random.default_rng(int(seed))
    step = make_step(images is not None)
    real = tf.zeros([0, *parts.image_shape], tf.float32)
    log_every = max(1, steps // 50)
    history, bar = [], progress_bar(progress, steps, "encoder")
    try:
        for i in range(steps):
            if images is not None:
                real = tf.constant(images[rng.integers(0, len(images), min(batch_size, len(images)))])
            out = step(tf.constant(i, tf.int64), real)
            if (i + 1) % log_every == 0 or i + 1 == steps:
                record = {"step": i + 1, **{name: float(v) for name, v in out.items()}}
                history.append(record)
                if bar is not None:
                    bar.set_postfix(loss=f"{record['loss']:.3f}", w=f"{record['w']:.3f}")
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return encoder, history, stats


@dataclass
class EncoderResult:
    """Result of :func:`train_encoder`: the encoder directory and its report (as in ``report.json``)."""

    out: Path
    report: dict


def load_style_run(run_dir: str | os.PathLike) -> tuple[StyleParts, dict]:
    """``(StyleParts with the discriminator's features, run config)`` of a stylegan run directory."""
    from tfaug.fewshot.base import load_trained_model

    model, config = load_trained_model(run_dir, kinds=("stylegan",))
    return style_parts(model.sampling_network, model.discriminator), config


def train_encoder(run_dir: str | os.PathLike, *, out: str | os.PathLike, steps: int = 2000, batch_size: int = 32,
                  images: np.ndarray | None = None, seed: int = 0, progress: bool = True, width: int | None = None,
                  learning_rate: float = 3e-3, refine_steps: int = 100,
                  _loaded: tuple[StyleParts, dict] | None = None) -> EncoderResult:
    """Train an inversion encoder for the stylegan run ``run_dir`` and write the encoder directory ``out``.

    Args:
        run_dir: a ``stylegan`` run directory (``tfaug train-gan --model stylegan``).
        out: the encoder directory to write (must not exist); written atomically.
        steps, batch_size: training steps and generated pairs per step (>= 1).
        images: optional real images float32 ``[M, H, W, C]`` in [-1, 1] at the run's image shape (or uint8).
        seed: seeds everything (pairs, real batches, initial weights, held-out set).
        progress: tqdm bar.
        width: encoder trunk width (default: the run's ``gan.width``, at least 16).
        learning_rate: Adam's initial learning rate (cosine decay to 0).
        refine_steps: with ``images``: per-image refinement steps for the ``SHOWN`` images drawn in
            ``reconstructions.png`` (>= 0).

    Returns:
        :class:`EncoderResult`; ``report`` = ``{"generated": evaluate_encoder(...)}``, with images also
        ``"images": {"n", "pixel_mse", "feature_distance" (encoder alone, all images), "refined": {"n",
        "refine_steps", "encoder_pixel_mse", "pixel_mse"} (the shown images)}``.

    Raises:
        TfaugError: ``out`` exists, bad settings or images, or ``run_dir`` is not a stylegan run.
    """
    out = Path(out)
    if out.exists():
        raise TfaugError(f"{out} already exists; choose another --out for the encoder")
    if int(steps) < 1 or int(batch_size) < 1 or int(refine_steps) < 0:
        raise TfaugError(f"steps and batch size must be >= 1 and refine steps >= 0, got {steps!r}, {batch_size!r} "
                         f"and {refine_steps!r}")
    parts, config = _loaded or load_style_run(run_dir)
    if images is not None:
        images = check_images(images, parts.image_shape)
    width = int(width or max(16, int((config.get("gan") or {}).get("width") or 32)))
    start = time.perf_counter()
    encoder, history, stats = fit_encoder(parts, steps=int(steps), batch_size=int(batch_size), images=images,
                                          seed=seed, width=width, learning_rate=learning_rate, progress=progress)
    report = {"generated": evaluate_encoder(parts, encoder, stats, seed=seed)}
    shown = None
    if images is not None:
        w_hat = _encode(encoder, images)[0]
        report["images"] = _reconstruction_report(parts, images, synthesize_all(parts, w_hat), stats)
        pick = np.sort(np.random.default_rng(int(seed)).permutation(len(images))[:SHOWN])
        inv = invert_with(parts, images[pick], encoder=encoder, refine_steps=refine_steps, stats=stats, seed=seed,
                          progress=progress)
        report["images"]["refined"] = {"n": int(len(pick)), "refine_steps": int(refine_steps),
                                       "encoder_pixel_mse": float(inv.initial_pixel_mse.mean()),
                                       "pixel_mse": float(inv.pixel_mse.mean())}
        shown = (images[pick], inv.reconstructions)
    from tfaug import __version__
    from tfaug.utils.io import atomic_directory, atomic_write_text, write_json

    settings = {"kind": "encoder", "base_run": str(Path(run_dir).resolve()), "base_kind": config.get("kind"),
                "steps": int(steps), "batch_size": int(batch_size), "seed": int(seed), "width": width,
                "learning_rate": float(learning_rate), "n_images": 0 if images is None else int(len(images)),
                "image_shape": list(parts.image_shape), "w_dim": parts.w_dim, "num_classes": parts.num_classes,
                "class_names": list((config.get("data") or {}).get("class_names") or []),
                "seconds": round(time.perf_counter() - start, 2), "tfaug_version": __version__}
    with atomic_directory(out) as tmp:
        encoder.save(str(tmp / ENCODER_FILE))
        write_json(tmp / "config.json", settings)
        write_json(tmp / "report.json", report)
        atomic_write_text(tmp / "history.jsonl", "".join(json.dumps(r, sort_keys=True) + "\n" for r in history))
        if shown is not None:
            save_reconstructions(tmp / RECONSTRUCTIONS, *shown)
    return EncoderResult(out, report)


def load_encoder(encoder_dir: str | os.PathLike, parts: StyleParts | None = None) -> tuple[keras.Model, dict]:
    """``(encoder, config)`` from an encoder directory; checked against ``parts`` when given.

    Raises:
        TfaugError: not an encoder directory, or an encoder made for another generator.
    """
    from tfaug.utils.io import read_json

    path = Path(encoder_dir) / ENCODER_FILE
    if not path.is_file() or not (Path(encoder_dir) / "config.json").is_file():
        raise TfaugError(f"{encoder_dir} is not an encoder directory (no {ENCODER_FILE}); make one with tfaug invert")
    try:
        encoder = keras.models.load_model(str(path), compile=False)
        config = read_json(Path(encoder_dir) / "config.json")
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise TfaugError(f"the encoder in {encoder_dir} is unreadable ({exc})") from None
    if parts is not None:
        shapes = (tuple(encoder.inputs[0].shape[1:]), int(encoder.outputs[0].shape[-1]),
                  int(encoder.outputs[1].shape[-1]))
        if shapes != (parts.image_shape, parts.w_dim, parts.num_classes):
            raise TfaugError(f"the encoder in {encoder_dir} was trained for another generator (image shape, w size, "
                             f"classes {shapes}, this one {(parts.image_shape, parts.w_dim, parts.num_classes)})")
    return encoder, config


def _encode(encoder: keras.Model, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    outs = [[np.asarray(t, np.float32) for t in encoder(x[i : i + CHUNK], training=False)]
            for i in range(0, len(x), CHUNK)]
    return np.concatenate([o[0] for o in outs]), np.concatenate([o[1] for o in outs])


@dataclass
class Inversion:
    """Result of :func:`invert_images` (one row per image)."""

    w: np.ndarray  # float32 [N, w_dim]
    class_ids: np.ndarray  # int32 [N]: given, the encoder's prediction, or the nearest centroid's class
    reconstructions: np.ndarray  # float32 [N, H, W, C] in [-1, 1] = synthesis(w)
    pixel_mse: np.ndarray  # float32 [N], after refinement
    initial_pixel_mse: np.ndarray  # float32 [N], at the starting w (encoder or centroid)


def invert_with(parts: StyleParts, images, *, encoder: keras.Model | None = None, class_ids=None,
                refine_steps: int = 100, stats: LatentStats | None = None, centroids: np.ndarray | None = None,
                seed: int = 0, progress: bool = False) -> Inversion:
    """:func:`invert_images` on loaded networks (``encoder`` None: start from the class centroid)."""
    x = check_images(images, parts.image_shape)
    if class_ids is not None:
        class_ids = np.asarray(class_ids).reshape(-1)
        if len(class_ids) != len(x) or not np.issubdtype(class_ids.dtype, np.integer) or \
                class_ids.min() < 0 or class_ids.max() >= parts.num_classes:
            raise TfaugError(f"class_ids must be {len(x)} integers in [0, {parts.num_classes}), one per image")
        class_ids = class_ids.astype(np.int32)
    if int(refine_steps) < 0:
        raise TfaugError(f"refine steps must be >= 0, got {refine_steps!r}")
    stats = stats or latent_stats(parts, seed)
    if encoder is not None:
        w0, logits = _encode(encoder, x)
        ids = np.argmax(logits, -1).astype(np.int32) if class_ids is None else class_ids
    else:
        centroids = class_centroids(parts, seed=seed) if centroids is None else np.asarray(centroids, np.float32)
        ids = nearest_centroids(parts, x, centroids) if class_ids is None else class_ids
        w0 = centroids[ids]
    w = refine_w(parts, x, w0, stats, steps=int(refine_steps), progress=progress)
    recon = synthesize_all(parts, w)
    initial = synthesize_all(parts, w0) if refine_steps else recon
    return Inversion(w, ids, recon, np.mean((recon - x) ** 2, axis=(1, 2, 3)).astype(np.float32),
                     np.mean((initial - x) ** 2, axis=(1, 2, 3)).astype(np.float32))


def invert_images(run_dir: str | os.PathLike, images, *, encoder_dir: str | os.PathLike | None = None,
                  class_ids=None, refine_steps: int = 100, seed: int = 0, progress: bool = False,
                  _loaded: tuple[StyleParts, dict] | None = None) -> Inversion:
    """Invert ``images`` into the w space of the stylegan run ``run_dir``.

    Args:
        run_dir: a ``stylegan`` run directory.
        images: float32 ``[N, H, W, C]`` in [-1, 1] (or uint8) at the run's image shape.
        encoder_dir: an encoder directory from :func:`train_encoder` (its w is the start), or None: start from
            the centroid of the given class, or of the class whose centroid image is nearest.
        class_ids: optional int ``[N]`` classes of the images (default: predicted).
        refine_steps: per-image optimisation steps (>= 0; 0 = the starting point only).
        seed: seeds the latent statistics and centroids.
        progress: tqdm bar over the refinement.

    Raises:
        TfaugError: bad images or class ids, not a stylegan run, or an encoder of another generator.
    """
    parts, _ = _loaded or load_style_run(run_dir)
    encoder = load_encoder(encoder_dir, parts)[0] if encoder_dir is not None else None
    return invert_with(parts, images, encoder=encoder, class_ids=class_ids, refine_steps=refine_steps, seed=seed,
                       progress=progress)


def fit_images(images: np.ndarray, image_shape) -> tuple[np.ndarray, list[str]]:
    """uint8 ``[N, h, w, c]`` -> float32 ``[N, H, W, C]`` in [-1, 1] at ``image_shape`` (resized, channels
    converted: gray repeated to RGB, RGB averaged to gray), with a warning sentence for each change."""
    x, notes = np.asarray(images, np.float32) / 127.5 - 1.0, []
    h, w, c = (int(v) for v in image_shape)
    if x.shape[-1] != c:
        notes.append(f"converted {x.shape[-1]}-channel images to the generator's {c} channel(s)")
        x = np.repeat(x.mean(-1, keepdims=True), c, axis=-1) if c in (1, 3) else x
    if tuple(x.shape[1:3]) != (h, w):
        notes.append(f"resized {x.shape[1]}x{x.shape[2]} images to the generator's {h}x{w}")
        x = np.asarray(tf.image.resize(x, (h, w), antialias=True), np.float32)
    return np.clip(x, -1.0, 1.0), notes


def save_reconstructions(path: str | os.PathLike, originals: np.ndarray, reconstructions: np.ndarray) -> None:
    """PNG of rows of up to ``GRID_COLUMNS`` originals, each over its reconstructions (float [-1, 1] inputs)."""
    from tfaug.utils.images import make_grid, save_png, to_uint8, upscale

    rows = []
    for i in range(0, len(originals), GRID_COLUMNS):
        for part in (originals, reconstructions):
            row = to_uint8(part[i : i + GRID_COLUMNS])
            pad = np.full((GRID_COLUMNS - len(row), *row.shape[1:]), 255, np.uint8)
            rows.append(np.concatenate([row, pad]))
    save_png(path, upscale(make_grid(np.concatenate(rows), ncols=GRID_COLUMNS), 256))


def invert_command(args) -> int:
    """``tfaug invert``: train the encoder and print its report in a few lines."""
    if Path(args.out).exists():
        raise TfaugError(f"{args.out} already exists; choose another --out for the encoder")
    loaded = load_style_run(args.run_dir)
    images = None
    if args.dataset:
        from tfaug.data.sources import load_dataset

        ds = load_dataset(args.dataset, data_dir=args.data_dir)
        images, notes = fit_images(ds.images, loaded[0].image_shape)
        for note in notes:
            print(f"warning: {note}")
    result = train_encoder(args.run_dir, out=args.out, steps=args.steps or 2000, batch_size=args.batch_size or 32,
                           images=images, seed=args.seed, progress=not args.no_progress,
                           refine_steps=100 if args.refine_steps is None else args.refine_steps, _loaded=loaded)
    gen = result.report["generated"]
    print(f"encoder: {result.out}")
    print(f"generated images (n={gen['n']}): w relative error {gen['w_relative_error']:.3f}, pixel MSE "
          f"{gen['pixel_mse']:.4f}, feature distance {_fmt(gen['feature_distance'])}, class accuracy "
          f"{gen['class_accuracy']:.3f}")
    if images is not None:
        real, refined = result.report["images"], result.report["images"]["refined"]
        print(f"{args.dataset} (n={real['n']}): pixel MSE {real['pixel_mse']:.4f}, feature distance "
              f"{_fmt(real['feature_distance'])}; {refined['n']} of them after {refined['refine_steps']} refinement "
              f"steps: pixel MSE {refined['pixel_mse']:.4f} (encoder alone {refined['encoder_pixel_mse']:.4f})")
        print(f"reconstructions: {result.out / RECONSTRUCTIONS} (originals over reconstructions)")
    return 0


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


__all__ = ["ENCODER_FILE", "EncoderResult", "Inversion", "build_encoder_network", "evaluate_encoder", "fit_encoder",
           "fit_images", "invert_command", "invert_images", "invert_with", "load_encoder", "load_style_run",
           "save_reconstructions", "train_encoder"]
