"""Neurons <-> NIR nodes (mapping derived in docs/export.md).

NIR neurons are continuous-time; a tool runs them with forward Euler at a step dt. quadfire's
discrete LIF, H = U - k (U - v_rest) + X with k = 1/tau_q, is forward Euler of NIR's
``tau dv/dt = (v_leak - v) + r I`` exactly when

    tau = tau_q dt,   r = tau / dt = tau_q,   v_leak = v_rest,
    v_threshold = v_th,   v_reset = v_reset          (hard reset)

since then dt/tau = k and dt r/tau = 1. IF (k = 0) is ``dv/dt = r I`` with r = 1/dt.

QIF has no NIR primitive. It travels as a `nir.LIF` *carrier* holding QIF's linearisation at
rest (leak 1 - f'(u1): a d for the Euler and hybrid maps, 1 - exp(-a d) for the exact flow;
tau = dt/leak, r = tau/dt, v_leak = u1) with the true parameters and the discretization
("euler", "exact", "hybrid") in the node's metadata under ``quadfire_node = "QIF"``. quadfire
(`from_nir`, `nir_node_map`) reads the metadata and runs the same QIF map; any other tool sees
only the LIF fields and runs the linearised LIF, which is a different neuron (docs/export.md
says which tools do what). A model with no mapping here is refused with its name.
"""
from __future__ import annotations

import math

import nir
import numpy as np
import torch
from torch import nn

from ..functional import DISCRETIZATIONS, LIFParams, Window, neuron_step
from ..neurons import IF, LIF, QIF
from ..neurons.base import MultiStepNeuron
from ..errors import InputError, InputTypeError, ParameterError

EXTENSION_KEY = "quadfire_node"
EXTENSION_VERSION = 2  # 2: the discretization is named (absent in 1: euler)
DISCRETIZATION_OF = {cls.model: name for name, cls in DISCRETIZATIONS.items()}


def _array(v, shape: tuple[int, ...]) -> np.ndarray:
    """A parameter (float or tensor broadcastable to one sample's step) as a float64 array."""
    if isinstance(v, torch.Tensor):
        v = v.detach().double().cpu()
        extra = v.dim() - len(shape)
        if extra > 0:  # leading singleton axes of a per-step broadcasting shape
            v = v.reshape(v.shape[extra:])
        return np.broadcast_to(v.numpy(), shape).astype(np.float64)
    return np.full(shape, float(v), dtype=np.float64)


def _mean(v) -> float:
    return float(v.detach().double().mean()) if isinstance(v, torch.Tensor) else float(v)


def _window_meta(w: Window) -> dict:
    # Only for resuming training in quadfire (NIR runs no backward pass); per-channel windows
    # of learnable neurons, which `from_nir` does not import anyway, are stored as their mean.
    return {"surrogate_shape": w.shape, "surrogate_width": _mean(w.width),
            "surrogate_offset": _mean(w.offset)}


def neuron_to_nir(neuron: MultiStepNeuron, shape: tuple[int, ...], dt: float = 1.0) -> nir.NIRNode:
    """The NIR node of `neuron` for one sample's step shape `shape` (e.g. (C, H, W))."""
    if not dt > 0:
        raise ParameterError(f"dt must be > 0, got {dt!r}")
    p = neuron.params(len(shape) + 1)
    if p.soft:
        raise InputError(f"{type(neuron).__name__} uses a soft reset (U -= v_th), which NIR "
                         f"cannot express: NIR neurons reset to v_reset. Export a hard-reset "
                         f"network (reset='hard').")
    arr = lambda v: _array(v, shape)  # noqa: E731
    if p.model not in EXPORTERS:
        raise InputError(f"{type(neuron).__name__} ({type(p).__name__}, model {p.model!r}) has "
                         f"no NIR mapping; NIR export covers {', '.join(sorted(EXPORTERS))}")
    return EXPORTERS[p.model](neuron, p, arr, float(dt))


