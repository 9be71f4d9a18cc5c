"""quadfire models <-> NIR graphs, and loading through nirtorch.

A NIR graph describes one time step; the time loop belongs to whoever runs it. Exported
models are feed-forward chains (what `chain` finds by walking nn.Sequential containers):
conv / linear (tdBN folded in), average pooling, flatten, dropout (dropped) and spiking
layers. The static-image encoder is not a node: a tool feeds the image at every step, which
is what quadfire's direct encoding does.
"""
from __future__ import annotations

import copy
from pathlib import Path

import nir
import numpy as np
import torch
from torch import nn

from ..layers import ConvBN, TdBN, TimeFold, fuse_conv_bn
from ..layers.encoding import Encoder
from ..neurons.base import MultiStepNeuron
from .nodes import NIRNeuronStep, is_qif, neuron_to_nir, nir_to_neuron

SKIPPED = (nn.Identity, nn.Dropout, Encoder)


def chain(model: nn.Module, prefix: str = "") -> list[tuple[str, nn.Module]]:
    """The model's leaf layers in execution order, tdBN folded into the conv before it.

    Walks nn.Sequential containers and modules with a ``body`` Sequential (`SpikingNet`),
    unwraps `TimeFold`, and drops identities, dropout and the encoder. Anything else that is
    not a supported leaf raises a TypeError naming it.
    """
    out: list[tuple[str, nn.Module]] = []
    if isinstance(model, ConvBN):
        layer = model.conv.module
        bn = model.bn
        if isinstance(bn, TdBN):
            layer = fuse_conv_bn(layer, bn)
        elif not isinstance(bn, nn.Identity):
            raise TypeError(f"{prefix or 'model'}: ConvBN with a {type(bn).__name__} cannot be folded")
        return [(prefix + "conv", layer)]
    if isinstance(model, TimeFold):
        return chain(model.module, prefix)
    if isinstance(model, nn.Sequential):
        for name, child in model.named_children():
            out += chain(child, f"{prefix}{name}.")
        return out
    body = getattr(model, "body", None)
    if isinstance(body, nn.Sequential):
        return chain(body, prefix + "body.")
    if isinstance(model, SKIPPED):
        return []
    if isinstance(model, (nn.Conv2d, nn.Linear, nn.AvgPool2d, nn.Flatten, MultiStepNeuron)):
        return [(prefix.rstrip("."), model)]
    raise TypeError(f"NIR export supports feed-forward chains of Conv2d, Linear, AvgPool2d, "
                    f"Flatten, tdBN (folded) and spiking layers; {prefix.rstrip('.') or 'model'} "
                    f"is a {type(model).__name__}")


def _pair(v) -> np.ndarray:
    return np.array(v if isinstance(v, (tuple, list)) else (v, v))


def _layer_to_nir(layer: nn.Module, shape: tuple[int, ...]) -> nir.NIRNode:
    if isinstance(layer, nn.Conv2d):
        if layer.padding_mode != "zeros" or isinstance(layer.padding, str):
            raise ValueError(f"NIR export needs numeric zero padding, got padding={layer.padding!r}, "
                             f"padding_mode={layer.padding_mode!r}")
        bias = layer.bias if layer.bias is not None else torch.zeros(layer.out_channels)
        return nir.Conv2d(input_shape=tuple(shape[1:]), weight=_np(layer.weight),
                          stride=tuple(layer.stride), padding=tuple(layer.padding),
                          dilation=tuple(layer.dilation), groups=layer.groups, bias=_np(bias))
    if isinstance(layer, nn.Linear):
        if layer.bias is None:
            return nir.Linear(weight=_np(layer.weight))
        return nir.Affine(weight=_np(layer.weight), bias=_np(layer.bias))
    if isinstance(layer, nn.AvgPool2d):
        if layer.ceil_mode or (layer.padding != 0 and layer.count_include_pad is False) \
                or layer.divisor_override is not None:
            raise ValueError("NIR AvgPool2d export needs ceil_mode=False, no divisor_override "
                             "and count_include_pad=True when padded")
        return nir.AvgPool2d(kernel_size=_pair(layer.kernel_size),
                             stride=_pair(layer.stride or layer.kernel_size),
                             padding=_pair(layer.padding))
    if isinstance(layer, nn.Flatten):
        # NIR shapes exclude the batch axis; torch's start_dim counts it.
        end = layer.end_dim - 1 if layer.end_dim > 0 else layer.end_dim
        return nir.Flatten(input_type={"input": np.array(shape)}, start_dim=layer.start_dim - 1,
                           end_dim=end)
    raise TypeError(f"no NIR node for {type(layer).__name__}")


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().copy()


def to_nir(model: nn.Module, input_shape: tuple[int, ...], dt: float = 1.0) -> nir.NIRGraph:
    """Export `model` (evaluated with its eval-mode statistics) as a NIR graph for inputs of one
    sample's shape `input_shape` (e.g. (C, H, W)); neurons use Euler step `dt`."""
    if not (isinstance(input_shape, (tuple, list)) and all(int(s) > 0 for s in input_shape)):
        raise ValueError(f"input_shape must be one sample's shape like (C, H, W), got {input_shape!r}")
    layers = chain(model.eval())
    if not layers:
        raise ValueError("the model has no layers to export")
    shape = tuple(int(s) for s in input_shape)
    nodes: dict[str, nir.NIRNode] = {"input": nir.Input(input_type={"input": np.array(shape)})}
    edges, prev = [], "input"
    x = torch.zeros((1,) + shape, dtype=torch.float64)
    with torch.no_grad():
        for name, layer in layers:
            key = name.replace(".", "_")
            if isinstance(layer, MultiStepNeuron):
                nodes[key] = neuron_to_nir(layer, shape, dt)
            else:
                nodes[key] = _layer_to_nir(layer, shape)
                x = _shape_probe(layer, x)
            shape = tuple(x.shape[1:])
            edges.append((prev, key))
            prev = key
    nodes["output"] = nir.Output(output_type={"output": np.array(shape)})
    edges.append((prev, "output"))
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"quadfire_dt": float(dt)})


