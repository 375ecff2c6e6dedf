"""``tfaug adapt``: grow a pretrained conditional generator by one class and adapt it to a handful of images.

Steps of :func:`adapt_run`:

1. Load the pretrained networks (:func:`tfaug.fewshot.base.load_trained_model`; ``stylegan``, or ``cdcgan`` with
   ``conditioning=embedding``), or, for a run that was itself adapted, the source networks it stored.
2. Grow G (the base's EMA sampling network) and D by one class: every class table (an ``Embedding`` with one row
   per class, and layers configured with ``num_classes``) gets a new row = the mean of the old rows.
3. Train on the k images (all labelled with the new class id K) with the non-saturating loss, R1 on the augmented
   reals and DiffAugment ``color,translation,cutout``; G's weights are parametrised by the method
   (:mod:`tfaug.fewshot.reparam`) and an EMA of G's parameters is what is kept. G runs in inference mode (its
   BatchNorm statistics are the base's: a batch holds one class only, and sampling uses the stored statistics).
4. Write the adapted run directory atomically: ``checkpoints/generator.keras`` routes rows with ``class_id < K`` to
   the unchanged base network (exactly its images) and rows of class K to the adapted G
   (:func:`tfaug.models.networks.routing.routed_network`).

D is scaffolding, discarded after adaptation: in every method it is fine-tuned FreezeD-style (its lower half
frozen, its upper layers and its new class row trained), because a discriminator that cannot move cannot tell the
k images from the base's other classes, and one that moves entirely overfits k images within a few steps.

Method ``age`` trains nothing: :func:`tfaug.fewshot.age.age_class_network` builds class K's network from the
inverted images (stylegan only).
"""
from __future__ import annotations

import re
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfaug.errors import TfaugError

METHODS = ("freeze", "svd", "embedding", "age")
KINDS = ("stylegan", "cdcgan")
DIFFAUGMENT = "color,translation,cutout"
# Per-method defaults: steps, batch size, G learning rate, D learning rate (Adam, beta_1 0.5). Chosen on one small
# calibration (README "Few-shot: a new class from a handful of images"): a gan/digits cdcgan (1,500 steps, digits
# 0-8), k = 10 images of 9, pixel KID of 200 samples vs the 170 unseen 9s (the base's closest class: 0.76):
# svd 300 steps at 2e-3/2e-4 -> 0.43 (600 at 5e-3/1e-3: 0.79); embedding 600 at 2e-2/1e-3 -> 0.60 (300 at
# 2e-2/2e-4: 0.83); freeze 300 at 2e-4/2e-4 -> 0.91 (1e-3: 1.08, 150 at 1e-3: 1.04). One seed each.
DEFAULTS = {
    "freeze": {"steps": 300, "batch_size": 16, "g_lr": 2e-4, "d_lr": 2e-4},
    "svd": {"steps": 300, "batch_size": 16, "g_lr": 2e-3, "d_lr": 2e-4},
    "embedding": {"steps": 600, "batch_size": 16, "g_lr": 2e-2, "d_lr": 1e-3},
    "age": {"steps": 100, "batch_size": 0, "g_lr": 0.0, "d_lr": 0.0},  # steps: inversion refinement per image
}
R1_GAMMA = 0.1
EMA_DECAY = 0.95
FREEZE_FRACTION = 0.5
W_AVG_SAMPLES = 2048  # latents averaged for a style generator's new class w centroid
SOURCE_DIR = "adapt"  # checkpoints/adapt/: the source networks a re-adaptation starts from
SOURCE_G, SOURCE_D = "generator_source.keras", "discriminator_source.keras"


@dataclass
class AdaptResult:
    """What :func:`adapt_run` made: the adapted run directory, per-interval training records, wall time of the
    adaptation (training or AGE fitting), and the number of trainable scalars of the generator."""

    run_dir: Path
    history: list
    seconds: float
    trainable_parameters: int


