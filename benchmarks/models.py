"""ResNet-19 training step: quadfire QIF vs SpikingJelly QIFNode. Same as `quadfire bench models`.

    python benchmarks/models.py [--T 4] [--batch 8] [--size 32] [--steps 5] [--json out.json]
"""
import sys

from quadfire.bench.models import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
