"""Time to compute tfaug's full metric set for 1k and 10k generated 28x28 images on CPU.

Not a test. Real data: ``../shared/data/mnist10k.npz`` when present (else scikit-learn's digits upscaled to
28x28). The "generator" is real images plus Gaussian noise: the metric cost does not depend on image quality.
A stratified 10% of the real images plays the generator's training set (memorisation), the other 90% the
held-out reference. Reported separately: the domain extractor's training (once per dataset, then cached) and
CAS (three classifier trainings, timed at the smallest size only with ``--cas``).

For each size it prints one line: seconds for the whole set (feature extraction of every set included) and
per metric. The full set is fid, kid, is, pr, per_class, consistency, diversity, memorisation.

    .venv/bin/python benchmarks/metrics.py --sizes 1000,10000 --cas
"""
from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist10k.npz"
FULL_SET = "fid,kid,is,pr,per_class,consistency,diversity,memorisation"


def _real_data():
    from tfaug.data.sources import load_dataset

    if MNIST.exists():
        return load_dataset(f"npz:{MNIST}"), f"npz:{MNIST.name}"
    import tensorflow as tf

    ds = load_dataset("digits")
    up = tf.image.resize(ds.images.astype(np.float32), (28, 28), method="bilinear").numpy()
    images = np.clip(np.rint(up), 0, 255).astype(np.uint8)
    return type(ds)(images, ds.labels, ds.class_names, "digits@28"), "digits upscaled to 28x28"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="1000,10000", help="generated set sizes (default 1000,10000)")
    p.add_argument("--extractor-steps", type=int, default=1500, help="domain extractor training steps (default 1500)")
    p.add_argument("--cas", action="store_true", help="also time CAS (300 steps x 3 classifiers) at the smallest size")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    import dataclasses

    import tensorflow as tf

    from tfaug.data.subsets import stratified_split
    from tfaug.metrics.features import DEFAULT_DOMAIN_CONFIG, domain_extractor
    from tfaug.metrics.registry import MetricContext, compute_metrics
    from tfaug.utils.images import to_float

    ds, source = _real_data()
    train, _, ref = stratified_split(ds.labels, test=0.9, seed=args.seed)
    print(f"machine: {os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}), "
          f"GPUs: {len(tf.config.list_physical_devices('GPU'))}, TF {tf.__version__}")
    print(f"real data: {source}, {len(ds.labels)} images {ds.image_shape}; reference {len(ref)}, train {len(train)}")

    cfg = dataclasses.replace(DEFAULT_DOMAIN_CONFIG, steps=args.extractor_steps)
    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        ext = domain_extractor(source, ds.images, ds.labels, cache_dir=cache, config=cfg, progress=False)
        trained = time.perf_counter() - start
        start = time.perf_counter()
        domain_extractor(source, ds.images, ds.labels, cache_dir=cache, config=cfg, progress=False)
        cached = time.perf_counter() - start
    print(f"domain extractor ({cfg.name}, {cfg.steps} steps, {len(ds.labels)} images): trained in {trained:.1f} s, "
          f"loaded from cache in {cached:.2f} s")

    rng = np.random.default_rng(args.seed)
    reference, ref_labels = to_float(ds.images[ref]), ds.labels[ref]
    sizes = [int(s) for s in args.sizes.split(",")]
    for n in sizes:
        pick = rng.choice(len(ref), n, replace=n > len(ref))
        gen = np.clip(reference[pick] + rng.normal(0, 0.2, reference[pick].shape), -1, 1).astype(np.float32)
        ctx = MetricContext(generated=gen, generated_labels=ref_labels[pick], reference=reference,
                            reference_labels=ref_labels, extractor=ext, num_classes=ds.num_classes,
                            class_names=ds.class_names, train=to_float(ds.images[train]),
                            train_labels=ds.labels[train], seed=args.seed)
        start = time.perf_counter()
        res, timings = compute_metrics(FULL_SET, ctx)
        total = time.perf_counter() - start
        parts = ", ".join(f"{k} {v:.2f}" for k, v in timings.items())
        print(f"n_generated={n}: full metric set in {total:.1f} s (n_real={len(ref)}, n_train={len(train)}; "
              f"per metric, s: {parts}); fid {res['fid']:.3f}, kid {res['kid']['mean']:.4f}")
        if args.cas and n == min(sizes):
            start = time.perf_counter()
            cas = compute_metrics("cas", ctx)[0]
            print(f"n_generated={n}: CAS (3 classifiers x 300 steps) in {time.perf_counter() - start:.1f} s, "
                  f"cas {cas['cas']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