@dataclass
class _Source:
    kind: str
    config: dict
    base: object  # sampling network old classes are routed to (the run's generator.keras)
    generator: object  # source sampling network adaptation starts from (K0 classes)
    discriminator: object
    num_classes: int  # K of the run being adapted
    source_classes: int  # K0 of the source networks


def adapt_run(run_dir, images, *, new_class: str, method: str, out, steps: int | None = None,
              batch_size: int | None = None, seed: int = 0, encoder=None, progress: bool = True,
              freeze_fraction: float = FREEZE_FRACTION, compiled: bool = True) -> AdaptResult:
    """Add class ``new_class`` (id K) to the generator of ``run_dir``, adapted to ``images``; write run ``out``.

    Args:
        run_dir: a ``tfaug train-gan`` run of ``stylegan`` or ``cdcgan`` (embedding conditioning), or an adapted run.
        images: uint8 [k, H, W, C], k >= 1 (resized / converted to the base's image shape with a warning).
        new_class: name of the new class; must differ from the run's class names.
        method: one of :data:`METHODS`.
        out: the adapted run directory (must not exist).
        steps, batch_size: training steps and batch (None: the method's :data:`DEFAULTS`); for ``age``, ``steps``
            are the inversion's per-image refinement steps and ``batch_size`` is unused.
        seed: seed of the training noise, batches and augmentation.
        encoder: ``age``: encoder directory from ``tfaug invert`` (None: optimise w directly).
        progress: tqdm progress bar.
        freeze_fraction: share of the weighted layers (topological order) frozen by ``freeze`` in G and in D.
        compiled: run the training step as a ``tf.function`` (False: eagerly, which is faster for a handful of
            steps because nothing is traced).

    Returns:
        :class:`AdaptResult`.

    Raises:
        TfaugError: bad method, k < 1, an existing class name, an existing ``out``, an unsupported run.
    """
    if method not in METHODS:
        raise TfaugError(f"unknown adaptation method {method!r}; choose one of: {', '.join(METHODS)}")
    images = np.asarray(images)
    if images.ndim != 4 or len(images) < 1:
        got = len(images) if images.ndim else 0
        raise TfaugError(f"adaptation needs at least one image of the new class, got {got}")
    out = Path(out)
    if out.exists():
        raise TfaugError(f"{out} already exists; choose another --out")
    from tfaug.utils.rundir import read_run_config

    stored = read_run_config(run_dir)
    names = [str(n) for n in (stored.get("data") or {}).get("class_names") or []]
    if method == "age" and stored.get("kind") != "stylegan":
        raise TfaugError(f"method age needs a stylegan run; {run_dir} holds a {stored.get('kind') or 'unknown'} model")
    new_class = str(new_class).strip()
    if not new_class:
        raise TfaugError("the new class needs a non-empty name")
    if new_class in names:
        raise TfaugError(f"class {new_class!r} already exists in {run_dir}; choose a new name with --new-class")
    src = _load_source(run_dir)
    image_shape = tuple(int(v) for v in src.config["data"]["image_shape"])
    real = prepare_images(images, image_shape)
    k_id = src.num_classes
    settings = dict(DEFAULTS[method])
    settings["steps"] = int(steps if steps is not None else settings["steps"])
    settings["batch_size"] = int(batch_size if batch_size is not None else settings["batch_size"])

    import keras

    keras.utils.set_random_seed(int(seed))
    t0 = time.perf_counter()
    if method == "age":
        new_net, history, n_params = _age_network(src, real, encoder, settings["steps"], seed, progress)
    else:
        new_net, history, n_params = train_new_class(
            src.generator, src.discriminator, src.source_classes, k_id, real, method=method, seed=int(seed),
            settings=settings, progress=progress, freeze_fraction=freeze_fraction, diffaugment=DIFFAUGMENT,
            r1_gamma=R1_GAMMA, ema_decay=EMA_DECAY, eager=not compiled)
        set_class_w_avg(new_net, k_id, seed)
    seconds = time.perf_counter() - t0

    from tfaug.models.networks.routing import routed_network

    if {id(w) for w in new_net.weights} & {id(w) for w in src.base.weights}:
        # e.g. an AGE network runs the base's own synthesis network: a .keras file cannot hold a nested model
        # twice, so the new class gets a copy (same values).
        from tfaug.fewshot.reparam import copy_network

        new_net = copy_network(new_net, name="new_class_network")
    sampling = routed_network(src.base, new_net, k_id, name=f"adapted_{k_id}")
    config = _adapted_config(src, run_dir, new_class, method, len(real), settings, seed, n_params, seconds)
    _write_run(out, config, sampling, src, history, [str(n) for n in config["data"]["class_names"]])
    return AdaptResult(run_dir=out, history=history, seconds=seconds, trainable_parameters=int(n_params))


