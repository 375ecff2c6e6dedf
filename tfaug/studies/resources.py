"""What a study cell trains besides its classifier: generators, a judge classifier, an encoder, generator metrics.

:class:`CellResources` implements the ``tfaug.synthesis.strategies.Resources`` protocol for one set of real training
images (a cell's ``generator_train`` draw, or one cross-validation fold's training originals). Everything it
trains sees those images only, never a test image:

- ``generator(model)``: the zoo model ``model`` trained with ``cfg.generator_config(model, seed)`` by
  ``tfaug.training.gan_runner.train_gan`` in ``ROOT/<model>[-fold<i>]``; the run's ``config.json`` records the
  training indices (``data.train_indices``). A finished run is reused (weights restored, no training), an
  interrupted one resumed. With ``generator.pretrain`` the study's ``generator.model`` is instead pretrained on the
  source and adapted to the draw (``tfaug.studies.pretrain``; the source run of a dataset spec is shared by every
  draw in ``OUT/generators/pretrain-<model>-<hash>``).
- ``probabilities_fn()``: softmax probabilities of a judge classifier (``cfg.classifier``) trained on the images;
  ``ROOT/judge[-fold<i>].json`` records its training indices.
- ``encode_fn()``: the posterior mean of a ``vae`` zoo model (``methods.latent_dim``, ``methods.encoder_steps``)
  trained on the images, in ``ROOT/encoder-vae[-fold<i>]``.
- ``augment_spec()``: the classic augmentation a bare ``classic`` means for this draw: the data kind's preset,
  its milder one or none, chosen on validation splits of the images (``tfaug.training.augment_choice``), once per
  draw; ``ROOT/augment[-fold<i>].json`` records it (with the images' indices) so other cells and workers reuse it.
- ``teacher_fn()``: softmax probabilities of the draw's control classifier: ``cfg.classifier`` trained on the
  images with the draw's classic augmentation (``augment_spec()``), saved to ``ROOT/teacher[-fold<i>]/classifier.keras``
  with ``teacher.json`` (its training indices and settings, written last) so that every cell of the draw, in any
  worker, loads it instead of training it again.
- ``generator_metrics(model)``: ``gen_kid``, ``gen_copies``, ``gen_ssim``, ``gen_consistency`` as asked by
  ``cfg.generator_metrics`` (computed once per generator).

Everything trained here runs under the study's ``cfg.runtime`` (strategy, mixed precision, XLA: where it runs,
never what it computes). Seeds come from the ``seed`` given at construction (derived by the runner from the study
seed, the repeat and the fold), never from what ran before in the process.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from pathlib import Path

import numpy as np

from tfaug.errors import TfaugError
from tfaug.utils.io import read_json, write_json

GEN_METRIC_SEED = 9_000_000  # generator-metric samples use seeds apart from the training mixes'
MAX_METRIC_SAMPLES = 500
MAX_HELDOUT = 1000
# The teacher is the control classifier: real images + classic augmentation (a bare `classic`: the draw's choice).
TEACHER_AUGMENT = "classic"


class CellResources:
    """Generators, judge and encoder trained on one set of real images (see the module docstring).

    Args:
        cfg: the study (``StudyConfig``).
        images: uint8 [N, H, W, C] real training images (the only images anything here trains on).
        labels: int [N] their class ids in [0, K).
        indices: int [N] their dataset indices (recorded in run directories for audit).
        class_names: K class names.
        root: directory of this draw's runs (``OUT/generators/<scope>/r<repeat>``).
        seed: seed of everything trained here (>= 0).
        suffix: run-name suffix (``""`` or ``"-fold<i>"``).
        heldout: optional uint8 real images the generators never saw (the copy threshold of ``gen_copies``).
        info: extra facts recorded in each run's ``data_info``.
        progress: show training progress bars.
        exclude: optional uint8 images (the study's test images) that no pretraining source may contain.
    """

    def __init__(self, cfg, *, images, labels, indices, class_names, root, seed: int, suffix: str = "",
                 heldout=None, info: dict | None = None, progress: bool = False, exclude=None):
        self.cfg, self.images, self.labels = cfg, np.asarray(images), np.asarray(labels, np.int32)
        self.indices = np.asarray(indices, np.int64)
        self.class_names, self.root, self.seed, self.suffix = list(class_names), Path(root), int(seed), suffix
        self.heldout, self.info, self.progress = heldout, dict(info or {}), progress
        self.exclude = exclude
        self.seconds = 0.0  # time spent training here (generators, judge, encoder)
        self._models: dict[str, object] = {}
        self._judge = None
        self._encoder = None
        self._teacher = None
        self._augment = None
        self._metrics: dict[str, dict] = {}

    # -- Resources protocol ---------------------------------------------------------------------------------
    def generator(self, model: str):
        """The zoo model ``model`` (in memory; ``sample(class_ids, seeds)``) trained on this draw only."""
        if model not in self._models and getattr(self.cfg, "pretrain", None) and model == self.cfg.generator.model:
            from tfaug.studies.pretrain import pretrained_generator

            self._models[model] = pretrained_generator(self, model)
        if model not in self._models:
            cfg = self.cfg.generator_config(model, self.seed)
            self._models[model] = self._train(model, cfg, f"{model}{self.suffix}", "generator")
        return self._models[model]

    def probabilities_fn(self):
        """images float32 [-1, 1] [n, H, W, C] -> softmax probabilities float32 [n, K] of the judge classifier."""
        if self._judge is None:
            self._judge = self._train_judge()
        return self._probabilities(self._judge)

    def teacher_fn(self):
        """images float32 [-1, 1] [n, H, W, C] -> softmax probabilities float32 [n, K] of the draw's teacher (the
        control classifier, trained once per draw and shared by its cells; see the module docstring)."""
        if self._teacher is None:
            with self._guard(f"teacher{self.suffix}"):
                self._teacher = self._teacher_model()
        return self._probabilities(self._teacher)

    def augment_spec(self) -> str:
        """The draw's resolved classic augmentation (``classic:KIND``, ``classic:KIND-mild`` or ``none``)."""
        if self._augment is None:
            with self._guard(f"augment{self.suffix}"):
                self._augment = self._augment_choice()
        return self._augment

    def _augment_choice(self) -> str:
        from tfaug.config import to_dict
        from tfaug.training.augment_choice import choose_augment

        t0 = time.perf_counter()
        path = self.root / f"augment{self.suffix}.json"
        cfg = dataclasses.replace(self.cfg.classifier, seed=self.seed, min_epochs=0.0, max_steps=0,
                                  steps=self.cfg.classifier_steps(len(self.images)))
        record = {**self.info, "role": "augment", "train_indices": self.indices.tolist(), "classifier": to_dict(cfg)}
        if path.exists():
            stored = read_json(path)
            if {k: stored.get(k) for k in record} == _plain(record) and "augment" in stored:
                return stored["augment"]
        choice = choose_augment(self.images, self.labels, num_classes=len(self.class_names), cfg=cfg)
        write_json(path, {**record, "augment": choice.spec, "kind": choice.kind, "protocol": choice.protocol,
                          "scores": choice.scores})
        self.seconds += time.perf_counter() - t0
        return choice.spec

    def _probabilities(self, model):
        from tfaug.training.classifier import predict_probabilities

        k = len(self.class_names)
        return lambda x: predict_probabilities(model, x, k)

    def encode_fn(self):
        """images float32 [-1, 1] [n, H, W, C] -> posterior means float32 [n, latent_dim] of a VAE."""
        if self._encoder is None:
            m = self.cfg.methods
            cfg = dataclasses.replace(self.cfg.generator_config("vae", self.seed), z_dim=int(m["latent_dim"]),
                                      steps=int(m["encoder_steps"]))
            self._encoder = self._train("vae", cfg, f"encoder-vae{self.suffix}", "encoder")
        vae = self._encoder
        return lambda x: vae.encode(np.asarray(x, np.float32))

    # -- generator metrics ---------------------------------------------------------------------------------
    def generator_metrics(self, model: str) -> dict:
        """``gen_*`` values of generator ``model`` (those listed in ``cfg.generator_metrics``), cached."""
        if model not in self._metrics:
            self._metrics[model] = self._compute_metrics(model)
        return dict(self._metrics[model])

    def _compute_metrics(self, model: str) -> dict:
        from tfaug.utils.images import to_float

        names = self.cfg.generator_metrics
        if not names:
            return {}
        gen = self.generator(model)
        real = to_float(self.images) if self.images.dtype == np.uint8 else self.images.astype(np.float32)
        n = min(MAX_METRIC_SAMPLES, 10 * len(real))
        ids = np.resize(self.labels, n).astype(np.int32)  # the training set's class balance
        fake = gen.sample(ids, np.arange(GEN_METRIC_SEED, GEN_METRIC_SEED + n, dtype=np.int64))
        out = {}
        if "kid" in names:
            from tfaug.utils.kid import pixel_kid

            out["gen_kid"] = float(pixel_kid(real, fake)) if len(real) >= 2 else float("nan")
        if "copies" in names:
            out["gen_copies"] = self._copies(real, fake)
        if "ssim" in names:
            from tfaug.metrics.diversity import pairwise_ssim

            mean = pairwise_ssim(fake, ids, seed=self.seed)["mean"]
            out["gen_ssim"] = float("nan") if mean is None else float(mean)
        if "consistency" in names:
            probs = self.probabilities_fn()(fake)
            out["gen_consistency"] = float(np.mean(np.argmax(probs, axis=-1) == ids))
        return out

    def _copies(self, real: np.ndarray, fake: np.ndarray) -> float:
        """Share of generated images nearer (pixels) to a training image than most held-out real images are."""
        from tfaug.metrics.memorisation import memorisation
        from tfaug.utils.images import to_float

        flat = lambda x: x.reshape(len(x), -1)  # noqa: E731
        held = self.heldout
        if held is not None and len(held):
            if len(held) > MAX_HELDOUT:
                rng = np.random.default_rng(self.seed)
                held = held[np.sort(rng.choice(len(held), MAX_HELDOUT, replace=False))]
            held = to_float(held) if held.dtype == np.uint8 else np.asarray(held, np.float32)
            return float(memorisation(flat(fake), flat(real), flat(held))["share_copies"])
        if len(real) < 2:
            return float("nan")
        # No held-out pool: the threshold comes from distances between distinct training images.
        res = memorisation(flat(fake), flat(real), flat(real), gen_pixels=fake, train_pixels=real)
        return float(res["share_copies_pixel"])

    # -- training ---------------------------------------------------------------------------------------
    def _guard(self, name: str):
        """Context held while run ``root/name`` is trained or loaded (parallel workers lock it; here: nothing)."""
        return self._guard_dir(self.root / name)

    def _guard_dir(self, run_dir: Path):
        """Context held while run directory ``run_dir`` (anywhere) is trained or loaded; here: nothing."""
        return contextlib.nullcontext()

    def _train(self, model: str, cfg, name: str, role: str):
        """Train (or reuse / resume) ``model`` in ``root/name`` under :meth:`_guard`; returns the zoo model."""
        with self._guard(name):
            return self._train_run(model, cfg, name, role)

    def _train_run(self, model: str, cfg, name: str, role: str):
        from tfaug.training.gan_runner import restore_checkpoint, train_gan
        from tfaug.utils import rundir as rd

        run_dir = self.root / name
        t0 = time.perf_counter()
        exists = (run_dir / rd.CONFIG).exists()
        if exists:
            stored = rd.read_run_config(run_dir)
            recorded = stored.get("data", {}).get("train_indices")
            if recorded is not None and list(recorded) != self.indices.tolist():
                raise TfaugError(f"{run_dir} was trained on other images than this cell's draw; "
                                 "pass another --out or delete that run directory")
            state = rd.read_state(run_dir)
            if state is not None and state.get("finished"):
                from tfaug.config import GANConfig
                from tfaug.models.zoo import build_model

                import keras

                done_cfg = GANConfig(**stored["gan"])
                keras.utils.set_random_seed(done_cfg.seed)
                built = build_model(done_cfg.model, tuple(self.images.shape[1:]), len(self.class_names), done_cfg)
                restore_checkpoint(built, run_dir)
                self.seconds += time.perf_counter() - t0
                return built
        info = {**self.info, "role": role, "model": model, "train_indices": self.indices.tolist()}
        run = train_gan(self.images, self.labels, class_names=self.class_names, cfg=cfg, out=run_dir,
                        data_info=info, resume=exists, progress=self.progress, runtime=self._runtime())
        self.seconds += time.perf_counter() - t0
        return run.model

    def _runtime(self):
        """The study's ``RuntimeConfig`` (None, i.e. the default one, for a config without ``runtime``)."""
        return getattr(self.cfg, "runtime", None)

    def _teacher_model(self):
        """The teacher run ``root/teacher[-fold<i>]``: loaded when finished for these images, else trained."""
        from tfaug.config import to_dict
        from tfaug.training.classifier import save_classifier, train_classifier

        t0 = time.perf_counter()
        run = self.root / f"teacher{self.suffix}"
        cfg = dataclasses.replace(self.cfg.classifier, seed=self.seed,
                                  steps=self.cfg.classifier_steps(len(self.images)))
        augment = self.augment_spec() if TEACHER_AUGMENT == "classic" else TEACHER_AUGMENT
        record = {**self.info, "role": "teacher", "train_indices": self.indices.tolist(), "augment": augment,
                  "classifier": to_dict(cfg)}
        if (run / "teacher.json").exists():
            stored = read_json(run / "teacher.json")
            if stored.get("train_indices") != record["train_indices"]:
                raise TfaugError(f"{run} was trained on other images than this cell's draw; "
                                 "pass another --out or delete that run directory")
            if stored == _plain(record) and (run / "classifier.keras").exists():
                import keras

                import tfaug.models.networks.layers  # noqa: F401 - registers tfaug's layers for loading

                model = keras.models.load_model(run / "classifier.keras", compile=False)
                self.seconds += time.perf_counter() - t0
                return model
        res = train_classifier(self.images, self.labels, num_classes=len(self.class_names), cfg=cfg,
                               augment=None if augment == "none" else augment, runtime=self._runtime())
        save_classifier(res.model, run / "classifier.keras")
        write_json(run / "teacher.json", record)  # last: marks the run finished
        self.seconds += time.perf_counter() - t0
        return res.model

    def _train_judge(self):
        from tfaug.training.classifier import train_classifier

        t0 = time.perf_counter()
        cfg = dataclasses.replace(self.cfg.classifier, seed=self.seed,
                                  steps=self.cfg.classifier_steps(len(self.images)))
        res = train_classifier(self.images, self.labels, num_classes=len(self.class_names), cfg=cfg,
                               runtime=self._runtime())
        path = self.root / f"judge{self.suffix}.json"
        record = {**self.info, "role": "judge", "train_indices": self.indices.tolist(), "steps": cfg.steps}
        if not path.exists() or read_json(path) != record:
            write_json(path, record)
        self.seconds += time.perf_counter() - t0
        return res.model


