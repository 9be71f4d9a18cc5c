"""NIR interop with Sinabs and Rockpool (docs/export.md, "Other simulators"); snnTorch and
Norse are in test_nir_interop.py, whose networks and helpers these tests share.

Neither tool installs beside the versions in constraints.txt without a compromise, so each
test skips, saying why, where its tool is absent:

- Sinabs 3.1.3 declares ``nir<=1.0.4``, and quadfire's export needs nir >= 1.0.6 (the first
  with ``v_reset``); Sinabs itself runs with nir 1.0.8. Check it in a venv of its own:
  ``pip install -c constraints.txt -e '.[dev]' && pip install --no-deps sinabs==3.1.3 samna pbr``.
- Rockpool 3.1.0 installs cleanly (the dev extra has it); its NIR importer predates nir 1.0,
  so the tests pin what fails.
"""
import logging

import numpy as np
import pytest
import torch

from quadfire.export import from_nir, to_nir
from quadfire.neurons import IF, LIF

from test_nir_interop import N, T, conv, dense, inputs, reference  # noqa: E402


@pytest.fixture(autouse=True)
def quiet_peers():
    logging.getLogger().setLevel(logging.ERROR)
    yield


def _sinabs():
    return pytest.importorskip(
        "sinabs", reason="Sinabs is not installed: sinabs 3.1.3 declares nir<=1.0.4, below the "
                         "nir>=1.0.6 quadfire needs, so it has a venv of its own (module docstring)")


def step_sinabs(module, x):
    """Sinabs' *Squeeze layers take batch and time folded batch-major, [N*T, ...]."""
    flat = x.transpose(0, 1).reshape(N * T, *x.shape[2:])
    with torch.no_grad():
        out = module(flat)
    out = out[0] if isinstance(out, tuple) else out
    return out.reshape(N, T, *out.shape[1:]).transpose(0, 1)


def fix_sinabs_neurons(module, graph):
    """Sinabs 3.1.3 imports NIR's LIF and IF as neurons NIR does not describe: several spikes
    per step (MultiSpike), a subtractive reset, IF with a floor at -v_threshold, and LIF with
    the exact decay exp(-1/tau) per step, whatever dt and r say. Make each the neuron its node
    describes at dt = 1: one spike, hard reset to 0, no floor, leak 1 - 1/tau, input unscaled
    (r dt / tau = 1 for LIF, r dt = 1 for IF)."""
    import nir
    import sinabs.layers as sl
    from sinabs.activation import MembraneReset, SingleSpike

    for name, node in graph.nodes.items():
        if not isinstance(node, (nir.LIF, nir.IF)):
            continue
        assert np.all(node.v_reset == 0), "MembraneReset adds reset_value to every neuron"
        layer = getattr(module, name)
        layer.spike_fn, layer.reset_fn, layer.min_v_mem = SingleSpike, MembraneReset(0.0), None
        if isinstance(node, nir.LIF):
            tau = float(node.tau.flat[0])
            assert np.all(node.tau == tau) and np.all(node.r == tau), "uniform tau, r = tau/dt"
            # train_alphas: the layer keeps the leak factor alpha itself (v = alpha v + x)
            lif = sl.LIFSqueeze(tau_mem=tau, batch_size=layer.batch_size, train_alphas=True,
                                spike_threshold=layer.spike_threshold, spike_fn=SingleSpike,
                                reset_fn=MembraneReset(0.0), min_v_mem=None, norm_input=False)
            with torch.no_grad():
                lif.alpha_mem.fill_(1.0 - 1.0 / tau)
            # nirtorch's GraphExecutor calls each graph node's own module: replace it there
            setattr(module, name, lif)
            next(n for n in module.execution_order if n.name == name).elem = lif


def test_sinabs_if_import_is_not_nir_if_and_the_workaround_is_exact():
    sinabs = _sinabs()
    net, x = dense(IF), inputs((20,))
    ref = reference(net, x)
    graph = to_nir(net, (20,), dt=1.0)
    assert not torch.equal(step_sinabs(sinabs.from_nir(graph, batch_size=N), x), ref)
    module = sinabs.from_nir(graph, batch_size=N)
    fix_sinabs_neurons(module, graph)
    assert torch.equal(step_sinabs(module, x), ref)


