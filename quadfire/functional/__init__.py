"""The neuron maths shared by every layer above: the neuron protocol (`protocol`), the built-in
models' frozen parameter classes with their equations (`params`), fire and reset (`steps`),
surrogate windows (`surrogate`), the run's output type (`output`) and the input checks of the
public boundary (`checks`). Imports nothing of quadfire but its errors.

Equations: docs/neuron.md; windows: docs/surrogate-window.md.
"""
from .checks import check_channels, check_state, check_time_major
from .output import NeuronOutput
from .params import (DISCRETIZATIONS, LIFParams, QIFExactParams, QIFHybridParams, QIFParams,
                     hybrid_floor, qif_default_floor, qif_vertex, validate_lif, validate_qif)
from .protocol import CHARGE_ROWS, KERNEL_MODELS, NeuronParams, Ops
from .steps import (fire_reset, lif_charge, lif_step, neuron_step, qif_charge, qif_slope, qif_step,
                    rest_potential)
from .surrogate import SHAPES, Window, spike
from .windows import QIF_RULES, parse_surrogate, qif_window

__all__ = ["NeuronOutput", "NeuronParams", "Ops", "KERNEL_MODELS", "CHARGE_ROWS", "QIFParams",
           "QIFExactParams", "QIFHybridParams", "DISCRETIZATIONS", "LIFParams", "Window",
           "QIF_RULES", "SHAPES", "neuron_step", "qif_step", "lif_step", "qif_charge",
           "lif_charge", "qif_slope", "fire_reset", "rest_potential", "spike", "qif_window",
           "parse_surrogate", "qif_vertex", "qif_default_floor", "hybrid_floor", "validate_qif", "validate_lif",
           "check_time_major", "check_channels", "check_state"]