def _qif_node(neuron, p, arr, dt: float) -> nir.NIRNode:
    a, u1, u2 = arr(p.a), arr(p.u1), arr(p.u2)
    ad = a * (u2 - u1)
    # 1 - f'(u1): the leak of the LIF that matches the map at rest
    leak = -np.expm1(-ad) if p.model == "qif-exact" else ad
    tau = dt / leak
    meta = _window_meta(p.window)
    meta.update({EXTENSION_KEY: "QIF", "quadfire_version": EXTENSION_VERSION,
                 "discretization": DISCRETIZATION_OF[p.model], "a": a, "u1": u1, "u2": u2,
                 "dt": dt})
    if p.floor() is not None:
        meta["v_min"] = arr(p.floor())
    return nir.LIF(tau=tau, r=tau / dt, v_leak=u1, v_threshold=arr(p.v_th),
                   v_reset=arr(p.v_reset), metadata=meta)


def _lif_node(neuron, p, arr, dt: float) -> nir.NIRNode:
    v_th, v_reset, meta = arr(p.v_th), arr(p.v_reset), _window_meta(p.window)
    k = arr(p.k)
    if np.all(k == 0):
        return nir.IF(r=np.full(k.shape, 1.0 / dt), v_threshold=v_th, v_reset=v_reset,
                      metadata=meta)
    if np.any(k <= 0):
        raise InputError("a LIF layer mixing k = 0 and k > 0 has no single NIR node type")
    tau_q = getattr(neuron, "tau", None) if isinstance(p.k, float) else None
    # tau_q straight from the module keeps k = dt/tau bit-identical to quadfire's 1/tau_q.
    tau = np.full(k.shape, tau_q * dt) if tau_q is not None else dt / k
    return nir.LIF(tau=tau, r=tau / dt, v_leak=arr(p.v_rest), v_threshold=v_th,
                   v_reset=v_reset, metadata=meta)


# The NIR node of each kernel model (`NeuronParams.model`); others are refused by name.
EXPORTERS = {"qif": _qif_node, "qif-exact": _qif_node, "qif-hybrid": _qif_node,
             "lif": _lif_node}


def _uniform(a: np.ndarray, what: str) -> float:
    a = np.asarray(a, dtype=np.float64)
    if a.size == 0 or not np.all(a == a.flat[0]):
        raise InputError(f"importing into a quadfire neuron needs a uniform {what}; this node has "
                         f"per-neuron values (load it with `load_nirtorch` instead)")
    return float(a.flat[0])


def _meta(node: nir.NIRNode) -> dict:
    return dict(getattr(node, "metadata", None) or {})


def _window(meta: dict):
    if "surrogate_shape" not in meta:
        return None
    return Window(str(meta["surrogate_shape"]), float(meta["surrogate_width"]),
                  float(meta["surrogate_offset"]))


def _discretization(meta: dict) -> str:
    d = str(meta.get("discretization", "euler"))  # version 1 files name none: the Euler map
    if d not in DISCRETIZATIONS:
        raise InputError(f"QIF node names the discretization {d!r}; this quadfire knows "
                         f"{sorted(DISCRETIZATIONS)}")
    return d


def input_gain(node: nir.NIRNode, dt: float) -> np.ndarray:
    """The factor forward Euler at step `dt` applies to a LIF / IF node's input: dt r / tau
    (LIF) or dt r (IF). quadfire adds its input unscaled, so its own exports make it 1; other
    tools write r = 1 (Norse) or fold it elsewhere."""
    r = np.asarray(node.r, dtype=np.float64)
    gain = r * dt / np.asarray(node.tau, dtype=np.float64) if isinstance(node, nir.LIF) else r * dt
    # r = tau / dt written at another dt than 1 comes back as 1 +- a few ulp: that is 1
    return np.where(np.abs(gain - 1.0) <= 1e-12, 1.0, gain)


def is_qif(node: nir.NIRNode) -> bool:
    return isinstance(node, nir.LIF) and str(_meta(node).get(EXTENSION_KEY, "")) == "QIF"


