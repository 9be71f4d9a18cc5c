"""quadfire models -> NIR graphs.

A NIR graph describes one time step; the time loop belongs to whoever runs it. The exporter
walks the model's structure: nn.Sequential containers, `SpikingNet` bodies, the residual
blocks of `quadfire.models.blocks`, and leaves (conv / linear with tdBN folded in, average
pooling, flatten, spiking layers). The static-image encoder is not a node: a tool feeds the
image at every step, which is what quadfire's direct encoding does.

While walking, a tensor is represented by the list of nodes whose outputs sum to it: NIR
sums every edge that enters a node, so a residual ``a + b`` is just the union of the two
lists and needs no node of its own.
"""
from __future__ import annotations

import copy
import math
from pathlib import Path

import nir
import numpy as np
import torch
from torch import nn

from ..layers import ConvBN, TdBN, TimeFold, fuse_conv_bn
from ..layers.encoding import Encoder, StemOnceEncoder
from ..models.blocks import ResidualBlock
from ..neurons.base import MultiStepNeuron
from .nodes import is_qif, neuron_to_nir
from ..errors import InputError, InputTypeError, ParameterError

SKIPPED = (nn.Identity, nn.Dropout, Encoder)
LEAVES = (nn.Conv2d, nn.Linear, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.Flatten, MultiStepNeuron)


def _pair(v) -> np.ndarray:
    return np.array(v if isinstance(v, (tuple, list)) else (v, v))


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().copy()


def _layer_to_nir(layer: nn.Module, shape: tuple[int, ...]) -> nir.NIRNode:
    """The NIR node of a stateless leaf for one sample's input shape `shape`."""
    if isinstance(layer, nn.Conv2d):
        if layer.padding_mode != "zeros" or isinstance(layer.padding, str):
            raise InputError(f"NIR export needs numeric zero padding, got "
                             f"padding={layer.padding!r}, "
                             f"padding_mode={layer.padding_mode!r}")
        bias = layer.bias if layer.bias is not None else torch.zeros(layer.out_channels)
        return nir.Conv2d(input_shape=tuple(shape[1:]), weight=_np(layer.weight),
                          stride=tuple(layer.stride), padding=tuple(layer.padding),
                          dilation=tuple(layer.dilation), groups=layer.groups, bias=_np(bias))
    if isinstance(layer, nn.Linear):
        if layer.bias is None:
            return nir.Linear(weight=_np(layer.weight))
        return nir.Affine(weight=_np(layer.weight), bias=_np(layer.bias))
    if isinstance(layer, nn.AdaptiveAvgPool2d):
        # On a known input size, global average pooling is an AvgPool2d over the whole map.
        if tuple(_pair(layer.output_size)) != (1, 1):
            raise InputError(f"NIR export supports AdaptiveAvgPool2d(1) only, got "
                             f"output_size={layer.output_size!r}")
        return nir.AvgPool2d(kernel_size=np.array(shape[1:]), stride=np.array(shape[1:]),
                             padding=np.array([0, 0]))
    if isinstance(layer, nn.AvgPool2d):
        if layer.ceil_mode or (layer.padding != 0 and layer.count_include_pad is False) \
                or layer.divisor_override is not None:
            raise InputError("NIR AvgPool2d export needs ceil_mode=False, no divisor_override "
                             "and count_include_pad=True when padded")
        return nir.AvgPool2d(kernel_size=_pair(layer.kernel_size),
                             stride=_pair(layer.stride or layer.kernel_size),
                             padding=_pair(layer.padding))
    if isinstance(layer, nn.Flatten):
        # NIR shapes exclude the batch axis; torch's start_dim counts it.
        end = layer.end_dim - 1 if layer.end_dim > 0 else layer.end_dim
        return nir.Flatten(input_type={"input": np.array(shape)}, start_dim=layer.start_dim - 1,
                           end_dim=end)
    raise InputTypeError(f"no NIR node for {type(layer).__name__}")


