"""NIR interop with the simulators NIR exists for (docs/export.md, "Other simulators"): quadfire
-> NIR -> snnTorch / Norse gives quadfire's spikes, and each tool's own NIR export -> quadfire
`from_nir` gives that tool's spikes. Spikes are compared exactly, at batch size 4.

Where a tool is wrong, a test pins the wrong behaviour next to the documented workaround, so
a release of the tool that fixes it fails here and the table in docs/export.md gets updated.
"""
import logging
import math

import pytest
import torch
from torch import nn

from quadfire.export import from_nir, to_nir
from quadfire.layers import TimeFold
from quadfire.neurons import IF, LIF

snn = pytest.importorskip("snntorch")
norse = pytest.importorskip("norse.torch")
from snntorch.import_nir import import_from_nir  # noqa: E402

T, N = 8, 4


@pytest.fixture(autouse=True)
def quiet_peers(monkeypatch, capsys):
    """snnTorch's importer prints and Norse's logs warnings about r; neither matters here."""
    logging.getLogger().setLevel(logging.ERROR)
    yield


def dense(neuron, dtype=torch.float32):
    """20 -> 30 -> 10, both layers spiking, weights scaled so that both layers fire."""
    torch.manual_seed(1)
    net = nn.Sequential(TimeFold(nn.Linear(20, 30)), neuron(), TimeFold(nn.Linear(30, 10)),
                        neuron())
    with torch.no_grad():
        net[0].module.weight.mul_(3)
        net[2].module.weight.mul_(4)
    return net.to(dtype).eval()


def conv(neuron):
    """conv 1->4 -> neuron -> flatten -> linear 256->10 -> neuron, on 8x8 images."""
    torch.manual_seed(2)
    net = nn.Sequential(TimeFold(nn.Conv2d(1, 4, 3, padding=1)), neuron(),
                        TimeFold(nn.Flatten()), TimeFold(nn.Linear(4 * 8 * 8, 10)), neuron())
    with torch.no_grad():
        net[0].module.weight.mul_(3)
        net[3].module.weight.mul_(4)
    return net.eval()


def inputs(shape, dtype=torch.float32):
    torch.manual_seed(0)
    return (torch.rand(T, N, *shape) * 3).to(dtype)


def reference(net, x):
    with torch.no_grad():
        out = net(x)
    assert out.sum() > 10 and out.mean() < 0.9  # the comparison sees spikes and silences
    return out


def step_snntorch(module, x):
    """snnTorch's importer builds init_hidden neurons: one call per step, the state inside
    them (nirtorch's module returns (output, its own state), which is empty here)."""
    import snntorch.utils

    snntorch.utils.reset(module)
    with torch.no_grad():
        out = [module(xt) for xt in x.unbind(0)]
    return torch.stack([y[0] if isinstance(y, tuple) else y for y in out])


def step_norse(module, x):
    state, out = None, []
    with torch.no_grad():
        for xt in x.unbind(0):
            y, state = module(xt, state)
            out.append(y)
    return torch.stack(out)


def fix_flatten(module):
    """snnTorch 1.0 and Norse 1.1 read NIR's batch-free Flatten.start_dim as torch's, so they
    would flatten the batch axis too: shift it past the batch."""
    for m in module.modules():
        if isinstance(m, nn.Flatten) and m.start_dim >= 0:
            m.start_dim += 1
            m.end_dim = m.end_dim + 1 if m.end_dim >= 0 else m.end_dim


def fix_snntorch_if(module, graph):
    """snnTorch 1.0 imports NIR IF as a *leaky* neuron (beta 0.9) with subtractive reset and
    without init_hidden (so it returns a tuple to the next layer): replace each by the IF it
    stands for, a Leaky with beta 1, reset to zero, state inside."""
    import nir

    for name, node in graph.nodes.items():
        if isinstance(node, nir.IF):
            setattr(module, name, snn.Leaky(beta=1.0, threshold=float(node.v_threshold.flat[0]),
                                            reset_mechanism="zero", init_hidden=True,
                                            reset_delay=False))


def fix_norse_order(module):
    """Norse 1.1 runs a NIR graph in nirtorch's `GraphExecutor`, which orders the nodes
    depth-first from the input (`nirtorch.graph_utils.trace_execution`), not topologically:
    on a residual graph a branch can run after the node that sums it, which then reads that
    branch's previous step (nothing at the first), and the executor returns the last node it
    ran, which need not be the output. Run the nodes in topological order instead."""
    nodes = list(module.execution_order)
    waiting = {n: len(module.graph.find_source_nodes_of(n)) for n in nodes}
    order, ready = [], [n for n in nodes if waiting[n] == 0]
    while ready:
        node = ready.pop(0)
        order.append(node)
        for child in node.outgoing_nodes:
            if child in waiting:
                waiting[child] -= 1
                if waiting[child] == 0:
                    ready.append(child)
    assert len(order) == len(nodes), "a cycle: not a feed-forward graph"
    module.execution_order = order


