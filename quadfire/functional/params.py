"""The built-in neuron models (the `NeuronParams` protocol of `quadfire.functional.protocol`):
QIF in three discretizations (Euler, exact flow, hybrid) and the leaky LIF/PLIF/IF map, each a
frozen parameter class that carries its own equations, and their validation.

Each field is a Python float or a tensor broadcastable against one time step of the input
(``[N, C, ...]``); tensors appear when parameters are learnable. Validation of user-supplied
floats happens once, here, at construction (`validate_qif`, `validate_lif`); learnable tensors
are valid by construction (see `quadfire.neurons.qif.QIF.values`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..errors import ParameterError
from .protocol import NeuronParams, Ops, Scalar
from .surrogate import Window


def _exp(v: Scalar) -> Scalar:
    return torch.exp(v) if isinstance(v, torch.Tensor) else math.exp(v)


def _tanh(v: Scalar) -> Scalar:
    return torch.tanh(v) if isinstance(v, torch.Tensor) else math.tanh(v)


@dataclass(frozen=True)
class _QIFFamily(NeuronParams):
    """What the three QIF discretizations share: the fields (`QIFParams` says what they
    mean; no floor by default), rest u1, the critical potential u2, the floor and the regimes
    by rheobase."""

    a: Scalar = 0.25
    u1: Scalar = 0.0
    u2: Scalar = 0.5
    v_th: Scalar = 1.0
    v_reset: Scalar = 0.0
    v_min: Scalar | None = None
    soft: bool = False
    window: Window = Window("rect", 1.0)
    detach_reset: bool = False

    kind = "QIF"

    def rest(self) -> Scalar:
        return self.u1

    def floor(self) -> Scalar | None:
        return self.v_min

    def critical(self) -> Scalar:
        return self.u2

    def rheobase(self) -> Scalar:
        """The largest constant input with a fixed point (saddle-node bifurcation)."""
        return self.a * (self.u2 - self.u1) ** 2 / 4

    def regimes(self, I: torch.Tensor) -> dict[str, torch.Tensor]:
        """inhibited (I < 0), excitable (0 <= I <= rheobase: rest is stable, the neuron fires
        only when pushed past the critical point) and tonic (above: it fires from anywhere)."""
        rheo = _per_neuron(self.rheobase(), I)
        return {"inhibited": I < 0, "excitable": (I >= 0) & (I <= rheo), "tonic": I > rheo}

    def summary(self) -> dict[str, Scalar]:
        return {"a": self.a, "u1": self.u1, "u2": self.u2, "v_th": self.v_th}


@dataclass(frozen=True)
class QIFParams(_QIFFamily):
    """The paper's discretized QIF map (forward Euler of du/dt = a (u - u1)(u - u2)):

        H[t] = U[t-1] + a (U[t-1] - u1)(U[t-1] - u2) + X[t],     U[0] = u1

    a: curvature (> 0); u1: rest potential; u2: critical potential (unstable fixed point);
    v_th: threshold; v_reset: hard-reset value; v_min: lower bound on the membrane (None: no
    bound); soft: subtract v_th on a spike instead of resetting to v_reset; window: the
    surrogate used in place of dS/dH.
    """

    v_min: Scalar | None = -1.75  # the vertex floor of the defaults (section 3 of docs/neuron.md)

    model = "qif"

    def charge(self, x, u):
        return u + self.a * (u - self.u1) * (u - self.u2) + x

    def slope(self, u):
        """f'(U) = 1 + a ((U - u1) + (U - u2))."""
        return 1 + self.a * ((u - self.u1) + (u - self.u2))

    def ops(self) -> Ops:
        # U (a U + b) + X with u1 = 0: two multiplies, two adds
        return Ops(mults=2, adds=2)

    def kernel_rows(self) -> dict[str, Scalar]:
        return {"c0": self.a, "c1": self.u1, "c2": self.u2, "rest": _detached(self.u1)}


