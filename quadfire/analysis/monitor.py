"""Per-layer monitors over a data loader: firing rates, membrane histograms, SOPs, energy.

`measure(model, loader)` is what `quadfire eval` prints and `report.json` stores; its keys are
documented in docs/analysis.md. Everything is counted from the real forward pass (forward
hooks on synapses, the neurons' observers for the neurons), so nothing about the
architecture is assumed beyond "spiking layers are `MultiStepNeuron` modules and synapses are
nn.Conv1d / nn.Conv2d / nn.Linear".
"""
from __future__ import annotations

from contextlib import contextmanager
from itertools import islice
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..layers import TimeFold
from ..neurons import MultiStepNeuron
from . import energy
from .names import layer_labels
from ..errors import DataError, InputError, ParameterError

HIST_BINS = 140
HIST_SPAN = (-4.0, 3.0)  # histogram range of H - v_th


def inside_window(h: torch.Tensor, p) -> torch.Tensor:
    """Boolean mask of H values within the surrogate band ``abs(H - v_th - offset) < width / 2``.

    width = 1/peak for every shape (`quadfire.functional.surrogate`), so this is where the
    window carries most of its gradient; per-channel windows broadcast against one step."""
    w = p.window
    return ((h - p.v_th - w.offset).abs() < w.width / 2)


class _NeuronStats:
    def __init__(self, module: MultiStepNeuron):
        self.kind = type(module).__name__
        self.model = module.params().model
        self.update_pj = energy.neuron_update_pj(module)
        self.window = None
        self.spikes = 0.0
        self.count = 0
        self.inside = 0.0
        self.per_step: torch.Tensor | None = None
        self.neurons = 0
        self.hist = torch.zeros(HIST_BINS + 2, dtype=torch.float64)  # + under/overflow

    def add(self, module: MultiStepNeuron, x: torch.Tensor, out) -> None:
        """Count one call's `NeuronOutput` (run with trace=True) on input ``x [T, N, ...]``."""
        p = module.params(x.dim() - 1)
        h = out.trace
        self.window = p.window
        self.spikes += out.spikes.double().sum().item()
        self.count += out.spikes.numel()
        self.neurons = out.spikes[0, 0].numel()
        steps = out.spikes.double().flatten(1).sum(1).cpu()
        self.per_step = steps if self.per_step is None else self.per_step + steps
        self.inside += inside_window(h, p).double().sum().item()
        rel = (h - p.v_th).double().flatten().cpu()
        lo, hi = HIST_SPAN
        self.hist[0] += (rel < lo).sum()
        self.hist[-1] += (rel >= hi).sum()
        self.hist[1:-1] += torch.histc(rel, HIST_BINS, lo, hi)  # histc counts hi in the last bin
        self.hist[HIST_BINS] -= (rel == hi).sum()

    def report(self, samples: int) -> dict:
        w = self.window
        lo, hi = HIST_SPAN
        return {
            "type": self.kind,
            "model": self.model,
            "neurons": self.neurons,
            "firing_rate": self.spikes / max(self.count, 1),
            "rate_per_step": (self.per_step / max(samples * self.neurons, 1)).tolist(),
            "spikes_per_sample": self.spikes / max(samples, 1),
            "window_fraction": self.inside / max(self.count, 1),
            "window": {"shape": w.shape, "width": _num(w.width), "offset": _num(w.offset)},
            "hist": {"edges_rel_v_th": torch.linspace(lo, hi, HIST_BINS + 1).tolist(),
                     "counts": self.hist[1:-1].tolist(), "below": self.hist[0].item(),
                     "above": self.hist[-1].item()},
            "updates_per_sample": self.count / max(samples, 1),
            "update_pj": self.update_pj,
        }


def _num(v):
    if isinstance(v, torch.Tensor):
        return v.detach().double().mean().item()
    return float(v)


class _SynapseStats:
    def __init__(self, module: nn.Module, encoding: bool):
        self.kind = type(module).__name__
        self.encoding = encoding
        self.ops = 0
        self.nonzero = 0
        self.binary = True

    def add(self, module: nn.Module, x: torch.Tensor) -> None:
        if self.encoding:
            self.ops += energy.dense_macs(module, x)
        else:
            self.ops += energy.synaptic_ops(module, x)
            self.binary &= bool(((x == 0) | (x == 1)).all())
        self.nonzero += int((x != 0).sum().item())

    def report(self, samples: int) -> dict:
        n = max(samples, 1)
        return {"type": self.kind, "encoding": self.encoding,
                "macs_per_sample" if self.encoding else "sops_per_sample": self.ops / n,
                "nonzero_inputs_per_sample": self.nonzero / n,
                "binary_input": None if self.encoding else self.binary}


