"""The model registry: every architecture registers its builder here, so `create_model`
can build it by name and the test suite walks `list_models()`."""
from __future__ import annotations

import inspect
import math
from typing import Callable

import torch
from torch import nn

from ..errors import CheckpointError, ConfigError

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


def input_kwargs(name: str, step_shape: tuple[int, ...]) -> dict:
    """The builder options that describe its input, from one sample's per-step shape:
    ``in_channels`` (C of (C, H, W), or the features of a sequence) always, and ``image_size``
    (H = W) for builders that take it (those whose layers depend on the input size)."""
    builder = _builder(name)
    out = {"in_channels": int(step_shape[0])}
    if len(step_shape) == 3 and step_shape[1] == step_shape[2] and \
            "image_size" in inspect.signature(builder).parameters:
        out["image_size"] = int(step_shape[1])
    return out


def _builder(name: str) -> Callable[..., nn.Module]:
    if not isinstance(name, str) or name not in _MODELS:
        raise ConfigError(f"unknown model {name!r}; expected one of {list_models()}")
    return _MODELS[name]


COMMON = ("neuron", "T", "num_classes", "neuron_kwargs")


def options_of(target: Callable, *fixed: str):
    """Decorator for a family builder ``fn(**kw)`` that passes its options on to `target`
    with the arguments `fixed` already chosen: `fn` takes `target`'s other options, so they
    are checked by name and type like any builder's."""
    sig = inspect.signature(target, eval_str=True)

    def decorate(fn: Callable) -> Callable:
        fn.__signature__ = sig.replace(
            parameters=[p for p in sig.parameters.values() if p.name not in fixed])
        return fn
    return decorate


def _type_ok(value, annotation) -> bool:
    """Whether `value` fits a builder option's annotation (int, float, bool, str; other
    annotations are not checked)."""
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) \
            and math.isfinite(value)
    if annotation is str:
        return isinstance(value, str)
    return True


def _check_options(name: str, builder: Callable, kw: dict) -> None:
    """Builder options must exist and have the annotated type; int options are sizes or
    counts (channels, widths, image sides), so they must be >= 1."""
    params = inspect.signature(builder, eval_str=True).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return  # a builder that takes any option; it checks them itself
    own = [n for n in params if n not in COMMON]
    unknown = sorted(set(kw) - set(own), key=str)
    if unknown:
        raise ConfigError(f"unknown model_kwargs {unknown} for model {name!r}; valid: {own}")
    for key, value in kw.items():
        annotation = params[key].annotation
        if not _type_ok(value, annotation):
            raise ConfigError(f"model_kwargs.{key} for model {name!r} must be "
                              f"{getattr(annotation, '__name__', annotation)}, got {value!r}")
        if annotation is int and value < 1:
            raise ConfigError(f"model_kwargs.{key} for model {name!r} must be >= 1, got {value!r}")


def check_model(name: str, model_kwargs: dict | None = None) -> None:
    """Raise ConfigError for an unknown model or unknown / ill-typed options, without
    building anything (what a config checks when it is loaded)."""
    if not isinstance(model_kwargs, dict):
        raise ConfigError(f"model_kwargs must be a dict, got {model_kwargs!r}")
    _check_options(name, _builder(name), model_kwargs)


def load_state(model: nn.Module, state: dict, source: str, strict: bool = True) -> nn.Module:
    """``model.load_state_dict(state)`` with a CheckpointError that says what does not match."""
    if not isinstance(state, dict):
        raise CheckpointError(f"{source} holds no model weights (a state dict), got "
                              f"{type(state).__name__}")
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k}: {tuple(state[k].shape)} vs model {tuple(v.shape)}" for k, v in own.items()
              if k in state and isinstance(state[k], torch.Tensor) and state[k].shape != v.shape]
    if shapes or (strict and (missing or unexpected)):
        parts = [f"{len(missing)} missing (e.g. {missing[:3]})" if missing else "",
                 f"{len(unexpected)} unexpected (e.g. {unexpected[:3]})" if unexpected else "",
                 f"shape mismatches {shapes[:3]}" if shapes else ""]
        raise CheckpointError(f"the weights in {source} do not match this "
                              f"{type(model).__name__}: " + "; ".join(p for p in parts if p))
    model.load_state_dict(state, strict=strict)
    return model


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
    builder = _builder(name)
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise ConfigError(f"num_classes must be a positive int, got {num_classes!r}")
    _check_options(name, builder, kw)
    return builder(neuron=neuron, T=T, num_classes=num_classes, neuron_kwargs=neuron_kwargs, **kw)