def prepare_images(images: np.ndarray, image_shape: tuple) -> np.ndarray:
    """uint8 [k, h, w, c] -> float32 [k, H, W, C] in [-1, 1] for ``image_shape = (H, W, C)``; a different size is
    resized (area/bilinear, antialiased) and grey <-> RGB converted, each with a warning."""
    from tfaug.utils.images import to_float

    x = np.asarray(images)
    if x.dtype != np.uint8:
        raise TfaugError(f"images must be uint8 [k, H, W, C], got {x.dtype}")
    h, w, c = image_shape
    if x.shape[-1] != c:
        warnings.warn(f"the new class's images have {x.shape[-1]} channel(s), the generator {c}; converting",
                      stacklevel=3)
        if c == 1:
            x = np.rint(x[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114]))[..., None]
            x = x.clip(0, 255).astype(np.uint8)
        else:
            x = np.repeat(x[..., :1], c, axis=-1)
    if tuple(x.shape[1:3]) != (h, w):
        import tensorflow as tf

        warnings.warn(f"the new class's images are {x.shape[1]}x{x.shape[2]}, the generator's {h}x{w}; resizing",
                      stacklevel=3)
        resized = tf.image.resize(x.astype(np.float32), (h, w), method="area" if x.shape[1] > h else "bilinear",
                                  antialias=True).numpy()
        x = np.rint(resized).clip(0, 255).astype(np.uint8)
    return to_float(x)


