"""``python -m tfaug`` = the ``tfaug`` command."""
import sys

from tfaug.cli import main

sys.exit(main())
