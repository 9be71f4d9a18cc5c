"""PNG figures of single-neuron dynamics: cobweb, f-I curve, bifurcation diagram.

Figures are drawn on `matplotlib.figure.Figure` objects (no pyplot global state, no GUI
backend), so they are safe in tests, CLI runs and worker processes alike.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ..neurons import QIF
from . import dynamics
from .single_neuron import bifurcation, default_lif, fi_curve, null_orbit


def save(fig: Figure, path: str | Path) -> Path:
    """Write `fig` in the format its suffix names (.png, .pdf, .svg), creating the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path


def cobweb(a: float = 0.25, u1: float = 0.0, u2: float = 0.5, v_th: float = 1.0,
           starts=None, steps: int = 25, discretization: str = "euler") -> Figure:
    """The null-input map H = f(U) of a QIF discretization with the identity line and cobweb
    orbits from `starts` (default: just below and just above u2, and halfway between rest and
    the floor, or 4 d below rest where there is no floor).

    A spike (H >= v_th) is drawn as a jump back to the reset value; the v_min floor and the
    fixed points (filled: stable) are marked."""
    neuron = QIF(a, u1, u2, v_th, discretization=discretization)
    p = neuron.params(1)
    v_min = None if p.floor() is None else float(p.floor())
    d = u2 - u1
    low = v_min if v_min is not None else u1 - 4 * d
    if starts is None:
        starts = (u2 - 0.1 * d, u2 + 0.1 * d, (u1 + low) / 2)
    lo = (min(dynamics.throw_point(a, u1), low) if discretization == "euler" else low) - 0.25
    grid = np.linspace(lo, v_th + 0.25, 400)
    fig = Figure(figsize=(6, 5))
    ax = fig.add_subplot()
    with np.errstate(invalid="ignore"):
        ax.plot(grid, dynamics.model_map(p, grid), label="f(U)", color="C0")
    ax.plot(grid, grid, color="0.5", lw=0.8, label="identity")
    ax.axhline(v_th, color="C3", ls="--", lw=0.8, label="v_th")
    if v_min is not None:
        ax.axvline(v_min, color="C2", ls=":", lw=0.8, label="v_min floor")
    for i, u0 in enumerate(starts):
        orbit = null_orbit(neuron, u0, steps)
        xs, ys = [orbit.u[0]], [orbit.u[0]]
        # (U, U) -> (U, H) -> (U', U'): horizontal when U' = H, a jump on a reset or the floor.
        for u, h, nxt in zip(orbit.u[:-1], orbit.h[:-1], orbit.u[1:]):
            xs += [u, nxt]
            ys += [h, nxt]
        ax.plot(xs, ys, lw=0.9, color=f"C{4 + i}", label=f"orbit from {u0:g}")
    for fp in dynamics.model_fixed_points(p):
        ax.plot(fp.u, fp.u, "o", color="k" if fp.stable else "w", mec="k", zorder=5)
    ax.set(xlabel="U[t-1]", ylabel="H[t]",
           title=f"QIF ({discretization}) null-input map a={a:g}, u1={u1:g}, u2={u2:g}")
    ax.legend(fontsize=7, loc="upper left")
    return fig


def fi_figure(a: float = 0.25, u1: float = 0.0, u2: float = 0.5, v_th: float = 1.0,
              currents=None, steps: int = 1000,
              discretizations=("euler", "exact", "hybrid")) -> Figure:
    """Firing rate against constant input for each QIF discretization and for the tau = 2
    LIF baseline."""
    I = np.linspace(0.0, 1.2 * v_th, 241) if currents is None else np.asarray(currents)
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    for i, disc in enumerate(discretizations):
        ax.plot(I, fi_curve(QIF(a, u1, u2, v_th, discretization=disc), I, steps),
                label=f"QIF ({disc})", color=f"C{i}", ls=("-", "--", ":")[i % 3])
    ax.plot(I, fi_curve(default_lif(v_th), I, steps), label="LIF (tau=2)", color="C4")
    ax.axvline(dynamics.rheobase(a, u1, u2), color="0.4", ls=":", lw=0.8,
               label="QIF rheobase (Euler)")
    ax.set(xlabel="constant input I", ylabel="spikes per step", title="f-I curve")
    ax.legend(fontsize=8)
    return fig


def bifurcation_figure(u1: float = 0.0, u2: float = 0.5, ad_max: float = 3.0,
                       points: int = 600) -> Figure:
    """Long-run null-input values of U against a*(u2 - u1) (raw map, no threshold)."""
    ad = np.linspace(ad_max / points, ad_max, points)
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    for x, ys in zip(ad, bifurcation(ad, u1, u2)):
        ax.plot(np.full(ys.shape, x), ys, ",", color="k")
    ax.axvline(1.0, color="C1", ls=":", lw=0.8, label="a*d = 1: leak turns oscillatory")
    ax.axvline(2.0, color="C3", ls="--", lw=0.8, label="a*d = 2: period doubling (limit)")
    ax.set(xlabel="a*(u2 - u1)", ylabel="long-run U (null input)", title="QIF bifurcation diagram")
    ax.legend(fontsize=7, loc="lower left")
    return fig


def mismatch_figure(result) -> Figure:
    """Cosine against window width (log scale) for the sweep, with each rule's window marked."""
    from ..functional import QIF_RULES

    sweep = [k for k in result.cosine if k not in QIF_RULES]
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    w = [result.widths[k] for k in sweep]
    ax.errorbar(w, [result.cosine[k] for k in sweep], [result.cosine_std[k] for k in sweep],
                marker="o", ms=3, capsize=2, label="sweep: one batch")
    ax.plot(w, [result.cosine_mean_grad[k] for k in sweep], ls=":", marker=".",
            label="sweep: batch-averaged gradient")
    for i, rule in enumerate(k for k in result.cosine if k in QIF_RULES):
        ax.plot(result.widths[rule], result.cosine[rule], "*", ms=12, color=f"C{i + 2}",
                label=f"{rule} (w={result.widths[rule]:.3g}, offset={result.offsets[rule]:.3g})")
    ax.set_xscale("log")
    s = result.setup
    ax.set(xlabel="window width w", ylabel="cosine to smoothed-loss gradient",
           title=f"gradient mismatch: T={s.T}, sigma={s.sigma:g}, batch={s.batch}")
    ax.legend(fontsize=7)
    return fig
