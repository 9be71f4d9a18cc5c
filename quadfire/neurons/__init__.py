"""Neuron modules: thin multi-step wrappers (QIF, LIF, PLIF, IF) around the step functions of
`quadfire.functional`, and `NeuronSpec`, a model's choice of neuron."""
from ..functional import LIFParams, QIFParams, Window, fire_reset, lif_step, qif_step, qif_window, spike
from .base import MultiStepNeuron
from .lif import IF, LIF, PLIF
from .qif import QIF
from .spec import NEURONS, NeuronSpec

__all__ = ["QIF", "LIF", "PLIF", "IF", "MultiStepNeuron", "NeuronSpec", "NEURONS", "QIFParams",
           "LIFParams", "Window", "qif_step", "lif_step", "fire_reset", "spike", "qif_window"]