def _folded(unit: ConvBN) -> nn.Module:
    layer, bn = unit.conv.module, unit.bn
    if isinstance(bn, TdBN):
        return fuse_conv_bn(layer, bn)
    if not isinstance(bn, nn.Identity):
        raise InputTypeError(f"ConvBN with a {type(bn).__name__} cannot be folded")
    return layer


def _unit_r(node: nir.NIRNode, sources: list[nir.NIRNode], name: str, scaled: set) -> None:
    """Rewrite a LIF / IF node to r = 1 and move its input gain into the weights of the layers
    that feed it, which is the same network: Norse ignores r, and snnTorch's IF import needs
    r = 1 (docs/export.md, "Other simulators")."""
    # With r = 1 the simulator's gain drops from dt r / tau (LIF) or dt r (IF) to dt / tau or
    # dt: the weights make up the factor r.
    gain = np.asarray(node.r, dtype=np.float64)
    if not np.all(gain == gain.flat[0]):
        raise InputError(f"unit_r needs one time constant per layer; {name} has per-neuron "
                         f"values (export it with unit_r=False)")
    if not sources or not all(isinstance(s, (nir.Affine, nir.Linear, nir.Conv2d)) for s in sources):
        raise InputError(f"unit_r moves the input gain of {name} into the layers feeding it, "
                         f"which must all be Conv2d or Linear; got "
                         f"{[type(s).__name__ for s in sources] or ['the graph input']}")
    if any(id(s) in scaled for s in sources):  # its weights already carry another neuron's r
        raise InputError(f"unit_r: a layer feeding {name} also feeds another neuron, so it "
                         f"cannot carry both gains (export it with unit_r=False)")
    for s in sources:
        scaled.add(id(s))
        s.weight = s.weight * gain.flat[0]
        if getattr(s, "bias", None) is not None:
            s.bias = s.bias * gain.flat[0]
    node.r = np.ones_like(np.asarray(node.r, dtype=np.float64))


class _Builder:
    """Accumulates nodes and edges while `emit` walks the model."""

    def __init__(self, dt: float, unit_r: bool = False):
        self.dt, self.unit_r = dt, unit_r
        self.scaled: set[int] = set()  # nodes whose weights carry a neuron's r (unit_r)
        self.nodes: dict[str, nir.NIRNode] = {}
        self.edges: list[tuple[str, str]] = []

    def leaf(self, name: str, layer: nn.Module, value: list[str], shape: tuple[int, ...]):
        key = name.replace(".", "_") or "layer"
        if isinstance(layer, MultiStepNeuron):
            node, out_shape = neuron_to_nir(layer, shape, self.dt), shape
            if self.unit_r and isinstance(node, (nir.LIF, nir.IF)) and not is_qif(node):
                _unit_r(node, [self.nodes[v] for v in value if v != "input"]
                        if "input" not in value else [], name, self.scaled)
        else:
            node = _layer_to_nir(layer, shape)
            probe = torch.zeros((1,) + shape, dtype=torch.float64)
            try:
                out_shape = tuple(copy.deepcopy(layer).cpu().double()(probe).shape[1:])
            except RuntimeError as e:  # torch's shape errors, e.g. a kernel larger than the map
                raise InputError(f"{name or 'the model'} ({type(layer).__name__}) cannot take "
                                 f"one sample of shape {shape}: {str(e).splitlines()[0]}") from None
        self.nodes[key] = node
        self.edges += [(src, key) for src in value]
        return [key], out_shape

    def parts(self, module: nn.Module, name: str, parts, value: list[str], shape):
        """Apply the named children `parts` of `module` one after the other."""
        for part in parts:
            value, shape = self.emit(getattr(module, part), f"{name}.{part}" if name else part,
                                     value, shape)
        return value, shape

    def emit(self, module: nn.Module, name: str, value: list[str], shape: tuple[int, ...]):
        """Add `module` applied to `value` (a sum of node outputs); returns (value, shape)."""
        if isinstance(module, ConvBN):
            return self.leaf(name + ".conv", _folded(module), value, shape)
        if isinstance(module, TimeFold):
            return self.emit(module.module, name, value, shape)
        if isinstance(module, nn.Sequential):
            return self.parts(module, name, [n for n, _ in module.named_children()], value, shape)
        if isinstance(module, ResidualBlock):  # after(sum of branches), as the block declares
            summed, out_shape = [], None
            for branch in module.BRANCHES:
                part, part_shape = self.parts(module, name, branch, value, shape)
                summed, out_shape = summed + part, out_shape or part_shape
            return self.parts(module, name, module.AFTER, summed, out_shape)
        if isinstance(module, StemOnceEncoder):  # per step it is the stem, as for Encoder + stem
            return self.emit(module.stem, f"{name}.stem", value, shape)
        body = getattr(module, "body", None)
        if isinstance(body, nn.Sequential):
            encoder = getattr(module, "encoder", None)
            if isinstance(encoder, nn.Module):
                value, shape = self.emit(encoder, f"{name}.encoder" if name else "encoder",
                                         value, shape)
            return self.emit(body, f"{name}.body" if name else "body", value, shape)
        if isinstance(module, SKIPPED):
            return value, shape
        if isinstance(module, LEAVES):
            return self.leaf(name, module, value, shape)
        raise InputTypeError(f"NIR export supports Conv2d, Linear, AvgPool2d, AdaptiveAvgPool2d(1), "
                             f"Flatten, tdBN (folded), spiking layers, nn.Sequential and quadfire's "
                             f"residual blocks; {name or 'the model'} is a {type(module).__name__}")


