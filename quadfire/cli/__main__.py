"""``python -m quadfire.cli`` (what torchrun launches)."""
import sys

from . import main

if __name__ == "__main__":  # importing the module (a docs build, a test) runs nothing
    sys.exit(main())
