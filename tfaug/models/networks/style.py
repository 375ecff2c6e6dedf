"""Style-based generator and ResNet discriminator networks (``stylegan`` in the zoo). Filled in by issue 7."""
from __future__ import annotations
