"""Training speed of tfaug's cDCGAN vs the same network and step in PyTorch, and vs the machine's matmul limit.

Not a test. In one process and one run it measures, at 28x28x1, 10 classes, batch 64 (defaults):

* the matrix-product peak (``--matmul-size`` squared, tf and torch) in each precision: the machine's practical
  FLOP/s limit;
* tfaug's ``ConditionalGAN.train_step`` compiled with ``tf.function`` exactly as ``tfaug.training.gan_runner``
  does, on one fixed batch; the same with XLA (``jit_compile=True``); the same fed by tfaug's tf.data pipeline
  (the runner's loop); the pipeline alone;
* the PyTorch twin (``benchmarks/torch_cdcgan.py``: same layers and parameter count, asserted; same losses,
  Adam, EMA, DiffAugment policies and mode-seeking term);
* with ``--breakdown`` (default on) the parts of one step in both frameworks: G forward+backward, D
  forward+backward on reals and fakes, the DiffAugment ops, the mode-seeking term, the EMA update.

FLOPs are counted analytically from the layer shapes (convolutions, transposed convolutions and dense layers,
2 FLOPs per multiply-add; forward, weight-gradient and input-gradient passes the step needs; BatchNorm,
activations, augmentation, Adam and EMA are left out), so "% of peak" is a lower bound of the work done.
Each figure is the median of ``--windows`` timed windows of ``--steps`` steps after ``--warmup`` untimed steps.
Threads: ``--threads N`` (default: every core) for both frameworks (TF intra- and inter-op pools, torch).

Precision (issue 21): ``--precision float32`` or ``bf16`` or ``both``; ``auto`` (default) runs both where the
hardware computes bfloat16 natively (CPU flags amx_bf16/avx512_bf16, GPUs of compute capability >= 8.0) and
float32 alone elsewhere, and says which. bf16 is tfaug's ``mixed_bfloat16`` Keras policy (what
``--mixed-precision bf16`` trains with: bf16 compute, float32 variables, losses and optimizer) against PyTorch
under ``torch.autocast(dtype=torch.bfloat16)``; "% of matmul peak" divides by the peak of the same precision.
The per-part breakdown runs in float32 only. The header records the CPU model and flags and the load averages.

oneDNN: TensorFlow enables its oneDNN kernels by default only on x86 CPUs with AVX-512 VNNI/BF16 or AMX; elsewhere
(this AMD EPYC with AVX2/FMA) it runs Eigen's convolutions, while PyTorch always uses oneDNN. ``import tfaug`` sets
``TF_ENABLE_ONEDNN_OPTS=1`` unless it is already set, so ``--onednn default`` measures tfaug as users run it and
``--onednn off`` measures TensorFlow's own choice on such a CPU; the header reports the value.

    .venv/bin/python benchmarks/train_throughput.py --quick                      # smoke run, ~1 min
    .venv/bin/python benchmarks/train_throughput.py --precision both --no-breakdown --out benchmarks/results/train_bf16.md
    .venv/bin/python benchmarks/train_throughput.py --out benchmarks/results/train_throughput.md
    .venv/bin/python benchmarks/train_throughput.py --threads 1 --out benchmarks/results/train_throughput_1thread.md
    .venv/bin/python benchmarks/train_throughput.py --onednn off --out benchmarks/results/train_throughput_onednn_off.md
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
NUM_CLASSES = 10
HERE = Path(__file__).resolve().parent


def _args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="threads for both frameworks (default all)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--image-size", type=int, default=28, help="square side (default 28; the torch twin needs 8, 16, 28, 32 ...)")
    p.add_argument("--width", type=int, default=32, help="GANConfig.width (default 32)")
    p.add_argument("--z-dim", type=int, default=64)
    p.add_argument("--diffaugment", default="color,translation,cutout", help="policies for both ('' for none)")
    p.add_argument("--mode-seeking", type=float, default=0.05)
    p.add_argument("--warmup", type=int, default=5, help="untimed steps before timing (default 5)")
    p.add_argument("--steps", type=int, default=20, help="steps per timed window (default 20)")
    p.add_argument("--windows", type=int, default=5, help="timed windows; the median is reported (default 5)")
    p.add_argument("--matmul-size", type=int, default=2048, help="side of the square matmul peak (default 2048)")
    p.add_argument("--onednn", choices=("default", "on", "off"), default="default",
                   help="TF_ENABLE_ONEDNN_OPTS for this run: leave it as it is (default), 1 or 0. TensorFlow "
                        "leaves oneDNN off on x86 CPUs without AVX-512, where it is ~1.7x faster here")
    p.add_argument("--precision", choices=("auto", "float32", "bf16", "both"), default="auto",
                   help="float32, bf16 (mixed_bfloat16 / torch bf16 autocast) or both; auto (default): both where "
                        "the hardware has native bf16, else float32")
    p.add_argument("--no-torch", action="store_true", help="skip PyTorch even when it is installed")
    p.add_argument("--no-xla", action="store_true", help="skip the jit_compile=True step")
    p.add_argument("--no-breakdown", action="store_true", help="skip the per-part table")
    p.add_argument("--quick", action="store_true", help="smoke run: width 8, batch 16, 2x3 steps, matmul 256")
    p.add_argument("--out", default=None, help="write the Markdown report here and its data to the same name .json")
    args = p.parse_args(argv)
    if args.quick:
        args.width, args.batch_size, args.warmup, args.steps, args.windows = 8, 16, 2, 3, 2
        args.matmul_size = 256
    if min(args.threads, args.batch_size, args.steps, args.windows, args.matmul_size) < 1 or args.warmup < 0:
        p.error("--threads, --batch-size, --steps, --windows and --matmul-size must be >= 1, --warmup >= 0")
    return args


def set_threads(n: int, onednn: str = "default") -> None:
    """Thread pools of both frameworks and TF's oneDNN switch; must run before TensorFlow is imported."""
    os.environ["OMP_NUM_THREADS"] = str(n)
    if onednn != "default":
        os.environ["TF_ENABLE_ONEDNN_OPTS"] = "1" if onednn == "on" else "0"
    import tfaug  # noqa: F401 - before TensorFlow: tfaug's defaults (oneDNN on unless set) apply, as for users
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(n)
    tf.config.threading.set_inter_op_parallelism_threads(n)
    try:
        import torch

        torch.set_num_threads(n)
        torch.set_num_interop_threads(n)
    except ImportError:
        pass


