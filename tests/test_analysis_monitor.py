"""Monitors and energy: SOPs against a hand count, window fractions against known inputs."""
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
import torch
from torch import nn

from quadfire.analysis import energy
from quadfire.analysis.monitor import format_measure, measure
from quadfire.layers import TimeFold
from quadfire.neurons import IF, LIF, QIF


def _two_layer_net():
    """conv1 (encoding) 1->2, 3x3 pad 1: channel 0 copies the input, channel 1 is silent;
    IF (v_th 1); conv2 2->3, 3x3 pad 1."""
    conv1 = nn.Conv2d(1, 2, 3, padding=1, bias=False)
    conv2 = nn.Conv2d(2, 3, 3, padding=1)
    with torch.no_grad():
        conv1.weight.zero_()
        conv1.weight[0, 0, 1, 1] = 1.0
        conv2.weight.normal_()
    return nn.Sequential(TimeFold(conv1), IF(v_th=1.0), TimeFold(conv2))


def test_sops_and_energy_match_hand_count():
    x = torch.zeros(2, 1, 1, 4, 4)  # [T=2, N=1, C, H, W]
    x[:, 0, 0, 0, 0] = 1.0  # a corner pixel
    x[:, 0, 0, 1, 2] = 1.0  # an interior pixel
    r = measure(_two_layer_net(), [x])
    # Each input reaches 1 spike per step (H = 1 >= v_th, reset to 0): 2 spikes x 2 steps.
    layer = r["layers"]["1"]
    assert layer["spikes_per_sample"] == 4 and layer["neurons"] == 32
    assert layer["firing_rate"] == pytest.approx(4 / 64)
    # conv2 fan-out with 'same' 3x3 padding: corner pixel feeds 2x2 outputs, interior 3x3,
    # times 3 output channels, for each of the 2 steps.
    assert r["synapses"]["2.module"]["sops_per_sample"] == (4 + 9) * 3 * 2
    assert r["synapses"]["2.module"]["binary_input"] is True
    # Encoding MACs: in-bounds taps per output of a 4x4 'same' conv are [2,3,3,2] per axis.
    assert r["synapses"]["0.module"]["macs_per_sample"] == 10 * 10 * 2 * 2
    assert r["ops"] == {"macs": 400, "sops": 78, "neuron_updates": 64}
    expected = 400 * 4.6 + 78 * 0.9 + 64 * 0.9
    assert r["energy_pj"]["total"] == pytest.approx(expected)
    json.dumps(r)  # report.json must be able to hold it
    assert "SOPs" in format_measure(r)


def test_linear_sops_and_grouped_conv():
    lin = nn.Linear(6, 5)
    x = torch.tensor([[1.0, 0, 0, 1, 1, 0], [0, 0, 0, 0, 0, 1]])
    assert energy.synaptic_ops(lin, x) == 4 * 5
    conv = nn.Conv2d(4, 6, 1, groups=2)  # each input channel feeds 3 outputs
    s = torch.zeros(1, 4, 2, 2)
    s[0, 0, 0, 0] = s[0, 3, 1, 1] = 1
    assert energy.synaptic_ops(conv, s) == 2 * 3
    assert energy.dense_macs(conv, s) == 4 * 4 * 3
    with pytest.raises(TypeError, match="Conv"):
        energy.synaptic_ops(nn.ReLU(), s)


def test_neuron_update_costs():
    assert energy.neuron_update_pj(QIF()) == pytest.approx(2 * 3.7 + 2 * 0.9)
    assert energy.neuron_update_pj(LIF()) == pytest.approx(4.6)
    assert energy.neuron_update_pj(IF()) == pytest.approx(0.9)


def test_window_fraction_and_histogram():
    # From rest (u1 = 0) the first charge is H = X; the band window is |H - 1| < 1/2.
    x = torch.tensor([0.2, 0.6, 1.2, 1.6, -9.0, 5.0]).view(1, 1, 6)
    r = measure(nn.Sequential(QIF()), [x])
    layer = r["layers"]["0"]
    assert layer["window_fraction"] == pytest.approx(2 / 6)
    assert layer["firing_rate"] == pytest.approx(3 / 6)
    assert layer["window"] == {"shape": "rect", "width": 1.0, "offset": 0.0}
    hist = layer["hist"]
    assert sum(hist["counts"]) == 4 and hist["below"] == 1 and hist["above"] == 1
    assert len(hist["edges_rel_v_th"]) == len(hist["counts"]) + 1


