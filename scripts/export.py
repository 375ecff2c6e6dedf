#!/usr/bin/env python3
"""Script form of `tfaug export` for users who prefer scripts: same arguments, same behaviour.

Usage: python scripts/export.py --help
"""
import os
import sys

from tfaug.cli import main

if __name__ == "__main__":
    sys.exit(main(["export", *sys.argv[1:]], prog=os.path.basename(sys.argv[0])))