def time_it(fn, warmup: int, steps: int, windows: int) -> float:
    """Median seconds per call of ``fn`` over ``windows`` windows of ``steps`` calls, after ``warmup`` calls.
    ``fn`` must return something whose ``float()`` waits for the work (a scalar)."""
    for _ in range(warmup):
        float(fn())
    per_call = []
    for _ in range(windows):
        t0 = time.perf_counter()
        out = None
        for _ in range(steps):
            out = fn()
        float(out)
        per_call.append((time.perf_counter() - t0) / steps)
    return statistics.median(per_call)


# -- FLOPs ---------------------------------------------------------------------------------------------------
def layer_flops(model) -> list[int]:
    """Forward FLOPs per image of every Conv2D, Conv2DTranspose and Dense layer of a Keras model, in order."""
    import keras

    out = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2DTranspose):
            kh, kw, cout, cin = layer.kernel.shape
            _, h, w, _ = layer.input.shape
            out.append(2 * h * w * cin * kh * kw * cout)
        elif isinstance(layer, keras.layers.Conv2D):
            kh, kw, cin, cout = layer.kernel.shape
            _, h, w, _ = layer.output.shape
            out.append(2 * h * w * cout * kh * kw * cin)
        elif isinstance(layer, keras.layers.Dense):
            cin, cout = layer.kernel.shape
            out.append(2 * cin * cout)
    return [int(f) for f in out]


