"""NIR export: round trips through nir files, nirtorch and back into quadfire."""
import nir
import numpy as np
import pytest
import torch
from torch import nn

from quadfire.export import from_nir, load_nirtorch, run_steps, to_nir, write_nir
from quadfire.layers import TimeFold, fold_tdbn
from quadfire.models import create_model
from quadfire.neurons import IF, LIF, PLIF, QIF


def _trained_convnet(neuron, dtype=torch.float64, **kw):
    torch.manual_seed(0)
    model = create_model("convnet", neuron=neuron, T=4, neuron_kwargs=kw or None)
    with torch.no_grad():
        model.train()
        model(torch.randn(32, 1, 8, 8) * 3)  # running statistics for tdBN
        for p in model.parameters():
            if p.dim() == 1:
                p.add_(torch.randn_like(p) * 0.3)  # non-trivial tdBN affine / neuron params
    return model.eval().to(dtype)


def _spiking_fraction(model, x):
    from quadfire.analysis.monitor import measure
    return measure(model, [x])["firing_rate"]


@pytest.mark.parametrize("neuron", ["lif", "if", "qif", "qif-exact", "qif-hybrid"])
def test_convnet_round_trip_file_nirtorch_and_quadfire(neuron, tmp_path):
    model = _trained_convnet(neuron)
    x = torch.randn(6, 1, 8, 8, dtype=torch.float64) * 3
    assert _spiking_fraction(model, x) > 0.01  # the comparison must involve real spikes
    path = write_nir(model, tmp_path / "net.nir", (1, 8, 8))
    graph = nir.read(path)
    if neuron.startswith("qif"):
        disc = {"qif": "euler"}.get(neuron, neuron[4:])
        assert {n.metadata["discretization"] for n in graph.nodes.values()
                if isinstance(n, nir.LIF)} == {disc}
    expected = fold_tdbn(model)(x)
    frames = x.unsqueeze(0).expand(4, *x.shape)
    via_nirtorch = run_steps(load_nirtorch(graph, dtype=torch.float64), frames)
    assert torch.equal(via_nirtorch, expected)
    back = from_nir(path).to(torch.float64)
    assert torch.equal(back(frames), expected)
    # folding tdBN into the conv is exact up to rounding
    torch.testing.assert_close(expected, model(x), rtol=0, atol=1e-10)


def test_spiking_output_is_bit_identical_in_float32():
    torch.manual_seed(1)
    net = nn.Sequential(TimeFold(nn.Conv2d(2, 4, 3, padding=1)), LIF(tau=3.0),
                        TimeFold(nn.AvgPool2d(2)), TimeFold(nn.Flatten()),
                        TimeFold(nn.Linear(4 * 3 * 3, 8)), QIF(a=0.4, u2=0.6),
                        TimeFold(nn.Linear(8, 5, bias=False)), IF(v_th=0.5))
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.mul_(4)  # enough drive that every layer spikes
    x = torch.rand(7, 3, 2, 6, 6) * 2
    out = net(x)
    assert 0 < out.mean() < 1
    graph = to_nir(net, (2, 6, 6))
    assert torch.equal(run_steps(load_nirtorch(graph), x), out)
    assert torch.equal(from_nir(graph)(x), out)


def test_lif_mapping_to_nir_parameters():
    node = to_nir(nn.Sequential(TimeFold(nn.Linear(3, 2)), LIF(tau=2.0, v_th=0.8, v_rest=0.1)),
                  (3,), dt=1e-3).nodes["1"]
    assert isinstance(node, nir.LIF)
    np.testing.assert_allclose(node.tau, [2e-3, 2e-3])   # tau = tau_q dt
    np.testing.assert_allclose(node.r, [2.0, 2.0])       # r = tau / dt
    np.testing.assert_allclose(node.v_leak, [0.1, 0.1])
    np.testing.assert_allclose(node.v_threshold, [0.8, 0.8])
    np.testing.assert_allclose(node.v_reset, [0.0, 0.0])
    # Euler with that dt is quadfire's map: dt/tau = 1/tau_q, dt r / tau = 1.
    np.testing.assert_allclose(1e-3 / node.tau, 0.5)
    if_node = to_nir(nn.Sequential(IF()), (4,), dt=0.5).nodes["0"]
    assert isinstance(if_node, nir.IF) and np.all(if_node.r == 2.0)


def test_qif_extension_node_is_documented_carrier(tmp_path):
    net = nn.Sequential(TimeFold(nn.Linear(3, 4)), QIF(a=0.5, u1=-0.2, u2=0.6, v_th=1.2))
    path = write_nir(net, tmp_path / "qif.nir", (3,))
    node = nir.read(path).nodes["1"]
    assert isinstance(node, nir.LIF) and node.metadata["quadfire_node"] == "QIF"
    d = 0.6 - (-0.2)
    np.testing.assert_allclose(node.tau, 1 / (0.5 * d))  # linearisation at rest: leak a d
    np.testing.assert_allclose(node.v_leak, -0.2)
    np.testing.assert_allclose(node.metadata["a"], 0.5)
    np.testing.assert_allclose(node.metadata["v_min"], min(0.2 - 1.0, -0.2))
    back = from_nir(path)
    q = back[1]
    assert isinstance(q, QIF) and (q.a, q.u1, q.u2, q.v_th) == (0.5, -0.2, 0.6, 1.2)
    assert q.params(2) == net[1].params(2)
    x = torch.randn(20, 5, 3) * 2
    assert torch.equal(back(x), net(x))
    assert torch.equal(run_steps(load_nirtorch(path), x), net(x))


