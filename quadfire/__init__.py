"""quadfire: deep spiking neural networks with the discretized Quadratic Integrate-and-Fire
neuron. The names most code needs are here; everything else lives in its package (see the
README's layout section, bottom to top: functional, ops, neurons, layers, models, data,
analysis, train, export, bench, cli)."""
from importlib.metadata import PackageNotFoundError, version

from .models import create_model, list_models
from .neurons import IF, LIF, PLIF, QIF

try:
    __version__ = version("quadfire")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["QIF", "LIF", "PLIF", "IF", "create_model", "list_models", "__version__"]
