"""Small helpers shared by tests (importable because tests/ is on sys.path via conftest's rootdir)."""
import numpy as np


def toy_split(toy, test_every: int = 3):
    """Split the toy set: every ``test_every``-th image is test."""
    x, y = toy
    idx = np.arange(len(x))
    te = idx % test_every == 0
    return (x[~te], y[~te]), (x[te], y[te])


def toy_images(n_per_class: int = 20, num_classes: int = 3, size: int = 8, channels: int = 1, seed: int = 0):
    """A trivially separable image set: class c lights up horizontal band c. Returns uint8 [N,H,W,C], int32 [N]."""
    rng = np.random.default_rng(seed)
    band = size // num_classes
    xs, ys = [], []
    for c in range(num_classes):
        img = np.zeros((n_per_class, size, size, channels), np.float32)
        img[:, c * band : (c + 1) * band] = 1.0
        img += rng.normal(0, 0.08, img.shape)
        xs.append(np.clip(img * 255, 0, 255).astype(np.uint8))
        ys.append(np.full(n_per_class, c, np.int32))
    return np.concatenate(xs), np.concatenate(ys)