def step_flops(g_flops: list[int], d_flops: list[int], batch: int) -> int:
    """FLOPs of one cDCGAN step: G forward; D forward + weight and input gradients (not of its first layer) on
    2B images; D forward + input gradients on B fakes; G weight gradients and input gradients (not of its
    first layer, which reads z)."""
    fg, fd = sum(g_flops), sum(d_flops)
    per_image = 3 * fg - g_flops[0] + 8 * fd - 2 * d_flops[0]
    return int(batch * per_image)


# -- tfaug ---------------------------------------------------------------------------------------------------
def _cfg(args):
    from tfaug.config import GANConfig

    return GANConfig(model="cdcgan", z_dim=args.z_dim, width=args.width, batch_size=args.batch_size,
                     diffaugment=args.diffaugment, mode_seeking=args.mode_seeking, seed=0)


def _data(args, n: int = 1000):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, args.image_size, args.image_size, 1), dtype=np.uint8)
    return images, (np.arange(n) % NUM_CLASSES).astype(np.int32)


def matmul_tf(n: int, args, precision: str = "float32") -> float:
    import tensorflow as tf

    dtype = tf.bfloat16 if precision == "bf16" else tf.float32
    a = tf.cast(tf.random.stateless_normal((n, n), seed=(1, 2)), dtype)
    b = tf.cast(tf.random.stateless_normal((n, n), seed=(3, 4)), dtype)
    fn = tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)[:1, :1]), autograph=False)
    return 2 * n**3 / time_it(fn, 1, max(1, args.steps // 4), args.windows)


def tfaug_rows(args, precision: str = "float32") -> tuple[list[dict], dict]:
    """Timings of tfaug's step (tf.function, XLA, fed by the pipeline) and of the pipeline alone, with the model
    built under the Keras policy of ``precision`` (float32 or bf16 = mixed_bfloat16)."""
    import keras
    import tensorflow as tf

    from tfaug.data.pipeline import make_pipeline
    from tfaug.models.cgan import build_conditional_gan

    cfg, shape = _cfg(args), (args.image_size, args.image_size, 1)
    images, labels = _data(args)
    keras.utils.set_random_seed(0)
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16" if precision == "bf16" else "float32")
    try:
        gan = build_conditional_gan(shape, NUM_CLASSES, cfg)
        gan.build_optimizers()
    finally:
        keras.mixed_precision.set_global_policy(previous)
    info = {"g_params": int(sum(np.prod(v.shape) for v in gan.generator.trainable_weights)),
            "d_params": int(sum(np.prod(v.shape) for v in gan.discriminator.trainable_weights)),
            "flops": step_flops(layer_flops(gan.generator), layer_flops(gan.discriminator), args.batch_size)}
    ds = make_pipeline(images, labels, args.batch_size, shuffle=True, seed=0, repeat=True, drop_remainder=True)
    batch = next(iter(ds))
    rows = []
    step = tf.function(gan.train_step)  # exactly what gan_runner compiles
    rows.append({"what": "train step (tf.function, as gan_runner)", "framework": "tfaug",
                 "s": time_it(lambda: step(batch)["d_loss"], args.warmup, args.steps, args.windows)})
    info["retraces"] = int(step.experimental_get_tracing_count())
    if not args.no_xla:
        xla = tf.function(gan.train_step, jit_compile=True)
        rows.append({"what": "train step, XLA (jit_compile=True)", "framework": "tfaug",
                     "s": time_it(lambda: xla(batch)["d_loss"], args.warmup, args.steps, args.windows)})
    it = iter(ds)
    rows.append({"what": "train step fed by the tf.data pipeline (gan_runner's loop)", "framework": "tfaug",
                 "s": time_it(lambda: step(next(it))["d_loss"], args.warmup, args.steps, args.windows)})
    if precision == "float32":
        it2 = iter(ds)
        rows.append({"what": "input pipeline alone (make_pipeline)", "framework": "tfaug", "pipeline": True,
                     "s": time_it(lambda: tf.reduce_sum(next(it2)[1]), args.warmup, args.steps * 5, args.windows)})
    if not args.no_breakdown and precision == "float32":
        from train_parts import tf_parts

        rows += tf_parts(gan, batch, args, time_it)
    for r in rows:
        r["precision"] = precision
    return rows, info


def torch_rows(args, info: dict, precision: str = "float32") -> list[dict]:
    """The PyTorch twin's step (and, in float32, its parts); bf16 runs the step under CPU bf16 autocast."""
    import contextlib

    import torch

    sys.path.insert(0, str(HERE))
    from torch_cdcgan import TorchCDCGAN

    policy = tuple(p.strip() for p in args.diffaugment.split(",") if p.strip())
    model = TorchCDCGAN((args.image_size, args.image_size, 1), NUM_CLASSES, args.z_dim, args.width,
                        mode_seeking=args.mode_seeking, diffaugment=policy)
    counts = model.parameter_counts()
    info.update(torch_g_params=counts["generator"], torch_d_params=counts["discriminator"])
    if (counts["generator"], counts["discriminator"]) != (info["g_params"], info["d_params"]):
        raise SystemExit(f"parameter counts differ: tfaug G {info['g_params']} D {info['d_params']}, "
                         f"torch G {counts['generator']} D {counts['discriminator']}")
    images, labels = _data(args, args.batch_size)
    real = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    lab = torch.from_numpy(labels).long()

    def step():
        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext()
        with ctx:
            return model.train_step(real, lab)["d_loss"].float()

    rows = [{"what": "train step (eager PyTorch)", "framework": "torch",
             "s": time_it(step, args.warmup, args.steps, args.windows)}]
    if not args.no_breakdown and precision == "float32":
        from train_parts import torch_parts

        rows += torch_parts(model, real, lab, args, time_it)
    for r in rows:
        r["precision"] = precision
    return rows


def matmul_torch(n: int, args, precision: str = "float32") -> float:
    import torch

    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    return 2 * n**3 / time_it(lambda: (a @ b)[0, 0], 1, max(1, args.steps // 4), args.windows)


# -- report ---------------------------------------------------------------------------------------------------
def load_averages() -> str:
    """``uptime``'s 1/5/15-minute load averages, e.g. ``"1.20 0.80 0.50"`` (``n/a`` where unavailable)."""
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except (AttributeError, OSError):
        return "n/a"


def machine(threads: int) -> str:
    import tensorflow as tf

    from tfaug.utils.hardware import machine_summary

    hw = machine_summary()
    gpu = "GPU" if tf.config.list_physical_devices("GPU") else "no GPU"
    try:
        import torch

        torch_v = f", torch {torch.__version__}"
    except ImportError:
        torch_v = ", torch not installed"
    onednn = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "unset (TensorFlow's choice for this CPU)")
    return (f"{os.cpu_count()} CPU cores ({hw['cpu_model']}; flags: {' '.join(hw['cpu_flags']) or 'none of note'}), "
            f"{gpu}, TF {tf.__version__}{torch_v}; {threads} thread(s) per framework; "
            f"TF_ENABLE_ONEDNN_OPTS={onednn}; load average (1/5/15 min) {load_averages()} at the start")


def precisions(choice: str) -> tuple[list[str], str]:
    """The precisions to run for ``--precision`` and one sentence saying why."""
    if choice != "auto":
        return (["float32", "bf16"] if choice == "both" else [choice]), f"--precision {choice}"
    from tfaug.utils.hardware import BF16_CPU_FLAGS, cpu_info, cpu_supports_bf16, gpu_compute_capabilities

    caps = gpu_compute_capabilities()
    if caps and all(c >= (8, 0) for c in caps):
        return ["float32", "bf16"], f"GPU compute capability {caps[0][0]}.{caps[0][1]} has bf16: float32 and bf16"
    flags = [f for f in BF16_CPU_FLAGS if f in cpu_info()["flags"]]
    if not caps and cpu_supports_bf16():
        return ["float32", "bf16"], f"CPU has {', '.join(flags)}: float32 and bf16"
    return ["float32"], "no native bf16 on this machine (no AMX/AVX512-BF16 CPU, no GPU >= 8.0): float32 only"


def table(rows: list[dict], batch: int, flops: int, peaks: dict) -> str:
    """``peaks``: ``{(framework, precision): FLOP/s}``; a step's % is of the best peak of its precision."""
    lines = ["| what | framework | precision | images/s | ms/step | GFLOP/s | % of matmul peak |",
             "|---|---|---|---:|---:|---:|---:|"]
    for (fw, prec), peak in peaks.items():
        name = "float32" if prec == "float32" else "bfloat16"
        lines.append(f"| {name} matmul peak | {fw} | {prec} | - | - | {peak / 1e9:.1f} | 100% |")
    best = {}
    for (_, prec), peak in peaks.items():
        best[prec] = max(best.get(prec, 0.0), peak)
    # Whole-step rows first, then each part of the step with both frameworks side by side.
    parts = [r["what"] for r in rows if r.get("part")]
    rows = [r for r in rows if not r.get("part")] + sorted(
        (r for r in rows if r.get("part")), key=lambda r: (parts.index(r["what"]), r["framework"] != "tfaug"))
    for r in rows:
        ms, prec = r["s"] * 1e3, r.get("precision", "float32")
        if r.get("part"):
            lines.append(f"| part: {r['what']} | {r['framework']} | {prec} | - | {ms:.2f} | - | - |")
            continue
        ips = batch / r["s"]
        if r.get("pipeline"):
            lines.append(f"| {r['what']} | {r['framework']} | - | {ips:.0f} | {ms:.2f} | - | - |")
            continue
        achieved = flops / r["s"]
        peak = best.get(prec, float("nan"))
        lines.append(f"| {r['what']} | {r['framework']} | {prec} | {ips:.0f} | {ms:.1f} | {achieved / 1e9:.2f} | "
                     f"{achieved / peak:.1%} |")
    return "\n".join(lines)


def summarize(rows: list[dict], peaks: dict, run: list[str]) -> tuple[list[str], dict]:
    """Sentences comparing precisions and frameworks against the issue-21 goals, and the ratios behind them."""
    step = {(r["framework"], r["precision"]): r["s"] for r in rows
            if r["what"].startswith("train step (") and not r.get("part")}
    ratios, lines = {}, []
    for prec in run:
        if ("torch", prec) in step:
            ratios[f"tfaug_over_torch_{prec}"] = step[("torch", prec)] / step[("tfaug", prec)]
            goal = "met" if ratios[f"tfaug_over_torch_{prec}"] >= 1.2 else "MISSED"
            lines.append(f"tfaug / PyTorch training images/s, {prec}: {ratios[f'tfaug_over_torch_{prec}']:.2f} "
                         f"(goal >= 1.2: {goal})")
    if "bf16" in run:
        for fw in ("tfaug", "torch"):
            if (fw, "bf16") in step:
                ratios[f"bf16_over_float32_{fw}"] = step[(fw, "float32")] / step[(fw, "bf16")] if (
                    fw, "float32") in step else None
                if ratios[f"bf16_over_float32_{fw}"] is not None:
                    goal = "" if fw == "torch" else (
                        " (goal >= 2: met)" if ratios["bf16_over_float32_tfaug"] >= 2 else " (goal >= 2: MISSED)")
                    lines.append(f"{fw} bf16 / float32 training images/s: {ratios[f'bf16_over_float32_{fw}']:.2f}{goal}")
        for fw in ("tf", "torch"):
            if (fw, "bf16") in peaks and (fw, "float32") in peaks:
                ratios[f"matmul_bf16_over_float32_{fw}"] = peaks[(fw, "bf16")] / peaks[(fw, "float32")]
                lines.append(f"{fw} matmul peak bf16 / float32: {ratios[f'matmul_bf16_over_float32_{fw}']:.2f}")
    return lines, ratios


def main(argv=None) -> int:
    args = _args(argv)
    sys.path.insert(0, str(HERE))
    set_threads(args.threads, args.onednn)
    try:
        import torch  # noqa: F401

        have_torch = not args.no_torch
    except ImportError:
        have_torch = False
        print("PyTorch is not installed (make bench-install): the torch rows are skipped", flush=True)
    header = machine(args.threads)
    run, why = precisions(args.precision)
    print(header, flush=True)
    print(f"precision: {why}", flush=True)
    # Each framework's work runs in one block, so the other's idle worker threads are asleep by then.
    peaks, rows, info = {}, [], None
    for prec in run:
        peaks[("tf", prec)] = matmul_tf(args.matmul_size, args, prec)
        got, got_info = tfaug_rows(args, prec)
        rows += got
        info = info or got_info
        info["retraces"] = max(info["retraces"], got_info["retraces"])
    if have_torch:
        for prec in run:
            peaks[("torch", prec)] = matmul_torch(args.matmul_size, args, prec)
            rows += torch_rows(args, info, prec)
    end_load = load_averages()
    print(f"parameters: tfaug G {info['g_params']:,} D {info['d_params']:,}"
          + (f"; torch G {info['torch_g_params']:,} D {info['torch_d_params']:,} (equal)" if have_torch else ""))
    print(f"FLOPs per step (analytic, conv/dense layers): {info['flops'] / 1e9:.3f} GFLOP; "
          f"tf.function traces of the step: {info['retraces']}")
    text = table(rows, args.batch_size, info["flops"], peaks)
    lines, ratios = summarize(rows, peaks, run)
    ratio = ratios.get("tfaug_over_torch_float32", ratios.get(f"tfaug_over_torch_{run[0]}"))
    summary = "\n".join(lines) if lines else "no PyTorch ratio"
    print(text)
    print(summary)
    print(f"load average (1/5/15 min) at the end: {end_load}")
    if args.out:
        from bench_report import command_line, write_report

        from tfaug.utils.hardware import machine_summary

        command = command_line("train_throughput.py", argv)
        md = (f"# Training throughput: tfaug cDCGAN vs PyTorch\n\nCommand: `{command}`\n\nMachine: {header}; "
              f"load average at the end {end_load}\n\nPrecision: {why}.\n\n"
              f"Setting: {args.image_size}x{args.image_size}x1, {NUM_CLASSES} classes, batch {args.batch_size}, "
              f"width {args.width}, z_dim {args.z_dim}, DiffAugment {args.diffaugment!r}, mode seeking "
              f"{args.mode_seeking}; median of {args.windows} windows of {args.steps} steps after {args.warmup} "
              f"warm-up steps; matmul peak {args.matmul_size}x{args.matmul_size} in each precision.\n\n"
              f"Parameters: G {info['g_params']:,}, D {info['d_params']:,} (same in both frameworks, asserted). "
              f"FLOPs per step: {info['flops'] / 1e9:.3f} GFLOP, counted analytically from the layer shapes "
              f"(conv, transposed conv, dense; forward and the gradient passes the step needs).\n\n"
              f"{text}\n\n{summary}\n")
        write_report(args.out, md, {"command": command, "machine": header, "hardware": machine_summary(),
                                    "load_average_end": end_load, "precisions": run, "args": vars(args),
                                    "info": info, "peaks_flops": {f"{fw}/{p}": v for (fw, p), v in peaks.items()},
                                    "rows": rows, "tfaug_over_torch": ratio, "ratios": ratios})
    return 0


if __name__ == "__main__":
    sys.exit(main())
