"""Figures of a study (`quadfire.train.study` runs it, `quadfire.analysis.study` tabulates
it): test accuracy per epoch with a band over seeds, and the firing rate of every spiking
layer, one series per neuron variant.

Both take plain data (lists of numbers per variant and seed), so they do not depend on how
the runs were produced."""
from __future__ import annotations

import warnings

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator


MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def accuracy_figure(curves: dict[str, list[list[float]]], title: str = "") -> Figure:
    """``curves[variant][seed]`` = test accuracy per epoch: the mean over seeds as a line and
    the range (min to max) over seeds as a band."""
    fig = Figure(figsize=(7, 4.2))
    ax = fig.add_subplot()
    longest = 0
    for i, (variant, runs) in enumerate(curves.items()):
        runs = [r for r in runs if r]
        if not runs:
            continue
        n = min(len(r) for r in runs)
        acc = np.array([r[:n] for r in runs], dtype=float)
        epochs = np.arange(1, n + 1)
        longest = max(longest, n)
        # Variants often tie (same accuracy at the same epoch): hollow markers of a different
        # shape and shrinking size keep every one of them visible on top of the others.
        ax.plot(epochs, acc.mean(0), marker=MARKERS[i % len(MARKERS)], ms=max(3, 11 - 1.5 * i),
                mfc="none", color=f"C{i}",
                label=f"{variant} ({len(runs)} seed{'s' if len(runs) > 1 else ''})")
        if len(runs) > 1:
            ax.fill_between(epochs, acc.min(0), acc.max(0), color=f"C{i}", alpha=0.2, lw=0)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if longest:  # whole epochs only, also for a 1- or 2-epoch study
        ax.set_xlim(0.5, longest + 0.5)
        if longest <= 12:
            ax.set_xticks(range(1, longest + 1))
    ax.set(xlabel="epoch", ylabel="test accuracy %",
           title=f"{title}: test accuracy (line: mean, band: min-max over seeds)")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:  # runs without any epoch yet have nothing to label
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def layer_rate_figure(rates: dict[str, list[dict[str, float]]], title: str = "") -> Figure:
    """``rates[variant][seed]`` = {layer: firing rate}: grouped bars of the mean over seeds per
    layer (error bars: std), layers in network order."""
    layers: list[str] = []
    for runs in rates.values():
        for run in runs:
            layers += [name for name in run if name not in layers]
    fig = Figure(figsize=(max(6, 0.6 * len(layers) * max(1, len(rates)) / 2 + 2), 4))
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(rates))
    x = np.arange(len(layers))
    for i, (variant, runs) in enumerate(rates.items()):
        values = np.array([[run.get(layer, np.nan) for layer in layers] for run in runs])
        with warnings.catch_warnings():  # a layer a variant lacks is a gap, not an error
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(values, 0) if len(values) else np.full(len(layers), np.nan)
            std = np.nanstd(values, 0) if len(values) > 1 else None
        ax.bar(x + (i - (len(rates) - 1) / 2) * width, mean, width, yerr=std, capsize=2,
               color=f"C{i}", label=variant)
    ax.set_xticks(x, layers, rotation=45, ha="right", fontsize=7)
    ax.set(ylabel="firing rate (spikes per neuron per step)", title=f"{title}: firing rate per layer")
    if rates:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
