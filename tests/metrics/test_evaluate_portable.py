"""reference_split matches an exported generator's portable dataset spec (no local directories in metadata)."""
import types

import numpy as np
from PIL import Image

from tfaug.data.sources import load_dataset
from tfaug.metrics.evaluate import reference_split


def test_exported_spec_without_its_directory_still_matches(tmp_path):
    root = tmp_path / "pets"
    rng = np.random.default_rng(0)
    for cls in ("cat", "dog"):
        (root / cls).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(root / cls / f"{i}.png")
    spec = f"folder:{root}"
    ds = load_dataset(spec)
    exported = {"training_config": {"data": {"spec": "folder:pets", "train_indices": [0, 4]}}}
    train, ref, desc = reference_split(types.SimpleNamespace(metadata=exported), ds, spec)
    assert train.tolist() == [0, 4] and len(ref) == 4 and "recorded training images" in desc
    other = {"training_config": {"data": {"spec": "folder:cats", "train_indices": [0, 4]}}}
    assert "not" in reference_split(types.SimpleNamespace(metadata=other), ds, spec)[2]
