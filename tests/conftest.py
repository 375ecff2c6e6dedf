"""Shared fixtures: quiet TensorFlow, seeded tiny datasets, and the optional shared MNIST file."""
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TFAUG_NO_DOWNLOAD", "1")  # tests never reach for the network
os.environ.setdefault("MPLBACKEND", "Agg")

from pathlib import Path

import pytest

from tests_helpers import toy_images  # noqa: F401  (re-exported for tests)

MNIST10K = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist10k.npz"


@pytest.fixture
def mnist10k_path():
    """Path of ../shared/data/mnist10k.npz; the test is skipped when the file is absent (end users lack it)."""
    if not MNIST10K.exists():
        pytest.skip(f"shared MNIST sample not found at {MNIST10K}")
    return MNIST10K


@pytest.fixture
def toy():
    """(images uint8 [60, 8, 8, 1], labels int32 [60]) with 3 separable classes."""
    return toy_images()