def nir_to_neuron(node: nir.NIRNode, dt: float = 1.0) -> MultiStepNeuron:
    """A multi-step quadfire neuron from a NIR LIF / IF / QIF-extension node (uniform values).

    The dt must be the one the graph was exported with (QIF nodes carry their own)."""
    meta = _meta(node)
    window = _window(meta)
    if is_qif(node):
        a, u1, u2 = (_uniform(meta[k], k) for k in ("a", "u1", "u2"))
        v_min = _uniform(meta["v_min"], "v_min") if "v_min" in meta else None
        return QIF(a, u1, u2, _uniform(node.v_threshold, "v_threshold"), reset="hard",
                   v_reset=_uniform(node.v_reset, "v_reset"), v_min=v_min,
                   surrogate=window or "band", discretization=_discretization(meta))
    kw = {"surrogate": window} if window is not None else {}
    if isinstance(node, nir.IF):
        gain = _uniform(node.r, "r") * dt
        if not math.isclose(gain, 1.0, rel_tol=1e-12):
            raise InputError(f"quadfire IF adds its input unscaled (r dt = 1); this node has "
                             f"r dt = {gain!r} (dt={dt!r}). Pass the dt the graph was made for.")
        return IF(_uniform(node.v_threshold, "v_threshold"), "hard",
                  _uniform(node.v_reset, "v_reset"), **kw)
    if isinstance(node, nir.LIF):
        tau, r = _uniform(node.tau, "tau"), _uniform(node.r, "r")
        if not math.isclose(r * dt / tau, 1.0, rel_tol=1e-12):
            raise InputError(f"quadfire LIF adds its input unscaled (r dt / tau = 1); this node "
                             f"has r dt / tau = {r * dt / tau!r}. Pass the dt the graph was "
                             f"made for.")
        return LIF(tau / dt, _uniform(node.v_threshold, "v_threshold"), "hard",
                   _uniform(node.v_reset, "v_reset"), _uniform(node.v_leak, "v_leak"), **kw)
    raise InputTypeError(f"no quadfire neuron for NIR node {type(node).__name__}; expected LIF, IF "
                         f"or the QIF extension")


class NIRNeuronStep(nn.Module):
    """One time step of a NIR LIF / IF / QIF node, for nirtorch's executor:
    ``forward(x [N, ...], state=None) -> (spikes, U)``, state None meaning rest.

    Runs quadfire's own step functions (`quadfire.functional.steps`) with parameters rebuilt
    from the node, so a round trip reproduces quadfire's numerics exactly. Per-neuron values
    become buffers (moved by ``.to``); uniform ones stay Python floats, as in quadfire."""

    def __init__(self, node: nir.NIRNode, dt: float = 1.0):
        super().__init__()
        meta = _meta(node)
        self.kind = "QIF" if is_qif(node) else type(node).__name__
        fields = {"v_th": node.v_threshold, "v_reset": node.v_reset}
        if self.kind == "QIF":
            self.discretization = _discretization(meta)
            fields.update(a=meta["a"], u1=meta["u1"], u2=meta["u2"])
            if "v_min" in meta:
                fields["v_min"] = meta["v_min"]
        elif self.kind == "LIF":
            fields.update(k=dt / np.asarray(node.tau, dtype=np.float64), v_rest=node.v_leak)
        elif self.kind == "IF":
            fields.update(k=np.zeros_like(np.asarray(node.r, dtype=np.float64)), v_rest=0.0)
        else:
            raise InputTypeError(f"NIRNeuronStep takes LIF, IF or the QIF extension, "
                                 f"got {self.kind}")
        if self.kind in ("LIF", "IF"):
            # a gain of exactly 1 (quadfire's own files) is left out, so the step stays exact
            fields["gain"] = input_gain(node, dt)
        self.floats: dict[str, float] = {}
        for name, v in fields.items():
            v = np.asarray(v, dtype=np.float64)
            if v.size and np.all(v == v.flat[0]):
                self.floats[name] = float(v.flat[0])
            else:
                self.register_buffer(name, torch.from_numpy(v.copy()))
        self.window = _window(meta) or Window("rect", 1.0)

    def _p(self, name: str):
        return self.floats[name] if name in self.floats else getattr(self, name)

    def params(self):
        v_min = self._p("v_min") if ("v_min" in self.floats or hasattr(self, "v_min")) else None
        if self.kind == "QIF":
            cls = DISCRETIZATIONS[self.discretization]
            return cls(self._p("a"), self._p("u1"), self._p("u2"), self._p("v_th"),
                       self._p("v_reset"), v_min, False, self.window)
        return LIFParams(self._p("k"), self._p("v_rest"), self._p("v_th"), self._p("v_reset"),
                         False, self.window)

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None):
        if self.floats.get("gain", 1.0) != 1.0 or hasattr(self, "gain"):
            x = x * self._p("gain")
        p = self.params()
        if state is None:
            state = torch.zeros_like(x) + p.rest()
        return neuron_step(x, state, p)
