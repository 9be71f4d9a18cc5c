"""Readable names for a network's spiking layers in figures and tables.

A module path such as ``body.7`` says where a layer sits in the code, not what it is. Each
spiking layer is named after the weighted layer that feeds it, counted per kind in module
order (``conv1``, ``conv2``, ``fc1``), with the path kept beside it: ``"fc1 (body.7)"``.
"""
from __future__ import annotations

from torch import nn

from ..neurons import MultiStepNeuron

KINDS = ((nn.Conv1d, "conv"), (nn.Conv2d, "conv"), (nn.Conv3d, "conv"), (nn.Linear, "fc"))


def layer_labels(model: nn.Module) -> dict[str, str]:
    """``{module path: "conv1 (body.1)"}`` for every spiking layer (`MultiStepNeuron`) of
    `model`. The feeding layer is the last Conv/Linear before the neuron in module order; a
    residual block's shortcut conv is skipped for the neurons off the shortcut (it is defined
    after ``conv2`` but feeds the sum, not ``sn2`` alone). A neuron with no weighted layer
    before it is named by its type and position among the spiking layers: ``"LIF 1 (sn)"``."""
    counts: dict[str, int] = {}
    main = shortcut = None
    labels: dict[str, str] = {}
    for name, m in model.named_modules():
        kind = next((k for cls, k in KINDS if isinstance(m, cls)), None)
        if kind is not None:
            counts[kind] = counts.get(kind, 0) + 1
            if "shortcut" in name:
                shortcut = f"{kind}{counts[kind]}"
            else:
                main = f"{kind}{counts[kind]}"
        elif isinstance(m, MultiStepNeuron):
            feeding = shortcut if "shortcut" in name else main
            if feeding is None:
                feeding = f"{type(m).__name__} {len(labels) + 1}"
            labels[name] = f"{feeding} ({name})"
    return labels
