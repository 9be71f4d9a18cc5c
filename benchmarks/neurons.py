"""Neuron-layer benchmark: see quadfire/bench/neurons.py. Same as `quadfire bench neurons`."""
import sys

from quadfire.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "neurons", *sys.argv[1:]]))
