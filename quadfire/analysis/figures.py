"""PNG figures of single-neuron dynamics: cobweb, f-I curve, bifurcation diagram.

Figures are drawn on `matplotlib.figure.Figure` objects (no pyplot global state, no GUI
backend), so they are safe in tests, CLI runs and worker processes alike.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ..functional import QIFParams
from ..neurons import QIF
from . import dynamics
from .dynamics import DEFAULTS
from .single_neuron import (bifurcation, default_lif, discretization_of, fi_curve, null_orbit,
                            qif_neuron)


def save(fig: Figure, path: str | Path) -> Path:
    """Write `fig` in the format its suffix names (.png, .pdf, .svg), creating the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path


def cobweb(p=DEFAULTS, starts=None, steps: int = 25) -> Figure:
    """The null-input map H = f(U) of the QIF neuron with parameters `p` (any discretization's;
    `QIF(...).params()`) with the identity line and cobweb orbits from `starts` (default: just
    below and just above u2, and halfway between rest and the floor, or 4 d below rest where
    there is no floor).

    A spike (H >= v_th) is drawn as a jump back to the reset value; the v_min floor and the
    fixed points (filled: stable) are marked."""
    neuron = qif_neuron(p)
    discretization = discretization_of(p)
    a, u1, u2, v_th = p.a, p.u1, p.u2, p.v_th
    v_min = None if p.floor() is None else float(p.floor())
    d = u2 - u1
    low = v_min if v_min is not None else u1 - 4 * d
    if starts is None:
        starts = (u2 - 0.1 * d, u2 + 0.1 * d, (u1 + low) / 2)
    # From just below the floor (or the lowest start) to just above threshold: the orbits fill
    # the picture instead of a corner of it.
    lo = min(low, *starts) - 0.25 * d
    grid = np.linspace(lo, v_th + 0.25 * d, 400)
    fig = Figure(figsize=(7.5, 5), layout="constrained")
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
        # thick, marked and drawn over the map, so that steps along f(U) stay visible
        ax.plot(xs, ys, lw=2.0, color=f"C{i + 1}", marker="o", ms=3, alpha=0.85, zorder=4,
                label=f"orbit from U = {u0:g}")
    for fp in dynamics.model_fixed_points(p):
        ax.plot(fp.u, fp.u, "o", color="k" if fp.stable else "w", mec="k", zorder=5)
    ax.set(xlabel=f"membrane potential U[t-1] (model units, v_th = {v_th:g})",
           ylabel="charged potential H[t] (model units)",
           title=f"QIF ({discretization}) null-input map a={a:g}, u1={u1:g}, u2={u2:g}; "
                 f"dots: fixed points (filled: stable)")
    ax.title.set_fontsize(9)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)
    return fig


def fi_figure(p=DEFAULTS, currents=None, steps: int = 1000,
              discretizations=("euler", "exact", "hybrid")) -> Figure:
    """Firing rate against constant input for each QIF discretization of the parameters
    a, u1, u2, v_th of `p` and for the tau = 2 LIF baseline."""
    v_th = p.v_th
    I = np.linspace(0.0, 1.2 * v_th, 241) if currents is None else np.asarray(currents)
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    for i, disc in enumerate(discretizations):
        ax.plot(I, fi_curve(QIF(p.a, p.u1, p.u2, v_th, discretization=disc), I, steps),
                label=f"QIF ({disc})", color=f"C{i}", ls=("-", "--", ":")[i % 3])
    ax.plot(I, fi_curve(default_lif(v_th), I, steps), label="LIF (tau=2)", color="C4")
    ax.axvline(dynamics.rheobase(QIFParams(p.a, p.u1, p.u2, v_th)), color="0.4", ls=":", lw=0.8,
               label="QIF rheobase (Euler)")
    ax.set(xlabel=f"constant input I per step (model units, v_th = {v_th:g})",
           ylabel="firing rate (spikes per step)",
           title=f"f-I curve over {steps} steps (QIF a={p.a:g}, u1={p.u1:g}, u2={p.u2:g})")
    ax.legend(fontsize=8, loc="upper left")
    return fig


def bifurcation_figure(p=DEFAULTS, ad_max: float = 3.0,
                       points: int = 600) -> Figure:
    """Long-run null-input values of U against a*(u2 - u1) (raw map, no threshold; u1 and u2
    of `p`, a varied)."""
    ad = np.linspace(ad_max / points, ad_max, points)
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    for x, ys in zip(ad, bifurcation(ad, p)):
        ax.plot(np.full(ys.shape, x), ys, ",", color="k")
    ax.axvline(1.0, color="C1", ls=":", lw=0.8, label="a*d = 1: leak turns oscillatory")
    ax.axvline(2.0, color="C3", ls="--", lw=0.8, label="a*d = 2: period doubling (limit)")
    ax.set(xlabel="a*(u2 - u1) (dimensionless)", ylabel="long-run U, null input (units of u1, u2)",
           title=f"QIF bifurcation diagram (u1={p.u1:g}, u2={p.u2:g}; no threshold)")
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
    ax.set(xlabel="window width w (model units, log scale)",
           ylabel="cosine to smoothed-loss gradient (1: same direction)",
           title=f"gradient mismatch: T={s.T}, sigma={s.sigma:g}, batch={s.batch}")
    ax.legend(fontsize=7)
    return fig
