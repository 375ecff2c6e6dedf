#!/usr/bin/env python3
"""Script form of `tfaug query` for users who prefer scripts: same arguments, same behaviour.

Usage: python scripts/query.py --help
"""
import os
import sys

from tfaug.cli import main

if __name__ == "__main__":
    sys.exit(main(["query", *sys.argv[1:]], prog=os.path.basename(sys.argv[0])))
