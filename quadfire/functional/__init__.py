"""The neuron maths shared by every layer above: frozen parameters (`params`), the pure step
functions (`steps`), surrogate windows (`surrogate`), the run's output type (`output`) and the
input checks of the public boundary (`checks`). Imports nothing of quadfire but its errors.

Equations: docs/neuron.md; windows: docs/surrogate-window.md.
"""
from .checks import check_channels, check_state, check_time_major
from .output import NeuronOutput
from .params import LIFParams, QIFParams, qif_default_floor, qif_vertex, validate_lif, validate_qif
from .steps import fire_reset, lif_charge, lif_step, qif_charge, qif_slope, qif_step, rest_potential
from .surrogate import SHAPES, Window, spike
from .windows import QIF_RULES, parse_surrogate, qif_window

__all__ = ["NeuronOutput", "QIFParams", "LIFParams", "Window", "QIF_RULES", "SHAPES",
           "qif_step", "lif_step", "qif_charge", "lif_charge", "qif_slope", "fire_reset",
           "rest_potential", "spike", "qif_window", "parse_surrogate", "qif_vertex",
           "qif_default_floor", "validate_qif", "validate_lif", "check_time_major",
           "check_channels", "check_state"]
