"""Generators with knowledge from outside the few images: a study's ``generator: {pretrain: SOURCE}``.

A conditional generator (the study's ``generator.model``: ``stylegan``, or ``cdcgan`` with embedding
conditioning) is first trained on a larger labelled *source*, then adapted to a draw's classes with the ``svd``
reparametrisation of ``tfaug.fewshot`` (Robb et al. 2020: only the singular values of G's kernels and the new
classes' embedding rows train; D is fine-tuned FreezeD-style). All new classes of a draw are adapted **jointly**
(one adaptation per draw, not one per class): the class tables grow by K rows, each the mean of the source rows,
and the draw's image of class c trains row ``K0 + c`` (``tfaug.fewshot.adapt.train_new_class``).

SOURCE is

- a dataset spec (``digits``, ``npz:PATH`` ...; its classes need not match the study's): its images are conformed to
  the study's image shape (``tfaug.data.conform``: aspect kept then centre-cropped, channels converted), every image
  equal (byte for byte after conforming) to one of the study's test images is removed, so pretraining never sees a
  test image even when SOURCE is the study's own dataset (then it trains on every non-test image: pool and draws);
  the source generator is trained ONCE per study in ``OUT/generators/pretrain-<model>-<hash>/`` (hash of the spec,
  the image shape, the generator config and the removed test images), resumable, locked like every run;
- ``majority`` (imbalance regimes, issue 17's transfer generator): per draw, the *majority* classes are those whose
  count is at least half the largest class count (:data:`MAJORITY_SHARE`); the generator trains on their images
  (``<scope>/r<i>/pretrain-majority-<model>``) and is adapted jointly to the other (minority) classes. Sampling a
  majority class runs the unchanged source network (exactly its images), a minority class the adapted one.

The adapted generator of a draw is the run ``<scope>/r<i>/<model>[-fold<j>]`` (where the zoo model would be):
``checkpoints/generator.keras`` takes the study's class ids ``0 .. K-1`` (a ``ClassIdMap`` layer maps them to the
network's), so ``tfaug.synthesis.loader.load_generator`` and export treat it as any generator run; its
``config.json`` ``pretrain`` record (source, source run, draw indices, steps) decides reuse: a re-run loads it.

Steps: source training ``pretrain_steps`` (default: the generator's ``steps``). Adaptation ``adapt_steps``,
default ``DEFAULTS["svd"]["steps"]`` (300, calibrated for ONE new class at batch 16) times the number of adapted
classes, so each new class gets the same expected number of image presentations as in the calibrated
single-class adaptation (a class's embedding row only learns from its own images); batch and learning rates are
``DEFAULTS["svd"]``'s.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path

import numpy as np

from tfaug.errors import TfaugError

KINDS = ("stylegan", "cdcgan")
MAJORITY = "majority"
MAJORITY_SHARE = 0.5  # a majority class holds at least this share of the largest class's count
METHOD = "svd"
COMPILED = True  # adaptation steps run as a tf.function (tests switch it off: a few eager steps trace nothing)

__all__ = ["COMPILED", "KEYS", "KINDS", "MAJORITY", "MAJORITY_SHARE", "adapt_steps", "check_pretrain", "image_hashes",
           "majority_classes", "note", "parse_pretrain", "pretrained_generator", "source_images"]


# -- validation (study config time) -------------------------------------------------------------------------
KEYS = ("pretrain", "pretrain_steps", "adapt_steps")


def parse_pretrain(section: dict) -> dict | None:
    """Pop :data:`KEYS` from a study's ``generator`` mapping: ``{"source", "steps"?, "adapt_steps"?}`` or None."""
    from tfaug.studies.config import _int

    given = {k: section.pop(k) for k in KEYS if k in section}
    if not given:
        return None
    if "pretrain" not in given:
        raise TfaugError(f"generator.{next(iter(given))} needs generator.pretrain (a dataset spec or majority)")
    source = given["pretrain"]
    if not isinstance(source, str) or not source.strip():
        raise TfaugError("generator.pretrain must be a dataset spec (e.g. digits) or majority")
    steps = {k.replace("pretrain_", ""): _int(given[k], f"generator.{k}", 1) for k in KEYS[1:] if k in given}
    return {"source": source.strip(), **steps}


