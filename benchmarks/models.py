"""ResNet-19 training step: quadfire QIF vs SpikingJelly QIFNode. Same as `quadfire bench models`.

    python benchmarks/models.py [--T 4] [--batch 8] [--size 32] [--steps 5] [--json out.json]
"""
import sys

from quadfire.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "models", *sys.argv[1:]]))