# ------------------------------------------------------------------------------------------------ training
def train_new_class(generator, discriminator, source_classes: int, class_id: int, real: np.ndarray, *, method: str,
                    seed: int, settings: dict, progress: bool, freeze_fraction: float, diffaugment: str,
                    r1_gamma: float, ema_decay: float, eager: bool = False, labels=None):
    """Grow ``generator`` and ``discriminator`` by new classes (ids ``class_id ..``) and train them on ``real``.

    Args:
        generator: sampling network ``[z, class_id(, truncation)] -> images`` with ``source_classes`` classes.
        discriminator: ``[images, class_id] -> logits [N, 1]``, no BatchNorm.
        class_id: the first new class id (>= ``source_classes``); its row and every later row are trainable.
        real: float32 [k, H, W, C] in [-1, 1].
        settings: ``steps``, ``batch_size``, ``g_lr``, ``d_lr``.
        labels: int [k] class id of each image of ``real``, each >= ``class_id`` (None: all ``class_id``, one new
            class). Several new classes are adapted jointly: a batch draws images of any of them, and G makes its
            fakes with the batch's labels, so D judges (image, class) pairs of every new class at once.

    Returns:
        ``(adapted generator with the EMA values, history records, G's trainable parameter count)``.
    """
    import keras
    import tensorflow as tf

    from tfaug.augment.diffaug import diff_augment
    from tfaug.fewshot.reparam import grow_network, parametrise
    from tfaug.models.losses import d_loss_nonsaturating, g_loss_nonsaturating, r1_penalty

    labels = np.full(len(real), class_id, np.int32) if labels is None else np.asarray(labels, np.int32)
    if len(labels) != len(real) or (len(labels) and labels.min() < class_id):
        raise TfaugError(f"{len(real)} images need as many labels, each >= the first new class id {class_id}")
    n_classes = int(max(class_id, labels.max(initial=class_id))) + 1
    g, g_tables = grow_network(generator, source_classes, n_classes, name="new_class_generator")
    d, d_tables = grow_network(discriminator, source_classes, n_classes, name="new_class_discriminator")
    gp = parametrise(g, method, class_tables=g_tables, first_new_row=class_id, freeze_fraction=freeze_fraction)
    dp = parametrise(d, "freeze", class_tables=d_tables, first_new_row=class_id, freeze_fraction=freeze_fraction)
    if not gp.parameters:
        raise TfaugError(f"method {method} leaves nothing of this generator trainable")
    ema = [keras.Variable(p.value, trainable=False, name=f"ema_{i}") for i, p in enumerate(gp.parameters)]
    g_opt = keras.optimizers.Adam(settings["g_lr"], beta_1=0.5, beta_2=0.99)
    d_opt = keras.optimizers.Adam(settings["d_lr"], beta_1=0.5, beta_2=0.99)
    g_opt.build(gp.parameters)
    d_opt.build(dp.parameters)
    seeds = keras.random.SeedGenerator(int(seed))
    three = len(g.inputs) == 3
    batch, z_dim = int(settings["batch_size"]), int(g.inputs[0].shape[-1])

    def run_g(z, ids):
        args = [z, ids, tf.ones([batch], tf.float32)] if three else [z, ids]
        with keras.StatelessScope(state_mapping=gp.state_mapping()):
            return g(args, training=False)

    def run_d(x, ids, mapping):
        with keras.StatelessScope(state_mapping=mapping):
            return d([x, ids], training=True)

    def step(real_batch, ids, z):
        fake = run_g(z, ids)
        with tf.GradientTape() as tape:
            mapping = dp.state_mapping()
            real_in = diff_augment(real_batch, diffaugment, seed_generator=seeds)
            fake_in = diff_augment(fake, diffaugment, seed_generator=seeds)
            real_logits, fake_logits = run_d(real_in, ids, mapping), run_d(fake_in, ids, mapping)
            adv = tf.reduce_mean(d_loss_nonsaturating(real_logits, fake_logits))
            r1 = tf.reduce_mean(r1_penalty(real_in, lambda x: run_d(x, ids, mapping), r1_gamma))
            d_loss = adv + r1
        d_opt.apply(tape.gradient(d_loss, dp.parameters), dp.parameters)
        with tf.GradientTape() as tape:
            fake = run_g(z, ids)
            fake_in = diff_augment(fake, diffaugment, seed_generator=seeds)
            g_loss = tf.reduce_mean(g_loss_nonsaturating(run_d(fake_in, ids, dp.state_mapping())))
        g_opt.apply(tape.gradient(g_loss, gp.parameters), gp.parameters)
        for e, p in zip(ema, gp.parameters):
            e.assign(ema_decay * e.value + (1.0 - ema_decay) * p.value)
        return {"d_loss": adv, "g_loss": g_loss, "r1": r1, "d_real": tf.reduce_mean(tf.sigmoid(real_logits)),
                "d_fake": tf.reduce_mean(tf.sigmoid(fake_logits))}

    fn = step if eager else tf.function(step, autograph=False)  # no tensor-dependent Python control flow
    rng = np.random.default_rng(seed)
    total = int(settings["steps"])
    log_every = max(1, total // 50)
    history, t0 = [], time.perf_counter()
    bar = _progress(progress, total, "adapt")
    for i in range(1, total + 1):
        idx = rng.integers(0, len(real), batch)
        z = rng.standard_normal((batch, z_dim)).astype(np.float32)
        logs = fn(tf.constant(real[idx]), tf.constant(labels[idx]), tf.constant(z))
        if bar is not None:
            bar.update(1)
        if i % log_every == 0 or i == total:
            history.append({"step": i, "time_s": round(time.perf_counter() - t0, 3),
                            **{key: float(v) for key, v in logs.items()}})
    if bar is not None:
        bar.close()
    for p, e in zip(gp.parameters, ema):
        p.assign(e.value)
    gp.assign()
    return g, history, gp.trainable_parameters


def _progress(enabled: bool, total: int, desc: str):
    if not enabled or total <= 0:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="step", dynamic_ncols=True)