@dataclass(frozen=True)
class QIFExactParams(_QIFFamily):
    """QIF with the exact null-input flow over one step, then the input kick (docs/neuron.md,
    "Exact-flow QIF"). With d = u2 - u1, x = U[t-1] - u1, E = exp(a d), c = (1 - E)/d::

        H[t] = u1 + x / (E + c x) + X[t]      where E + c x > 0
        H[t] = +inf                            where E + c x <= 0 (the flow blows up within
                                               the step: the neuron fires)

    Increasing everywhere (slope E / (E + c x)^2), bounded below by u1 - d/(E - 1) as
    x -> -inf: no floor is needed, and strong inhibition is compressed, never reversed.
    Reduces to the Euler map as a -> 0. Fields as `QIFParams`; v_min is None by default.
    """

    model = "qif-exact"

    @property
    def E(self) -> Scalar:
        """exp(a d): the flow's growth factor at the critical point (1/E at rest)."""
        return _exp(self.a * (self.u2 - self.u1))

    @property
    def c(self) -> Scalar:
        """(1 - E) / d (< 0)."""
        return (1 - self.E) / (self.u2 - self.u1)

    def charge(self, x, u):
        xx = u - self.u1
        den = self.E + self.c * xx
        ok = den > 0
        # the division runs on a safe denominator: where() would pass 0 * inf = NaN back
        # through the unused branch at den = 0
        flow = self.u1 + xx / torch.where(ok, den, torch.ones_like(den))
        return torch.where(ok, flow, torch.full_like(flow, float("inf"))) + x

    def slope(self, u):
        """E / (E + c x)^2 where the flow stays finite (inf beyond)."""
        den = self.E + self.c * (u - self.u1)
        return self.E / den ** 2

    def rheobase(self) -> Scalar:
        """d tanh(a d / 4): the largest I with a fixed point of u1 + x/(E + c x) + I."""
        d = self.u2 - self.u1
        return d * _tanh(self.a * d / 4)

    def blowup(self) -> Scalar:
        """The potential from which the flow reaches +inf within one step: u1 + E d/(E - 1)."""
        E = self.E
        return self.u1 + E * (self.u2 - self.u1) / (E - 1)

    def ops(self) -> Ops:
        # x / (E + c x) + X with u1 = 0: one multiply, one division, two adds
        return Ops(mults=1, adds=2, divs=1)

    def kernel_rows(self) -> dict[str, Scalar]:
        return {"c0": self.E, "c1": self.u1, "c2": self.c, "rest": _detached(self.u1)}


@dataclass(frozen=True)
class QIFHybridParams(_QIFFamily):
    """QIF above rest, the matched LIF below it (docs/neuron.md, "Hybrid QIF"):

        H[t] = U + a (U - u1)(U - u2) + X[t]     for U = U[t-1] >= u1
        H[t] = U - k (U - u1) + X[t]             for U < u1,  k = a (u2 - u1)

    Continuous with a continuous slope (1 - a d) at u1. No floor for a d <= 1; for
    1 < a d < 2 the leak overshoots rest (a damped oscillation) and `hybrid_floor` keeps
    inhibition from causing a spike. Fields as `QIFParams`.
    """

    model = "qif-hybrid"

    @property
    def k(self) -> Scalar:
        """The leak below rest, a (u2 - u1): QIF's slope at rest is 1 - k."""
        return self.a * (self.u2 - self.u1)

    def charge(self, x, u):
        above = u + self.a * (u - self.u1) * (u - self.u2)
        below = u - self.k * (u - self.u1)
        return torch.where(u >= self.u1, above, below) + x

    def slope(self, u):
        above = 1 + self.a * ((u - self.u1) + (u - self.u2))
        below = 1 - self.k
        if isinstance(u, torch.Tensor) or isinstance(self.u1, torch.Tensor):
            return torch.where(torch.as_tensor(u >= self.u1), above, below)
        return above if u >= self.u1 else below

    def ops(self) -> Ops:
        # the QIF branch, the dearer one (the compare is not counted, as for the threshold)
        return Ops(mults=2, adds=2)

    def kernel_rows(self) -> dict[str, Scalar]:
        return {"c0": self.a, "c1": self.u1, "c2": self.u2, "c3": self.k,
                "rest": _detached(self.u1)}


