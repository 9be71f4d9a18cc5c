"""Spiking network architectures behind one registry: `create_model(name, neuron=..., T=...,
num_classes=...)`; `list_models()` names them all. Importing this package registers them."""
from . import convnet, resnet19, resnet_imagenet, vggsnn  # noqa: F401  (register)
from .common import NeuronSpec, SpikingNet
from .registry import create_model, list_models, register_model

__all__ = ["create_model", "list_models", "register_model", "SpikingNet", "NeuronSpec"]