def test_sinabs_runs_quadfire_lif_with_the_leak_set():
    sinabs = _sinabs()
    net, x = dense(lambda: LIF(2.0)), inputs((20,))
    ref = reference(net, x)
    graph = to_nir(net, (20,), dt=1.0)
    module = sinabs.from_nir(graph, batch_size=N)
    fix_sinabs_neurons(module, graph)
    assert torch.equal(step_sinabs(module, x), ref)


def test_sinabs_reads_flatten_right_and_fails_on_lif_after_a_conv():
    """Unlike snnTorch and Norse, Sinabs shifts NIR's batch-free Flatten past the batch, so
    an IF conv net runs as exported. A LIF after a conv does not import: Sinabs checks
    ``any(node.v_leak) != 0``, which Python's any() cannot do on a (C, H, W) array."""
    sinabs = _sinabs()
    net, x = conv(IF), inputs((1, 8, 8))
    ref = reference(net, x)
    graph = to_nir(net, (1, 8, 8), dt=1.0)
    module = sinabs.from_nir(graph, batch_size=N)
    fix_sinabs_neurons(module, graph)
    assert torch.equal(step_sinabs(module, x), ref)
    with pytest.raises(ValueError, match="truth value of an array"):
        sinabs.from_nir(to_nir(conv(lambda: LIF(2.0)), (1, 8, 8)), batch_size=N)


def test_sinabs_export_runs_in_quadfire():
    """An IAF network with one spike per step and reset to zero is NIR's IF at dt = 1. Sinabs
    writes torch tensors where NIR has numpy arrays (quadfire converts them)."""
    sinabs = _sinabs()
    import sinabs.layers as sl
    from sinabs.activation import MembraneReset, SingleSpike
    from torch import nn

    torch.manual_seed(0)
    iaf = lambda: sl.IAFSqueeze(batch_size=N, spike_fn=SingleSpike,  # noqa: E731
                                reset_fn=MembraneReset(0.0), min_v_mem=None)
    net = nn.Sequential(nn.Linear(20, 30), iaf(), nn.Linear(30, 10), iaf())
    with torch.no_grad():
        net[0].weight.mul_(3)
        net[2].weight.mul_(4)
    x = inputs((20,))
    ref = step_sinabs(net, x)
    assert ref.sum() > 10
    graph = sinabs.to_nir(net, x[0])
    with torch.no_grad():
        assert torch.equal(from_nir(graph, dt=1.0)(x), ref)


# -- Rockpool ---------------------------------------------------------------------------------

def _rockpool():
    return pytest.importorskip("rockpool", reason="Rockpool is not installed (the dev extra has it)")


def test_rockpool_cannot_import_nir_1_lif():
    """Rockpool 3.1.0's importer reads `LIF.tau_mem`, a field of NIR before 1.0 (nir 1.0 calls
    it `tau`), so it fails on every nir 1.0 LIF node, quadfire's or any other tool's; it has
    no mapping for IF at all."""
    _rockpool()
    from rockpool.nn.modules import from_nir as rockpool_from_nir

    with pytest.raises(AttributeError, match="tau_mem"):
        rockpool_from_nir(to_nir(dense(lambda: LIF(2.0)), (20,)))
    with pytest.raises(NotImplementedError, match="IF"):
        rockpool_from_nir(to_nir(dense(IF), (20,)))


def test_rockpool_export_is_a_neuron_quadfire_does_not_have():
    """Rockpool writes its LIFTorch as NIR's CubaLIF (a synaptic current filter before the
    membrane): quadfire has no such neuron and says so."""
    _rockpool()
    from rockpool.nn.combinators import Sequential
    from rockpool.nn.modules import LIFTorch, LinearTorch, to_nir as rockpool_to_nir

    graph = rockpool_to_nir(Sequential(LinearTorch((20, 30)), LIFTorch(30)))
    assert {type(n).__name__ for n in graph.nodes.values()} >= {"CubaLIF"}
    from quadfire.errors import InputTypeError

    with pytest.raises(InputTypeError, match="of type CubaLIF has no quadfire layer"):
        from_nir(graph)  # Rockpool's torch-tensor fields are read as the numpy arrays NIR means
