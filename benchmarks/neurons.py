"""Neuron-layer benchmark: see quadfire/bench/neurons.py (also `quadfire bench neurons`)."""
import sys

from quadfire.bench.neurons import main

if __name__ == "__main__":
    sys.exit(main())