@contextmanager
def observed_neurons(model: nn.Module, on_run: Callable):
    """While active, every `MultiStepNeuron` of `model` reports ``on_run(module, x, out)``
    (`out` its `NeuronOutput`, trace included) after each forward call, through the neurons'
    public observers (`MultiStepNeuron.register_observer`); contexts nest. Yields the list of
    neuron modules."""
    neurons = [m for m in model.modules() if isinstance(m, MultiStepNeuron)]
    handles = [m.register_observer(on_run) for m in neurons]
    try:
        yield neurons
    finally:
        for h in handles:
            h.remove()


def encoding_layers(model: nn.Module) -> set[nn.Module]:
    """The synapses that see the analogue input and so count MACs, not SOPs: those a model
    marks (``TimeFold(..., encoding=True)``, as quadfire's models do for their first layer);
    for a model with no marks, the first synapse in definition order."""
    marked = {m.module for m in model.modules()
              if isinstance(m, TimeFold) and m.encoding and isinstance(m.module, energy.SYNAPTIC)}
    if marked:
        return marked
    first = next((m for m in model.modules() if isinstance(m, energy.SYNAPTIC)), None)
    return set() if first is None else {first}


def time_mean_scores(out: torch.Tensor, y: torch.Tensor) -> tuple[float, int]:
    """The summed cross-entropy and the number correct of the time-mean output [T, N, K]
    against labels y [N]: what a test set's loss and accuracy are made of (training's
    evaluation and `measure` both count with this)."""
    logits = out.float().mean(0)
    return (F.cross_entropy(logits, y, reduction="sum").item(),
            int((logits.argmax(1) == y).sum().item()))


def _batch_input(batch):
    return batch[0] if isinstance(batch, (tuple, list)) else batch


@torch.no_grad()
def measure(model: nn.Module, loader, max_batches: int | None = None,
            device: torch.device | str | None = None, metrics: dict | None = None) -> dict:
    """Run `model` (in eval mode) over up to `max_batches` batches of `loader` and return
    per-layer firing rates, membrane histograms, op counts and the energy per sample.

    `loader` yields inputs or (input, target, ...) tuples; the model maps them to
    [T, N, classes]. The model's train/eval mode is restored afterwards. The accuracy (%)
    and loss of the time-mean output are those of the labelled batches run, unless
    `metrics` ({"accuracy", "loss"}) already holds them for this model and test set (a
    training run's final evaluation): they are then reported as given, not computed again.
    """
    if max_batches is not None and max_batches < 1:
        raise ParameterError(f"max_batches must be >= 1 or None, got {max_batches!r}")
    names = {m: n for n, m in model.named_modules()}
    neurons: dict[str, _NeuronStats] = {}
    synapses: dict[str, _SynapseStats] = {}

    def on_neuron(module, x, out):
        name = names[module]
        if name not in neurons:
            neurons[name] = _NeuronStats(module)
        neurons[name].add(module, x, out)

    encoders = encoding_layers(model)

    def on_synapse(module, args, output):
        name = names[module]
        if name not in synapses:
            synapses[name] = _SynapseStats(module, encoding=module in encoders)
        synapses[name].add(module, args[0])

    hooks = [m.register_forward_hook(on_synapse) for m in model.modules()
             if isinstance(m, energy.SYNAPTIC)]
    was_training = model.training
    model.eval()
    samples = batches = correct = labelled = 0
    loss = 0.0
    T = None
    try:
        with observed_neurons(model, on_neuron):
            for batch in islice(loader, max_batches):
                x = _batch_input(batch)
                out = model(x.to(device) if device is not None else x)
                if out.dim() < 2:
                    raise InputError(f"measure expects model outputs [T, N, classes], got "
                                     f"shape {tuple(out.shape)}")
                T, samples, batches = out.shape[0], samples + out.shape[1], batches + 1
                if metrics is None and isinstance(batch, (tuple, list)) and len(batch) > 1 \
                        and out.dim() == 3:
                    y = batch[1].to(out.device)
                    batch_loss, batch_correct = time_mean_scores(out, y)
                    loss, correct = loss + batch_loss, correct + batch_correct
                    labelled += y.shape[0]
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    if batches == 0:
        raise DataError("measure got an empty loader: no batches to run")
    unknown = unaccounted(model) + [
        f"{names[m]} ({type(m).__name__}: a MultiStepNeuron that reported no run; its forward "
        f"bypasses MultiStepNeuron.forward)" for m in model.modules()
        if isinstance(m, MultiStepNeuron) and names[m] not in neurons]
    if not neurons:
        raise InputError("measure found no spiking layer in this model (a spiking layer is a "
                         "quadfire.neurons.MultiStepNeuron; docs/neuron.md, 'Your own neuron')"
                         + (f"; modules it cannot account for: {', '.join(unknown)}"
                            if unknown else ""))
    result = summarize(neurons, synapses, samples, batches, T)
    labels = layer_labels(model)
    for name, layer in result["layers"].items():  # for figures: "conv1 (body.1)"
        layer["label"] = labels.get(name, name)
    result["unaccounted"] = unknown
    if metrics is not None:
        result["accuracy"], result["loss"] = float(metrics["accuracy"]), float(metrics["loss"])
    elif labelled:  # the time-mean output's accuracy and loss, as `quadfire eval` reports them
        result["accuracy"], result["loss"] = 100 * correct / labelled, loss / labelled
    return result