# ------------------------------------------------------------------------------------------------ sources
def _load_source(run_dir) -> _Source:
    import keras

    from tfaug.export.savedmodel import load_run
    from tfaug.utils.rundir import CHECKPOINTS, read_run_config

    run = Path(run_dir)
    config = read_run_config(run)
    if config.get("adapt"):
        base, _ = load_run(run)
        folder = run / CHECKPOINTS / SOURCE_DIR
        try:
            g = keras.models.load_model(folder / SOURCE_G, compile=False)
            d = keras.models.load_model(folder / SOURCE_D, compile=False)
        except Exception as exc:
            raise TfaugError(f"{folder} lacks readable source networks ({type(exc).__name__}); the adapted run is "
                             "corrupt") from None
        return _Source(str(config.get("kind")), config, base, g, d, int(config["data"]["num_classes"]),
                       int(config["adapt"]["source_classes"]))
    from tfaug.fewshot.base import load_trained_model

    model, config = load_trained_model(run, kinds=KINDS)
    conditioning = ((config.get("gan") or {}).get("options") or {}).get("conditioning", "embedding")
    if config["kind"] == "cdcgan" and conditioning != "embedding":
        raise TfaugError(f"{run} is a cdcgan with {conditioning} conditioning; adaptation needs a learned class "
                         "embedding (train with --option conditioning=embedding)")
    k = int(config["data"]["num_classes"])
    return _Source(config["kind"], config, model.sampling_network, model.sampling_network, model.discriminator, k, k)


def _age_network(src: _Source, real, encoder, steps: int, seed, progress):
    """AGE: no weight is trained (0 trainable parameters); ``steps`` are the inversion's per-image refinement steps."""
    if src.kind != "stylegan":
        raise TfaugError(f"method age needs a stylegan run; this one holds a {src.kind}")
    from tfaug.fewshot.age import age_class_network

    net, info = age_class_network(src.generator, real, encoder_dir=encoder, refine_steps=int(steps), seed=int(seed),
                                  progress=progress, discriminator=src.discriminator)
    record = {"step": int(steps), **{k: v for k, v in (info or {}).items() if isinstance(v, (int, float, str, bool))}}
    return net, [record], 0


def set_class_w_avg(net, class_id: int, seed: int) -> None:
    """A style generator's truncation centre of the new class = the mean w of its mapping network over many z."""
    try:
        trunc, mapping = net.get_layer("truncation"), net.get_layer("mapping")
    except ValueError:
        return
    w_avg = next((v for v in trunc.weights if v.name == "w_avg"), None)
    if w_avg is None:
        return
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((W_AVG_SAMPLES, int(net.inputs[0].shape[-1]))).astype(np.float32)
    w = np.asarray(mapping([z, np.full(len(z), class_id, np.int32)], training=False))
    table = np.asarray(w_avg.value).copy()
    table[class_id] = w.mean(axis=0)
    w_avg.assign(table)


# ------------------------------------------------------------------------------------------------ output
def _adapted_config(src: _Source, run_dir, new_class, method, k, settings, seed, n_params, seconds) -> dict:
    config = {key: value for key, value in src.config.items()}
    data = dict(config.get("data") or {})
    data["num_classes"] = src.num_classes + 1
    data["class_names"] = [str(n) for n in data["class_names"]] + [new_class]
    data["n_train"] = int(k)
    config["data"] = data
    config["adapt"] = {
        "base_run": str(Path(run_dir).resolve()), "method": method, "new_class": new_class,
        "new_class_id": src.num_classes, "k": int(k), "steps": int(settings["steps"]),
        "batch_size": int(settings["batch_size"]), "g_lr": settings["g_lr"], "d_lr": settings["d_lr"],
        "seed": int(seed), "trainable_parameters": int(n_params), "seconds": round(float(seconds), 3),
        "source_classes": int(src.source_classes), "previous": src.config.get("adapt"),
    }
    return config


