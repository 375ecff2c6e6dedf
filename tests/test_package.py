"""The package root: Keras pinned to TensorFlow, cheap import, every public name resolves."""
import subprocess
import sys

import tfaug


def test_public_api_resolves():
    for name in tfaug.__all__:
        assert getattr(tfaug, name) is not None, name


def test_import_is_cheap_and_sets_backend():
    code = "import os, sys, tfaug; print(os.environ['KERAS_BACKEND'], 'tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={"PATH": "/usr/bin:/bin"}).stdout.split()
    assert out == ["tensorflow", "False"]
