"""tfaug's cDCGAN step in float32 and bf16, timed in alternating windows so both see the same machine load.

Not a test. On a shared machine the separate blocks of ``train_throughput.py`` can run minutes apart under
different loads; here both models (built under ``float32`` and ``mixed_bfloat16``) are timed window by window,
A B A B ..., and the medians and their ratio are printed with the CPU and the load averages.

    .venv/bin/python benchmarks/precision_ab.py --threads 1 --windows 6
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--windows", type=int, default=6, help="windows per precision (default 6)")
    p.add_argument("--steps", type=int, default=3, help="steps per window (default 3)")
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=64)
    args = p.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from train_throughput import NUM_CLASSES, _cfg, _data, load_averages, set_threads

    set_threads(args.threads)
    args.image_size, args.z_dim, args.diffaugment, args.mode_seeking = 28, 64, "color,translation,cutout", 0.05
    import keras
    import tensorflow as tf

    from tfaug.data.pipeline import make_pipeline
    from tfaug.models.cgan import build_conditional_gan
    from tfaug.utils.hardware import machine_summary

    images, labels = _data(args)
    batch = next(iter(make_pipeline(images, labels, args.batch_size, shuffle=True, seed=0, repeat=True,
                                    drop_remainder=True)))
    steps = {}
    for name, policy in (("float32", "float32"), ("bf16", "mixed_bfloat16")):
        keras.mixed_precision.set_global_policy(policy)
        keras.utils.set_random_seed(0)
        gan = build_conditional_gan((28, 28, 1), NUM_CLASSES, _cfg(args))
        gan.build_optimizers()
        keras.mixed_precision.set_global_policy("float32")
        fn = tf.function(gan.train_step)
        for _ in range(2):  # trace and warm up
            float(fn(batch)["d_loss"])
        steps[name] = fn
    start = load_averages()
    times = {k: [] for k in steps}
    for _ in range(args.windows):
        for name, fn in steps.items():
            t0 = time.perf_counter()
            for _ in range(args.steps):
                out = fn(batch)
            float(out["d_loss"])
            times[name].append((time.perf_counter() - t0) / args.steps)
    hw = machine_summary()
    print(f"{hw['cpu_model']} ({' '.join(hw['cpu_flags'])}), {args.threads} thread(s), batch {args.batch_size}, "
          f"width {args.width}; {args.windows} alternating windows of {args.steps} steps; load average "
          f"{start} at the start, {load_averages()} at the end")
    med = {k: statistics.median(v) for k, v in times.items()}
    for k, v in med.items():
        print(f"{k}: {args.batch_size / v:.0f} images/s ({v * 1e3:.0f} ms/step; windows "
              f"{', '.join(f'{t * 1e3:.0f}' for t in times[k])} ms)")
    print(f"bf16 / float32 images/s: {med['float32'] / med['bf16']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
