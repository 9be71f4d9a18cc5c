"""Gradient mismatch of surrogate windows (method in docs/surrogate-window.md).

Setup, for one layer of N independent QIF neurons over T steps::

    X[t, n, b] = m[t, n] + s * eps[t, n, b],   eps ~ N(0, 1),   m ~ N(0, (rho sigma)^2),
    s = sigma sqrt(1 - rho^2)

so X is tdBN-normalised (zero mean, std sigma = alpha v_th over (T, N, batch)); m is the
drive the layer below controls and eps the sample-to-sample variation. The loss is a random
linear readout of the spikes, l = sum_{t,n} c[t, n] S[t, n], c ~ N(0, 1) (the gradient the
layer above sends back). Two gradients with respect to m [T, N] are compared:

- true: grad_m E_eps[l], the gradient of the noise-smoothed expected loss, estimated with the
  antithetic score-function (Stein) estimator over K pairs (+eps, -eps)::

      g[t, n] = mean_k (l_n(m + s eps_k) - l_n(m - s eps_k)) eps_k[t, n] / (2 s),

  where l_n = sum_t c[t, n] S[t, n] is neuron n's share (neurons are independent, so the
  other neurons' terms only add variance);
- surrogate: the BPTT gradient of the batch loss (1/B) sum_b l(X[:, :, b]) through the
  neuron module with the window under test, exactly what one optimizer step sees.

The score is the cosine between the two [T*N] vectors, averaged over R independent batches.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ..functional import QIF_RULES, QIFParams, Window
from ..neurons import QIF
from ..errors import ParameterError

DEFAULT_FACTORS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.4, 2.0, 3.0, 5.0)


@dataclass(frozen=True)
class MismatchSetup:
    """The measured layer: QIF parameters, input scale and sample sizes (see module doc)."""

    a: float = QIFParams.a    # the QIF defaults, from their one home
    u1: float = QIFParams.u1
    u2: float = QIFParams.u2
    v_th: float = QIFParams.v_th
    sigma: float = 1.0        # tdBN output scale alpha * v_th: total input std
    rho: float = 0.5          # fraction of the std that is per-neuron drive m
    T: int = 8
    neurons: int = 64
    batch: int = 64           # B, samples behind one surrogate gradient
    batches: int = 16         # R, independent surrogate gradients averaged
    pairs: int = 20000        # K, antithetic pairs behind the true gradient
    seed: int = 0
    mu: float = 0.0           # mean of the input (tdBN's shift beta; 0 for the ideal layer)
    window_sigma: float | None = None  # the sigma the noise and moment rules are given
    # what the moment rule is told of rho and of the samples per gradient (None: rho, batch)
    window_rho: float | None = None
    window_samples: int | None = None
    discretization: str = "euler"  # the QIF map of the layer (`quadfire.neurons.QIF`)

    def __post_init__(self):
        if not (math.isfinite(self.mu) and (self.window_sigma is None or self.window_sigma > 0)):
            raise ValueError(f"mismatch needs a finite mu and window_sigma > 0 (or None), got "
                             f"mu={self.mu!r}, window_sigma={self.window_sigma!r}")
        if not (self.sigma > 0 and 0 <= self.rho < 1):
            raise ParameterError(f"mismatch needs sigma > 0 and 0 <= rho < 1, got "
                                 f"sigma={self.sigma!r}, "
                                 f"rho={self.rho!r}")
        for name in ("T", "neurons", "batch", "batches", "pairs"):
            v = getattr(self, name)
            if not (isinstance(v, int) and v >= 1):
                raise ParameterError(f"mismatch setting {name} must be a positive int, got {v!r}")

    @property
    def noise(self) -> float:
        return self.sigma * math.sqrt(1 - self.rho ** 2)


@dataclass
class MismatchResult:
    """Cosines per window label; `ceiling` is the estimated cosine between the sampled true
    gradient and the exact one (the best any window can score against this estimate)."""

    setup: MismatchSetup
    widths: dict[str, float] = field(default_factory=dict)
    offsets: dict[str, float] = field(default_factory=dict)
    cosine: dict[str, float] = field(default_factory=dict)
    cosine_std: dict[str, float] = field(default_factory=dict)
    cosine_mean_grad: dict[str, float] = field(default_factory=dict)
    ceiling: float = float("nan")

    def best_sweep(self) -> str:
        """The sweep label (a fixed-width window, not a rule) with the highest cosine."""
        sweep = [k for k in self.cosine if " x" in k]
        return max(sweep, key=self.cosine.__getitem__)


def _problem(setup: MismatchSetup):
    g = torch.Generator().manual_seed(setup.seed)
    shape = (setup.T, setup.neurons)
    m = setup.mu + torch.randn(shape, generator=g, dtype=torch.float64) * setup.rho * setup.sigma
    c = torch.randn(shape, generator=g, dtype=torch.float64)
    return m, c, g


def _neuron(setup: MismatchSetup, window: Window | str) -> QIF:
    sigma = setup.sigma if setup.window_sigma is None else setup.window_sigma
    rho = setup.rho if setup.window_rho is None else setup.window_rho
    samples = setup.batch if setup.window_samples is None else setup.window_samples
    return QIF(setup.a, setup.u1, setup.u2, setup.v_th, surrogate=window, sigma=sigma,
               samples=samples, rho=rho, discretization=setup.discretization)


@torch.no_grad()
def true_gradient(setup: MismatchSetup, chunk: int = 4096) -> tuple[torch.Tensor, float]:
    """(g [T, N], ceiling): the antithetic score-function estimate of grad_m E[l] and the
    estimated cosine between it and the exact gradient, from the agreement of two halves
    (Spearman-Brown: rho_full = sqrt(2 r / (1 + r)) for half-vs-half cosine r)."""
    m, c, _ = _problem(setup)
    g = torch.Generator().manual_seed(setup.seed + 1)
    neuron = _neuron(setup, "band")  # the window does not matter without backward
    s = setup.noise
    halves = [torch.zeros_like(m), torch.zeros_like(m)]
    done = 0
    while done < setup.pairs:
        k = min(chunk, setup.pairs - done)
        eps = torch.randn((setup.T, k, setup.neurons), generator=g, dtype=torch.float64)
        x = m.unsqueeze(1) + s * torch.cat([eps, -eps], 1)
        loss_n = (neuron(x) * c.unsqueeze(1)).sum(0)                   # [2k, N]
        diff = (loss_n[:k] - loss_n[k:]) / (2 * s)                     # [k, N]
        contrib = diff.unsqueeze(0) * eps                              # [T, k, N]
        half = k // 2
        halves[0] += contrib[:, :half].sum(1)
        halves[1] += contrib[:, half:].sum(1)
        done += k
    r = torch.nn.functional.cosine_similarity(halves[0].flatten(), halves[1].flatten(),
                                              dim=0).item()
    ceiling = math.sqrt(max(2 * r / (1 + r), 0.0)) if r > -1 else 0.0
    return (halves[0] + halves[1]) / setup.pairs, ceiling


def surrogate_gradients(setup: MismatchSetup, window: Window | str) -> torch.Tensor:
    """R surrogate BPTT gradients grad_m of the batch-mean loss, stacked [R, T, N]; the same
    noise draws for every window (common random numbers make the comparison sharper)."""
    m, c, _ = _problem(setup)
    g = torch.Generator().manual_seed(setup.seed + 2)
    neuron = _neuron(setup, window)
    out = []
    for _ in range(setup.batches):
        eps = torch.randn((setup.T, setup.batch, setup.neurons), generator=g, dtype=torch.float64)
        mm = m.clone().requires_grad_(True)
        loss = (neuron(mm.unsqueeze(1) + setup.noise * eps) * c.unsqueeze(1)).sum((0, 2)).mean()
        (grad,) = torch.autograd.grad(loss, mm)
        out.append(grad)
    return torch.stack(out)


def _cos(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.cosine_similarity(a.flatten(1), b.flatten().unsqueeze(0), dim=1)


def measure_mismatch(setup: MismatchSetup = MismatchSetup(), factors=DEFAULT_FACTORS,
                     rules=QIF_RULES, shape: str = "rect",
                     extra: dict[str, Window] | None = None) -> MismatchResult:
    """Cosine of each rule's window, of centred `shape` windows of width factor * w_band,
    w_band = 2 (v_th - u2), and of any `extra` labelled windows, against the sampled true
    gradient."""
    truth, ceiling = true_gradient(setup)
    result = MismatchResult(setup, ceiling=ceiling)
    w_band = 2 * (setup.v_th - setup.u2)
    windows: dict[str, Window | str] = {r: r for r in rules}
    windows.update({f"{shape} x{f:g}": Window(shape, f * w_band) for f in factors})
    windows.update(extra or {})
    for label, win in windows.items():
        grads = surrogate_gradients(setup, win)
        cos = _cos(grads, truth)
        resolved = _neuron(setup, win).params(2).window
        result.widths[label] = float(resolved.width)
        result.offsets[label] = float(resolved.offset)
        result.cosine[label] = cos.mean().item()
        result.cosine_std[label] = cos.std().item() if len(cos) > 1 else 0.0
        result.cosine_mean_grad[label] = _cos(grads.mean(0, keepdim=True), truth).item()
    return result


def format_table(result: MismatchResult) -> str:
    """A plain-text table: window, width, offset, cosine (mean +- std over batches), cosine of
    the batch-averaged surrogate gradient; the best sweep width is starred."""
    best = result.best_sweep()
    lines = [f"{'window':<14}{'width':>8}{'offset':>8}{'cos (batch)':>18}{'cos (mean grad)':>17}"]
    for label in result.cosine:
        star = " *" if label == best else ""
        lines.append(f"{label:<14}{result.widths[label]:>8.3f}{result.offsets[label]:>8.3f}"
                     f"{result.cosine[label]:>11.3f} +- {result.cosine_std[label]:.3f}"
                     f"{result.cosine_mean_grad[label]:>17.3f}{star}")
    lines.append(f"estimated ceiling (true-gradient sampling noise): {result.ceiling:.3f}")
    return "\n".join(lines)
