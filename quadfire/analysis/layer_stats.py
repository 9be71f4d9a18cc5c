"""What each spiking layer of a trained network sees: its input statistics, where its charged
potential H lies against the surrogate window, which dynamical regime its neurons are in, and
how well each QIF window rule matches the gradient under the layer's own statistics.

`layer_statistics(model, loader)` runs the model (eval mode) with the neurons observed
(`monitor.observed_neurons`) and, per layer, accumulates:

- input X (the tdBN output feeding the neuron): mean, std, and the drive share rho = the std
  of the per-neuron, per-step mean over samples divided by the total std (the `mismatch`
  setup's X = m + s eps, m the drive, eps the sample-to-sample variation);
- H - v_th: the share inside the window's support, below the critical point (QIF's u2) and
  at the floor v_min, for models that have them;
- regimes (per neuron, from its mean input I over samples and steps, as the model names them,
  `NeuronParams.regimes`; closed forms in docs/neuron.md): QIF "inhibited" (I < 0),
  "excitable" (0 <= I <= the rheobase: rest is stable, the neuron fires only when pushed past
  u2) and "tonic" (I above the rheobase: it fires whatever its start); LIF-family
  "sub-threshold" (its equilibrium v_rest + I/k stays below v_th) and "tonic".

`rule_mismatch(stats)` then measures, for every QIF layer (any discretization) with scalar
parameters, the gradient mismatch (`quadfire.analysis.mismatch`) of each window rule at that
layer's measured (mu, sigma, rho) instead of the tdBN ideal (0, v_th, 0.5).
"""
from __future__ import annotations

import math
from itertools import islice

import torch
from torch import nn

from ..errors import ParameterError
from ..functional import hybrid_floor, qif_default_floor, qif_window
from ..functional.moments import stationary
from .mismatch import MismatchSetup, measure_mismatch
from .monitor import inside_window, observed_neurons


class _Layer:
    def __init__(self, kind: str):
        self.kind, self.params = kind, None
        self.n = 0
        self.sum = self.sumsq = 0.0
        self.per = None        # sum over samples of X [T, M]
        self.per_n = 0         # samples behind `per`
        self.mean_in = None    # sum over samples and steps of X per neuron [M]
        self.counts = {"inside": 0.0, "below_u2": 0.0, "floor": 0.0, "spikes": 0.0}
        self.h_sum = self.h_sumsq = 0.0

    def add(self, module, x: torch.Tensor, out) -> None:
        p = module.params(x.dim() - 1)
        self.params = p
        self.noise_sigma = getattr(module, "sigma", None)  # what the `noise` rule was given
        # ... and what the `moment` rule was given besides sigma
        self.moment_inputs = {"rho": getattr(module, "rho", None),
                              "samples": getattr(module, "samples", None)}
        xd = x.detach().double()
        T, N = xd.shape[:2]
        flat = xd.reshape(T, N, -1)
        self.n += flat.numel()
        self.sum += flat.sum().item()
        self.sumsq += flat.square().sum().item()
        per, neuron = flat.sum(1), flat.sum((0, 1))
        self.per = per if self.per is None else self.per + per
        self.mean_in = neuron if self.mean_in is None else self.mean_in + neuron
        self.per_n += N
        h = out.trace.detach()
        hd = h.double()
        self.h_sum += hd.sum().item()
        self.h_sumsq += hd.square().sum().item()
        self.counts["inside"] += inside_window(h, p).double().sum().item()
        self.counts["spikes"] += out.spikes.double().sum().item()
        if p.critical() is not None:
            self.counts["below_u2"] += (h < p.critical()).double().sum().item()
        if p.floor() is not None:
            self.counts["floor"] += (h <= p.floor()).double().sum().item()

    def report(self) -> dict:
        mean = self.sum / self.n
        var = max(self.sumsq / self.n - mean * mean, 0.0)
        drive = self.per / self.per_n                              # [T, M]
        rho = math.sqrt(min(drive.var(unbiased=False).item() / var, 0.99)) if var > 0 else 0.0
        I = self.mean_in / (self.per_n * drive.shape[0])           # [M] mean input per neuron
        out = {"type": self.kind, "x_mean": mean, "x_std": math.sqrt(var), "rho": rho,
               "firing_rate": self.counts["spikes"] / self.n,
               "window_fraction": self.counts["inside"] / self.n,
               "regimes": {k: m.double().mean().item() for k, m in self.params.regimes(I).items()}}
        h_mean = self.h_sum / self.n
        out["h_mean"] = h_mean
        out["h_std"] = math.sqrt(max(self.h_sumsq / self.n - h_mean * h_mean, 0.0))
        if self.params.critical() is not None:
            out["below_u2_fraction"] = self.counts["below_u2"] / self.n
            out["floor_fraction"] = self.counts["floor"] / self.n
        out["predicted"] = _predicted(self.params, mean, math.sqrt(var))
        return out


def _predicted(p, mu: float, sigma: float) -> dict | None:
    """What the moment rule's model (`quadfire.functional.moments`: inputs i.i.d. over steps,
    N(mu, sigma^2)) predicts for this layer: H's mean and std, firing rate and floor share.
    None for models it does not cover (several state tensors, per-channel parameters)."""
    try:
        st = stationary(p, max(sigma, 1e-6), mu=mu)
    except (ParameterError, NotImplementedError):
        return None
    return {"h_mean": st.mean_h.item(), "h_std": st.std_h.item(),
            "firing_rate": st.rate.item(), "floor_fraction": st.floor_share.item()}


def _scalar(v) -> float | None:
    if isinstance(v, torch.Tensor):
        return float(v) if v.numel() == 1 else None
    return float(v)


