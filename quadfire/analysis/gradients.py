"""Gradient growth with the number of time steps T (docs/neuron.md, "Gradients through time").

`input_gradient_norm(model, x, T)` runs a static input ``x [N, C, H, W]`` as T identical frames
(direct encoding, so any T works for any image model, trained or not) and returns the norm of
d(loss)/dx for the loss "sum of the time-mean logits"; `gradient_growth` runs the models in
training mode, as backpropagation sees them (tdBN on batch statistics). `gradient_growth` sweeps T for several
models (one per neuron) and, when asked, again with every spiking layer's ``detach_reset``
switched on: the comparison that shows where the growth comes from.

Why QIF's gradient can explode: backpropagation through time multiplies, from step to step,
the through-time factor dU[t]/dU[t-1] = (dU/dH) f'(U[t-1]). Between spikes dU/dH = 1 and
f'(U) > 1 above u2, so across one inter-spike interval the product is the ratio of the map's
velocity at threshold to that after the reset, large for QIF's regenerative climb and below 1
for a LIF. At a spike the surrogate lets the chain through the reset, dU/dH = (v_reset - H) g
(about -1 for the band window), so the per-interval factors compound over the run:
exponential in T. With ``detach_reset`` dU/dH = 1 - S = 0 at a spike, the chain restarts
after each reset, and the growth is bounded by one interval's factor.
"""
from __future__ import annotations

import copy
from typing import Callable, Sequence

import torch
from torch import nn

from ..errors import InputError
from ..neurons import MultiStepNeuron


def input_gradient_norm(model: nn.Module, x: torch.Tensor, T: int) -> float:
    """||d loss / dx|| for ``x [N, ...]`` run as T frames, loss = sum of time-mean logits."""
    if not isinstance(T, int) or T < 1:
        raise InputError(f"T must be a positive int, got {T!r}")
    x = x.detach().clone().requires_grad_()
    frames = x.unsqueeze(0).expand(T, *x.shape)
    out = model(frames)
    out.float().mean(0).sum().backward()
    return float(x.grad.double().norm())


def with_detached_reset(model: nn.Module) -> nn.Module:
    """A copy of `model` whose spiking layers pass no gradient through the reset's spike."""
    model = copy.deepcopy(model)
    neurons = [m for m in model.modules() if isinstance(m, MultiStepNeuron)]
    if not neurons or not all(hasattr(m, "detach_reset") for m in neurons):
        raise InputError("detach_reset needs quadfire's QIF/LIF-family neurons in the model")
    for m in neurons:
        m.detach_reset = True
    return model


def gradient_growth(models: dict[str, nn.Module], x: torch.Tensor, steps: Sequence[int],
                    detached: bool = True,
                    progress: Callable[[str], None] | None = None) -> dict[str, dict[int, float]]:
    """{curve: {T: input-gradient norm}} for every model (and "<name> detach_reset" with the
    reset's gradient detached, when `detached`); inf where the gradient overflowed."""
    curves = {}
    for name, model in models.items():
        variants = {name: model}
        if detached:
            variants[f"{name} detach_reset"] = with_detached_reset(model)
        for label, m in variants.items():
            # training mode, as backpropagation sees the network: tdBN normalises with the
            # batch's statistics (on a copy, so that a trained model's running ones stay)
            m = copy.deepcopy(m).train()
            curves[label] = {T: input_gradient_norm(m, x, T) for T in steps}
            if progress:
                progress(f"{label}: " + ", ".join(f"T={T} {v:.3g}" for T, v in curves[label].items()))
    return curves


def growth_figure(curves: dict[str, dict[int, float]], title: str):
    """Log-log plot of the input-gradient norm against T, one line per curve (overflow to inf
    drawn as a marker on the top edge)."""
    import math

    from matplotlib.figure import Figure
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    from .study_plots import MARKERS

    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.add_subplot()
    finite = [v for c in curves.values() for v in c.values() if math.isfinite(v) and v > 0]
    top = max(finite) * 10 if finite else 1.0
    for i, (label, c) in enumerate(curves.items()):
        Ts = sorted(c)
        # Curves can coincide (PLIF starts as the LIF it learns from): hollow markers of
        # distinct shape and shrinking size keep each one visible on top of the others.
        ax.plot(Ts, [c[T] if math.isfinite(c[T]) else float("nan") for T in Ts],
                marker=MARKERS[(i // 2) % len(MARKERS)], ms=max(3, 9 - 0.5 * i), mfc="none",
                ls="--" if "detach" in label else "-", color=f"C{i // 2}", label=label)
        over = [T for T in Ts if not math.isfinite(c[T])]
        if over:
            ax.plot(over, [top] * len(over), "x", color=f"C{i // 2}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    Ts = sorted({T for c in curves.values() for T in c})
    ax.set_xticks(Ts)  # the T values measured, as plain integers
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set(xlabel="time steps T (log scale)",
           ylabel="||d loss / d input||, L2 (log scale; x: overflow to inf)", title=title)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)
    return fig