def resnet(neuron: str, block, v_th: float = 1.0, blocks=((4, 4, 1), (4, 8, 2))):
    """A conv stem and residual blocks of quadfire.models.blocks (tdBN, folded on export) on
    8x8 images, then flatten -> linear -> neuron; weights scaled so that every layer fires.
    The first block has an identity shortcut, the second a strided 1x1 conv one."""
    from quadfire.layers import conv_bn
    from quadfire.neurons import NeuronSpec

    torch.manual_seed(3)
    spec = NeuronSpec(neuron, {"v_th": v_th})
    c, side = blocks[-1][1], 8 // math.prod(stride for _, _, stride in blocks)
    net = nn.Sequential(conv_bn(1, 4, spike_input=False, v_th=v_th), spec.make(4),
                        *[block(cin, cout, stride, spec) for cin, cout, stride in blocks],
                        TimeFold(nn.Flatten()), TimeFold(nn.Linear(c * side * side, 10)),
                        spec.make(10))
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.mul_(8)
    return net.eval()


def folded_reference(net, x):
    """A NIR file holds tdBN folded into the convs: compare with the folded quadfire net."""
    import copy

    from quadfire.layers import fold_tdbn

    return reference(fold_tdbn(copy.deepcopy(net)), x)


# -- quadfire -> NIR -> snnTorch ------------------------------------------------------------

def test_snntorch_runs_quadfire_lif_exported_at_its_dt():
    """snnTorch's importer assumes dt = 1e-4 whatever the file was made for: export at it."""
    net, x = dense(lambda: LIF(2.0)), inputs((20,))
    ref = reference(net, x)
    ours = step_snntorch(import_from_nir(to_nir(net, (20,), dt=1e-4)), x)
    assert torch.equal(ours, ref)
    # exported at dt = 1 the same file means the same network, but snnTorch reads beta as
    # 1 - 1e-4 / tau: a different neuron
    assert not torch.equal(step_snntorch(import_from_nir(to_nir(net, (20,), dt=1.0)), x), ref)


def test_snntorch_if_import_is_wrong_and_the_workaround_is_exact():
    net, x = dense(IF), inputs((20,))
    ref = reference(net, x)
    graph = to_nir(net, (20,), dt=1.0)  # snnTorch asserts r == 1: dt = 1
    broken = import_from_nir(graph)
    with pytest.raises(TypeError):  # the IF layer returns (spikes, mem) to the next Linear
        step_snntorch(broken, x)
    fixed = import_from_nir(graph)
    fix_snntorch_if(fixed, graph)
    assert torch.equal(step_snntorch(fixed, x), ref)


def test_snntorch_conv_net_needs_the_flatten_fix():
    net, x = conv(lambda: LIF(2.0)), inputs((1, 8, 8))
    ref = reference(net, x)
    module = import_from_nir(to_nir(net, (1, 8, 8), dt=1e-4))
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        step_snntorch(module, x)
    fix_flatten(module)
    assert torch.equal(step_snntorch(module, x), ref)


# -- quadfire -> NIR -> Norse ---------------------------------------------------------------

@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_norse_runs_quadfire_lif_with_unit_r(dtype):
    """Norse ignores r (it warns), so quadfire's LIF (r = tau_q) loses its input gain;
    `unit_r=True` writes the same network with r = 1 and the gain in the weights."""
    net, x = dense(lambda: LIF(2.0), dtype), inputs((20,), dtype)
    ref = reference(net, x)
    ours = step_norse(norse.from_nir(to_nir(net, (20,), dt=1.0, unit_r=True), dt=1.0).to(dtype), x)
    assert torch.equal(ours, ref)
    plain = step_norse(norse.from_nir(to_nir(net, (20,), dt=1.0), dt=1.0).to(dtype), x)
    assert not torch.equal(plain, ref)


def test_norse_runs_quadfire_if():
    net, x = dense(IF), inputs((20,))
    ref = reference(net, x)
    assert torch.equal(step_norse(norse.from_nir(to_nir(net, (20,), dt=1.0), dt=1.0), x), ref)


