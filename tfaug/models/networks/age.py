"""Registered Keras layers of AGE-style new-class networks (centroid + shared directions in w). Filled in by
issue 7's inversion/editing work."""
from __future__ import annotations