def _write_run(out: Path, config, sampling, src: _Source, history, class_names) -> None:
    import tensorflow as tf

    from tfaug.models.sampling import generator_images
    from tfaug.training.gan_runner import GRID_COLUMNS, MAX_GRID_CLASSES
    from tfaug.utils import rundir as rd
    from tfaug.utils.images import save_class_grid, to_uint8
    from tfaug.utils.io import append_jsonl, atomic_directory, write_json

    if out.exists():
        raise TfaugError(f"{out} already exists; choose another --out")
    with atomic_directory(out) as tmp:
        write_json(tmp / rd.CONFIG, config)
        ckpt = tmp / rd.CHECKPOINTS
        (ckpt / SOURCE_DIR).mkdir(parents=True)
        sampling.save(str(ckpt / rd.GENERATOR))
        src.generator.save(str(ckpt / SOURCE_DIR / SOURCE_G))
        src.discriminator.save(str(ckpt / SOURCE_DIR / SOURCE_D))
        for record in history:
            append_jsonl(tmp / rd.HISTORY, record)
        k_id = len(class_names) - 1
        shown = list(range(min(k_id, MAX_GRID_CLASSES - 1))) + [k_id]
        ids = np.repeat(np.asarray(shown, np.int32), GRID_COLUMNS)
        seeds = np.tile(np.arange(GRID_COLUMNS, dtype=np.int64), len(shown))
        # Eager: one small batch, not worth tracing a sampler.
        imgs = np.asarray(generator_images(sampling, int(config["gan"]["z_dim"]), tf.constant(ids),
                                           tf.constant(seeds)))
        imgs = to_uint8(imgs).reshape(len(shown), GRID_COLUMNS, *imgs.shape[1:])
        save_class_grid(tmp / rd.SAMPLES / "final.png", list(imgs), [class_names[c] for c in shown],
                        title=f"adapted: {class_names[k_id]} ({config['adapt']['method']})")


# ------------------------------------------------------------------------------------------------ CLI
def load_class_images(spec: str, source_class=None, data_dir=None) -> np.ndarray:
    """uint8 images of ``spec`` (only class ``source_class``, a name or an id, when given)."""
    from tfaug.data.sources import load_dataset

    ds = load_dataset(spec, data_dir)
    if source_class is None:
        return ds.images
    name = str(source_class)
    if name in ds.class_names:
        cid = ds.class_names.index(name)
    elif re.fullmatch(r"\d+", name) and int(name) < ds.num_classes:
        cid = int(name)
    else:
        raise TfaugError(f"--class {name!r} is not a class of {spec}; its classes are: {', '.join(ds.class_names)}")
    return ds.images[ds.labels == cid]


def adapt_command(args) -> int:
    """``tfaug adapt``: load the images, adapt, print a short summary. Returns the exit code (0)."""
    images = load_class_images(args.dataset, args.source_class, getattr(args, "data_dir", None))
    if len(images) < 1:
        which = f" of class {args.source_class!r}" if args.source_class is not None else ""
        raise TfaugError(f"{args.dataset} has no images{which}; the new class needs at least one")
    result = adapt_run(args.run_dir, images, new_class=args.new_class, method=args.method, out=args.out,
                       steps=args.steps, batch_size=args.batch_size, seed=args.seed, encoder=args.encoder,
                       progress=not args.no_progress)
    steps = result.history[-1].get("step", 0) if result.history else 0
    print(f"adapted {args.run_dir} -> {result.run_dir}: class {args.new_class!r} from {len(images)} images, "
          f"method {args.method}, {steps} steps, {result.trainable_parameters} trainable parameters, "
          f"{result.seconds:.1f} s")
    return 0


__all__ = ["AdaptResult", "DEFAULTS", "METHODS", "adapt_command", "adapt_run", "load_class_images", "prepare_images",
           "set_class_w_avg", "train_new_class"]