@torch.no_grad()
def layer_statistics(model: nn.Module, loader, max_batches: int | None = 4,
                     device=None) -> dict[str, dict]:
    """Per spiking layer (in execution order) the statistics of the module docstring."""
    names = {m: n for n, m in model.named_modules()}
    layers: dict[str, _Layer] = {}

    def on_run(module, x, out):
        layers.setdefault(names[module], _Layer(type(module).__name__)).add(module, x, out)

    was_training = model.training
    model.eval()
    try:
        with observed_neurons(model, on_run):
            for batch in islice(loader, max_batches):
                x = batch[0] if isinstance(batch, (tuple, list)) else batch
                model(x.to(device) if device is not None else x)
    finally:
        model.train(was_training)
    return {name: layer.report() | {"params": _param_summary(layer.params),
                                    "noise_sigma": layer.noise_sigma,
                                    "moment_inputs": layer.moment_inputs}
            for name, layer in layers.items()}


def _param_summary(p) -> dict:
    return {"model": p.model, **{k: _scalar(v) for k, v in p.summary().items()}}


def rule_mismatch(stats: dict[str, dict], T: int, pairs: int = 4000, neurons: int = 32,
                  batches: int = 8, factors=(0.5, 1.0, 2.0), seed: int = 0) -> dict[str, dict]:
    """Per QIF layer with scalar parameters: the cosine of each window rule as the layer used
    it (the `noise` rule with the sigma it was given), of the noise-rule width at the layer's
    measured sigma ("noise@measured"), of the moment rule at the measured sigma and rho
    ("moment@measured"), and of rect windows of `factors` x the band width, all
    at the layer's own (mu, sigma, rho)."""
    out = {}
    for name, s in stats.items():
        p = s["params"]
        maps = {"qif": "euler", "qif-exact": "exact", "qif-hybrid": "hybrid"}
        if p.get("model") not in maps or any(p.get(k) is None for k in ("a", "u1", "u2", "v_th")):
            continue
        disc = maps[p["model"]]
        sigma = max(s["x_std"], 1e-6)
        inputs = s.get("moment_inputs", {})
        setup = MismatchSetup(p["a"], p["u1"], p["u2"], p["v_th"], sigma=sigma,
                              rho=min(s["rho"], 0.95), T=T, neurons=neurons, batch=64,
                              batches=batches, pairs=pairs, seed=seed, mu=s["x_mean"],
                              window_sigma=s.get("noise_sigma") or p["v_th"],
                              window_rho=inputs.get("rho"), window_samples=inputs.get("samples"),
                              discretization=disc)
        # the map as the experiment simulates it (a QIF module), with its default floor
        floor = {"euler": qif_default_floor, "exact": lambda *_: None,
                 "hybrid": hybrid_floor}[disc](p["a"], p["u1"], p["u2"])
        measured = {"noise@measured": qif_window("noise", p["a"], p["u1"], p["u2"], p["v_th"],
                                                 sigma, discretization=disc),
                    "moment@measured": qif_window(
                        "moment", p["a"], p["u1"], p["u2"], p["v_th"], sigma, rho=setup.rho,
                        v_min=floor, samples=setup.batch, discretization=disc)}
        r = measure_mismatch(setup, factors, extra=measured)
        out[name] = {"setup": {"mu": setup.mu, "sigma": setup.sigma, "rho": setup.rho},
                     "cosine": r.cosine, "widths": r.widths, "ceiling": r.ceiling,
                     "best": r.best_sweep()}
    return out


def format_layers(stats: dict[str, dict], mismatch: dict[str, dict] | None = None) -> str:
    """A terminal table: one line per spiking layer, and the rule cosines where measured."""
    lines = [f"{'layer':<22}{'type':<6}{'x mean':>8}{'x std':>8}{'rho':>6}{'rate':>8}"
             f"{'in win':>8}{'floor':>7}  regimes"]
    for name, s in stats.items():
        regimes = ", ".join(f"{k} {v:.2f}" for k, v in s["regimes"].items())
        lines.append(f"{name:<22}{s['type']:<6}{s['x_mean']:>8.3f}{s['x_std']:>8.3f}"
                     f"{s['rho']:>6.2f}{s['firing_rate']:>8.4f}{s['window_fraction']:>8.3f}"
                     f"{s.get('floor_fraction', float('nan')):>7.3f}  {regimes}")
    predicted = {n: s for n, s in stats.items() if s.get("predicted")}
    if predicted:
        lines.append("measured / predicted by the moment rule's model (inputs i.i.d. over steps, "
                     "N(x mean, x std^2); docs/surrogate-window.md):")
        lines.append(f"{'layer':<22}{'H mean':>16}{'H std':>16}{'rate':>18}{'floor':>16}")
        for name, s in predicted.items():
            p = s["predicted"]
            floor = (f"{s['floor_fraction']:.3f} / {p['floor_fraction']:.3f}"
                     if "floor_fraction" in s else "-")
            lines.append(f"{name:<22}{s['h_mean']:>7.3f} / {p['h_mean']:<6.3f}"
                         f"{s['h_std']:>7.3f} / {p['h_std']:<6.3f}"
                         f"{s['firing_rate']:>8.4f} / {p['firing_rate']:<7.4f}{floor:>16}")
    for name, m in (mismatch or {}).items():
        cos = ", ".join(f"{k} {v:.3f}" for k, v in m["cosine"].items())
        lines.append(f"mismatch {name}: {cos} (best fixed width: {m['best']}; "
                     f"ceiling {m['ceiling']:.3f})")
    return "\n".join(lines)