@dataclass(frozen=True)
class LIFParams(NeuronParams):
    """The leaky map (LIF, PLIF, IF):

        H[t] = U[t-1] - k (U[t-1] - v_rest) + X[t],   U[0] = v_rest

    k = 1/tau is the leak per step, in [0, 1]: k = 0 is the IF neuron, k = 0.5 the tau = 2
    LIF of the TET/tdBN code (``mem * 0.5 + x``). v_rest is also the initial potential.
    """

    k: Scalar = 0.5
    v_rest: Scalar = 0.0
    v_th: Scalar = 1.0
    v_reset: Scalar = 0.0
    soft: bool = False
    window: Window = Window("triangle", 1.0)
    detach_reset: bool = False

    model = "lif"
    kind = "LIF"

    def charge(self, x, u):
        return u - self.k * (u - self.v_rest) + x

    def rest(self) -> Scalar:
        return self.v_rest

    def slope(self, u):
        return 1 - self.k + 0 * u

    def regimes(self, I: torch.Tensor) -> dict[str, torch.Tensor]:
        """tonic where the equilibrium v_rest + I/k reaches v_th (IF, k = 0: any I > 0),
        sub-threshold elsewhere."""
        k, rest, vth = (_per_neuron(v, I) for v in (self.k, self.v_rest, self.v_th))
        tonic = torch.where(k > 0, rest + I / k.clamp_min(1e-12) >= vth, I > 0)
        return {"sub-threshold": ~tonic, "tonic": tonic}

    def summary(self) -> dict[str, Scalar]:
        return {"k": self.k, "v_rest": self.v_rest, "v_th": self.v_th}

    def ops(self) -> Ops:
        # U (1 - k) + X: one multiply and one add; IF (k = 0): U + X, one add
        if not isinstance(self.k, torch.Tensor) and self.k == 0:
            return Ops(mults=0, adds=1)
        return Ops(mults=1, adds=1)

    def kernel_rows(self) -> dict[str, Scalar]:
        return {"c0": self.k, "c1": self.v_rest, "rest": _detached(self.v_rest)}


def _detached(v: Scalar) -> Scalar:
    # a run starts from rest, not from u1: no gradient flows into the starting state
    return v.detach() if isinstance(v, torch.Tensor) else v


def _per_neuron(v: Scalar, I: torch.Tensor) -> torch.Tensor:
    """A scalar or per-channel parameter broadcast over the flattened neurons ``I [M]`` of one
    sample (channels first: [C, H*W] layout), in float64."""
    v = torch.as_tensor(v, dtype=torch.float64).detach().flatten().to(I.device)
    if v.numel() == 1:
        return v.expand_as(I)
    return v.repeat_interleave(I.numel() // v.numel())


def qif_vertex(a: Scalar, u1: Scalar, u2: Scalar) -> Scalar:
    """Vertex of f(u) = u + a (u - u1)(u - u2): u_v = (u1 + u2)/2 - 1/(2a). f decreases below it."""
    return (u1 + u2) / 2 - 1 / (2 * a)


def qif_default_floor(a: Scalar, u1: Scalar, u2: Scalar) -> Scalar:
    """The `v_min="vertex"` guard: the vertex, or rest itself when the vertex lies above rest.

    For a*(u2 - u1) <= 1 the vertex is at or below u1 and is the natural floor: on [u_v, inf)
    the map is increasing, so more inhibition always means a lower potential. For a*d > 1 the
    vertex lies above rest; flooring at u1 keeps every potential in [u1 - 1/a, u2], where
    f(u) <= u2 < v_th, so inhibition still can never cause a spike (docs/neuron.md).
    """
    v = qif_vertex(a, u1, u2)
    if isinstance(v, torch.Tensor):
        return torch.minimum(v, torch.as_tensor(u1, dtype=v.dtype, device=v.device))
    return min(v, u1)


def hybrid_floor(a: Scalar, u1: Scalar, u2: Scalar) -> Scalar | None:
    """The hybrid map's default floor: none while a d <= 1 (the leak below rest is monotone);
    u1 - d/(a d - 1) for 1 < a d < 2, where the leak overshoots rest (slope 1 - a d < 0, the
    damped oscillation): from any U at or above it the overshoot lands at most on u2, so
    inhibition still never causes a spike (docs/neuron.md, section 7). Tensors give -inf where
    a d <= 1."""
    d = u2 - u1
    ad = a * d
    if isinstance(ad, torch.Tensor):
        safe = torch.where(ad > 1, ad - 1, torch.ones_like(ad))
        return torch.where(ad > 1, u1 - d / safe, torch.full_like(ad, -math.inf))
    return None if ad <= 1 else u1 - d / (ad - 1)


def _fmt(**kw) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in kw.items())


DISCRETIZATIONS = {"euler": QIFParams, "exact": QIFExactParams, "hybrid": QIFHybridParams}


