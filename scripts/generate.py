#!/usr/bin/env python3
"""Script form of `tfaug generate` for users who prefer scripts: same arguments, same behaviour.

Usage: python scripts/generate.py --help
"""
import os
import sys

from tfaug.cli import main

if __name__ == "__main__":
    sys.exit(main(["generate", *sys.argv[1:]], prog=os.path.basename(sys.argv[0])))
