#!/usr/bin/env python3
"""Script form of `tfaug enrich` for users who prefer scripts: same arguments, same behaviour.

Usage: python scripts/enrich.py --help
"""
import os
import sys

from tfaug.cli import main

if __name__ == "__main__":
    sys.exit(main(["enrich", *sys.argv[1:]], prog=os.path.basename(sys.argv[0])))