def _shape_probe(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Run a float64 copy of `layer` on a zero probe, only to learn the next shape."""
    return copy.deepcopy(layer).double()(x)


def write_nir(model: nn.Module, path: str | Path, input_shape, dt: float = 1.0) -> Path:
    """`to_nir` then `nir.write` (HDF5)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nir.write(path, to_nir(model, input_shape, dt))
    return path


def _read(graph) -> nir.NIRGraph:
    if isinstance(graph, (str, Path)):
        if not Path(graph).is_file():
            raise FileNotFoundError(f"no NIR file at {str(graph)!r}")
        return nir.read(graph)
    if not isinstance(graph, nir.NIRGraph):
        raise TypeError(f"expected a nir.NIRGraph or a path to a .nir file, got {type(graph).__name__}")
    return graph


def _graph_dt(graph: nir.NIRGraph, dt: float | None) -> float:
    return float(graph.metadata.get("quadfire_dt", 1.0)) if dt is None else float(dt)


def _affine(node: nir.Affine) -> nn.Linear:
    # nirtorch 2.6's default Affine map drops the bias (sets `weight.bias`), so map it here.
    layer = nn.Linear(node.weight.shape[-1], node.weight.shape[-2], bias=True)
    layer.weight.data = torch.from_numpy(np.asarray(node.weight).copy())
    layer.bias.data = torch.from_numpy(np.asarray(node.bias).copy())
    return layer


def _flatten(node: nir.Flatten) -> nn.Flatten:
    end = node.end_dim + 1 if node.end_dim >= 0 else node.end_dim
    return nn.Flatten(node.start_dim + 1, end)


def nir_node_map(dt: float = 1.0) -> dict:
    """nirtorch node map for quadfire graphs: neurons (LIF, IF, the QIF extension) run
    quadfire's step functions; Affine and Flatten fix nirtorch's defaults (see above)."""
    neuron = lambda node: NIRNeuronStep(node, dt)  # noqa: E731
    return {nir.LIF: neuron, nir.IF: neuron, nir.Affine: _affine, nir.Flatten: _flatten}


def load_nirtorch(graph, dtype: torch.dtype = torch.float32, dt: float | None = None):
    """Load a NIR graph (object or path) with ``nirtorch.nir_to_torch`` and quadfire's node
    map. The result runs one step: ``out, state = module(x [N, ...], state)``."""
    import nirtorch

    graph = _read(graph)
    return nirtorch.nir_to_torch(graph, nir_node_map(_graph_dt(graph, dt)), dtype=dtype)


def run_steps(module, x: torch.Tensor) -> torch.Tensor:
    """Run a nirtorch module over ``x [T, N, ...]`` step by step: outputs [T, N, ...]."""
    state, out = None, []
    for xt in x.unbind(0):
        y, state = module(xt, state)
        out.append(y)
    return torch.stack(out)


def from_nir(graph, dt: float | None = None) -> nn.Sequential:
    """A quadfire multi-step network from a NIR chain (object or path): stateless nodes become
    `TimeFold` layers, LIF / IF / QIF-extension nodes quadfire neurons. Input ``[T, N, ...]``."""
    graph = _read(graph)
    dt = _graph_dt(graph, dt)
    order = _chain_order(graph)
    mapping = nir_node_map(dt)
    from nirtorch.nir_interpreter import DEFAULT_MAP

    layers = []
    for name in order:
        node = graph.nodes[name]
        if isinstance(node, (nir.LIF, nir.IF)):
            layers.append(nir_to_neuron(node, dt))
        elif type(node) in mapping or type(node) in DEFAULT_MAP:
            layers.append(TimeFold((mapping.get(type(node)) or DEFAULT_MAP[type(node)])(node)))
        else:
            raise TypeError(f"NIR node {name!r} of type {type(node).__name__} has no quadfire layer")
    return nn.Sequential(*layers)


def _chain_order(graph: nir.NIRGraph) -> list[str]:
    """The node names between Input and Output of a graph that is a single chain."""
    nxt: dict[str, str] = {}
    for a, b in graph.edges:
        if a in nxt:
            raise ValueError(f"from_nir imports chains only; node {a!r} has several successors")
        nxt[a] = b
    starts = [n for n, node in graph.nodes.items() if isinstance(node, nir.Input)]
    if len(starts) != 1:
        raise ValueError(f"from_nir needs exactly one Input node, found {len(starts)}")
    order, cur = [], nxt.get(starts[0])
    while cur is not None and not isinstance(graph.nodes[cur], nir.Output):
        order.append(cur)
        cur = nxt.get(cur)
    if cur is None:
        raise ValueError("the NIR graph's chain never reaches an Output node")
    return order


__all__ = ["chain", "to_nir", "write_nir", "load_nirtorch", "run_steps", "from_nir",
           "nir_node_map", "is_qif"]
