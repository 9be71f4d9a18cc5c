"""NeuroBench's metrics of a quadfire model, computed by the `neurobench` package itself
(``pip install 'quadfire[neurobench]'``), and a table of them beside quadfire's `measure`.

`neurobench_metrics` runs NeuroBench's `Benchmark` over a dataset with the model wrapped as a
`NeuroBenchModel` (`quadfire.analysis.neurobench_model`), NeuroBench's `ChooseMaxCount`
postprocessor (argmax of the time-summed logits: quadfire's prediction) and the metrics in
`STATIC` and `WORKLOAD`. Where its definitions differ from quadfire's: docs/analysis.md.
"""
from __future__ import annotations

import io
from contextlib import redirect_stdout

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from ..errors import require_extra

STATIC = ("Footprint", "ConnectionSparsity", "ParameterCount")
WORKLOAD = ("ClassificationAccuracy", "ActivationSparsity", "SynapticOperations",
            "MembraneUpdates")


def require_neurobench():
    """The neurobench package, or a MissingExtraError naming the extra that installs it."""
    return require_extra("neurobench", "neurobench", "NeuroBench's metrics (quadfire eval "
                         "--neurobench)")


def neurobench_metrics(model: torch.nn.Module, dataset: Dataset, time_major: bool,
                       batch_size: int = 64, max_batches: int | None = None,
                       device: torch.device | str | None = None) -> dict:
    """NeuroBench's `STATIC` and `WORKLOAD` metrics of `model` on the first
    ``max_batches * batch_size`` samples of `dataset` (all when None).

    `dataset` yields (sample, label) with samples ``[T, ...]`` when `time_major` (event frames,
    sequences) and ``[C, H, W]`` otherwise; the model's train/eval mode is restored after.
    Returns NeuroBench's result dict (workload metrics per sample, ClassificationAccuracy as
    a fraction) plus "neurobench_version" and "samples".
    """
    nb = require_neurobench()
    from neurobench.benchmarks import Benchmark
    from neurobench.metrics import static, workload
    from neurobench.processors.postprocessors import ChooseMaxCount

    from .neurobench_model import QuadfireModel

    n = len(dataset) if max_batches is None else min(len(dataset), max_batches * batch_size)
    # Default collation stacks samples batch first: NeuroBench's layout (its per-sample
    # averages divide by the batch's first dimension).
    loader = DataLoader(Subset(dataset, range(n)), batch_size=batch_size)
    metrics = [[getattr(static, m) for m in STATIC], [getattr(workload, m) for m in WORKLOAD]]
    was_training = model.training
    wrapped = QuadfireModel(model, time_major)
    bench = Benchmark(wrapped, loader, [], [ChooseMaxCount()], metrics)
    printed = io.StringIO()
    try:
        # NeuroBench prints a metric's exception and reports 0 or None in its place; its
        # printout is kept to turn that into an error (the progress bar goes to stderr).
        with redirect_stdout(printed):
            results = bench.run(quiet=False, device=None if device is None else str(device))
    finally:
        wrapped.cleanup_hooks()
        model.train(was_training)
    failed = [line for line in printed.getvalue().splitlines() if line.startswith("Error running")]
    if failed:
        raise RuntimeError(f"NeuroBench {nb.__version__} could not compute: {'; '.join(failed)}")
    return {**results, "neurobench_version": nb.__version__, "samples": n}


def _g(value) -> str:
    return "-" if value is None else f"{value:.4g}"


def format_comparison(nb: dict, m: dict) -> str:
    """NeuroBench's figures (`neurobench_metrics`) beside quadfire's (`measure`), per sample."""
    syn, ops = nb["SynapticOperations"], m["ops"]
    rows = [
        ("accuracy %", 100 * nb["ClassificationAccuracy"], m.get("accuracy"), ""),
        ("activation sparsity", nb["ActivationSparsity"], 1 - m["firing_rate"], "1 - firing rate"),
        ("synaptic ops, ACs", syn["Effective_ACs"], ops["sops"], "SOPs"),
        ("synaptic ops, MACs", syn["Effective_MACs"], ops["macs"], "MACs of the encoding layer"),
        ("synaptic ops, dense", syn["Dense"], None, ""),
        ("membrane updates", nb["MembraneUpdates"], ops["neuron_updates"], "neuron updates"),
        ("parameters", nb["ParameterCount"], None, ""),
        ("footprint (bytes)", nb["Footprint"], None, ""),
        ("connection sparsity", nb["ConnectionSparsity"], None, ""),
        ("energy (uJ)", None, m["energy_pj"]["total"] / 1e6, "45 nm estimate"),
    ]
    lines = [f"NeuroBench {nb['neurobench_version']} on {nb['samples']} samples, per sample "
             f"(docs/analysis.md says where the definitions differ)",
             f"{'metric':<22}{'NeuroBench':>12}{'quadfire':>12}  quadfire's name"]
    lines += [f"{name:<22}{_g(a):>12}{_g(b):>12}  {note}".rstrip() for name, a, b, note in rows]
    return "\n".join(lines)
