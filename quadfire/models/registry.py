"""The model registry: every architecture registers its builder here, so `create_model`
can build it by name and the test suite walks `list_models()`."""
from __future__ import annotations

from typing import Callable

from torch import nn

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Decorator: register a builder under its function name. Builders take keyword
    arguments ``neuron, T, num_classes, neuron_kwargs`` plus their own options."""
    name = fn.__name__
    if name in _MODELS and _MODELS[name] is not fn:
        raise ValueError(f"a model named {name!r} is already registered")
    _MODELS[name] = fn
    return fn


def list_models() -> list[str]:
    """Names of all registered models, sorted."""
    return sorted(_MODELS)


def create_model(name: str, neuron="qif", T: int = 4, num_classes: int = 10,
                 neuron_kwargs: dict | None = None, **kw) -> nn.Module:
    """Build a registered model.

    Args:
        name: one of `list_models()`.
        neuron: "qif", "lif", "plif", "if", a factory ``channels -> module``, or a
            MultiStepNeuron instance (copied for every spiking layer).
        T: time steps used when the input is a static image (event frames bring their own T).
        num_classes: size of the output.
        neuron_kwargs: keyword arguments for the named neuron; ``v_th`` also sets tdBN's scale.
        **kw: the builder's own options (e.g. ``in_channels``).

    Returns a module mapping ``[N, C, H, W]`` or ``[T, N, C, H, W]`` to logits ``[T, N, num_classes]``.
    """
    if name not in _MODELS:
        raise ValueError(f"unknown model {name!r}; expected one of {list_models()}")
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    return _MODELS[name](neuron=neuron, T=T, num_classes=num_classes,
                         neuron_kwargs=neuron_kwargs, **kw)
