"""Figures of a study (`quadfire.train.study` runs it, `quadfire.analysis.study` tabulates
it): test accuracy per epoch with a band over seeds, and the firing rate of every spiking
layer, one series per neuron variant.

Both take plain data (lists of numbers per variant and seed), so they do not depend on how
the runs were produced."""
from __future__ import annotations

import warnings

import numpy as np
from matplotlib.figure import Figure

from .plots import whole_ticks


MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def accuracy_figure(curves: dict[str, list[list[float]]], title: str = "") -> Figure:
    """``curves[variant][seed]`` = test accuracy per epoch: the mean over seeds as a line and
    the range (min to max) over seeds as a band."""
    # constrained layout makes room for the legend outside the axes, where it covers no point
    fig = Figure(figsize=(8, 4.2), layout="constrained")
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
    if longest:  # whole epochs only, also for a 1- or 2-epoch study
        whole_ticks(ax, 1, longest)
    ax.set(xlabel="epoch", ylabel="test accuracy %",
           title=f"{title}: test accuracy (line: mean, band: min-max over seeds)")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:  # runs without any epoch yet have nothing to label
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)
    return fig


def layer_rate_figure(rates: dict[str, list[dict[str, float]]], title: str = "",
                      labels: dict[str, str] | None = None) -> Figure:
    """``rates[variant][seed]`` = {layer: firing rate}: grouped bars of the mean over seeds per
    layer (error bars: std), layers in network order, named by ``labels[layer]`` where given
    (`quadfire.analysis.names.layer_labels`: ``"conv1 (body.1)"``)."""
    labels = labels or {}
    layers: list[str] = []
    for runs in rates.values():
        for run in runs:
            layers += [name for name in run if name not in layers]
    fig = Figure(figsize=(max(7, 0.6 * len(layers) * max(1, len(rates)) / 2 + 3), 4.2),
                 layout="constrained")
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
    ax.set_xticks(x, [labels.get(layer, layer) for layer in layers],
                  rotation=30 if len(layers) > 4 else 0, ha="right" if len(layers) > 4 else "center",
                  fontsize=8)
    seeds = sorted({len(runs) for runs in rates.values()}) or [0]
    over = f"mean over {'/'.join(map(str, seeds))} seed{'' if seeds == [1] else 's'}"
    if seeds[-1] > 1:
        over += "; bars: std"
    ax.set(xlabel="spiking layer: the layer feeding it (module path)",
           ylabel="firing rate (spikes per neuron per step)",
           title=f"{title}: firing rate per layer ({over})")
    if rates:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)
    return fig