def _plain(record: dict):
    """``record`` as it reads back from JSON (tuples become lists)."""
    return json.loads(json.dumps(record))


def save_sample_grid(generator, path, class_names, image_shape, title: str) -> Path:
    """One row per class (at most 20), seeds 0-9, from ``generator.sample`` (float32 [-1, 1]); returns the path."""
    from tfaug.utils.images import save_class_grid, to_uint8

    k = min(len(class_names), 20)
    ids = np.repeat(np.arange(k, dtype=np.int32), 10)
    seeds = np.tile(np.arange(10, dtype=np.int64), k)
    imgs = to_uint8(generator.sample(ids, seeds)).reshape(k, 10, *image_shape)
    save_class_grid(path, list(imgs), list(class_names)[:k], title=title)
    return Path(path)


def sample_grids(cfg, out: Path, class_names, image_shape) -> dict:
    """``OUT/samples/<scope>_<model>.png`` for every finished generator of repeat 0 (not CV folds, not encoders).

    Returns:
        ``{"<scope> / <model>": path relative to out}`` for the report; existing grids are kept (they are
        deterministic).
    """
    grids = {}
    scopes = ["grid"] if cfg.settings[0].kind == "grid" else [s.name for s in cfg.settings]
    for scope in scopes:
        root = out / "generators" / scope / "r0"
        if not root.is_dir():
            continue
        for run in sorted(root.iterdir()):
            if "-fold" in run.name or run.name.startswith(("encoder", "pretrain")) or not run.is_dir():
                continue
            if not (run / "checkpoints" / "generator.keras").exists():
                continue
            path = out / "samples" / f"{scope}_{run.name}.png"
            if not path.exists():
                from tfaug.synthesis.loader import load_generator

                save_sample_grid(load_generator(run), path, class_names, image_shape,
                                 title=f"{run.name} samples ({scope}, repeat 0), seeds 0-9")
            grids[f"{scope} / {run.name}"] = str(path.relative_to(out))
    return grids
