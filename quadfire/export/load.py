"""NIR graphs -> runnable modules: through nirtorch (any graph) or into quadfire (chains)."""
from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import nir
import numpy as np
import torch
from torch import nn

from ..layers import TimeFold
from .nodes import NIRNeuronStep, input_gain, is_qif, nir_to_neuron
from ..errors import DataNotFoundError, InputError, InputTypeError


def _read(graph) -> nir.NIRGraph:
    if isinstance(graph, (str, Path)):
        if not Path(graph).is_file():
            raise DataNotFoundError(f"no NIR file at {str(graph)!r}")
        return nir.read(graph)
    if not isinstance(graph, nir.NIRGraph):
        raise InputTypeError(f"expected a nir.NIRGraph or a path to a .nir file, "
                             f"got {type(graph).__name__}")
    return _numpy_fields(graph)


def _numpy_fields(graph: nir.NIRGraph) -> nir.NIRGraph:
    """NIR's fields are numpy arrays, but Rockpool's and Sinabs' exporters leave torch tensors
    in some (Linear weights, thresholds): a copy of the graph with those as numpy arrays."""
    nodes = {}
    for name, node in graph.nodes.items():
        if isinstance(node, nir.NIRGraph):
            node = _numpy_fields(node)
        elif dataclasses.is_dataclass(node):
            tensors = [f.name for f in dataclasses.fields(node)
                       if isinstance(getattr(node, f.name, None), torch.Tensor)]
            if tensors:  # a shallow copy: the peer's graph stays as it was
                node = copy.copy(node)
                for field in tensors:
                    setattr(node, field, getattr(node, field).detach().cpu().numpy())
        nodes[name] = node
    if all(nodes[k] is graph.nodes[k] for k in nodes):
        return graph
    graph = copy.copy(graph)  # not dataclasses.replace: that would re-run NIR's type checks
    graph.nodes = nodes
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
            if not is_qif(node):
                node = _gain_into_previous(node, name, layers, dt)
            layers.append(nir_to_neuron(node, dt))
        elif type(node) in mapping or type(node) in DEFAULT_MAP:
            layers.append(TimeFold((mapping.get(type(node)) or DEFAULT_MAP[type(node)])(node)))
        else:
            raise InputTypeError(f"NIR node {name!r} of type {type(node).__name__} has no "
                                 f"quadfire layer")
    return nn.Sequential(*layers)


def _gain_into_previous(node, name: str, layers: list[nn.Module], dt: float):
    """quadfire neurons add their input unscaled; a node whose input gain (dt r / tau, or dt r)
    is not 1, as Norse and snnTorch write them, has it moved into the weights of the Linear or
    Conv2d before it. Returns the node with the gain 1 that is left."""
    gain = input_gain(node, dt)
    if np.all(gain == 1.0):
        return node
    previous = layers[-1].module if layers and isinstance(layers[-1], TimeFold) else None
    if not (isinstance(previous, (nn.Linear, nn.Conv2d)) and np.all(gain == gain.flat[0])):
        raise InputError(f"NIR node {name!r} scales its input by dt r / tau = {gain.flat[0]!r} "
                         f"(dt={dt!r}); quadfire can take that into the layer before it only when "
                         f"that is a Linear or Conv2d and the factor is the same for every neuron")
    with torch.no_grad():
        previous.weight.mul_(float(gain.flat[0]))
        if previous.bias is not None:
            previous.bias.mul_(float(gain.flat[0]))
    r = np.asarray(node.r, dtype=np.float64) / gain
    return dataclasses.replace(node, r=r)


def _chain_order(graph: nir.NIRGraph) -> list[str]:
    """The node names between Input and Output of a graph that is a single chain."""
    nxt: dict[str, str] = {}
    for a, b in graph.edges:
        if a in nxt:
            raise InputError(f"from_nir imports chains only; node {a!r} has several successors")
        nxt[a] = b
    starts = [n for n, node in graph.nodes.items() if isinstance(node, nir.Input)]
    if len(starts) != 1:
        raise InputError(f"from_nir needs exactly one Input node, found {len(starts)}")
    order, cur = [], nxt.get(starts[0])
    while cur is not None and not isinstance(graph.nodes[cur], nir.Output):
        order.append(cur)
        cur = nxt.get(cur)
    if cur is None:
        raise InputError("the NIR graph's chain never reaches an Output node")
    return order


__all__ = ["load_nirtorch", "run_steps", "from_nir", "nir_node_map"]