def validate_qif(a: float, u1: float, u2: float, v_th: float, v_reset: float,
                 v_min: float | str | None, discretization: str = "euler") -> float | None:
    """Raise ParameterError naming the first violated condition (docs/neuron.md, section 1).

    Returns the resolved floor: `v_min="vertex"` becomes `qif_default_floor` for the Euler map,
    None (no floor) for the exact one, which increases everywhere, and `hybrid_floor` for the
    hybrid one (None while a d <= 1)."""
    if discretization not in DISCRETIZATIONS:
        raise ParameterError(f"QIF discretization must be one of {sorted(DISCRETIZATIONS)}, "
                             f"got {discretization!r}")
    given = _fmt(a=a, u1=u1, u2=u2, v_th=v_th)
    for name, val in (("a", a), ("u1", u1), ("u2", u2), ("v_th", v_th), ("v_reset", v_reset)):
        if not isinstance(val, (int, float)) or val != val or abs(val) == float("inf"):
            raise ParameterError(f"QIF parameter {name} must be a finite number, got {val!r}")
    if not a > 0:
        raise ParameterError(f"QIF needs a > 0 (the map must curve upwards); got {given}")
    if not u1 < u2:
        raise ParameterError(f"QIF needs u1 < u2 (rest below the critical potential); got {given}")
    if not u2 < v_th:
        raise ParameterError(f"QIF needs u2 < v_th (critical potential below threshold); got {given}")
    # the exact flow contracts at rest for any a d (slope exp(-a d)); the Euler and hybrid
    # maps have slope 1 - a d there
    if discretization != "exact" and not a * (u2 - u1) < 2:
        raise ParameterError(
            f"QIF needs a*(u2 - u1) < 2 for a stable rest (period doubling at 2); "
            f"got a*(u2 - u1) = {a * (u2 - u1):g} with {given}")
    if discretization == "exact" and not math.isfinite(math.exp(a * (u2 - u1))):
        raise ParameterError(f"exact QIF needs exp(a*(u2 - u1)) to be finite; got {given}")
    if not v_reset < v_th:
        raise ParameterError(f"QIF needs v_reset < v_th; got v_reset={v_reset!r}, v_th={v_th!r}")
    floors = {"euler": qif_default_floor, "exact": lambda a, u1, u2: None,
              "hybrid": hybrid_floor}
    if v_min == "vertex":
        return floors[discretization](a, u1, u2)
    if v_min is not None:
        if isinstance(v_min, bool) or not isinstance(v_min, (int, float)) or v_min != v_min:
            raise ParameterError(f"v_min must be 'vertex', a float or None, got {v_min!r}")
        lo = {"euler": u1 - 1 / a, "exact": -math.inf,
              "hybrid": -math.inf if a * (u2 - u1) <= 1 else hybrid_floor(a, u1, u2)}[discretization]
        if not (lo <= v_min <= u1):
            why = {"euler": "below u1 - 1/a the map throws the potential above u2, so "
                            "inhibition could cause a spike",
                   "exact": "a floor above rest would move the resting neuron",
                   "hybrid": "below u1 - d/(a d - 1) the overshooting leak throws the potential "
                             "above u2, so inhibition could cause a spike"}[discretization]
            raise ParameterError(
                f"QIF ({discretization}) needs {lo:g} <= v_min <= u1 ({why}); got "
                f"v_min={v_min!r} for {given}")
    return v_min


def validate_lif(tau: float, v_th: float, v_reset: float, v_rest: float) -> None:
    """Raise ValueError naming the violated condition for a LIF/IF neuron."""
    for name, val in (("tau", tau), ("v_th", v_th), ("v_reset", v_reset), ("v_rest", v_rest)):
        if not isinstance(val, (int, float)) or val != val or (name != "tau" and abs(val) == float("inf")):
            raise ParameterError(f"LIF parameter {name} must be a number, got {val!r}")
    if not tau >= 1:
        raise ParameterError(f"LIF needs tau >= 1 (leak 1/tau in (0, 1]); got tau={tau!r}")
    if not v_reset < v_th:
        raise ParameterError(f"LIF needs v_reset < v_th; got v_reset={v_reset!r}, v_th={v_th!r}")
    if not v_rest < v_th:
        raise ParameterError(f"LIF needs v_rest < v_th; got v_rest={v_rest!r}, v_th={v_th!r}")
