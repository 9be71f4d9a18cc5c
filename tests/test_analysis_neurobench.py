"""NeuroBench's metrics through the neurobench package, against hand counts and against
quadfire's `measure` where the two definitions agree (docs/analysis.md says where they differ).

The missing-extra error is tested in test_optional_extras.py, which runs without neurobench.
"""
import json

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

pytest.importorskip("neurobench", reason="neurobench is not installed "
                                         "(pip install 'quadfire[neurobench]')")

from quadfire.analysis.monitor import measure  # noqa: E402
from quadfire.analysis.neurobench_metrics import format_comparison, neurobench_metrics  # noqa: E402
from quadfire.analysis.neurobench_model import ObservedNeuronHook  # noqa: E402
from quadfire.cli import main  # noqa: E402
from quadfire.data.common import TensorPairs  # noqa: E402
from quadfire.layers import TimeFold  # noqa: E402
from quadfire.models import create_model  # noqa: E402
from quadfire.neurons import IF, LIF  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


def conv_net():
    """conv1 (encoding) 1->2, 3x3 pad 1: channel 0 copies the input, channel 1 is silent (its
    weights are zero); IF (v_th 1, reset to 0); conv2 2->3 (no zero weights); output [T, N, 3]
    after a global sum, so NeuroBench can score it."""
    conv1 = nn.Conv2d(1, 2, 3, padding=1, bias=False)
    conv2 = nn.Conv2d(2, 3, 3, padding=1)
    with torch.no_grad():
        conv1.weight.zero_()
        conv1.weight[0, 0, 1, 1] = 1.0
        conv2.weight.uniform_(0.5, 1.0)
    return nn.Sequential(TimeFold(conv1, encoding=True), IF(v_th=1.0), TimeFold(conv2),
                         TimeFold(nn.Flatten(2)), Sum())


class Sum(nn.Module):
    def forward(self, x):
        return x.sum(-1)


def pixels(value):
    """One time-major sample [T=2, C=1, 4, 4]: a corner and an interior pixel at `value`."""
    x = torch.zeros(1, 2, 1, 4, 4)  # [N, T, C, H, W]: the dataset's batch-first samples
    x[0, :, 0, 0, 0] = x[0, :, 0, 1, 2] = value
    return TensorPairs(x, torch.tensor([1]))


@pytest.mark.parametrize("value", [1.0, 2.5])
def test_synaptic_operations_against_a_hand_count(value):
    data, net = pixels(value), conv_net()
    nb = neurobench_metrics(net, data, time_major=True, batch_size=1)
    m = measure(net, [(data.samples.transpose(0, 1), data.labels)])
    # Both pixels fire at both steps (H = value >= 1, reset to 0). conv2's fan-out with 'same'
    # 3x3 padding: the corner spike feeds 2x2 outputs, the interior one 3x3, x 3 channels x 2
    # steps = 78 accumulates: quadfire's SOPs and NeuroBench's effective ACs.
    assert m["ops"]["sops"] == 78
    syn = nb["SynapticOperations"]
    # conv1: quadfire counts its dense MACs (10 x 10 in-bounds taps x 2 channels x 2 steps).
    # NeuroBench counts the non-zero inputs times the non-zero weights they meet (one centre
    # tap), 2 x 2 steps = 4, as ACs for a binary input and as MACs otherwise.
    assert m["ops"]["macs"] == 400
    if value == 1.0:
        assert (syn["Effective_ACs"], syn["Effective_MACs"]) == (78 + 4, 0)
    else:
        assert (syn["Effective_ACs"], syn["Effective_MACs"]) == (78, 4)
    # Dense: every tap of both layers for an all-ones input: 400 + 10 x 10 x 2 x 3 x 2.
    assert syn["Dense"] == 400 + 1200
    # ActivationSparsity is 1 - quadfire's firing rate: 4 spikes in 32 neurons x 2 steps.
    assert nb["ActivationSparsity"] == pytest.approx(1 - m["firing_rate"]) == 1 - 4 / 64
    # Every membrane is 0 after each step (rest, or reset after a spike): NeuroBench counts the
    # first step's 32 updates and no change after; quadfire counts all 64.
    assert (nb["MembraneUpdates"], m["ops"]["neuron_updates"]) == (32, 64)
    # Static: conv1's 18 weights (17 zero), conv2's 54 weights and 3 biases.
    assert nb["ParameterCount"] == 18 + 54 + 3
    assert nb["ConnectionSparsity"] == round(17 / 72, 4)  # NeuroBench rounds to 4 places
    assert 100 * nb["ClassificationAccuracy"] == m["accuracy"] and nb["samples"] == 1
    json.dumps(nb)  # report.json holds it