def check_pretrain(cfg) -> None:
    """Cross-key rules of ``generator.pretrain`` (one sentence each): an adaptable model, ``majority`` only in
    imbalance regimes, a well-formed dataset spec."""
    model = cfg.generator.model
    source = cfg.pretrain["source"]
    if model not in KINDS:
        raise TfaugError(f"generator.pretrain adapts a conditional generator with a class embedding; generator.model "
                         f"must be one of {', '.join(KINDS)} (cdcgan with conditioning embedding), not {model!r}")
    options = cfg.generator_config(model, cfg.seed).options or {}
    if model == "cdcgan" and options.get("conditioning", "embedding") != "embedding":
        raise TfaugError(f"generator.pretrain needs a learned class embedding; cdcgan with conditioning "
                         f"{options['conditioning']!r} cannot grow new classes (use conditioning: embedding)")
    if source == MAJORITY:
        bad = [s.name for s in cfg.settings if s.kind != "imbalance"]
        if bad:
            raise TfaugError(f"generator.pretrain: majority learns minority classes from majority ones, but setting "
                             f"{bad[0]} gives every class the same count; use an imbalance regime or a dataset spec")
        return
    from tfaug.data.sources import parse_spec

    parse_spec(source)


def note(cfg) -> str:
    """One report sentence saying what the study's generator learnt from beyond each draw."""
    model, steps = cfg.generator.model, cfg.pretrain.get("steps") or cfg.generator_config(cfg.generator.model, 0).steps
    adapt = cfg.pretrain.get("adapt_steps")
    adapt = f"{adapt} svd steps" if adapt else "svd, 300 steps per adapted class"
    if cfg.pretrain["source"] == MAJORITY:
        return (f"Generator `{model}` pretrained per draw on its majority classes (count >= half the largest) for "
                f"{steps} steps, then adapted jointly to its minority classes ({adapt}); rows: generator_source.")
    return (f"Generator `{model}` pretrained once on `{cfg.pretrain['source']}` ({steps} steps; its images equal to a "
            f"test image removed), then adapted jointly to each draw's classes ({adapt}); rows: generator_source.")


# -- pieces -------------------------------------------------------------------------------------------------
def adapt_steps(cfg, n_classes: int) -> int:
    """Adaptation steps for ``n_classes`` new classes (>= 1): ``generator.adapt_steps`` or 300 per class."""
    from tfaug.fewshot.adapt import DEFAULTS

    given = cfg.pretrain.get("adapt_steps")
    return int(given) if given is not None else int(DEFAULTS[METHOD]["steps"]) * max(1, int(n_classes))


def majority_classes(labels, num_classes: int) -> tuple[list[int], list[int]]:
    """``(majority, minority)`` class ids of a draw: majority = count >= MAJORITY_SHARE * the largest count."""
    counts = np.bincount(np.asarray(labels, np.int64), minlength=num_classes)
    majority = [c for c in range(num_classes) if counts[c] >= MAJORITY_SHARE * counts.max()]
    return majority, [c for c in range(num_classes) if c not in majority]


def image_hashes(images) -> set[str]:
    """SHA-1 of each uint8 image's bytes (the content identity used to keep test images out of pretraining)."""
    return {_digest(x) for x in np.asarray(images)}


def _digest(image) -> str:
    return hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest()


def source_images(spec: str, image_shape, exclude=None) -> tuple[np.ndarray, np.ndarray, list, int]:
    """``(uint8 images [N, H, W, C], int32 labels, class names, n removed)`` of dataset ``spec`` conformed to
    ``image_shape``, without any image equal to one of ``exclude`` (uint8, already of ``image_shape``).

    Raises:
        TfaugError: an unknown spec, or no image left.
    """
    from tfaug.data.conform import conform_images
    from tfaug.data.sources import load_dataset

    ds = load_dataset(spec)
    h, w, c = (int(v) for v in image_shape)
    x = ds.images
    if tuple(x.shape[1:]) != (h, w, c):
        x = conform_images(list(x), image_size=(h, w), channels=c, where=f"pretraining source {spec}")
    keep = np.ones(len(x), bool)
    if exclude is not None and len(exclude):
        banned = image_hashes(exclude)
        keep = np.array([_digest(a) not in banned for a in x], bool)
    if not keep.any():
        raise TfaugError(f"pretraining source {spec} has no image left once the study's test images are removed")
    return x[keep], np.asarray(ds.labels, np.int32)[keep], list(ds.class_names), int((~keep).sum())


