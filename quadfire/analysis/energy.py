"""Operation counts and the energy estimate (standard 45 nm figures; docs/analysis.md).

- Encoding layer (the first conv/linear, which sees the analogue input): multiply-accumulates,
  E_MAC = 4.6 pJ each.
- Every later conv/linear: synaptic operations, SOP = one accumulate per non-zero input per
  synapse it drives (input spikes x fan-out), E_AC = 0.9 pJ each. Counted from the real input:
  a zero input costs nothing, and at the border a spike drives only the outputs whose
  receptive field contains it (padding is not a synapse).
- Neuron updates: the charge step's operations as the model declares them
  (`NeuronParams.ops`): multiplies (E_MULT = E_MAC - E_AC = 3.7 pJ), adds (E_ADD = E_AC =
  0.9 pJ) and divisions (E_DIV, priced as a multiply: the 45 nm table has no division, and a
  hardware divider costs at least a multiplier, so exact-flow QIF's figure is a lower bound).
  LIF (U (1 - k) + X) costs 1 multiply + 1 add, Euler and hybrid QIF with u1 = 0
  (U (a U + b) + X) one more of each, exact-flow QIF (x / (E + c x) + X) 1 multiply,
  1 division and 2 adds, IF (U + X) one add. Threshold compare and reset are the same for
  every neuron and are not counted; bias adds (one per output) neither.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..neurons.base import MultiStepNeuron
from ..errors import InputError, InputTypeError

E_MAC_PJ = 4.6
E_AC_PJ = 0.9
E_MULT_PJ = E_MAC_PJ - E_AC_PJ
E_ADD_PJ = E_AC_PJ
E_DIV_PJ = E_MULT_PJ

SYNAPTIC = (nn.Conv1d, nn.Conv2d, nn.Linear)


def neuron_ops(neuron: MultiStepNeuron):
    """`Ops` (multiplies, adds, divisions) of one charge step of `neuron`, as its model
    declares them (see module doc)."""
    return neuron.params().ops()


def neuron_update_pj(neuron: MultiStepNeuron) -> float:
    """Energy of one neuron update in pJ: 9.2 for every QIF discretization (exact flow:
    a division in place of a multiply), 4.6 for LIF/PLIF, 0.9 for IF."""
    ops = neuron_ops(neuron)
    return ops.mults * E_MULT_PJ + ops.adds * E_ADD_PJ + ops.divs * E_DIV_PJ


def synaptic_ops(layer: nn.Module, x: torch.Tensor) -> int:
    """Accumulates `layer` performs on input `x` (the layer's own input, time folded into the
    batch): for every non-zero input element, the number of outputs it feeds.

    For a conv this is the conv of the non-zero mask with an all-ones kernel, summed, times the
    output channels per group; for a linear layer, non-zeros x out_features. Counted in float64
    so the totals are exact integers well past 2^24.
    """
    if not isinstance(layer, SYNAPTIC):
        raise InputTypeError(f"synaptic_ops expects one of {[c.__name__ for c in SYNAPTIC]}, "
                             f"got {type(layer).__name__}")
    mask = (x != 0).to(torch.float64)
    if isinstance(layer, nn.Linear):
        if x.shape[-1] != layer.in_features:
            raise InputError(f"Linear({layer.in_features}, ...) input must end in "
                             f"{layer.in_features}, got shape {tuple(x.shape)}")
        return int(mask.sum().item()) * layer.out_features
    groups = layer.groups
    ones = torch.ones((groups, layer.in_channels // groups) + tuple(layer.kernel_size),
                      dtype=torch.float64, device=x.device)
    conv = F.conv1d if isinstance(layer, nn.Conv1d) else F.conv2d
    if layer.padding_mode != "zeros":
        raise InputError(f"synaptic_ops supports zero padding only, got padding_mode="
                         f"{layer.padding_mode!r}")
    reach = conv(mask, ones, None, layer.stride, layer.padding, layer.dilation, groups)
    return int(reach.sum().item()) * (layer.out_channels // groups)


def dense_macs(layer: nn.Module, x: torch.Tensor) -> int:
    """Multiply-accumulates of `layer` on `x` as a dense (non-spiking) layer: every input
    element counts, zero or not (the synaptic count of an all-ones input)."""
    return synaptic_ops(layer, torch.ones_like(x))


def energy_pj(macs: float, sops: float, neuron_pj: float) -> dict[str, float]:
    """The energy breakdown in pJ from MAC and SOP counts and the summed neuron-update energy."""
    mac, sop = macs * E_MAC_PJ, sops * E_AC_PJ
    return {"mac": mac, "sop": sop, "neuron": neuron_pj, "total": mac + sop + neuron_pj}
