"""Registered Keras layers of adapted sampling networks (class routing between the base and the adapted
generator). Filled in by issue 7's adaptation work."""
from __future__ import annotations