# -- the generator a study cell gets ------------------------------------------------------------------------
def pretrained_generator(res, model: str):
    """The draw's pretrained-and-adapted generator (``sample(class_ids, seeds)``, class ids ``0 .. K-1``, float32
    [-1, 1]) for ``res``, a ``tfaug.studies.resources.CellResources`` whose study sets ``generator.pretrain``."""
    cfg = res.cfg
    source = cfg.pretrain["source"]
    k = len(res.class_names)
    if source == MAJORITY:
        majority, minority = majority_classes(res.labels, k)
        if not minority:
            raise TfaugError(f"generator.pretrain: majority found no minority class in this draw (every class holds at "
                             f"least half of the largest class's {int(np.bincount(res.labels).max())} images)")
        name = f"pretrain-majority-{model}{res.suffix}"
        keep = np.isin(res.labels, majority)
        labels = np.searchsorted(np.asarray(majority), res.labels[keep]).astype(np.int32)
        gcfg = _source_config(cfg, model, res.seed)
        record = {"role": "pretrain", "source": MAJORITY, "train_indices": res.indices[keep].tolist(),
                  "classes": [res.class_names[c] for c in majority]}
        with res._guard(name):
            src = _source_run(res, res.root / name, lambda: (res.images[keep], labels,
                                                             [res.class_names[c] for c in majority], 0), gcfg, record)
        new = minority
        table = [majority.index(c) if c in majority else len(majority) + minority.index(c) for c in range(k)]
    else:
        gcfg = _source_config(cfg, model, cfg.seed)
        shape = tuple(int(v) for v in res.images.shape[1:])
        banned = sorted(image_hashes(res.exclude)) if res.exclude is not None else []
        from tfaug.config import to_dict

        key = json.dumps({"spec": source, "shape": shape, "gan": to_dict(gcfg),
                          "excluded": hashlib.sha1("".join(banned).encode()).hexdigest()}, sort_keys=True)
        run_dir = res.root.parent.parent / f"pretrain-{model}-{hashlib.sha1(key.encode()).hexdigest()[:10]}"
        record = {"role": "pretrain", "source": source, "key": json.loads(key)}
        with res._guard_dir(run_dir):
            src = _source_run(res, run_dir, lambda: source_images(source, shape, res.exclude), gcfg, record)
        new = list(range(k))
        table = [src.num_classes + c for c in range(k)]
    name = f"{model}{res.suffix}"
    with res._guard(name):
        return _adapted_run(res, res.root / name, src, new, table, gcfg)


def _source_config(cfg, model: str, seed: int):
    gcfg = cfg.generator_config(model, seed)
    steps = cfg.pretrain.get("steps")
    return dataclasses.replace(gcfg, steps=int(steps)) if steps is not None else gcfg


@dataclasses.dataclass
class _Source:
    run_dir: Path
    generator: object  # the source's EMA sampling network
    discriminator: object
    num_classes: int


def _source_run(res, run_dir: Path, load, gcfg, record: dict) -> _Source:
    """Train (or resume, or reuse when finished) the source run; ``load() -> (images, labels, names, n_removed)``
    is only called when something must train."""
    from tfaug.fewshot.base import load_trained_model
    from tfaug.training.gan_runner import train_gan
    from tfaug.utils import rundir as rd

    t0 = time.perf_counter()
    exists = (run_dir / rd.CONFIG).exists()
    if exists:
        stored = (rd.read_run_config(run_dir).get("data") or {}).get("pretrain")
        if stored != json.loads(json.dumps(record)):
            raise TfaugError(f"{run_dir} was pretrained on another source or with other settings; "
                             "pass another --out or delete that run directory")
        state = rd.read_state(run_dir)
        if state is not None and state.get("finished"):
            model, config = load_trained_model(run_dir)
            res.seconds += time.perf_counter() - t0
            return _Source(run_dir, model.sampling_network, model.discriminator, int(config["data"]["num_classes"]))
    images, labels, names, removed = load()
    # A study-level source run serves every draw: it records the study's dataset, not the draw that trained it first.
    info = res.info if "train_indices" in record else {
        k: v for k, v in res.info.items() if k not in ("scope", "repeat", "fold")}
    info = {**info, "role": "pretrain", "pretrain": record, "n_removed_test_images": removed}
    if "train_indices" in record:
        info["train_indices"] = record["train_indices"]
    run = train_gan(images, labels, class_names=names, cfg=gcfg, out=run_dir, data_info=info, resume=exists,
                    progress=res.progress, runtime=res._runtime())
    res.seconds += time.perf_counter() - t0
    return _Source(run_dir, run.model.sampling_network, run.model.discriminator, len(names))


