"""Held-out-class few-shot benchmark (issue 7): add a class to a pretrained generator from k images (not a test).

Protocol, for every held-out class h of the config (``held_out``):

* **Data** (``dataset``, default ``npz:/work/shared/data/mnist10k.npz``). Per class c, a seeded permutation of its
  images: the first ``judge_per_class`` train the judge and nothing else; the rest is c's pool, in three blocks:
  the first max(k) (adaptation), the next ``pretrain_per_class`` (pretraining), the rest (unseen). The pretrain set
  of h is the pretraining block of every other class (class h absent; ids remapped to 0..K-2 in order, names
  kept). The k adaptation images of h are the first k of its pool (so the k = 5 draw is a subset of the k = 10
  draw, of the k = 30 draw); the **unseen** images of h are its last block, never seen by any generator of the
  benchmark (nor by the judge).
* **Judge**: ``tfaug.metrics.features.domain_extractor`` trained on the judge images of all K classes (config
  ``judge``: ClassifierConfig fields; cached once per run under ``OUT/judge``). Its softmax judges the class, its
  penultimate layer gives the features of KID and of the copy test.
* **Pretrain** (once per h): ``tfaug.training.gan_runner.train_gan`` with ``pretrain`` (a ``preset`` plus
  GANConfig fields; model ``stylegan``) into ``OUT/pretrain/heldout-<name>`` (resumed when interrupted).
* **Cells**: for each k in ``k`` and method in ``methods``: the adapt methods (``freeze``, ``svd``, ``embedding``,
  ``age``) call ``tfaug.fewshot.adapt.adapt_run`` on the pretrain run with the k images (config ``adapt``: steps,
  batch_size, null = the method's default; ``age`` gets an inversion encoder trained once per pretrain with
  ``encoder_steps`` steps, 0 = none) into ``OUT/cells/h<name>-k<k>-<method>``; ``scratch`` trains the pretrain's
  model from scratch on the k images only (one class; ``scratch`` overrides GANConfig fields, e.g. steps).
* **Per cell**: ``eval.n`` images of the new class with seeds 0..n-1 (the same in every cell).
  ``consistency`` = share the judge labels h; ``kid`` = KID (``tfaug.metrics.distances``) between the judge
  features of the unseen real images of h and of the generated ones (subsets of min(kid_subset_size, n, unseen));
  ``copies`` = ``tfaug.metrics.memorisation.memorisation(...)["share_copies"]``: the share of generated images
  whose nearest k-image (judge features) is closer than the ``copies_percentile``-th percentile of the unseen real
  images' nearest k-image distances (unseen real images score about percentile/100 by construction; ``copies_pixel``
  the same in pixel space); ``seconds`` = wall time of adaptation or scratch training only (``adapt_run``'s
  ``seconds``; model build + training loop for scratch); ``trainable_parameters`` = the generator's trainable
  scalars (``adapt_run``'s count for the adapt methods; every generator weight for scratch).
* **References** (per h): the pretrain's own consistency on its K-1 classes (``eval.pretrain_per_class`` images
  each), the judge's accuracy on the unseen real images of h (the ceiling of ``consistency``) and the KID between two
  random halves of them (the floor of ``kid`` at that sample size).

Resumable and shareable: one JSON line per finished cell in ``OUT/results.jsonl``; a rerun skips finished cells,
resumes interrupted pretrains and redoes a cell whose adaptation never finished. Every piece of work is claimed
with a file in ``OUT/claims`` (holding the process id), so two processes started with the same command share the
cells; ``--held-out 2,5`` restricts a process to some held-out classes. ``OUT/benchmark.json`` pins the
protocol: another config into the same OUT is refused once results exist, or at any time when it changes what the
pretrains depend on (data, seed, judge_per_class, pretrain_per_class, pretrain); name, methods and held_out may
always change (they only add or drop cells).

Outputs: ``OUT/results.md`` (method x k table: mean over held-out classes and each class's value, plus the
references, the commands and the machine), ``OUT/results.json``, ``OUT/section.md`` (the same for
docs/RESULTS.md: ``python scripts/results_doc.py --section fewshot-heldout=OUT/section.md``), per-cell sample
grids ``OUT/grids/<cell>.png`` and one overview grid per held-out class ``OUT/grids/overview-h<name>.png``.

    python benchmarks/fewshot_heldout.py --out runs/fewshot-heldout-mnist                 # all cells
    python benchmarks/fewshot_heldout.py --out runs/fewshot-heldout-mnist --phase pretrain  # only the pretrains
    python benchmarks/fewshot_heldout.py --quick --out /tmp/heldout-quick                   # smoke run (digits)
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import os
import platform
import shlex
import shutil
import socket
import sys
import time
import traceback
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = ROOT / "benchmarks" / "configs" / "fewshot-heldout-mnist.yaml"
ADAPT_METHODS = ("freeze", "svd", "embedding", "age")  # = tfaug.fewshot.adapt.METHODS
METHODS = (*ADAPT_METHODS, "scratch")
KEYS = ("name", "dataset", "held_out", "k", "methods", "seed", "judge_per_class", "judge", "pretrain_per_class",
        "pretrain", "adapt", "scratch", "eval", "quick")
ADAPT_KEYS = ("steps", "batch_size", "encoder_steps")
EVAL_DEFAULTS = {"n": 500, "pretrain_per_class": 100, "copies_percentile": 1.0, "kid_subsets": 100,
                 "kid_subset_size": 1000, "grid_columns": 12}
FREE_KEYS = ("name", "methods", "held_out")  # may change between runs into one OUT (they only add or drop cells)
PRETRAIN_KEYS = ("dataset", "seed", "judge_per_class", "pretrain_per_class", "pretrain")  # what a pretrain depends on
POLL_SECONDS = 20.0  # how often a process waiting for another one's claimed work looks again


# -- config ------------------------------------------------------------------------------------------------


def load_config(path: str | os.PathLike, quick: bool = False) -> dict:
    """Read, merge (``quick``) and validate a benchmark config; returns the resolved dict (no ``quick`` key).

    Raises:
        TfaugError: unreadable file, an unknown key (named), a bad value (named).
    """
    import yaml

    from tfaug.errors import TfaugError

    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except OSError as e:
        raise TfaugError(f"cannot read the benchmark config {path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise TfaugError(f"{path} is not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise TfaugError(f"{path} must hold a mapping of benchmark keys")
    _known(raw, "the config", KEYS)
    if quick:
        over = raw.get("quick") or {}
        if not isinstance(over, dict):
            raise TfaugError("'quick' must be a mapping of benchmark keys")
        _known(over, "'quick'", KEYS[:-1])
        raw = {**raw, **{k: ({**raw[k], **v} if isinstance(v, dict) and isinstance(raw.get(k), dict) else v)
                         for k, v in over.items()}}
    raw.pop("quick", None)
    return _validate(raw)


def _known(d: dict, where: str, keys) -> None:
    from tfaug.errors import TfaugError

    extra = sorted(set(d) - set(keys))
    if extra:
        raise TfaugError(f"unknown key {extra[0]!r} in {where}; known keys: {', '.join(keys)}")


def _int_list(value, key: str, minimum: int) -> list[int]:
    from tfaug.errors import TfaugError

    values = value if isinstance(value, list) else [value]
    if not values or not all(isinstance(v, int) and not isinstance(v, bool) and v >= minimum for v in values):
        raise TfaugError(f"{key} must be a non-empty list of integers >= {minimum}, got {value!r}")
    if len(set(values)) != len(values):
        raise TfaugError(f"{key} lists a value twice: {value!r}")
    return [int(v) for v in values]


def _validate(raw: dict) -> dict:
    from tfaug.config import ClassifierConfig
    from tfaug.errors import TfaugError

    cfg = {"name": str(raw.get("name") or "held-out-class few-shot generation")}
    cfg["dataset"] = str(raw.get("dataset") or "").strip()
    if not cfg["dataset"]:
        raise TfaugError("the config needs a dataset spec (e.g. npz:/work/shared/data/mnist10k.npz)")
    cfg["held_out"] = _int_list(raw.get("held_out"), "held_out", 0)
    cfg["k"] = sorted(_int_list(raw.get("k"), "k", 1))
    methods = raw.get("methods") or list(METHODS)
    methods = methods if isinstance(methods, list) else [methods]
    bad = [m for m in methods if m not in METHODS]
    if bad or len(set(methods)) != len(methods):
        raise TfaugError(f"methods must be distinct names from {', '.join(METHODS)}, got {methods!r}")
    cfg["methods"] = [str(m) for m in methods]
    for key, default in (("seed", 0), ("judge_per_class", 300), ("pretrain_per_class", 100)):
        value = raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < (0 if key == "seed" else 1):
            raise TfaugError(f"{key} must be an integer >= {0 if key == 'seed' else 1}, got {value!r}")
        cfg[key] = int(value)
    judge = _mapping(raw.get("judge") or {}, "judge")
    _known(judge, "'judge'", [f.name for f in dataclasses.fields(ClassifierConfig)])
    cfg["judge"] = dataclasses.asdict(ClassifierConfig(**{"name": "lenet5", "steps": 1500, "batch_size": 64,
                                                          "dropout": 0.0, "seed": cfg["seed"], **judge}))
    cfg["pretrain"] = _mapping(raw.get("pretrain") or {}, "pretrain")
    cfg["scratch"] = _mapping(raw.get("scratch") or {}, "scratch")
    pretrain = gan_config(cfg["pretrain"], None, cfg["seed"], "pretrain")  # checks the fields and the preset
    gan_config(cfg["scratch"], pretrain, cfg["seed"], "scratch")
    adapt = _mapping(raw.get("adapt") or {}, "adapt")
    _known(adapt, "'adapt'", ADAPT_KEYS)
    for key in ADAPT_KEYS:
        v = adapt.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < (0 if key == "encoder_steps" else 1)):
            raise TfaugError(f"adapt.{key} must be null or an integer >= {0 if key == 'encoder_steps' else 1}, got {v!r}")
    cfg["adapt"] = {"steps": adapt.get("steps"), "batch_size": adapt.get("batch_size"),
                    "encoder_steps": int(adapt.get("encoder_steps") or 0)}
    ev = _mapping(raw.get("eval") or {}, "eval")
    _known(ev, "'eval'", tuple(EVAL_DEFAULTS))
    ev = {**EVAL_DEFAULTS, **ev}
    for key in ("n", "pretrain_per_class", "kid_subsets", "kid_subset_size", "grid_columns"):
        if isinstance(ev[key], bool) or not isinstance(ev[key], int) or ev[key] < 2:
            raise TfaugError(f"eval.{key} must be an integer >= 2, got {ev[key]!r}")
    p = ev["copies_percentile"]
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 < p <= 100:
        raise TfaugError(f"eval.copies_percentile must be a number in (0, 100], got {p!r}")
    ev["copies_percentile"] = float(p)
    cfg["eval"] = ev
    return cfg


def _mapping(value, key: str) -> dict:
    from tfaug.errors import TfaugError

    if not isinstance(value, dict):
        raise TfaugError(f"{key} must be a mapping, got {type(value).__name__}")
    return dict(value)


def gan_config(section: dict, base, seed: int, where: str):
    """GANConfig from a config section: its ``preset`` (else ``base``, else the defaults) with its other fields."""
    from tfaug.config import GANConfig, preset
    from tfaug.errors import TfaugError

    section = dict(section)
    name = section.pop("preset", None)
    _known(section, f"'{where}'", [f.name for f in dataclasses.fields(GANConfig)])
    start = preset(name) if name else (base if base is not None else GANConfig())
    if not isinstance(start, GANConfig):
        raise TfaugError(f"{where}.preset {name!r} is not a GAN preset")
    changes = {"seed": seed} if "seed" not in section and base is None else {}
    try:
        return dataclasses.replace(start, **{**changes, **section})
    except TypeError as e:
        raise TfaugError(f"{where}: {e}") from None


# -- data --------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Splits:
    """Index arrays into the dataset (see the module docstring)."""

    judge: np.ndarray  # int64 [J], every class
    pretrain: dict  # h -> int64 [M] (classes != h)
    adapt: dict  # h -> int64 [max k], in draw order (first k = the k draw)
    unseen: dict  # h -> int64 [U]
    pool: np.ndarray  # int64: every non-judge image (the judge's test set)


def load_data(cfg: dict):
    """(Dataset, Splits); a missing ``npz:`` file is one clear sentence."""
    from tfaug.data.sources import load_dataset
    from tfaug.errors import TfaugError

    spec = cfg["dataset"]
    if spec.startswith("npz:") and not Path(spec[4:]).expanduser().is_file():
        raise TfaugError(f"the benchmark's dataset {spec[4:]} is missing; put MNIST there as an .npz "
                         f"(x uint8 [N, 28, 28], y [N]; e.g. tfds:mnist saved with numpy) or set `dataset:` in the config")
    ds = load_dataset(spec)
    bad = [h for h in cfg["held_out"] if h >= ds.num_classes]
    if bad:
        raise TfaugError(f"held_out class {bad[0]} does not exist: {spec} has classes 0-{ds.num_classes - 1}")
    return ds, make_splits(ds.labels, ds.num_classes, cfg)


def make_splits(labels: np.ndarray, num_classes: int, cfg: dict) -> Splits:
    """Seeded, disjoint draws (see the module docstring); raises TfaugError when a class is too small."""
    from tfaug.errors import TfaugError

    seed, nj, npre, kmax = cfg["seed"], cfg["judge_per_class"], cfg["pretrain_per_class"], max(cfg["k"])
    judge, pool = [], {}
    for c in range(num_classes):
        perm = np.random.default_rng([seed, 7, c]).permutation(np.flatnonzero(labels == c))
        need = nj + kmax + npre + (2 if c in cfg["held_out"] else 0)
        if len(perm) < need:
            raise TfaugError(f"class {c} has {len(perm)} images; this config needs {need} (judge_per_class + the "
                             f"largest k + pretrain_per_class, and at least 2 unseen images of a held-out class)")
        judge.append(perm[:nj])
        pool[c] = perm[nj:]
    # Every class's pool: [k block | pretrain block | unseen rest], so the unseen images of a class are outside
    # every generator's training set, also the generators of the other held-out classes.
    pretrain, adapt, unseen = {}, {}, {}
    for h in cfg["held_out"]:
        pretrain[h] = np.sort(np.concatenate([pool[c][kmax:kmax + npre] for c in range(num_classes) if c != h]))
        adapt[h] = pool[h][:kmax].astype(np.int64)
        unseen[h] = np.sort(pool[h][kmax + npre:]).astype(np.int64)
    return Splits(np.sort(np.concatenate(judge)).astype(np.int64), pretrain, adapt, unseen,
                  np.sort(np.concatenate(list(pool.values()))).astype(np.int64))


# -- claims: several processes share one OUT ---------------------------------------------------------------


class Claims:
    """One file per piece of work in ``OUT/claims``; a claim of a dead process (same host) is taken over."""

    def __init__(self, out: Path):
        self.root = out / "claims"
        self.root.mkdir(parents=True, exist_ok=True)
        self.me = f"{socket.gethostname()} {os.getpid()}"

    def _path(self, name: str) -> Path:
        return self.root / (name.replace("/", "_") + ".claim")

    def holder_alive(self, name: str) -> bool:
        """True when a live process (this one included) holds ``name``."""
        try:
            host, pid = self._path(name).read_text(encoding="utf-8").split()
        except (OSError, ValueError):
            return False
        if f"{host} {pid}" == self.me:
            return True
        if host != socket.gethostname():
            return True  # cannot check another host's processes: respect the claim
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    @contextlib.contextmanager
    def claim(self, name: str):
        """Yields True when this process now holds ``name`` (released on exit), False when another one does."""
        path = self._path(name)
        for _ in range(2):
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if self.holder_alive(name):
                    yield False
                    return
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()  # stale: its process is gone
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(self.me)
            try:
                yield True
            finally:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            return
        yield False


# -- the benchmark -----------------------------------------------------------------------------------------


class Benchmark:
    """Holds the config, data, splits and OUT; each public method does one piece of work."""

    def __init__(self, cfg: dict, out: Path, progress: bool):
        self.cfg, self.out, self.progress = cfg, out, progress
        self.ds, self.splits = load_data(cfg)
        self._judge = None
        self.eval_seeds = np.arange(cfg["eval"]["n"], dtype=np.int64)

    # names and paths
    def name(self, h: int) -> str:
        return self.ds.class_names[h]

    def pretrain_dir(self, h: int) -> Path:
        return self.out / "pretrain" / f"heldout-{self.name(h)}"

    def encoder_dir(self, h: int) -> Path:
        return self.out / "pretrain" / f"heldout-{self.name(h)}-encoder"

    def cell_id(self, h: int, k: int, method: str) -> str:
        return f"h{self.name(h)}-k{k}-{method}"

    def others(self, h: int) -> list[int]:
        return [c for c in range(self.ds.num_classes) if c != h]

    # state
    def rows(self) -> dict[str, dict]:
        from tfaug.utils.io import read_jsonl

        return {r["id"]: r for r in read_jsonl(self.out / "results.jsonl")}

    def pretrain_done(self, h: int) -> bool:
        from tfaug.utils.rundir import read_state

        d = self.pretrain_dir(h)
        state = read_state(d) if (d / "config.json").is_file() else None
        steps = gan_config(self.cfg["pretrain"], None, self.cfg["seed"], "pretrain").steps
        return bool(state and state.get("finished") and int(state["step"]) >= steps)

    def encoder_done(self, h: int) -> bool:
        return (self.encoder_dir(h) / "encoder.keras").is_file()  # train_encoder publishes its directory atomically

    def judge_key(self) -> str:
        """The judge's cache key (``tfaug.metrics.features.domain_cache_key``): its config, images and split."""
        from tfaug.config import ClassifierConfig
        from tfaug.metrics.features import domain_cache_key

        idx = self.splits.judge
        return domain_cache_key(self.cfg["dataset"], self.ds.images[idx], self.ds.labels[idx],
                                ClassifierConfig(**self.cfg["judge"]), self.judge_split())

    def judge_split(self) -> dict:
        return {"benchmark": "fewshot_heldout", "judge_indices": self.splits.judge.tolist()}

    def judge_json(self) -> Path:
        return self.out / "judge" / f"judge-{self.judge_key()}.json"

    def judge_done(self) -> bool:
        return self.judge_json().is_file()

    # work
    def pretrain(self, h: int) -> None:
        """Train (or resume) the base generator of held-out class h on the other classes."""
        from tfaug.training.gan_runner import train_gan
        from tfaug.utils.io import append_jsonl

        gcfg = gan_config(self.cfg["pretrain"], None, self.cfg["seed"], "pretrain")
        idx = self.splits.pretrain[h]
        others = self.others(h)
        remap = np.full(self.ds.num_classes, -1, np.int32)
        remap[others] = np.arange(len(others), dtype=np.int32)
        run_dir = self.pretrain_dir(h)
        resume = (run_dir / "config.json").is_file()
        t0 = time.perf_counter()
        run = train_gan(self.ds.images[idx], remap[self.ds.labels[idx]], class_names=[self.name(c) for c in others],
                        cfg=gcfg, out=run_dir, resume=resume, progress=self.progress,
                        data_info={"spec": self.cfg["dataset"], "held_out_class": self.name(h),
                                   "source_classes": others, "indices": idx.tolist(),
                                   "benchmark": "benchmarks/fewshot_heldout.py"})
        append_jsonl(self.out / "pretrain" / f"heldout-{self.name(h)}.sessions.jsonl",
                     {"resumed": resume, "end_step": int(run.step), "seconds": round(time.perf_counter() - t0, 2)})

    def judge(self):
        """The K-class judge (domain extractor), trained once into OUT/judge; its accuracies in judge.json."""
        if self._judge is not None:
            return self._judge
        from tfaug.config import ClassifierConfig
        from tfaug.metrics.features import domain_extractor
        from tfaug.utils.io import read_json, write_json

        idx = self.splits.judge
        ext = domain_extractor(self.cfg["dataset"], self.ds.images[idx], self.ds.labels[idx],
                               num_classes=self.ds.num_classes, cache_dir=self.out / "judge",
                               config=ClassifierConfig(**self.cfg["judge"]),
                               split_desc=self.judge_split(), progress=self.progress)
        path = self.judge_json()
        if not path.is_file():
            pool = self.splits.pool
            pred = np.argmax(ext.probabilities(self.ds.images[pool]), axis=1)
            write_json(path, {"n_train": int(len(idx)), "config": self.cfg["judge"], "protocol": ext.protocol(),
                              "accuracy_pool": float(np.mean(pred == self.ds.labels[pool])), "n_pool": int(len(pool)),
                              "note": "accuracy on every image outside the judge's training set"})
        self._judge = ext
        self.judge_info = read_json(path)
        return ext

    def train_encoder(self, h: int) -> None:
        from tfaug.fewshot.invert import train_encoder

        train_encoder(self.pretrain_dir(h), out=self.encoder_dir(h), steps=self.cfg["adapt"]["encoder_steps"], seed=self.cfg["seed"],
                      progress=self.progress)

    def reference(self, h: int) -> dict:
        """The pretrain's own consistency on its classes, and the judge on the unseen real images of h."""
        from tfaug.metrics.distances import kernel_inception_distance
        from tfaug.synthesis.loader import load_generator
        from tfaug.utils.io import read_jsonl
        from tfaug.utils.rundir import read_state

        judge, ev = self.judge(), self.cfg["eval"]
        others = np.asarray(self.others(h))
        gen = load_generator(self.pretrain_dir(h))
        ids = np.repeat(np.arange(len(others), dtype=np.int32), ev["pretrain_per_class"])
        pred = np.argmax(judge.probabilities(gen.sample(ids, np.arange(len(ids), dtype=np.int64))), axis=1)
        per_class = [float(np.mean(pred[ids == i] == c)) for i, c in enumerate(others)]
        unseen = self.ds.images[self.splits.unseen[h]]
        feats, probs = judge.extract(unseen)
        half = np.random.default_rng([self.cfg["seed"], 11, h]).permutation(len(unseen))
        a, b = feats[half[: len(half) // 2]], feats[half[len(half) // 2:]]
        kid, _ = kernel_inception_distance(a, b, subsets=ev["kid_subsets"], subset_size=ev["kid_subset_size"],
                                           seed=self.cfg["seed"])
        sessions = read_jsonl(self.out / "pretrain" / f"heldout-{self.name(h)}.sessions.jsonl")
        return {"id": f"h{self.name(h)}-reference", "kind": "reference", "held_out": h, "class_name": self.name(h),
                "pretrain_steps": int((read_state(self.pretrain_dir(h)) or {}).get("step", 0)),
                "pretrain_seconds": float(sum(s["seconds"] for s in sessions)) if sessions else None,
                "pretrain_consistency": float(np.mean(per_class)), "pretrain_worst_class": float(min(per_class)),
                "pretrain_per_class": dict(zip([self.name(int(c)) for c in others], per_class)),
                "real_consistency": float(np.mean(np.argmax(probs, axis=1) == h)), "real_kid_halves": kid,
                "n_unseen": int(len(unseen)), "n_pretrain": int(len(self.splits.pretrain[h]))}

    def cell(self, h: int, k: int, method: str) -> dict:
        """Adapt (or train from scratch), generate, score; returns the result row."""
        from tfaug.synthesis.loader import load_generator
        from tfaug.utils.io import read_json

        cid = self.cell_id(h, k, method)
        run_dir = self.out / "cells" / cid
        k_images = self.ds.images[self.splits.adapt[h][:k]]
        if method == "scratch":
            seconds, params, steps = self._scratch(h, k_images, run_dir)
            new_id = 0
        else:
            if not (run_dir / "config.json").is_file():
                from tfaug.fewshot.adapt import adapt_run

                if run_dir.exists():
                    shutil.rmtree(run_dir)  # not published by adapt_run's atomic write: ours, incomplete
                ad = self.cfg["adapt"]
                encoder = self.encoder_dir(h) if method == "age" and ad["encoder_steps"] > 0 else None
                adapt_run(self.pretrain_dir(h), k_images, new_class=self.name(h), method=method, out=run_dir,
                          steps=ad["steps"], batch_size=ad["batch_size"], seed=self.cfg["seed"],
                          encoder=str(encoder) if encoder else None, progress=self.progress)
            info = read_json(run_dir / "config.json")["adapt"]
            seconds, params, steps = info.get("seconds"), info.get("trainable_parameters"), info.get("steps")
            new_id = int(info["new_class_id"])
        gen = load_generator(run_dir)
        images = gen.sample(np.full(len(self.eval_seeds), new_id, np.int32), self.eval_seeds)
        row = {"id": cid, "kind": "cell", "held_out": h, "class_name": self.name(h), "k": k, "method": method,
               "seconds": seconds, "trainable_parameters": params, "steps": steps,
               **self.score(images, h, k_images)}
        self._grids(cid, images, k_images, row)
        return row

    def _scratch(self, h: int, k_images: np.ndarray, run_dir: Path):
        from tfaug.training.gan_runner import train_gan
        from tfaug.utils.io import read_json, read_jsonl, write_json
        from tfaug.utils.rundir import read_state

        pre = gan_config(self.cfg["pretrain"], None, self.cfg["seed"], "pretrain")
        gcfg = gan_config(self.cfg["scratch"], pre, self.cfg["seed"], "scratch")
        timing = run_dir.with_name(run_dir.name + ".timing.json")
        state = read_state(run_dir) if (run_dir / "config.json").is_file() else None
        if not (state and state.get("finished")):
            if run_dir.exists():
                shutil.rmtree(run_dir)  # an interrupted scratch run of ours: measure a clean one instead
            t0 = time.perf_counter()
            run = train_gan(k_images, np.zeros(len(k_images), np.int32), class_names=[self.name(h)], cfg=gcfg,
                            out=run_dir, progress=self.progress,
                            data_info={"spec": self.cfg["dataset"], "class": self.name(h),
                                       "indices": self.splits.adapt[h][: len(k_images)].tolist()})
            seconds = time.perf_counter() - t0
            params = sum(int(np.prod(w.shape)) for w in run.model.generator.trainable_weights)
            write_json(timing, {"seconds": seconds, "trainable_parameters": params, "steps": int(run.step)})
        if timing.is_file():
            t = read_json(timing)
            return t["seconds"], t["trainable_parameters"], t["steps"]
        hist = read_jsonl(run_dir / "history.jsonl")  # finished, but the timing was lost: the loop's own clock
        return (hist[-1]["time_s"] if hist else None), None, int(state["step"])

    def score(self, images: np.ndarray, h: int, k_images: np.ndarray) -> dict:
        """consistency, KID vs the unseen real images of h, copies of the k images (see the module docstring)."""
        from tfaug.metrics.distances import kernel_inception_distance
        from tfaug.metrics.memorisation import memorisation
        from tfaug.utils.images import as_float_images

        judge, ev = self.judge(), self.cfg["eval"]
        feats, probs = judge.extract(images)
        unseen = self.ds.images[self.splits.unseen[h]]
        real_feats = judge.features(unseen)
        k_feats = judge.features(k_images)
        kid, kid_std = kernel_inception_distance(real_feats, feats, subsets=ev["kid_subsets"],
                                                 subset_size=ev["kid_subset_size"], seed=self.cfg["seed"])
        mem = memorisation(feats, k_feats, real_feats, gen_pixels=images, train_pixels=as_float_images(k_images),
                           heldout_pixels=as_float_images(unseen), percentile=ev["copies_percentile"])
        return {"consistency": float(np.mean(np.argmax(probs, axis=1) == h)), "kid": kid, "kid_std": kid_std,
                "kid_subset_size": int(min(ev["kid_subset_size"], len(images), len(unseen))),
                "copies": mem["share_copies"], "copies_pixel": mem["share_copies_pixel"],
                "copy_threshold": mem["threshold"], "n_eval": int(len(images)), "n_unseen": int(len(unseen)),
                "nn_distance_median": mem["median_nn_distance"],
                "unseen_nn_distance_median": mem["heldout_median_nn_distance"]}

    def _grids(self, cid: str, images: np.ndarray, k_images: np.ndarray, row: dict) -> None:
        from tfaug.utils.images import save_class_grid, to_uint8
        from tfaug.utils.io import atomic_write_bytes

        cols = self.cfg["eval"]["grid_columns"]
        gen = to_uint8(images[: 2 * cols])
        buf = io.BytesIO()
        np.savez_compressed(buf, images=gen)
        atomic_write_bytes(self.out / "samples" / f"{cid}.npz", buf.getvalue())
        save_class_grid(self.out / "grids" / f"{cid}.png", [k_images[:cols], gen[:cols], gen[cols:]],
                        [f"k images ({len(k_images)})", "generated", "generated"],
                        title=f"held-out class {row['class_name']}, k={row['k']}, {row['method']}: consistency "
                              f"{row['consistency']:.2f}, KID {row['kid']:.4f}, copies {row['copies']:.2f}")

    def overview(self, h: int, rows: dict) -> Path | None:
        """One grid per held-out class: the k images, unseen real images, and every finished cell's samples."""
        from tfaug.utils.images import save_class_grid

        cols = self.cfg["eval"]["grid_columns"]
        images = [self.ds.images[self.splits.adapt[h][:cols]], self.ds.images[self.splits.unseen[h][:cols]]]
        labels = [f"k images (first {min(cols, max(self.cfg['k']))})", "unseen real"]
        for k in self.cfg["k"]:
            for m in self.cfg["methods"]:
                cid = self.cell_id(h, k, m)
                path = self.out / "samples" / f"{cid}.npz"
                if cid in rows and path.is_file():
                    images.append(np.load(path)["images"][:cols])
                    labels.append(f"k={k} {m}")
        if len(images) == 2:
            return None
        out = self.out / "grids" / f"overview-h{self.name(h)}.png"
        save_class_grid(out, images, labels, title=f"held-out class {self.name(h)}")
        return out


# -- scheduling --------------------------------------------------------------------------------------------


def work_items(bench: Benchmark, held_out: list[int], phase: str) -> list[tuple]:
    """(key, kind, args, dependencies) in the order a process works through them."""
    cfg = bench.cfg
    items = [(f"pretrain-h{bench.name(h)}", "pretrain", (h,), ()) for h in held_out]
    if phase == "pretrain":
        return items
    items.append(("judge", "judge", (), ()))
    items += [(f"h{bench.name(h)}-reference", "reference", (h,), (f"pretrain-h{bench.name(h)}", "judge"))
              for h in held_out]
    if "age" in cfg["methods"] and cfg["adapt"]["encoder_steps"] > 0:
        items += [(f"encoder-h{bench.name(h)}", "encoder", (h,), (f"pretrain-h{bench.name(h)}",)) for h in held_out]
    for h in held_out:
        for k in cfg["k"]:
            for m in cfg["methods"]:
                deps = (f"pretrain-h{bench.name(h)}", "judge")
                if m == "age" and cfg["adapt"]["encoder_steps"] > 0:
                    deps += (f"encoder-h{bench.name(h)}",)
                items.append((bench.cell_id(h, k, m), "cell", (h, k, m), deps))
    return items


def run_items(bench: Benchmark, items: list[tuple], poll: float = POLL_SECONDS) -> tuple[int, list[str]]:
    """Work through ``items`` (skipping finished ones, waiting for ones other processes hold).

    Returns:
        (number of items this process ran, keys of the items that failed here).
    """
    from tfaug.utils.io import append_jsonl

    claims = Claims(bench.out)
    failed: dict[str, str] = {}
    ran, idle_passes = 0, 0

    def done(key, kind, args, rows):
        if kind == "pretrain":
            return bench.pretrain_done(*args)
        if kind == "judge":
            return bench.judge_done()
        if kind == "encoder":
            return bench.encoder_done(*args)
        return key in rows

    bar = None
    if bench.progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(items), desc="fewshot-heldout", unit="cell", dynamic_ncols=True, position=0)
    try:
        while True:
            waiting = False
            rows = bench.rows()
            finished = {key for key, kind, args, _ in items if done(key, kind, args, rows)}
            if bar is not None:
                bar.n = len(finished)
                bar.refresh()
            for key, kind, args, deps in items:
                if key in finished or key in failed:
                    continue
                if any(d in failed for d in deps):
                    failed[key] = "a dependency failed"
                    continue
                if any(d not in finished for d in deps):
                    waiting = True
                    continue
                with claims.claim(key) as mine:
                    if not mine:
                        waiting = True
                        continue
                    if done(key, kind, args, bench.rows()):  # another process finished it meanwhile
                        finished.add(key)
                        continue
                    if bar is not None:
                        bar.set_postfix_str(key)
                    try:
                        if kind == "pretrain":
                            bench.pretrain(*args)
                        elif kind == "judge":
                            bench.judge()
                        elif kind == "encoder":
                            bench.train_encoder(*args)
                        else:
                            row = bench.reference(*args) if kind == "reference" else bench.cell(*args)
                            append_jsonl(bench.out / "results.jsonl", row)
                            _print_row(row)
                    except KeyboardInterrupt:
                        raise
                    except Exception as exc:  # a benchmark reports a broken cell and carries on with the others
                        traceback.print_exc(file=sys.stderr)
                        failed[key] = f"{type(exc).__name__}: {str(exc)[:200]}"
                        print(f"FAILED {key}: {failed[key]}", file=sys.stderr, flush=True)
                        continue
                    if not done(key, kind, args, bench.rows()):  # never loop over work that leaves no trace
                        failed[key] = "it ran but its output is missing"
                        continue
                    ran += 1
                    finished.add(key)
                    if bar is not None:
                        bar.n = len(finished)
                        bar.refresh()
            rows = bench.rows()
            left = [key for key, kind, args, _ in items if key not in failed and not done(key, kind, args, rows)]
            if not left or not waiting:
                break
            # Something is held by another process (or waits on what it holds): look again later. When nobody
            # holds anything any more (the holder finished or died meanwhile), look again at once, but only once.
            if not any(claims.holder_alive(key) for key, *_ in items):
                idle_passes += 1
                if idle_passes > 1:
                    break
                continue
            idle_passes = 0
            time.sleep(poll)
    finally:
        if bar is not None:
            bar.close()
    return ran, [f"{k}: {v}" for k, v in failed.items()]


def _print_row(row: dict) -> None:
    if row["kind"] == "reference":
        print(f"[{row['id']}] pretrain consistency {row['pretrain_consistency']:.3f} (worst class "
              f"{row['pretrain_worst_class']:.3f}); judge on unseen real {row['real_consistency']:.3f}; real-vs-real "
              f"KID {row['real_kid_halves']:.4f}", flush=True)
    else:
        secs = "n/a" if row["seconds"] is None else f"{row['seconds']:.1f} s"
        print(f"[{row['id']}] consistency {row['consistency']:.3f}, KID {row['kid']:.4f}, copies {row['copies']:.3f} "
              f"(pixel {row['copies_pixel']:.3f}), {secs}, {row['trainable_parameters']} trainable", flush=True)


# -- report ------------------------------------------------------------------------------------------------


def machine() -> dict:
    """Where the run happened: CPU, cores, thread settings, TensorFlow, Python."""
    import tensorflow as tf

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    threads = {k: os.environ[k] for k in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS")
               if k in os.environ}
    return {"host": socket.gethostname(), "cpu": cpu, "cpu_count": os.cpu_count(), "threads": threads,
            "gpu": bool(tf.config.list_physical_devices("GPU")), "tensorflow": tf.__version__,
            "python": platform.python_version()}


def _machine_text(m: dict) -> str:
    threads = ", ".join(f"{k}={v}" for k, v in m.get("threads", {}).items()) or "TensorFlow's default threads"
    return (f"{m.get('cpu_count')} CPU cores ({m.get('cpu')}), {'GPU' if m.get('gpu') else 'no GPU'}, "
            f"TensorFlow {m.get('tensorflow')}, Python {m.get('python')}; {threads}")


def _values(rows: list[dict], key: str, held_out: list[int]) -> list:
    by = {r["held_out"]: r.get(key) for r in rows}
    return [by.get(h) for h in held_out]


def _fmt(v, digits: int) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "—"
    if digits == 0:
        return f"{int(round(v)):,}"
    return f"{v:.{digits}f}"


def _mean_and_each(values: list, digits: int) -> str:
    have = [float(v) for v in values if v is not None]
    if not have:
        return "—"
    mean = _fmt(float(np.mean(have)), digits)
    if len(values) == 1:
        return mean
    return f"{mean} [{', '.join(_fmt(v, digits) for v in values)}]"


def report_tables(cfg: dict, rows: dict[str, dict], class_names) -> tuple[str, list[dict]]:
    """(Markdown tables, summary rows): method x k, mean over held-out classes and [each class's value]."""
    held = cfg["held_out"]
    names = [class_names[h] for h in held]
    summary = []
    lines = [f"Each cell: mean over the held-out classes [{', '.join(names)}] and, in brackets, each class's value "
             "in that order (— = not run yet).", "",
             "| method | k | consistency ↑ | KID ↓ | copies (features) | copies (pixels) | seconds | trainable parameters |",
             "|---|---:|---|---|---|---|---|---:|"]
    for m in cfg["methods"]:
        for k in cfg["k"]:
            cells = [r for r in rows.values() if r.get("kind") == "cell" and r["method"] == m and r["k"] == k
                     and r["held_out"] in held]
            if not cells:
                lines.append(f"| {m} | {k} | — | — | — | — | — | — |")
                continue
            entry = {"method": m, "k": k, "n_classes": len(cells)}
            for key in ("consistency", "kid", "copies", "copies_pixel", "seconds", "trainable_parameters"):
                vals = _values(cells, key, held)
                have = [float(v) for v in vals if v is not None]
                entry[key] = float(np.mean(have)) if have else None
                entry[f"{key}_per_class"] = dict(zip(names, vals))
            summary.append(entry)
            params = [v for v in _values(cells, "trainable_parameters", held) if v is not None]
            lines.append(
                f"| {m} | {k} | {_mean_and_each(_values(cells, 'consistency', held), 3)} | "
                f"{_mean_and_each(_values(cells, 'kid', held), 4)} | {_mean_and_each(_values(cells, 'copies', held), 3)} | "
                f"{_mean_and_each(_values(cells, 'copies_pixel', held), 3)} | "
                f"{_mean_and_each(_values(cells, 'seconds', held), 0)} | "
                f"{_fmt(float(np.mean(params)), 0) if params else '—'} |")
    refs = [rows.get(f"h{n}-reference") for n in names]
    lines += ["", "References per held-out class: the pretrained generator on its own 9 classes, and the judge on the "
              "new class's unseen real images (the ceiling of *consistency*; the KID between two random halves of "
              "them is the floor of *KID* at this sample size).", "",
              "| held-out class | pretrain steps | pretrain seconds | pretrain consistency (9 classes) | worst old class | "
              "judge on unseen real | KID real vs real | unseen images |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for n, r in zip(names, refs):
        if r is None:
            lines.append(f"| {n} | — | — | — | — | — | — | — |")
            continue
        lines.append(f"| {n} | {r['pretrain_steps']:,} | {_fmt(r['pretrain_seconds'], 0)} | "
                     f"{r['pretrain_consistency']:.3f} | {r['pretrain_worst_class']:.3f} | {r['real_consistency']:.3f} | "
                     f"{r['real_kid_halves']:.4f} | {r['n_unseen']} |")
    return "\n".join(lines) + "\n", summary


def write_report(bench: Benchmark) -> dict:
    """OUT/results.md, OUT/results.json and OUT/section.md (for docs/RESULTS.md) from OUT/results.jsonl."""
    from tfaug.utils.io import atomic_write_text, read_json, read_jsonl, write_json

    cfg, out = bench.cfg, bench.out
    rows = bench.rows()
    tables, summary = report_tables(cfg, rows, bench.ds.class_names)
    runs = read_jsonl(out / "invocations.jsonl")
    commands = list(dict.fromkeys(r["command"] for r in runs))
    machines = list(dict.fromkeys(_machine_text(r["machine"]) for r in runs))
    judge = read_json(bench.judge_json()) if bench.judge_done() else {}
    pre = gan_config(cfg["pretrain"], None, cfg["seed"], "pretrain")
    scratch = gan_config(cfg["scratch"], pre, cfg["seed"], "scratch")
    ad = cfg["adapt"]
    grids = [g for g in (bench.overview(h, rows) for h in cfg["held_out"]) if g is not None]
    protocol = [
        f"- Data `{cfg['dataset']}`; held-out classes {', '.join(bench.name(h) for h in cfg['held_out'])}; "
        f"k = {', '.join(map(str, cfg['k']))} (nested draws); seed {cfg['seed']}.",
        f"- Pretrain: `{pre.model}` on {cfg['pretrain_per_class']} real images of each of the other classes, "
        f"{pre.steps:,} steps, batch {pre.batch_size}, width {pre.width} (config `pretrain`: "
        f"`{json.dumps(cfg['pretrain'], sort_keys=True)}`).",
        f"- Adaptation: `tfaug.fewshot.adapt.adapt_run`, steps {ad['steps'] or 'the method default'}, batch "
        f"{ad['batch_size'] or 'the method default'}"
        + (f", age with an inversion encoder of {ad['encoder_steps']} steps" if "age" in cfg["methods"] and
           ad["encoder_steps"] else "") + f"; scratch: the same model on the k images only, {scratch.steps:,} steps.",
        f"- Judge: `{cfg['judge']['name']}` ({cfg['judge']['steps']} steps) on {cfg['judge_per_class']} real images of "
        f"every class, disjoint from everything else"
        + (f"; accuracy {judge['accuracy_pool']:.1%} on the other {judge['n_pool']:,} real images" if judge else "")
        + ". *consistency* = share of the new class's generated images it labels as that class.",
        f"- Per cell {cfg['eval']['n']} generated images (seeds 0..{cfg['eval']['n'] - 1}). *KID* (judge features, "
        f"{cfg['eval']['kid_subsets']} subsets) against the new class's unseen real images; *copies* = "
        f"`tfaug.metrics.memorisation` share_copies: generated images whose nearest k-image is closer than "
        f"percentile {cfg['eval']['copies_percentile']:g} of the unseen real images' nearest k-image distances "
        f"(judge features; the pixel column the same on pixels; unseen real images score about "
        f"{cfg['eval']['copies_percentile'] / 100:.2f}); *seconds* = adaptation (or scratch training) wall time "
        f"only; *trainable parameters* = the generator's trainable scalars (scratch: all of G).",
    ]
    body = ["Commands:", ""] + [f"- `{c}`" for c in commands] + [
        "", f"Machine: {'; '.join(machines) or 'n/s'}", "", "Protocol (`benchmarks/fewshot_heldout.py` docstring):", "",
        *protocol, "", tables]
    if grids:
        body += ["Samples (rows: the k images, unseen real images, then each cell's first generated images):", ""]
        body += [f"![{g.stem}](grids/{g.name})" for g in grids] + [""]
    title = f"Held-out-class few-shot benchmark — {cfg['name']}"
    atomic_write_text(out / "results.md", "\n".join([f"# {title}", "", *body]))
    section = "\n".join([f"## fewshot-heldout — {title}", "",
                         "From `benchmarks/fewshot_heldout.py` (issue 7); regenerate the run with the commands below "
                         "and this section with `python scripts/results_doc.py --section fewshot-heldout=OUT/section.md`.",
                         "", *body])
    atomic_write_text(out / "section.md", section)
    data = {"config": cfg, "commands": commands, "machines": [r["machine"] for r in runs], "judge": judge,
            "summary": summary, "rows": list(rows.values())}
    write_json(out / "results.json", data)
    return data


# -- main --------------------------------------------------------------------------------------------------


def _check_out(out: Path, cfg: dict) -> None:
    """Pin the protocol in OUT/benchmark.json. Another config is refused once results exist, or when it changes
    what the pretrains were trained on; before any result it may change the rest (adaptation, evaluation ...)."""
    from tfaug.errors import TfaugError
    from tfaug.utils.io import read_json, read_jsonl, write_json

    path = out / "benchmark.json"
    stored = read_json(path)["config"] if path.is_file() else None
    normal = json.loads(json.dumps(cfg, sort_keys=True))
    if stored == normal:
        return
    if stored is not None:
        diff = sorted(k for k in set(stored) | set(normal) if stored.get(k) != normal.get(k))
        fixed = [k for k in diff if k not in FREE_KEYS and (k in PRETRAIN_KEYS or read_jsonl(out / "results.jsonl"))]
        if fixed:
            raise TfaugError(f"{out} holds a benchmark run with another config (differs in: {', '.join(fixed)}); use "
                             f"another --out or the same config (and --quick setting)")
    out.mkdir(parents=True, exist_ok=True)
    write_json(path, {"config": normal})


def _held_out(text: str | None, cfg: dict, ds) -> list[int]:
    from tfaug.errors import TfaugError

    if not text:
        return list(cfg["held_out"])
    chosen = []
    for part in text.split(","):
        part = part.strip()
        ids = [h for h in cfg["held_out"] if part in (str(h), ds.class_names[h])]
        if not ids:
            raise TfaugError(f"--held-out {part!r} is not one of the config's held-out classes "
                             f"{', '.join(map(str, cfg['held_out']))}")
        chosen += [i for i in ids if i not in chosen]
    return chosen


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default=str(DEFAULT_CONFIG), help="benchmark YAML (default %(default)s)")
    p.add_argument("--out", required=True, help="output directory (created; rerun the same command to resume)")
    p.add_argument("--quick", action="store_true", help="apply the config's quick: block (smoke run)")
    p.add_argument("--held-out", default=None, metavar="H[,H...]",
                   help="only these held-out classes (ids or names from the config), e.g. to split the work")
    p.add_argument("--phase", choices=("pretrain", "all"), default="all",
                   help="pretrain: only train the base generators; all: everything (default)")
    p.add_argument("--report-only", action="store_true", help="only rewrite the report from OUT/results.jsonl")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
    command = "python benchmarks/fewshot_heldout.py " + " ".join(shlex.quote(a) for a in argv)

    import tfaug  # noqa: F401  (before TensorFlow: turns oneDNN on)
    from tfaug.errors import TfaugError
    from tfaug.utils.io import append_jsonl

    try:
        cfg = load_config(args.config, quick=args.quick)
        out = Path(args.out)
        _check_out(out, cfg)
        bench = Benchmark(cfg, out, progress=not args.no_progress)
        held = _held_out(args.held_out, cfg, bench.ds)
        if not args.report_only:
            append_jsonl(out / "invocations.jsonl", {"command": command, "machine": machine(),
                                                     "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())})
            items = work_items(bench, held, args.phase)
            ran, failed = run_items(bench, items)
            print(f"{ran} piece(s) of work run here, {len(items) - ran - len(failed)} already done or done elsewhere"
                  + (f", {len(failed)} failed: " + "; ".join(failed) if failed else ""), flush=True)
            if args.phase == "pretrain":
                return 1 if failed else 0
        else:
            failed = []
        write_report(bench)
        print((out / "results.md").read_text(encoding="utf-8"))
        print(f"written to {out / 'results.md'}, {out / 'results.json'} and {out / 'section.md'}")
        return 1 if failed else 0
    except TfaugError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
