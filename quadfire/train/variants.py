"""Neuron variants a study compares on one recipe (`quadfire.train.study`).

A variant replaces only the neuron of a recipe; model, data, optimizer, schedule, epochs,
batch and augmentation stay the recipe's, so every variant gets the same budget. QIF variants
start from the QIF twin's parameters (a, u1, u2, v_th); LIF-family variants take v_th from it
too, so tdBN scales every network the same way.

The LIF baselines separate QIF's nonlinearity from its leak: near rest the QIF map decays like
a LIF with leak factor f'(u1) = 1 - a (u2 - u1) (docs/neuron.md), i.e. tau = 1 / (a (u2 - u1)),
8 for the defaults, while the TET/tdBN baseline LIF has tau = 2. `lif-matched` is the LIF with
QIF's rest slope, so a gap between `qif-*` and `lif-matched` is the nonlinearity's, and a gap
between `lif-matched` and `lif-tau2` is the leak's.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable

from ..errors import ConfigError
from ..functional import QIFParams
from ..neurons import NEURONS, resolve_neuron

# The LIF-family surrogate of the TET/tdBN code: a triangle of width 1.
LIF_WINDOW = {"surrogate": "triangle", "surrogate_width": 1.0}


@dataclass(frozen=True)
class Variant:
    """``neuron(qif_kwargs, lif_twin)`` -> (neuron name, neuron_kwargs); ``twin`` names the
    recipe whose reference figure (paper_accuracy) the variant is reported against."""

    name: str
    description: str
    neuron: Callable[[dict, tuple[str, dict]], tuple[str, dict]]
    twin: str = "qif"


def _qif(**changes) -> Callable:
    return lambda q, lif: ("qif", {**q, **changes})


def _discretized(name: str, surrogate: str = "band") -> Callable:
    """The QIF twin's parameters under another discretization (neuron `name`) and window rule,
    with no floor argument, so each map gets its own default (none for exact and hybrid)."""
    return lambda q, lif: (name, {**{k: v for k, v in q.items()
                                     if k not in ("discretization", "v_min")},
                                  "surrogate": surrogate})


def _lif_matched(q: dict, lif) -> tuple[str, dict]:
    a, u1, u2 = q.get("a", QIFParams.a), q.get("u1", QIFParams.u1), q.get("u2", QIFParams.u2)
    ad = a * (u2 - u1)
    if not 0 < ad <= 1:
        raise ConfigError(f"lif-matched needs a monotone QIF rest (0 < a*(u2 - u1) <= 1, so the "
                          f"matched leak tau = 1/(a*(u2 - u1)) is >= 1); got a*(u2 - u1) = {ad:g}")
    v_reset = q.get("v_reset")
    return "lif", {"tau": 1.0 / ad, "v_th": q.get("v_th", QIFParams.v_th), "v_rest": u1,
                   "v_reset": u1 if v_reset is None else v_reset, **LIF_WINDOW}


VARIANTS: dict[str, Variant] = {v.name: v for v in (
    Variant("qif", "the recipe's QIF neuron as it is", lambda q, lif: ("qif", dict(q))),
    Variant("lif", "the recipe's LIF twin as it is", lambda q, lif: lif, twin="lif"),
    Variant("qif-band", "QIF, window rule band (default)", _qif(surrogate="band")),
    Variant("qif-band-below", "QIF, window rule band-below", _qif(surrogate="band-below")),
    Variant("qif-noise", "QIF, window rule noise (sigma = v_th)", _qif(surrogate="noise")),
    Variant("qif-learnable", "QIF, band, a/u1/u2 learned per channel",
            _qif(surrogate="band", learnable="channel")),
    Variant("qif-detach", "QIF, band, no gradient through the reset's spike (detach_reset)",
            _qif(surrogate="band", detach_reset=True)),
    Variant("qif-exact", "QIF, exact null-input flow per step (no floor), band",
            _discretized("qif-exact")),
    Variant("qif-hybrid", "QIF above rest, the matched LIF below (no floor), band",
            _discretized("qif-hybrid")),
    Variant("qif-moment", "QIF, window rule moment (sigma = v_th, 64 samples, rho 0.5)",
            _qif(surrogate="moment")),
    Variant("qif-exact-moment", "QIF, exact flow (no floor), window rule moment",
            _discretized("qif-exact", "moment")),
    Variant("qif-hybrid-moment", "QIF hybrid (no floor), window rule moment",
            _discretized("qif-hybrid", "moment")),
    Variant("lif-tau2", "LIF tau = 2, triangle width 1 (the TET/tdBN baseline)",
            lambda q, lif: ("lif", {"tau": 2.0, "v_th": q.get("v_th", 1.0), **LIF_WINDOW}),
            twin="lif"),
    Variant("lif-matched", "LIF with QIF's rest slope: tau = 1/(a (u2 - u1)), triangle width 1",
            _lif_matched, twin="lif"),
    Variant("plif", "PLIF, tau learned per layer from 2, triangle width 1",
            lambda q, lif: ("plif", {"tau": 2.0, "v_th": q.get("v_th", 1.0), **LIF_WINDOW}),
            twin="lif"),
)}

# What `quadfire study` runs when no variants are named.
STUDY = ("qif-band", "qif-band-below", "qif-noise", "qif-learnable", "lif-tau2", "lif-matched",
         "plif")


def get_variant(name: str) -> Variant:
    """A named variant, or any neuron name (`quadfire.neurons.NEURONS`, `register_neuron`) or
    import path "module:Class": that neuron with its defaults and the QIF twin's v_th (when it
    takes one), reported against the QIF twin."""
    if name in VARIANTS:
        return VARIANTS[name]
    try:
        cls, preset = resolve_neuron(name)
    except ConfigError:
        raise ConfigError(f"unknown study variant {name!r}; expected one of {list(VARIANTS)}, "
                          f"a neuron name {sorted(NEURONS)} or an import path "
                          f"'package.module:Class'") from None
    takes_vth = "v_th" in inspect.signature(cls.__init__).parameters and "v_th" not in preset
    return Variant(name, f"the neuron {name} with its defaults",
                   lambda q, lif: (name, {"v_th": q.get("v_th", 1.0)} if takes_vth else {}))