def _adapted_run(res, run_dir: Path, src: _Source, new: list, table: list, gcfg):
    """The draw's adapted run ``run_dir``: loaded when made for this draw and source, else adapted and written."""
    from tfaug.synthesis.loader import load_generator
    from tfaug.utils import rundir as rd
    from tfaug.utils.io import read_json

    record = {"source": res.cfg.pretrain["source"], "source_run": src.run_dir.name, "method": METHOD,
              "adapted_classes": [res.class_names[c] for c in new], "class_table": list(table),
              "steps": adapt_steps(res.cfg, len(new)), "seed": int(res.seed)}
    if (run_dir / rd.CONFIG).exists() and (run_dir / rd.CHECKPOINTS / rd.GENERATOR).exists():
        stored = read_json(run_dir / rd.CONFIG)
        if (stored.get("data") or {}).get("train_indices") != res.indices.tolist():
            raise TfaugError(f"{run_dir} was trained on other images than this cell's draw; "
                             "pass another --out or delete that run directory")
        made = stored.get("pretrain") or {}
        if {k: made.get(k) for k in record} != json.loads(json.dumps(record)):
            raise TfaugError(f"{run_dir} was adapted from another pretrained source or with other settings; "
                             "pass another --out or delete that run directory")
        return load_generator(run_dir)
    if run_dir.exists():  # adapted runs are published whole, so this is something else: never overwritten
        raise TfaugError(f"{run_dir} exists but holds no adapted generator; delete it or pass another --out")
    t0 = time.perf_counter()
    net, history, n_params = _adapt(res, src, new, record)
    record["trainable_parameters"] = int(n_params)
    record["seconds"] = round(time.perf_counter() - t0, 3)
    _write(run_dir, res, net, gcfg, record, history)
    res.seconds += time.perf_counter() - t0
    return load_generator(run_dir)


def _adapt(res, src: _Source, new: list, record: dict):
    """Joint svd adaptation of the source networks to the draw's classes ``new``; the sampling network over the
    study's class ids (source classes routed to the unchanged source network)."""
    import keras

    from tfaug.fewshot.adapt import (DEFAULTS, DIFFAUGMENT, EMA_DECAY, FREEZE_FRACTION, R1_GAMMA, set_class_w_avg,
                                     train_new_class)
    from tfaug.models.networks.routing import mapped_network, routed_network
    from tfaug.utils.images import to_float

    keep = np.isin(res.labels, new)
    if not keep.any():
        raise TfaugError("generator.pretrain adapts the source generator to the draw's images, but this draw has none")
    labels = (src.num_classes + np.searchsorted(np.asarray(new), res.labels[keep])).astype(np.int32)
    settings = {**DEFAULTS[METHOD], "steps": record["steps"]}
    keras.utils.set_random_seed(int(res.seed))
    g, history, n_params = train_new_class(
        src.generator, src.discriminator, src.num_classes, src.num_classes, to_float(res.images[keep]),
        labels=labels, method=METHOD, seed=int(res.seed), settings=settings, progress=res.progress,
        freeze_fraction=FREEZE_FRACTION, diffaugment=DIFFAUGMENT, r1_gamma=R1_GAMMA, ema_decay=EMA_DECAY,
        eager=not COMPILED)
    for j in range(len(new)):
        set_class_w_avg(g, src.num_classes + j, int(res.seed))
    if min(record["class_table"]) < src.num_classes:  # majority: source classes keep the source network's images
        g = routed_network(src.generator, g, src.num_classes, name="pretrained_routed")
    return mapped_network(g, record["class_table"], name="pretrained_adapted"), history, n_params


def _write(run_dir: Path, res, net, gcfg, record: dict, history: list) -> None:
    from tfaug.config import to_dict
    from tfaug.utils import rundir as rd
    from tfaug.utils.io import append_jsonl, atomic_directory, write_json

    config = {"kind": gcfg.model, "gan": to_dict(gcfg), "pretrain": record,
              "data": {**res.info, "role": "generator", "model": gcfg.model, "num_classes": len(res.class_names),
                       "class_names": list(res.class_names), "image_shape": list(res.images.shape[1:]),
                       "n_train": int(len(res.images)), "train_indices": res.indices.tolist()}}
    with atomic_directory(run_dir) as tmp:
        (tmp / rd.CHECKPOINTS).mkdir(parents=True)
        net.save(str(tmp / rd.CHECKPOINTS / rd.GENERATOR))
        for row in history:
            append_jsonl(tmp / rd.HISTORY, row)
        write_json(tmp / rd.CONFIG, config)
