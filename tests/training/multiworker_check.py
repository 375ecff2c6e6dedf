"""Subprocess helper of tests/training/test_multiworker.py: one worker of a two-worker MultiWorkerMirroredStrategy
cluster (TF_CONFIG set by the test) training a tiny cdcgan through train_gan. argv: OUT directory."""
import sys

import numpy as np

from tfaug.config import GANConfig, RuntimeConfig
from tfaug.training.gan_runner import train_gan


def main():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (32, 8, 8, 1), dtype=np.uint8)
    y = (np.arange(32) % 4).astype(np.int32)
    cfg = GANConfig(model="cdcgan", steps=3, batch_size=8, width=8, z_dim=8, sample_every=0, checkpoint_every=0,
                    diffaugment="translation")
    run = train_gan(x, y, class_names=list("abcd"), cfg=cfg, out=sys.argv[1], progress=False, log_every=1,
                    runtime=RuntimeConfig(strategy="multiworker"))
    losses = [r["d_loss"] for r in run.history]
    print(f"DONE step={run.step} finite={bool(np.all(np.isfinite(losses)))}", flush=True)


if __name__ == "__main__":
    main()