def test_norse_conv_net_needs_the_flatten_fix():
    net, x = conv(lambda: LIF(2.0)), inputs((1, 8, 8))
    ref = reference(net, x)
    module = norse.from_nir(to_nir(net, (1, 8, 8), dt=1.0, unit_r=True), dt=1.0)
    with pytest.raises(RuntimeError):
        step_norse(module, x)
    fix_flatten(module)
    assert torch.equal(step_norse(module, x), ref)


# -- residual networks -------------------------------------------------------------------------

@pytest.mark.parametrize("neuron", ["lif", "if"])
def test_snntorch_runs_a_quadfire_sew_resnet(neuron):
    from quadfire.models.blocks import SEWBlock

    net, x = resnet(neuron, SEWBlock), inputs((1, 8, 8))
    ref = folded_reference(net, x)
    graph = to_nir(net, (1, 8, 8), dt=1e-4 if neuron == "lif" else 1.0)
    module = import_from_nir(graph)
    fix_flatten(module)
    if neuron == "if":
        fix_snntorch_if(module, graph)
    assert torch.equal(step_snntorch(module, x), ref)


@pytest.mark.parametrize("neuron", ["lif", "if"])
def test_norse_runs_a_quadfire_sew_resnet_in_topological_order(neuron):
    from quadfire.models.blocks import SEWBlock

    net, x = resnet(neuron, SEWBlock), inputs((1, 8, 8))
    ref = folded_reference(net, x)
    graph = to_nir(net, (1, 8, 8), dt=1.0, unit_r=neuron == "lif")
    module = norse.from_nir(graph, dt=1.0)
    fix_flatten(module)
    # depth-first: the strided block's shortcut runs after the output node
    names = [n.name for n in module.execution_order]
    assert names.index("3_shortcut_sn") > names.index("output")
    # and returns the last node it ran: the shortcut neuron's [N, 8, 4, 4], not the logits
    assert step_norse(module, x).shape == (T, N, 8, 4, 4)
    fix_norse_order(module)
    assert torch.equal(step_norse(module, x), ref)


@pytest.mark.parametrize("tool", ["snntorch", "norse"])
def test_spiking_block_identity_shortcut_meets_the_threshold_exactly(tool):
    """sn2(conv2(...) + x): the identity shortcut adds spikes, exactly 1.0, so a neuron at
    U = 0 whose conv input is exactly 0 reaches H = 1.0 = v_th: quadfire fires (H >= v_th),
    NIR's neurons (v > v_threshold) do not, and the difference spreads. Every other spike
    agrees: with v_th = 0.9 there is no such tie and the spikes are the same."""
    from quadfire.analysis.plots import record
    from quadfire.layers import fold_tdbn
    from quadfire.models.blocks import SpikingBlock

    def run(v_th):
        net, x = resnet("if", SpikingBlock, v_th).double(), inputs((1, 8, 8), torch.float64)
        graph = to_nir(net, (1, 8, 8), dt=1.0)
        if tool == "norse":
            module = norse.from_nir(graph, dt=1.0).double()
            fix_flatten(module)
            fix_norse_order(module)
            out = step_norse(module, x)
        else:  # snnTorch builds float32 neurons whatever the graph's dtype
            module = import_from_nir(graph)
            fix_flatten(module)
            fix_snntorch_if(module, graph)
            out, x = step_snntorch(module, x.float()).double(), x
        folded = fold_tdbn(net)
        ties = sum(int((r.h == r.v_th).sum()) for s in range(N) for r in record(folded, x, s).values())
        return out, reference(folded, x), ties

    out, ref, ties = run(1.0)
    assert ties > 0 and not torch.equal(out, ref)
    out, ref, ties = run(0.9)
    assert ties == 0 and torch.equal(out, ref)


def test_norse_cannot_take_a_lif_spiking_block_with_identity_shortcut():
    """Norse drops r, so LIF needs unit_r, which moves r into the layers feeding the neuron;
    an identity shortcut feeds sn2 spikes, with no weights to carry r. A strided block (1x1
    conv shortcut) carries it, and Norse then gives quadfire's spikes."""
    from quadfire.errors import InputError
    from quadfire.models.blocks import SpikingBlock

    with pytest.raises(InputError, match="got \\['Conv2d', 'LIF'\\]"):
        to_nir(resnet("lif", SpikingBlock), (1, 8, 8), unit_r=True)
    net, x = resnet("lif", SpikingBlock, blocks=((4, 8, 2),)), inputs((1, 8, 8))
    module = norse.from_nir(to_nir(net, (1, 8, 8), dt=1.0, unit_r=True), dt=1.0)
    fix_flatten(module)
    fix_norse_order(module)
    assert torch.equal(step_norse(module, x), folded_reference(net, x))


