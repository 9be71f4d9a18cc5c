"""Spiking network architectures behind one registry: `create_model(name, neuron=..., T=...,
num_classes=...)`; `list_models()` names them all. Importing this package registers them."""
from . import convnet, csnn, mlp, resnet19, resnet_imagenet, vggsnn  # noqa: F401  (register)
from .common import SpikingNet
from .registry import (check_model, create_model, input_kwargs, list_models, load_state,
                       register_model)

__all__ = ["check_model", "create_model", "list_models", "register_model", "input_kwargs",
           "load_state", "SpikingNet"]