def test_measure_restores_mode_and_validates():
    net = _two_layer_net().train()
    measure(net, [torch.zeros(1, 2, 1, 4, 4)])
    assert net.training
    with pytest.raises(ValueError, match="empty loader"):
        measure(net, [])
    with pytest.raises(ValueError, match="max_batches"):
        measure(net, [torch.zeros(1, 2, 1, 4, 4)], max_batches=0)


def test_measure_runs_each_neuron_once_and_unpatches(monkeypatch):
    calls = []
    run = QIF.run
    monkeypatch.setattr(QIF, "run", lambda self, *a, **kw: calls.append(kw) or run(self, *a, **kw))
    net = nn.Sequential(QIF(), QIF())
    x = torch.rand(3, 2, 5) * 2
    expected = net(x)
    calls.clear()
    r = measure(net, [x])
    assert calls == [{"trace": True}, {"trace": True}]  # the model's own run gives the trace
    assert r["layers"]["1"]["spikes_per_sample"] == expected.sum().item() / 2
    assert all("forward" not in m.__dict__ for m in net)
    with pytest.raises(ValueError, match="time-major"):
        measure(net, [x[0, 0]])  # raised inside the traced neuron
    assert all("forward" not in m.__dict__ for m in net)
    assert torch.equal(net(x), expected)


def _brute_force_sops(mask, cout, k, stride, pad, dil, groups):
    """Loop over every output position and kernel tap: one accumulate per in-bounds non-zero."""
    n, cin, h, w = mask.shape
    oh = (h + 2 * pad - dil * (k - 1) - 1) // stride + 1
    ow = (w + 2 * pad - dil * (k - 1) - 1) // stride + 1
    per_group_in, per_group_out = cin // groups, cout // groups
    total = 0
    for b in range(n):
        for g in range(groups):
            for c in range(g * per_group_in, (g + 1) * per_group_in):
                for i in range(oh):
                    for j in range(ow):
                        for di in range(k):
                            for dj in range(k):
                                y, x = i * stride - pad + di * dil, j * stride - pad + dj * dil
                                if 0 <= y < h and 0 <= x < w and mask[b, c, y, x]:
                                    total += per_group_out
    return total


@settings(max_examples=25)
@given(k=st.integers(1, 3), stride=st.integers(1, 2), pad=st.integers(0, 2), dil=st.integers(1, 2),
       groups=st.sampled_from([1, 2]), size=st.integers(3, 6), seed=st.integers(0, 10_000))
def test_conv_sops_match_brute_force(k, stride, pad, dil, groups, size, seed):
    if size + 2 * pad < dil * (k - 1) + 1:
        return  # no output position
    g = torch.Generator().manual_seed(seed)
    mask = (torch.rand(2, 4, size, size, generator=g) < 0.3).float()
    conv = nn.Conv2d(4, 6, k, stride, pad, dil, groups)
    expected = _brute_force_sops(mask, 6, k, stride, pad, dil, groups)
    assert energy.synaptic_ops(conv, mask) == expected


def test_measure_takes_the_accuracy_and_loss_it_is_given():
    """A training run's report passes its final evaluation: measured again, the figures of
    the labelled batches would differ from it (here: one batch of the two)."""
    torch.manual_seed(0)
    net = nn.Sequential(TimeFold(nn.Linear(4, 3)), IF(v_th=0.5))
    batches = [(torch.randn(2, 5, 4), torch.randint(0, 3, (5,))) for _ in range(2)]
    own = measure(net, batches, max_batches=1)
    assert 0 <= own["accuracy"] <= 100 and own["loss"] > 0
    given_ = measure(net, batches, max_batches=1, metrics={"accuracy": 12.5, "loss": 0.75})
    assert (given_["accuracy"], given_["loss"]) == (12.5, 0.75)
    assert given_["layers"] == own["layers"] and given_["ops"] == own["ops"]
