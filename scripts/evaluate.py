#!/usr/bin/env python3
"""Script form of `tfaug evaluate` for users who prefer scripts: same arguments, same behaviour.

Usage: python scripts/evaluate.py --help
"""
import os
import sys

from tfaug.cli import main

if __name__ == "__main__":
    sys.exit(main(["evaluate", *sys.argv[1:]], prog=os.path.basename(sys.argv[0])))
