"""Figures of a network's activity and of a run's training: spike rasters, membrane traces
(the charged potential H that is compared with v_th), and training curves from metrics.csv."""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from torch import nn

from ..errors import DataNotFoundError, InputError
from .monitor import observed_neurons
from .names import layer_labels


@dataclass(frozen=True)
class LayerRecord:
    """One spiking layer on one sample: spikes and H as [T, neurons] float arrays (the
    layer's per-sample shape flattened), the threshold and the layer's type name."""

    spikes: np.ndarray
    h: np.ndarray
    v_th: float
    kind: str
    label: str = ""  # readable name, "conv1 (body.1)" (`quadfire.analysis.names`)


@torch.no_grad()
def record(model: nn.Module, x: torch.Tensor, sample: int = 0) -> dict[str, LayerRecord]:
    """Run `model` (eval mode) on the batch `x` and keep sample `sample` of every spiking layer,
    in execution order."""
    names = {m: n for n, m in model.named_modules()}
    labels = layer_labels(model)
    out: dict[str, LayerRecord] = {}

    def keep(module, x, res):
        if not 0 <= sample < res.spikes.shape[1]:
            raise InputError(f"sample {sample} is out of range for a batch of "
                             f"{res.spikes.shape[1]}")
        v_th = module.params(x.dim() - 1).v_th
        out[names[module]] = LayerRecord(
            res.spikes[:, sample].flatten(1).double().cpu().numpy(),
            res.trace[:, sample].flatten(1).double().cpu().numpy(),
            float(v_th.mean()) if isinstance(v_th, torch.Tensor) else float(v_th),
            type(module).__name__, labels.get(names[module], names[module]))

    was_training = model.training
    try:
        with observed_neurons(model, keep) as neurons:
            if not neurons:
                raise InputError("the model has no spiking layers (MultiStepNeuron modules) "
                                 "to record")
            model.eval()
            model(x)
    finally:
        model.train(was_training)
    return out


def _select(records: dict[str, LayerRecord], layers) -> dict[str, LayerRecord]:
    if not layers:
        return records
    missing = [n for n in layers if n not in records]
    if missing:
        raise InputError(f"unknown spiking layer(s) {missing}; the model has {list(records)}")
    return {n: records[n] for n in layers}


def raster(records: dict[str, LayerRecord], layers=None, max_neurons: int = 64) -> Figure:
    """Spike raster per layer: time step on x, neuron index (first `max_neurons`) on y."""
    chosen = _select(records, layers)
    fig = Figure(figsize=(7, 1.8 * len(chosen) + 0.6))
    axes = fig.subplots(len(chosen), 1, squeeze=False)[:, 0]
    for ax, (name, rec) in zip(axes, chosen.items()):
        s = rec.spikes[:, :max_neurons]
        t, n = np.nonzero(s)
        ax.scatter(t + 1, n, marker="|", s=40, color="k")
        ax.set_xlim(0.5, s.shape[0] + 0.5)
        ax.set_ylim(-1, s.shape[1])
        ax.set_ylabel("neuron index")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        shown = (f"neurons 0-{s.shape[1] - 1} of {rec.spikes.shape[1]} shown"
                 if s.shape[1] < rec.spikes.shape[1] else f"all {s.shape[1]} neurons")
        # the rate is the whole layer's, not only the neurons drawn
        ax.set_title(f"{rec.label or name}: {rec.kind}, {shown}; "
                     f"layer firing rate {rec.spikes.mean():.3f} spikes per neuron per step",
                     fontsize=9)
    axes[-1].set_xlabel("time step")
    fig.tight_layout()
    return fig


def traces(records: dict[str, LayerRecord], layer: str, neurons=(0, 1, 2)) -> Figure:
    """H[t] of the chosen neurons of `layer`, with the threshold and the spikes marked."""
    rec = _select(records, [layer])[layer]
    bad = [i for i in neurons if not 0 <= i < rec.h.shape[1]]
    if bad:
        raise InputError(f"neuron indices {bad} out of range: {layer} has {rec.h.shape[1]} neurons")
    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot()
    t = np.arange(1, rec.h.shape[0] + 1)
    for j, i in enumerate(neurons):
        ax.plot(t, rec.h[:, i], marker="o", ms=3, color=f"C{j}", label=f"neuron {i}")
        fired = rec.spikes[:, i] > 0
        ax.plot(t[fired], rec.h[fired, i], "*", ms=10, color=f"C{j}")
    ax.axhline(rec.v_th, color="C3", ls="--", lw=0.8, label="v_th")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(xlabel="time step", ylabel="charged potential H (same units as v_th)",
           title=f"{rec.label or layer}: {rec.kind}; * = spike")
    ax.legend(fontsize=8)
    return fig


def read_metrics(run_dir: str | Path) -> dict[str, np.ndarray]:
    """metrics.csv of a run directory as columns of floats (non-numeric columns dropped)."""
    path = Path(run_dir) / "metrics.csv"
    if not path.is_file():
        raise DataNotFoundError(f"no metrics.csv in {str(run_dir)!r}: expected a run directory "
                                f"written by `quadfire train`")
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise InputError(f"{path} has no rows yet")
    cols = {}
    for key in rows[0]:
        try:
            cols[key] = np.array([float(r[key]) for r in rows])
        except (TypeError, ValueError):
            continue
    if "epoch" not in cols:
        raise InputError(f"{path} has no numeric 'epoch' column; columns: {list(rows[0])}")
    return cols


def whole_ticks(ax, first: int, last: int) -> None:
    """x from `first` to `last` in whole numbers only (epochs): every one of them up to 12,
    MaxNLocator's integer choice beyond (it falls back to fractions below two ticks)."""
    ax.set_xlim(first - 0.5, last + 0.5)
    if last - first < 12:
        ax.set_xticks(range(first, last + 1))
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def curves(run_dir: str | Path) -> Figure:
    """Loss, accuracy and other numeric columns of metrics.csv against epoch."""
    cols = read_metrics(run_dir)
    epoch = cols.pop("epoch") + 1
    groups = {"loss": [k for k in cols if "loss" in k],
              "accuracy %": [k for k in cols if "acc" in k]}
    groups["learning rate"] = [k for k in cols if k == "lr"]
    named = [k for ks in groups.values() for k in ks]
    rest = [k for k in cols if k not in named]
    if rest:
        groups["other"] = rest
    groups = {g: ks for g, ks in groups.items() if ks}
    fig = Figure(figsize=(6, 2.4 * len(groups) + 0.4))
    axes = fig.subplots(len(groups), 1, squeeze=False)[:, 0]
    for ax, (label, keys) in zip(axes, groups.items()):
        for k in keys:
            label_k = "at the epoch's first step" if k == "lr" else k.replace("_", " ")
            ax.plot(epoch, cols[k], marker="o", ms=3, label=label_k)
        ax.set_ylabel(label)
        ax.legend(fontsize=8)
        whole_ticks(ax, int(epoch.min()), int(epoch.max()))
    axes[-1].set_xlabel("epoch")
    axes[0].set_title(f"training curves: {Path(run_dir).name}", fontsize=9)
    fig.tight_layout()
    return fig
