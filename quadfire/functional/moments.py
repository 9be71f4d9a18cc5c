"""The distribution of the charged potential H that a neuron's own map produces under
tdBN-normalised input, and the `moment` surrogate window chosen from it (derivation and
checks: docs/surrogate-window.md, "The moment rule").

Input X[t] ~ N(0, sigma^2), independent over steps (tdBN scales each channel to
sigma = alpha v_th). For a single-membrane model whose charge is affine in the input,
H = f(U) + k X, the membrane U[t] is a Markov chain: charge, fire at H >= v_th, reset (hard:
to v_reset; soft: subtract v_th), floor at v_min. `stationary` discretizes U on a grid of
cells over [lower end, v_th) plus two atoms (the reset value and the floor, which receive
probability mass exactly) and solves for the stationary law pi of the chain. H given U = u is
then N(f(u), (k sigma)^2), so its density, mean and variance follow from pi in closed form.

`moment_width` reads the surrogate gradient as what it is in expectation. The samples behind
one gradient entry (one neuron and step, B samples of a batch) share the neuron's drive m, a
share rho of the input's std; the rest varies between them. Averaged over those n samples, the
window g_w applied to H - v_th estimates the derivative of the firing probability with respect
to a shift of the drive, the density p(v_th | m) of H given m. `moment_width` returns the rect
width that minimises the relative mean squared error of that estimate, averaged over m,

    J(w) = E_m[ (E[g_w | m] - p(v_th | m))^2 + Var(g_w | m) / n ] / E_m[ p(v_th | m) ]^2,

bias (a wide window blurs the density) against variance (a narrow one sees few samples):
kernel density estimation's bandwidth trade-off at the one point that matters.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from collections import OrderedDict

import numpy
import torch
from threadpoolctl import ThreadpoolController

from ..errors import ParameterError

_CELLS = 160                  # continuous cells of U; the two atoms come on top
# The width search: (widths per round, rounds), a log grid over 1e-2..1e2 times s refined about
# its minimum. FINE resolves the width to about 0.1%. COARSE (0.9% steps, 3-4 times cheaper)
# serves parameters rounded to a grid: rounding already moves their width by up to 1%, and J is
# flat there (docs/surrogate-window.md, "Cost").
FINE, COARSE = (24, 4), (8, 5)
# Built once, after numpy is imported, so it holds numpy's BLAS (the one numpy.linalg.solve
# uses): finding the loaded libraries reads /proc/self/maps (about 2 ms), more than a small
# solve takes; limiting a known library's threads costs microseconds.
_BLAS = ThreadpoolController()


def _cdf(z: torch.Tensor) -> torch.Tensor:
    return 0.5 * torch.erfc(-z / math.sqrt(2))


@dataclass(frozen=True)
class Stationary:
    """The stationary laws of C neurons' membranes under N(0, sigma^2) input (C = 1 for one
    parameter set).

    ``u`` [C, S] the states (cell centres, then the reset and floor atoms), ``pi`` [C, S]
    their probabilities, ``f`` [C, S] the noise-free charge f(u), ``s`` [C, 1] the std of
    k X: H given the state is N(f, s^2). ``rate`` [C] is the firing probability per step and
    ``floor_share`` [C] the probability that a step ends on the floor (0 without one)."""

    u: torch.Tensor
    pi: torch.Tensor
    f: torch.Tensor
    s: torch.Tensor
    v_th: torch.Tensor
    rate: torch.Tensor
    floor_share: torch.Tensor

    @property
    def mean_h(self) -> torch.Tensor:
        return (self.pi * self.f).sum(-1)

    @property
    def std_h(self) -> torch.Tensor:
        var = (self.pi * self.f.square()).sum(-1) - self.mean_h ** 2 + self.s[:, 0] ** 2
        return var.clamp_min(0).sqrt()

    def density_h(self, h: torch.Tensor) -> torch.Tensor:
        """p_H at the points h [C, P] (float64)."""
        return _mixture_pdf(h, self.f.unsqueeze(1), self.pi.unsqueeze(1), self.s)


def _mixture_pdf(h: torch.Tensor, f: torch.Tensor, pi: torch.Tensor,
                 s: torch.Tensor) -> torch.Tensor:
    """sum_i pi_i N(h; f_i, s^2), the density of H at the points h [C, P] for the states'
    charges f and probabilities pi ([C, P or 1, S]) and the input std s [C, 1]."""
    z = (h.unsqueeze(-1) - f) / s.unsqueeze(-1)
    return (torch.exp(-0.5 * z * z) * pi).sum(-1) / (s * math.sqrt(2 * math.pi))


# Gauss-Hermite nodes and weights (probabilists') of the drive m, normalised to sum 1
_NODES, _WEIGHTS = (torch.from_numpy(v) for v in numpy.polynomial.hermite_e.hermegauss(8))
_WEIGHTS = _WEIGHTS / _WEIGHTS.sum()


def _numeric(v) -> bool:
    return isinstance(v, (int, float, torch.Tensor)) and not isinstance(v, bool)


def _column(p, name: str, C: int) -> torch.Tensor | None:
    v = p.floor() if name == "v_min" else getattr(p, name)
    if v is None:
        return None
    v = torch.as_tensor(v, dtype=torch.float64).detach().flatten()
    if v.numel() not in (1, C):
        raise ParameterError(f"stationary() takes parameters of one value or one per neuron; "
                             f"{name} has {v.numel()} values for {C} neurons")
    return v.expand(C).reshape(C, 1)


def stationary(p, sigma: float, cells: int = _CELLS, mu: float = 0.0) -> Stationary:
    """The stationary law of the membrane of the single-variable model `p` (a `NeuronParams`
    whose fields are floats or tensors of C values, one per neuron) under X ~ N(mu, sigma^2)
    i.i.d. per step (tdBN: mu = 0)."""
    if not (isinstance(sigma, (int, float)) and not isinstance(sigma, bool)
            and math.isfinite(sigma) and sigma > 0):
        raise ParameterError(f"the input scale sigma must be a finite number > 0, got {sigma!r}")
    if getattr(p, "state_vars", 1) != 1:
        raise ParameterError(f"{type(p).__name__} carries {p.state_vars} state tensors; the "
                             f"moment computation needs a single membrane")
    sizes = [torch.as_tensor(getattr(p, f.name)).numel() for f in fields(p)
             if _numeric(getattr(p, f.name))]
    C = max(sizes + [1])
    v_th, v_reset, v_min = (_column(p, n, C) for n in ("v_th", "v_reset", "v_min"))
    rest = torch.as_tensor(p.rest(), dtype=torch.float64).detach().flatten().expand(C).reshape(C, 1)
    q = replace(p, **{f.name: _column(p, f.name, C) for f in fields(p)
                      if _numeric(getattr(p, f.name))})

    def f_and_k(u: torch.Tensor):
        f0 = q.charge(torch.full_like(u, mu), u)
        return f0, q.charge(torch.full_like(u, mu + 1), u) - f0

    probe = torch.cat([rest, (rest + v_th) / 2], 1)
    f0, k = f_and_k(probe)
    f2 = q.charge(torch.full_like(probe, mu + 2), probe)
    if not torch.allclose(f2, f0 + 2 * k, rtol=1e-9, atol=1e-12) or \
            not torch.allclose(k, k[:, :1].expand_as(k)):
        raise ParameterError(f"{type(p).__name__}'s charge is not of the form f(U) + k X; the "
                             f"moment computation needs an input that adds to the potential")
    s = k[:, :1].abs() * sigma                                                    # [C, 1]
    # The lower end: the floor where there is one, else far enough below rest and reset that
    # the chain (contracting there with slope lam) practically never gets there.
    lam = q.slope(rest).abs().clamp(max=0.999)
    spread = s / (1 - lam * lam).sqrt()
    low = torch.minimum(torch.minimum(rest, v_reset), v_th) - 12 * spread
    if v_min is not None and not bool(torch.isfinite(v_min).any()):
        v_min = None  # a floor at -inf (learnable hybrid with a d <= 1) is none
    # per channel: the floor where it is finite (a channel without one has an atom at the
    # lower end that nothing flows into)
    lo = low if v_min is None else torch.where(torch.isfinite(v_min), v_min, low)
    # A soft reset (U = H - v_th) can leave U at or above v_th, so its cells reach 10 s higher;
    # a hard reset's never reach v_th.
    hi = v_th + 10 * s if p.soft else v_th
    edges = lo + (hi - lo) * torch.linspace(0, 1, cells + 1, dtype=torch.float64)  # [C, c+1]
    centres = 0.5 * (edges[:, 1:] + edges[:, :-1])
    atoms = [] if p.soft else [v_reset if v_min is None else torch.maximum(v_reset, v_min)]
    atoms += [] if v_min is None else [lo]
    u = torch.cat([centres] + atoms, 1)                                           # [C, S]
    f, _ = f_and_k(u)
    S = u.shape[1]

    def landing(upper: torch.Tensor) -> torch.Tensor:
        """[C, S, cells]: P(H < upper[c, j + 1]) - P(H < upper[c, j]) given state i, with the
        first cell counted from -inf."""
        cdf = _cdf((upper[:, 1:].unsqueeze(1) - f.unsqueeze(-1)) / s.unsqueeze(-1))
        return cdf - torch.cat([torch.zeros_like(cdf[..., :1]), cdf[..., :-1]], -1)

    # Transition matrix P[c, i, j]: from state i, charge, then land in cell j, reset or floor.
    P = torch.zeros(C, S, S, dtype=torch.float64)
    P[:, :, :cells] = landing(torch.minimum(edges, v_th))         # no spike: U = H < v_th
    fired = 1 - P[:, :, :cells].sum(-1)                                          # [C, S]
    if p.soft:
        spiked = landing(torch.clamp(edges + v_th, min=v_th))    # U = H - v_th
        spiked[..., 0] -= 1 - fired                               # counted from -inf: not fired
        escape = fired - spiked.sum(-1)                           # U above the top cell
        P[:, :, :cells] += spiked
        P[:, :, cells - 1] += escape
    else:
        P[:, :, cells] += fired
    floor_share = torch.zeros(C, S, dtype=torch.float64)
    if v_min is not None:
        # below the floor: the atom at v_min (the first cell's lower edge is the floor; its
        # mass was counted from -inf)
        floor_share = _cdf((v_min - f) / s)  # 0 where v_min = -inf
        P[:, :, -1] += floor_share
        P[:, :, 0] -= floor_share
    # without a floor, the mass below the lower end (practically none) joins the first cell
    # pi P = pi, sum(pi) = 1: replace one balance equation by the normalisation
    A = P.transpose(1, 2) - torch.eye(S, dtype=torch.float64)
    A[:, -1] = 1.0
    b = torch.zeros(C, S, 1, dtype=torch.float64)
    b[:, -1] = 1.0
    # numpy's LAPACK: torch 2.14's batched CPU solve fails at random inside MKL's LU here
    # ("Pivots given to lu_solve must all be greater or equal to 1"). On one thread: the
    # systems are small (S ~ 162), and OpenBLAS's own thread pool would spin against torch's
    # training threads on the same cores (10x slower under load, measured).
    with _BLAS.limit(limits=1, user_api="blas"):
        pi = torch.from_numpy(numpy.linalg.solve(A.numpy(), b.numpy()))[..., 0].clamp_min(0)
    pi = pi / pi.sum(1, keepdim=True)
    if p.soft:
        run = (pi * escape).sum(1)
        if bool((run > 1e-9).any()):
            raise ParameterError(
                f"with a soft reset the potential runs away (it leaves U >= v_th + 10 sigma "
                f"with probability {run.max().item():.2g} per step): the chain has no "
                f"stationary law, so the moment rule cannot set a window; use a hard reset")
    return Stationary(u, pi, f, s, v_th, (pi * fired).sum(1), (pi * floor_share).sum(1))

def mse_curve(st: Stationary, samples: int, rho: float, widths: torch.Tensor) -> torch.Tensor:
    """J(w) of the module docstring for rect windows of the widths [C, W] (float64 [C, W])."""
    return _objective(st, samples, rho)(widths)


def _objective(st: Stationary, samples: int, rho: float):
    """J as a function of the widths [C, W], with what does not depend on them computed once.

    The samples behind one gradient entry share the neuron's drive m (a share rho of the
    input's std, N(0, (rho sigma)^2)); only the rest, std s sqrt(1 - rho^2), varies between
    them. So each entry estimates the density of H given m at v_th; J averages the error over
    m (Gauss-Hermite) and normalises by the mean squared target."""
    s = st.s * math.sqrt(1 - rho * rho)                                         # [C, 1]
    # all drive nodes at once: dims [C, node, width, state]
    f = st.f.unsqueeze(1) + (_NODES * rho).view(1, -1, 1) * st.s.unsqueeze(-1)  # [C, M, S]
    target = _mixture_pdf(st.v_th.expand(-1, f.shape[1]), f, st.pi.unsqueeze(1), s)  # [C, M]
    norm = (target * target * _WEIGHTS).sum(1, keepdim=True)
    v_th, f, z_s = st.v_th[:, :, None, None], f.unsqueeze(2), s[:, :, None, None]
    pi, target = st.pi[:, None, None, :], target.unsqueeze(-1)

    def J(widths: torch.Tensor) -> torch.Tensor:
        half = (widths / 2)[:, None, :, None]
        mass = ((_cdf((v_th + half - f) / z_s) - _cdf((v_th - half - f) / z_s))
                * pi).sum(-1)                                                   # [C, M, W]
        w = widths.unsqueeze(1)
        mean = mass / w
        err = (mean - target) ** 2 + (mass / w ** 2 - mean ** 2) / samples
        return (err * _WEIGHTS.view(1, -1, 1)).sum(1) / norm
    return J


def moment_width(st: Stationary, samples: int = 64, rho: float = 0.5,
                 search: tuple[int, int] = FINE) -> torch.Tensor:
    """The rect widths [C] minimising J(w) (`mse_curve`) for `samples` samples per gradient
    entry and drive share `rho`: a log grid of search[0] widths over 1e-2..1e2 times s, refined
    about its minimum until search[1] rounds are done (FINE: relative resolution about 1e-3)."""
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise ParameterError(f"the moment rule needs samples >= 1 (the samples behind one "
                             f"gradient entry), got {samples!r}")
    if isinstance(rho, bool) or not isinstance(rho, (int, float)) or not 0 <= rho < 1:
        raise ParameterError(f"the moment rule needs a drive share 0 <= rho < 1, got {rho!r}")
    points, rounds = search
    J = _objective(st, samples, rho)
    lo, hi = torch.full_like(st.s, -2.0), torch.full_like(st.s, 2.0)    # log10(w / s), [C, 1]
    for _ in range(rounds):
        grid = lo + (hi - lo) * torch.linspace(0, 1, points, dtype=torch.float64)
        best = torch.argmin(J(st.s * 10 ** grid), 1, keepdim=True)
        step = (hi - lo) / (points - 1)
        centre = torch.gather(grid, 1, best)
        lo, hi = centre - step, centre + step
    return (st.s * 10 ** centre)[:, 0]


_CACHE: "OrderedDict[tuple, float]" = OrderedDict()  # one entry per neuron's parameter set
_CACHE_SIZE = 1 << 16


def cached_moment_width(cls, columns: tuple, sigma: float, samples: int, rho: float,
                        search: tuple[int, int] = FINE) -> tuple[float, ...]:
    """`moment_width` of C neurons ``cls(*columns)`` (each field a float or a tuple of C
    floats), cached per neuron: a fixed neuron computes it once, a learnable layer only for
    the channels whose (rounded) parameters are new, all of them in one batched computation.
    ``cached_moment_width.misses`` counts the neurons computed."""
    C = max([len(c) for c in columns if isinstance(c, tuple)] + [1])
    rows = [tuple(c[i] if isinstance(c, tuple) else c for c in columns) for i in range(C)]
    keys = [(cls, row, sigma, samples, rho, search) for row in rows]
    new = list(dict.fromkeys(k for k in keys if k not in _CACHE))
    if new:
        # each field across the new neurons: a tensor of their values, or the one None/bool
        per_field = list(zip(*(k[1] for k in new)))
        p = cls(*(v[0] if v[0] is None or isinstance(v[0], bool)
                  else torch.tensor(v, dtype=torch.float64) for v in per_field))
        widths = moment_width(stationary(p, sigma), samples, rho, search).tolist()
        for key, w in zip(new, widths):
            _CACHE[key] = w
        cached_moment_width.misses += len(new)
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    for k in keys:
        _CACHE.move_to_end(k)
    return tuple(_CACHE[k] for k in keys)


cached_moment_width.misses = 0