# -- each tool's own export -> quadfire -----------------------------------------------------

def test_snntorch_export_runs_in_quadfire():
    """snnTorch writes LIF at its dt = 1e-4 (tau = dt / (1 - beta), r = tau / dt): read the
    file at that dt. Its `export_to_nir` fails nirtorch's type check with nir 1.0.8, so the
    graph is extracted with the same converter, without that check."""
    import nirtorch
    from snntorch.export_nir import _extract_snntorch_module, export_to_nir

    torch.manual_seed(0)
    leaky = lambda **kw: snn.Leaky(beta=0.5, init_hidden=True, reset_mechanism="zero",  # noqa: E731
                                   reset_delay=False, **kw)
    net = nn.Sequential(nn.Linear(20, 30), leaky(), nn.Linear(30, 10), leaky())
    with torch.no_grad():
        net[0].weight.mul_(3)
        net[2].weight.mul_(4)
    x = inputs((20,))
    with pytest.raises(ValueError, match="Type inference error"):
        export_to_nir(net, x[0, :1], ignore_dims=[0])
    graph = nirtorch.extract_nir_graph(net, _extract_snntorch_module, x[0, :1],
                                       model_name="snntorch", ignore_dims=[0])
    ref = step_snntorch(net, x)
    assert ref.sum() > 10
    with torch.no_grad():
        assert torch.equal(from_nir(graph, dt=1e-4)(x), ref)


@pytest.mark.parametrize("dt", [1.0, 1e-3])
def test_norse_export_runs_in_quadfire(dt):
    """Norse writes tau = dt / tau_mem_inv where NIR means 1 / tau_mem_inv: right at dt = 1
    only; a file from another dt reads correctly at dt squared."""
    from norse.torch import LIFBoxCell, LIFBoxParameters

    torch.manual_seed(0)
    p = LIFBoxParameters(tau_mem_inv=torch.tensor(0.5 / dt))  # leak 0.5 per step
    net = norse.SequentialState(nn.Linear(20, 30), LIFBoxCell(p, dt=dt), nn.Linear(30, 10),
                                LIFBoxCell(p, dt=dt))
    with torch.no_grad():
        net[0].weight.mul_(6)
        net[2].weight.mul_(8)
    x = inputs((20,))
    graph = norse.to_nir(net, x[0], dt=dt)
    ref = step_norse(net, x)
    assert ref.sum() > 10
    with torch.no_grad():
        assert torch.equal(from_nir(graph, dt=dt * dt)(x), ref)


# -- unit_r in quadfire itself ----------------------------------------------------------------

@pytest.mark.parametrize("neuron", [lambda: LIF(2.0), IF], ids=["lif", "if"])
def test_unit_r_files_round_trip_in_quadfire(neuron):
    from quadfire.export import load_nirtorch, run_steps

    net, x = dense(neuron, torch.float64), inputs((20,), torch.float64)
    ref = reference(net, x)
    graph = to_nir(net, (20,), dt=0.5, unit_r=True)
    assert all(float(n.r.flat[0]) == 1.0 for n in graph.nodes.values() if hasattr(n, "r"))
    with torch.no_grad():
        assert torch.equal(from_nir(graph).double()(x), ref)
        assert torch.equal(run_steps(load_nirtorch(graph, dtype=torch.float64), x), ref)


def test_unit_r_needs_a_weighted_layer_before_the_neuron():
    from quadfire.errors import InputError

    with pytest.raises(InputError, match="must all be Conv2d or Linear; got \\['the graph input'\\]"):
        to_nir(nn.Sequential(LIF(2.0)), (5,), unit_r=True)


def test_unit_r_refuses_a_layer_that_feeds_two_neurons():
    """A SEW block's shortcut conv feeds its own neuron; a spiking block's conv2 and shortcut
    both feed sn2: each layer carries one neuron's r. A layer shared by two neurons cannot."""
    from quadfire.errors import InputError
    from quadfire.export.graph import _Builder

    builder = _Builder(1.0, unit_r=True)
    value, shape = builder.leaf("fc", nn.Linear(5, 5), ["input"], (5,))
    builder.leaf("a", LIF(2.0), value, shape)
    with pytest.raises(InputError, match="also feeds another neuron"):
        builder.leaf("b", LIF(2.0), value, shape)
