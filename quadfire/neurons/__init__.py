"""Neuron modules: thin multi-step wrappers (QIF in three discretizations, LIF, PLIF, IF) around
the models of `quadfire.functional`, the neuron registry (`NEURONS`, `register_neuron`) and
`NeuronSpec`, a model's choice of neuron."""
from ..functional import (LIFParams, NeuronParams, Ops, QIFExactParams, QIFHybridParams, QIFParams,
                          Window, fire_reset, lif_step, neuron_step, qif_step, qif_window, spike)
from .base import MultiStepNeuron
from .lif import IF, LIF, PLIF
from .qif import QIF
from .spec import NEURONS, NeuronSpec, register_neuron, resolve_neuron

__all__ = ["QIF", "LIF", "PLIF", "IF", "MultiStepNeuron", "NeuronSpec", "NEURONS",
           "register_neuron", "resolve_neuron", "NeuronParams", "Ops", "QIFParams",
           "QIFExactParams", "QIFHybridParams", "LIFParams", "Window", "neuron_step", "qif_step",
           "lif_step", "fire_reset", "spike", "qif_window"]