def to_nir(model: nn.Module, input_shape: tuple[int, ...], dt: float = 1.0,
           unit_r: bool = False) -> nir.NIRGraph:
    """Export `model` (its eval-mode computation: tdBN running statistics) as a NIR graph for
    inputs of one sample's shape `input_shape` (e.g. (C, H, W)); neurons use Euler step `dt`.
    `unit_r` writes LIF and IF nodes with r = 1, their input gain moved into the weights of
    the layers feeding them (the same network, in the form Norse and snnTorch expect)."""
    if not (isinstance(input_shape, (tuple, list)) and input_shape
            and all(isinstance(s, int) and s > 0 for s in input_shape)):
        raise InputError(f"input_shape must be one sample's shape like (C, H, W), "
                         f"got {input_shape!r}")
    if not (isinstance(dt, (int, float)) and math.isfinite(dt) and dt > 0):
        raise ParameterError(f"dt must be a finite number > 0, got {dt!r}")
    shape = tuple(input_shape)
    encoder = getattr(model, "encoder", None)
    encoder = encoder.input if isinstance(encoder, StemOnceEncoder) else encoder
    if isinstance(encoder, Encoder):  # names a wrong channel count or image size up front
        encoder(torch.zeros((1,) + shape))
    builder = _Builder(float(dt), bool(unit_r))
    builder.nodes["input"] = nir.Input(input_type={"input": np.array(shape)})
    with torch.no_grad():
        value, shape = builder.emit(model, "", ["input"], shape)
    if value == ["input"]:
        raise InputError("the model has no layers to export")
    builder.nodes["output"] = nir.Output(output_type={"output": np.array(shape)})
    builder.edges += [(src, "output") for src in value]
    return nir.NIRGraph(nodes=builder.nodes, edges=builder.edges,
                        metadata={"quadfire_dt": float(dt)})


def write_nir(model: nn.Module, path: str | Path, input_shape, dt: float = 1.0,
              unit_r: bool = False) -> Path:
    """`to_nir` then `nir.write` (HDF5)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nir.write(path, to_nir(model, input_shape, dt, unit_r))
    return path
