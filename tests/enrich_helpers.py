"""Tiny settings and a tiny class-folder dataset shared by the enrich tests."""
from pathlib import Path

import numpy as np

from tests_helpers import toy_images


def tiny_config(**changes):
    """An EnrichConfig with a seconds-long classifier and generator (test-only override of the defaults)."""
    from tfaug.config import ClassifierConfig, GANConfig
    from tfaug.enrich.protocol import EnrichConfig

    base = dict(classifier=ClassifierConfig(name="lenet5", steps=20, batch_size=16),  # the cheapest network to build
                gan=GANConfig(steps=20, batch_size=16, width=8, sample_every=0, checkpoint_every=0),
                max_repeats=3, min_repeats=2)
    base.update(changes)
    return EnrichConfig(**base)


def write_folder(root: Path, counts=(20, 20, 20), size: int = 8) -> Path:
    """Class folders ``a``, ``b``, ``c`` ... of PNGs (class i lights up band i of the toy images)."""
    from tfaug.utils.images import save_png

    x, y = toy_images(n_per_class=max(counts), num_classes=len(counts), size=size)
    for c, n in enumerate(counts):
        for j, img in enumerate(x[y == c][:n]):
            save_png(root / "abcdefgh"[c] / f"img{j:03d}.png", img)
    return root
