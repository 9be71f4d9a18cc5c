"""Neurons: pure step functions (`steps`), their parameters (`params`), surrogate windows
(`surrogate`) and thin multi-step modules (QIF, LIF, PLIF, IF)."""
from __future__ import annotations

from typing import Callable, Union

from torch import nn

from .lif import IF, LIF, PLIF
from .params import LIFParams, QIFParams
from .qif import QIF
from .steps import fire_reset, lif_step, qif_step
from .surrogate import Window, qif_window, spike

NEURONS = {"qif": QIF, "lif": LIF, "plif": PLIF, "if": IF}

NeuronSpec = Union[str, Callable[..., nn.Module]]


def neuron_factory(spec: NeuronSpec, **kwargs) -> Callable[[int], nn.Module]:
    """A function ``channels -> neuron module`` from a name in NEURONS or a callable.

    Models call it once per spiking layer with that layer's channel count, so per-channel
    learnable neurons get the right size. A callable is called as ``spec(channels)``.
    """
    if callable(spec) and not isinstance(spec, str):
        return spec
    if spec not in NEURONS:
        raise ValueError(f"unknown neuron {spec!r}; expected one of {sorted(NEURONS)} or a callable")
    cls = NEURONS[spec]

    def make(channels: int) -> nn.Module:
        kw = dict(kwargs)
        if kw.get("learnable") == "channel":
            kw["channels"] = channels
        return cls(**kw)

    return make


__all__ = ["QIF", "LIF", "PLIF", "IF", "QIFParams", "LIFParams", "Window", "qif_step", "lif_step",
           "fire_reset", "spike", "qif_window", "NEURONS", "neuron_factory"]
