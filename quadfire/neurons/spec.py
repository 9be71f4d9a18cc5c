"""A model's choice of neuron: a name with keyword arguments, a factory, or an instance, and the
registry of neuron names.

Models build one spiking layer per `NeuronSpec.make(channels)` call, so per-channel learnable
neurons get their layer's channel count; `v_th` is the threshold the model's tdBN layers scale
to. A name is a registered neuron (`NEURONS`, extended with `register_neuron`) or an import
path ``"package.module:ClassName"`` of a `MultiStepNeuron` subclass, so recipes, ``--set
neuron=...`` and studies reach a neuron written outside quadfire (docs/neuron.md, "Your own
neuron").
"""
from __future__ import annotations

import copy
import importlib
import inspect
import math
from typing import Callable, NamedTuple, Union

from torch import nn

from ..errors import ConfigError, ParameterError
from .base import MultiStepNeuron
from .lif import IF, LIF, PLIF
from .qif import QIF



class Registered(NamedTuple):
    """A neuron name: its module class and the keyword arguments the name fixes."""

    cls: type[MultiStepNeuron]
    preset: dict


NEURONS: dict[str, Registered] = {
    "qif": Registered(QIF, {}),
    "qif-exact": Registered(QIF, {"discretization": "exact"}),
    "qif-hybrid": Registered(QIF, {"discretization": "hybrid"}),
    "lif": Registered(LIF, {}),
    "plif": Registered(PLIF, {}),
    "if": Registered(IF, {}),
}


def register_neuron(name: str, cls: type[MultiStepNeuron], **preset) -> None:
    """Make `cls` (a `MultiStepNeuron` subclass) available as ``neuron: name`` in recipes,
    ``--set neuron=name``, `create_model` and studies; `preset` keyword arguments are fixed
    by the name. Re-registering a name replaces it."""
    if not isinstance(name, str) or not name or ":" in name:
        raise ConfigError(f"a neuron name must be a non-empty string without ':', got {name!r}")
    if not (isinstance(cls, type) and issubclass(cls, MultiStepNeuron)):
        raise ConfigError(f"register_neuron needs a MultiStepNeuron subclass, got {cls!r}")
    NEURONS[name] = Registered(cls, dict(preset))


def resolve_neuron(name: str) -> Registered:
    """The registered neuron `name`, or the class an import path ``"module:Class"`` names."""
    if name in NEURONS:
        return NEURONS[name]
    if isinstance(name, str) and ":" in name:
        module, _, attr = name.partition(":")
        try:
            cls = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as e:
            raise ConfigError(f"neuron {name!r}: cannot import {attr!r} from module "
                              f"{module!r} ({e})") from None
        if not (isinstance(cls, type) and issubclass(cls, MultiStepNeuron)):
            raise ConfigError(f"neuron {name!r} is {cls!r}, not a MultiStepNeuron subclass")
        return Registered(cls, {})
    raise ConfigError(f"unknown neuron {name!r}; expected one of {sorted(NEURONS)}, an import "
                      f"path 'package.module:Class' or a callable")


def _check_kwargs(cls: type, kwargs: dict, preset: dict) -> None:
    """Unknown keyword arguments are named with the valid ones, before anything is built."""
    valid = [n for n in inspect.signature(cls.__init__).parameters if n not in ("self", "kw")
             and n not in preset]
    if cls is PLIF:  # PLIF passes the rest of LIF's arguments through **kw
        valid += [n for n in inspect.signature(LIF.__init__).parameters
                  if n not in ("self", "tau") and n not in valid]
    fixed = sorted(set(kwargs) & set(preset))
    if fixed:
        raise ConfigError(f"neuron_kwargs {fixed} are fixed by the neuron's name "
                          f"({', '.join(f'{k}={v!r}' for k, v in preset.items())})")
    if any(p.kind == p.VAR_KEYWORD for p in inspect.signature(cls.__init__).parameters.values()) \
            and cls is not PLIF:
        return  # a user neuron that takes **kwargs checks its own
    unknown = sorted(set(kwargs) - set(valid) - {"channels"}, key=str)
    if unknown:
        raise ConfigError(f"unknown neuron_kwargs {unknown} for {cls.__name__}; valid: "
                          f"{', '.join(v for v in valid if v != 'channels')}")


def _threshold(v_th) -> float:
    """The ``v_th`` keyword argument as a float (tdBN scales to it), checked before use."""
    if isinstance(v_th, bool) or not isinstance(v_th, (int, float)) or not math.isfinite(v_th):
        raise ParameterError(f"neuron parameter v_th must be a finite number, got {v_th!r}")
    return float(v_th)


class NeuronSpec:
    """``make(channels)`` builds one spiking layer; ``v_th`` is the threshold tdBN scales to
    (the ``v_th`` keyword argument, else the instance's, else 1.0).

    Args:
        neuron: a name in NEURONS ("qif", "qif-exact", "qif-hybrid", "lif", "plif", "if",
            and any `register_neuron` added), an import path "module:Class", a factory called as
            ``factory(channels)``, or a MultiStepNeuron instance (deep-copied per layer).
        neuron_kwargs: keyword arguments for a named neuron. For a factory only ``v_th`` is
            allowed (the factory builds the neuron itself); an instance takes none.
    """

    def __init__(self, neuron: Union[str, Callable[[int], nn.Module], MultiStepNeuron] = "qif",
                 neuron_kwargs: dict | None = None):
        if neuron_kwargs is not None and not isinstance(neuron_kwargs, dict):
            raise ConfigError(f"neuron_kwargs must be a dict of keyword arguments, got "
                              f"{neuron_kwargs!r}")
        kwargs = dict(neuron_kwargs or {})
        self.v_th = _threshold(kwargs.get("v_th", 1.0))
        if isinstance(neuron, MultiStepNeuron):
            if kwargs:
                raise ConfigError(f"neuron_kwargs {sorted(kwargs)} cannot be applied to a neuron "
                                  f"instance; configure the instance instead")
            self.v_th = float(getattr(neuron, "v_th", 1.0))
            self._make: Callable[[int], nn.Module] = lambda channels: copy.deepcopy(neuron)
        elif isinstance(neuron, nn.Module):
            raise ParameterError(f"neuron must be a name, a factory or a MultiStepNeuron, "
                                 f"got the module {type(neuron).__name__}")
        elif callable(neuron) and not isinstance(neuron, str):
            if set(kwargs) - {"v_th"}:
                raise ConfigError(f"neuron_kwargs for a neuron factory may only hold 'v_th' "
                                  f"(the tdBN scale); got {sorted(kwargs)}")
            self._make = neuron
        else:
            cls, preset = resolve_neuron(neuron)
            _check_kwargs(cls, kwargs, preset)
            channelwise = kwargs.get("learnable") == "channel"

            def make(channels: int) -> nn.Module:
                return cls(**preset, **kwargs, **({"channels": channels} if channelwise else {}))

            make(1 if channelwise else 0)  # validate the arguments once, at construction
            self._make = make

    def make(self, channels: int) -> nn.Module:
        return self._make(channels)