def test_membrane_updates_count_changed_states():
    # Identity encoding into three IF neurons with constant inputs 0.4, 0 and 1, T = 3:
    # A: U = 0.4, 0.8, 0 (fires at step 3): 1 + 2 changes; B: 0, 0, 0: 1; C fires every
    # step, U = 0, 0, 0: 1. NeuroBench: 5 updates per sample; quadfire: 9.
    enc = nn.Linear(3, 3, bias=False)
    with torch.no_grad():
        enc.weight.copy_(torch.eye(3))
    net = nn.Sequential(TimeFold(enc, encoding=True), IF(v_th=1.0))
    x = torch.tensor([0.4, 0.0, 1.0]).expand(2, 3, 3).contiguous()  # [N=2, T=3, 3]
    data = TensorPairs(x, torch.tensor([2, 1]))
    nb = neurobench_metrics(net, data, time_major=True, batch_size=2)
    assert nb["MembraneUpdates"] == 5
    assert nb["ActivationSparsity"] == pytest.approx(1 - 4 / 9)
    assert nb["ClassificationAccuracy"] == 0.5  # spike counts (1, 0, 3): both predict class 2


def test_the_hook_sees_each_steps_membrane():
    neuron = LIF(tau=2.0)
    hook = ObservedNeuronHook(neuron, "sn")
    x = torch.rand(4, 2, 5) * 2
    out = neuron.run(x)
    neuron(x)
    u, pre = torch.stack(hook.post_fire_mem_potential), torch.stack(hook.pre_fire_mem_potential)
    assert torch.equal(hook.activation_outputs[0], out.spikes)
    torch.testing.assert_close(u[-1], out.state)
    torch.testing.assert_close(pre[1:], u[:-1])
    for t in range(4):  # each step's state from the neuron's own step function
        assert torch.equal(neuron.step(x[t], pre[t])[1], u[t])
    hook.close()
    neuron(x)
    assert len(hook.activation_outputs) == 1


@pytest.mark.parametrize("time_major", [False, True])
def test_agrees_with_measure_on_a_registered_model(time_major):
    torch.manual_seed(0)
    model = create_model("convnet", T=3, width=4, hidden=16)
    shape = (6, 3, 1, 8, 8) if time_major else (6, 1, 8, 8)
    data = TensorPairs(torch.rand(shape), torch.randint(0, 10, (6,)))
    nb = neurobench_metrics(model, data, time_major, batch_size=4, max_batches=1)
    assert nb["samples"] == 4
    x, y = data.samples[:4], data.labels[:4]
    m = measure(model, [(x.transpose(0, 1) if time_major else x, y)])
    assert 100 * nb["ClassificationAccuracy"] == pytest.approx(m["accuracy"])
    assert nb["ActivationSparsity"] == pytest.approx(1 - m["firing_rate"])
    syn = nb["SynapticOperations"]
    # The hidden linear follows an average pool: NeuroBench counts its non-binary input as
    # MACs, quadfire as SOPs; together they match quadfire's synaptic operations.
    pooled = sum(s["sops_per_sample"] for s in m["synapses"].values() if not s["binary_input"]
                 and not s["encoding"])
    assert syn["Effective_ACs"] == pytest.approx(m["ops"]["sops"] - pooled)
    assert syn["Effective_MACs"] == pytest.approx(m["ops"]["macs"] + pooled)  # no zero pixels
    assert nb["ParameterCount"] == sum(p.numel() for p in model.parameters())
    assert model.training  # mode restored
    table = format_comparison(nb, m)
    assert "NeuroBench 2.3" in table and "SOPs" in table and "membrane updates" in table


def test_eval_cli_prints_neurobench_beside_quadfire(tmp_path, capsys):
    sets = ["--set", f"out_dir={tmp_path}"]
    assert main(["train", "digits-qif", "--smoke", *sets]) == 0
    run = tmp_path / "digits-qif-s0"
    capsys.readouterr()
    assert main(["eval", str(run), "--smoke", "--neurobench"]) == 0
    out = capsys.readouterr().out
    assert "NeuroBench 2.3" in out and "synaptic ops, ACs" in out and "energy (uJ)" in out
    report = json.loads((run / "report.json").read_text())["eval"]
    assert report["neurobench"]["SynapticOperations"]["Dense"] > 0
    assert 100 * report["neurobench"]["ClassificationAccuracy"] == pytest.approx(report["accuracy"])
