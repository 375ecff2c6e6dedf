"""A study refuses a filled folder (tfaug fill): its test sets must hold real images only."""
import types

import numpy as np
import pytest
from PIL import Image

from tfaug.data.sources import MANIFEST_NAME, manifest_text
from tfaug.errors import TfaugError
from tfaug.studies.runner import _load


def _folder(root, synthetic_files):
    rows = []
    for c in ("a", "b"):
        (root / c).mkdir()
        for i in range(3):
            rel = f"{c}/{i}.png"
            Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(root / rel)
            rows.append({"path": rel, "class": c, "synthetic": int(rel in synthetic_files)})
    (root / MANIFEST_NAME).write_text(manifest_text(rows))


def test_study_refuses_a_folder_with_generated_images(tmp_path):
    _folder(tmp_path, {"b/2.png"})
    cfg = types.SimpleNamespace(dataset=f"folder:{tmp_path}")
    with pytest.raises(TfaugError, match="holds 1 generated images"):
        _load(cfg, None)