def test_per_channel_neurons_load_through_nirtorch_but_not_into_quadfire(tmp_path):
    torch.manual_seed(2)
    net = nn.Sequential(TimeFold(nn.Conv2d(1, 3, 3, padding=1)),
                        PLIF(learnable="channel", channels=3),
                        TimeFold(nn.Conv2d(3, 3, 1)), QIF(learnable="channel", channels=3))
    with torch.no_grad():
        for p in net.parameters():
            if p.dim() == 1:
                p.add_(torch.randn_like(p) * 0.5)
    x = torch.randn(5, 2, 1, 4, 4) * 2
    graph = to_nir(net, (1, 4, 4))
    assert torch.equal(run_steps(load_nirtorch(graph), x), net(x))
    with pytest.raises(ValueError, match="uniform"):
        from_nir(graph)


def test_export_errors_name_the_problem():
    with pytest.raises(ValueError, match="soft reset"):
        to_nir(nn.Sequential(LIF(reset="soft")), (3,))
    with pytest.raises(TypeError, match="MaxPool2d"):
        to_nir(nn.Sequential(TimeFold(nn.MaxPool2d(2)), LIF()), (1, 4, 4))
    with pytest.raises(ValueError, match="input_shape"):
        to_nir(nn.Sequential(LIF()), "3")
    with pytest.raises(FileNotFoundError, match="no NIR file"):
        from_nir("/nonexistent/x.nir")


def _residual_net():
    from quadfire.layers import Encoder, conv_bn
    from quadfire.models.blocks import SEWBlock, SpikingBlock
    from quadfire.models.common import SpikingNet
    from quadfire.neurons import NeuronSpec

    spec = NeuronSpec("qif")
    body = nn.Sequential(conv_bn(1, 4, spike_input=False), spec.make(4),
                         SpikingBlock(4, 4, 1, spec), SpikingBlock(4, 8, 2, spec),
                         SEWBlock(8, 8, 1, spec), SEWBlock(8, 16, 2, spec),
                         TimeFold(nn.AdaptiveAvgPool2d(1)), TimeFold(nn.Flatten()),
                         TimeFold(nn.Linear(16, 3)))
    return SpikingNet(Encoder(3, 1), body, 3)


def test_residual_blocks_export_as_summing_edges(tmp_path):
    torch.manual_seed(3)
    model = _residual_net()
    with torch.no_grad():
        model.train()
        model(torch.randn(16, 1, 8, 8) * 2)
        for p in model.parameters():
            if p.dim() == 1:
                p.add_(torch.randn_like(p) * 0.3)
    model = model.eval().double()
    x = torch.randn(4, 1, 8, 8, dtype=torch.float64) * 2
    assert _spiking_fraction(model, x) > 0.01
    graph = nir.read(write_nir(model, tmp_path / "res.nir", (1, 8, 8)))
    # Identity shortcut: the block input feeds both conv1 and the summing neuron sn2.
    assert ("body_1", "body_2_sn2") in graph.edges
    assert ("body_2_conv2_conv", "body_2_sn2") in graph.edges
    # SEW: the sum of two spike trains reaches the next layer as two edges.
    assert ("body_5_sn2", "body_6") in graph.edges
    assert ("body_5_shortcut_sn", "body_6") in graph.edges
    got = run_steps(load_nirtorch(graph, dtype=torch.float64), x.unsqueeze(0).expand(3, *x.shape))
    assert torch.equal(got, fold_tdbn(model)(x))
    with pytest.raises(ValueError, match="chains only"):
        from_nir(graph)


def test_a_stem_run_once_exports_as_the_first_layer(tmp_path):
    """csnn computes its first conv + tdBN once per image inside the encoder; per step that is
    the same layer, so the graph starts with it and runs as the model does."""
    torch.manual_seed(0)
    model = create_model("csnn", neuron="lif", T=3, image_size=8, widths=(4, 8), hidden=16,
                         pool="avg")  # NIR has no max pool
    with torch.no_grad():
        model.train()
        model(torch.randn(32, 1, 8, 8) * 3)
    model = model.eval().to(torch.float64)
    x = torch.randn(5, 1, 8, 8, dtype=torch.float64) * 3
    graph = nir.read(write_nir(model, tmp_path / "csnn.nir", (1, 8, 8)))
    assert "encoder_stem_conv" in graph.nodes and ("input", "encoder_stem_conv") in graph.edges
    frames = x.unsqueeze(0).expand(3, *x.shape)
    expected = fold_tdbn(model)(x)
    torch.testing.assert_close(run_steps(load_nirtorch(graph, dtype=torch.float64), frames),
                               expected, rtol=0, atol=1e-9)