def summarize(neurons: dict, synapses: dict, samples: int, batches: int, T: int) -> dict:
    layers = {n: s.report(samples) for n, s in neurons.items()}
    syn = {n: s.report(samples) for n, s in synapses.items()}
    macs = sum(s["macs_per_sample"] for s in syn.values() if s["encoding"])
    sops = sum(s["sops_per_sample"] for s in syn.values() if not s["encoding"])
    updates = sum(layer["updates_per_sample"] for layer in layers.values())
    neuron_pj = sum(layer["updates_per_sample"] * layer["update_pj"] for layer in layers.values())
    spikes = sum(layer["spikes_per_sample"] for layer in layers.values())
    return {
        "samples": samples, "batches": batches, "T": T,
        "firing_rate": spikes / updates if updates else 0.0,
        "layers": layers,
        "synapses": syn,
        "ops": {"macs": macs, "sops": sops, "neuron_updates": updates},
        "energy_pj": energy.energy_pj(macs, sops, neuron_pj),
    }


def unaccounted(model: nn.Module) -> list[str]:
    """Leaf modules whose work `measure` cannot count: modules defined outside torch and
    quadfire that are neither a `MultiStepNeuron` nor a synapse (a neuron written as a plain
    nn.Module, say), as "name (Class)"."""
    out = []
    for name, m in model.named_modules():
        if isinstance(m, (MultiStepNeuron, *energy.SYNAPTIC)) or any(m.children()):
            continue
        if not type(m).__module__.startswith(("torch.", "quadfire.")):
            out.append(f"{name} ({type(m).__name__})")
    return out


def format_measure(result: dict) -> str:
    """A plain-text table of `measure`'s result for the terminal."""
    lines = [f"{'layer':<22}{'type':<6}{'rate':>8}{'in window':>11}"]
    for name, layer in result["layers"].items():
        lines.append(f"{name:<22}{layer['type']:<6}{layer['firing_rate']:>8.4f}"
                     f"{layer['window_fraction']:>11.4f}")
    ops, e = result["ops"], result["energy_pj"]
    lines.append(f"per sample: {ops['macs']:.4g} MACs (encoding), {ops['sops']:.4g} SOPs, "
                 f"{ops['neuron_updates']:.4g} neuron updates")
    lines.append(f"energy per sample: {e['total'] / 1e6:.4g} uJ (MAC {e['mac'] / 1e6:.4g}, "
                 f"SOP {e['sop'] / 1e6:.4g}, neuron {e['neuron'] / 1e6:.4g})")
    if result.get("unaccounted"):
        lines.append(f"not counted (not a MultiStepNeuron or synapse): "
                     f"{', '.join(result['unaccounted'])}")
    return "\n".join(lines)
