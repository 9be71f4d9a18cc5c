"""The neuron protocol and the QIF discretizations: exact flow against a numerical ODE solution,
the hybrid map's continuity, the protocol's reach (energy, statistics, export, analysis) and a
neuron written in Python alone (examples/custom_neuron.py) running everywhere."""
from __future__ import annotations

import ast
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from quadfire import ops
from quadfire.analysis import dynamics, energy
from quadfire.analysis.monitor import measure
from quadfire.errors import ConfigError, InputError, ParameterError
from quadfire.functional import QIFExactParams, QIFHybridParams, QIFParams
from quadfire.models import create_model
from quadfire.neurons import NEURONS, QIF, NeuronSpec

ROOT = Path(__file__).resolve().parents[1]


def _flow(u0: float, a: float, u1: float, u2: float) -> float:
    """U after one step of du/dt = a (u - u1)(u - u2) by scipy's solve_ivp (inf on blow-up)."""
    from scipy.integrate import solve_ivp

    def blown(t, u):
        return abs(u[0]) - 1e8
    blown.terminal = True
    r = solve_ivp(lambda t, u: a * (u - u1) * (u - u2), (0.0, 1.0), [u0], method="DOP853",
                  rtol=1e-12, atol=1e-12, events=blown)
    return math.inf if r.status == 1 else float(r.y[0, -1])


@pytest.mark.parametrize("a, u1, u2", [(0.25, 0.0, 0.5), (1.5, -0.3, 0.6), (0.05, 0.2, 1.1),
                                       (3.0, 0.0, 0.5)])
def test_exact_step_is_the_ode_flow_over_one_step(a, u1, u2):
    p = QIFExactParams(a, u1, u2, v_th=u2 + 10.0)
    grid = np.concatenate([np.linspace(u1 - 20, u2 + 0.99 * (p.blowup() - u2), 60),
                           [p.blowup() + 0.01, p.blowup() + 5]])
    h = p.charge(torch.zeros(len(grid), dtype=torch.float64),
                 torch.tensor(grid, dtype=torch.float64)).numpy()
    ode = np.array([_flow(u, a, u1, u2) for u in grid])
    finite = np.isfinite(ode)
    assert (np.isinf(h) == ~finite).all(), "blows up exactly where the ODE does"
    assert np.allclose(h[finite], ode[finite], rtol=1e-7, atol=1e-9)


def test_exact_reduces_to_euler_as_a_goes_to_zero():
    u = torch.linspace(-3, 1.5, 50, dtype=torch.float64)
    x = torch.zeros_like(u)
    gaps = []
    for a in (1e-1, 1e-2, 1e-3):
        e = QIFExactParams(a, 0.0, 0.5).charge(x, u)
        f = QIFParams(a, 0.0, 0.5).charge(x, u)
        gaps.append((e - f).abs().max().item())
    assert gaps[1] < gaps[0] / 50 and gaps[2] < gaps[1] / 50  # O(a^2)


def test_exact_is_increasing_bounded_below_and_fires_where_the_flow_blows_up():
    p = QIFExactParams()
    u = torch.linspace(-1e6, p.blowup() - 1e-6, 20001, dtype=torch.float64)
    h = p.charge(torch.zeros_like(u), u)
    assert (h.diff() > 0).all()
    bound = p.u1 - (p.u2 - p.u1) / (p.E - 1)
    assert (h > bound).all() and abs(h[0].item() - bound) < 1e-4  # -3.76 for the defaults
    assert abs(p.slope(torch.tensor(0.0, dtype=torch.float64)).item() - math.exp(-0.125)) < 1e-12


@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_exact_blowup_spikes_resets_and_cuts_the_gradient(backend):
    """With hard reset U stays below v_th, so the flow can blow up within a step only when
    v_th - u1 >= E d / (E - 1); here a = 0.05, d = 0.5 put that point at 20.5."""
    n = QIF(a=0.05, u1=0.0, u2=0.5, v_th=25.0, discretization="exact", surrogate="rect")
    p = n.params(1)
    assert p.blowup() < 25.0
    u0 = torch.tensor([21.0, 1.0], requires_grad=True)
    x = torch.zeros(2, 2, requires_grad=True)
    out = ops.neuron_multistep(x, p, u0, trace=True, backend=backend)
    assert out.trace[0, 0] == math.inf and out.spikes[0].tolist() == [1.0, 0.0]
    assert out.state[0] < 25.0  # reset to v_reset, then flowed on
    (out.spikes.sum() + out.state.sum()).backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(u0.grad).all()
    assert u0.grad[0] == 0  # the blow-up passes no gradient, as the clamp of +inf


def test_hybrid_is_continuous_with_a_continuous_slope_at_rest_and_the_matched_lif_below():
    p = QIFHybridParams(a=0.4, u1=-0.2, u2=0.8)
    eps = torch.tensor([-1e-7, 0.0, 1e-7], dtype=torch.float64) + p.u1
    h = p.charge(torch.zeros(3, dtype=torch.float64), eps)
    assert (h.diff().abs() < 2e-7).all()
    s = p.slope(eps)
    assert torch.allclose(s, torch.full_like(s, 1 - 0.4 * 1.0))
    u = torch.linspace(-50, p.u1 - 1e-3, 100, dtype=torch.float64)
    assert torch.equal(p.charge(torch.zeros_like(u), u), u - p.k * (u - p.u1))


def test_hybrid_oscillates_about_rest_for_ad_above_one_and_its_floor_keeps_inhibition_safe():
    """1 < a d < 2: the leak below rest overshoots (slope 1 - a d < 0), a damped oscillation
    the Euler map's floor at u1 forbids; the floor u1 - d/(a d - 1) keeps every overshoot at
    or below u2."""
    n = QIF(a=3.0, u1=0.0, u2=0.5, discretization="hybrid")
    assert n.params().floor() == pytest.approx(-1.0)
    h = n.run(torch.zeros(12, 1, dtype=torch.float64),
              state=torch.tensor([-0.6], dtype=torch.float64), trace=True).trace.flatten()
    signs = torch.sign(h[1:])
    assert (signs[1:] * signs[:-1] < 0).all() and h[1:].abs().diff().le(0).all()
    x = -torch.rand(50, 200, dtype=torch.float64) * 10.0 ** torch.randint(-2, 6, (50, 200))
    assert n.run(x, state=torch.full((200,), -50.0, dtype=torch.float64)).spikes.sum() == 0
    with pytest.raises(ParameterError, match=r"below u1 - d/\(a d - 1\)"):
        QIF(a=3.0, u1=0.0, u2=0.5, discretization="hybrid", v_min=-1.5)
    assert QIF(discretization="hybrid").params().floor() is None  # a d <= 1: no floor


@settings(max_examples=30, deadline=None)
@given(st.sampled_from(["exact", "hybrid"]), st.floats(0.05, 0.99), st.lists(
    st.floats(-1e4, 0.0), min_size=1, max_size=40))
def test_no_floor_yet_more_inhibition_means_a_lower_potential(disc, ad, xs):
    n = QIF(a=ad / 0.5, u1=0.0, u2=0.5, v_th=1.0, discretization=disc)
    assert n.params().floor() is None
    x = torch.tensor(xs, dtype=torch.float64).view(-1, 1)
    weak, strong = n.run(x * 0.5), n.run(x)
    assert weak.spikes.sum() == 0 and strong.spikes.sum() == 0
    assert (strong.state <= weak.state).all()


@pytest.mark.parametrize("name, mults, adds, divs, pj", [
    ("qif", 2, 2, 0, 9.2), ("qif-exact", 1, 2, 1, 9.2), ("qif-hybrid", 2, 2, 0, 9.2),
    ("lif", 1, 1, 0, 4.6), ("plif", 1, 1, 0, 4.6), ("if", 0, 1, 0, 0.9)])
def test_energy_uses_each_models_declared_operation_count(name, mults, adds, divs, pj):
    neuron = NeuronSpec(name).make(4)
    assert tuple(energy.neuron_ops(neuron)) == (mults, adds, divs)
    assert energy.neuron_update_pj(neuron) == pytest.approx(pj)


def test_no_module_outside_the_protocols_home_tests_a_parameter_class():
    """Layers ask a model (`NeuronParams` methods); only quadfire/functional/params.py, where the
    classes live, may name one in an isinstance."""
    concrete = {"QIFParams", "QIFExactParams", "QIFHybridParams", "LIFParams"}
    offenders = []
    for path in (ROOT / "quadfire").rglob("*.py"):
        if path.relative_to(ROOT).as_posix() == "quadfire/functional/params.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "isinstance":
                names = {n.id for n in ast.walk(node.args[1]) if isinstance(n, ast.Name)}
                if names & concrete:
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not offenders, offenders


def test_variants_and_neuron_names_reach_the_discretizations():
    from quadfire.train.variants import get_variant

    assert {"qif-exact", "qif-hybrid"} <= set(NEURONS)
    name, kw = get_variant("qif-exact").neuron({"a": 0.2, "v_min": -1.0}, ("lif", {}))
    assert name == "qif-exact" and kw == {"a": 0.2, "surrogate": "band"}
    assert NeuronSpec(name, kw).make(2).params().model == "qif-exact"
    with pytest.raises(ConfigError, match="fixed by the neuron's name"):
        NeuronSpec("qif-hybrid", {"discretization": "euler"})


def test_analyze_neuron_for_each_discretization(tmp_path, capsys):
    from quadfire.cli import main

    assert main(["analyze", "neuron", "--discretization", "exact", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "QIF (exact)" in out and "blows up within a step from u = 4.25521" in out
    assert (tmp_path / "cobweb.png").stat().st_size > 0
    fps = dynamics.model_fixed_points(QIFExactParams(), I=0.01)
    E, c, d = QIFExactParams().E, QIFExactParams().c, 0.5
    # closed form: c x^2 + (E - 1 - c I) x - E I = 0
    roots = sorted(np.roots([c, E - 1 - c * 0.01, -E * 0.01]))
    assert np.allclose([f.u for f in fps], roots, atol=1e-9)
    assert QIFExactParams().rheobase() == pytest.approx(d * math.tanh(0.25 * d / 4))


# -- a neuron in Python alone ---------------------------------------------------------------

@pytest.fixture(scope="module")
def alif():
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import custom_neuron
        yield custom_neuron
    finally:
        sys.path.remove(str(ROOT / "examples"))


def test_custom_neuron_trains_and_is_measured(alif):
    result = alif.main(epochs=1)
    assert result["accuracy"] > 60
    layers = result["layers"].values()
    assert len(layers) == 3 and all(layer["type"] == "ALIF" for layer in layers)
    assert all(layer["update_pj"] == pytest.approx(3 * 3.7 + 3 * 0.9) for layer in layers)
    assert 0 < result["firing_rate"] < 1 and result["unaccounted"] == []
    assert result["energy_pj"]["neuron"] > 0


def test_custom_neuron_is_refused_where_it_cannot_go(alif, tmp_path):
    n = alif.ALIF()
    x = torch.rand(4, 2, 3)
    out = ops.neuron_multistep(x, n.params(2))  # the dispatcher picks the reference path
    assert isinstance(out.state, tuple) and len(out.state) == 2
    with pytest.raises(InputError, match="no kernel for the neuron model ALIFParams"):
        ops.neuron_multistep(x, n.params(2), backend="cpu")
    from quadfire.export import to_nir

    with pytest.raises(InputError, match="no NIR mapping"):
        to_nir(create_model("convnet", neuron="alif", T=2, width=4, hidden=8), (1, 8, 8))


def test_custom_neuron_by_import_path_in_train_and_study(alif, tmp_path, monkeypatch, capsys):
    from quadfire.cli import main

    monkeypatch.syspath_prepend(str(ROOT / "examples"))
    tiny = ["--set", "model_kwargs={width: 4, hidden: 16}", "--set", "progress=false",
            "--set", "tensorboard=false", "--set", "epochs=1", "--set", f"out_dir={tmp_path}"]
    assert main(["study", "digits", "--variants", "qif-exact", "custom_neuron:ALIF",
                 "--seeds", "0", *tiny]) == 0
    out = capsys.readouterr().out
    assert "custom_neuron:ALIF" in out and "qif-exact" in out
    assert main(["train", "digits-qif", "--set", "neuron=nowhere:Nothing", *tiny]) == 2
    assert "cannot import 'Nothing' from module 'nowhere'" in capsys.readouterr().err


def test_measure_names_what_it_cannot_account_for():
    class PlainSpiker(nn.Module):  # a neuron that is not a MultiStepNeuron
        def forward(self, x):
            return (x > 0.5).float()

    lone = nn.Sequential(nn.Flatten(2), nn.Linear(64, 10), PlainSpiker())
    data = [(torch.rand(3, 2, 1, 8, 8), torch.tensor([0, 1]))]
    with pytest.raises(InputError, match=r"no spiking layer .*2 \(PlainSpiker\)"):
        measure(lone, data)
    model = create_model("convnet", neuron="qif", T=3, width=4, hidden=8)
    model.body[1] = PlainSpiker()

    class OwnForward(QIF):  # a MultiStepNeuron whose forward never reaches the observers
        def forward(self, x):
            return self.run(x).spikes

    model.body[3] = OwnForward()
    result = measure(model, [(torch.rand(2, 1, 8, 8), torch.tensor([0, 1]))])
    assert result["unaccounted"][0] == "body.1 (PlainSpiker)"
    assert result["unaccounted"][1].startswith("body.3 (OwnForward: a MultiStepNeuron that "
                                               "reported no run")
    assert list(result["layers"]) == ["body.7"]


@pytest.mark.parametrize("backend", ["reference", "cpu"])
@pytest.mark.parametrize("name", ["qif", "qif-exact", "qif-hybrid", "lif"])
def test_a_broadcast_spike_gradient_gives_the_dense_gradient(backend, name):
    """``spikes.sum()`` and ``spikes.sum(0)`` losses hand backward stride-0 gradients, which the
    kernels read as one value or one row (pack.GRAD_LAYOUTS); the result is the dense one's."""
    torch.manual_seed(0)
    n = NeuronSpec(name, {"learnable": "scalar"} if name.startswith("qif") else {}).make(3)
    x = torch.randn(6, 4, 3, 5) * 0.8 + 0.3
    w = torch.rand(4, 3, 5)
    for loss in (lambda s: s.sum(), lambda s: (s.sum(0) * w).sum()):
        grads = []
        for dense in (False, True):
            xi = x.clone().requires_grad_()
            s = ops.neuron_multistep(xi, n.params(3), backend=backend).spikes
            loss(s * torch.ones_like(s) if dense else s).backward()
            grads.append(xi.grad)
        assert torch.allclose(grads[0], grads[1], rtol=1e-6, atol=1e-7)


# -- gradients through time ------------------------------------------------------------------

def test_qif_gradient_explodes_with_t_through_the_reset_and_detach_reset_bounds_it():
    from quadfire.analysis.gradients import gradient_growth

    x = torch.rand(8, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    models = {}
    for name in ("qif", "qif-exact", "lif"):
        torch.manual_seed(0)
        models[name] = create_model("convnet", neuron=name, T=4, width=4, hidden=8)
    g = gradient_growth(models, x, [4, 128])
    for q in ("qif", "qif-exact"):
        assert g[q][128] > 1e6 * g[q][4], q  # exponential in T: the surrogate crosses resets
        assert g[f"{q} detach_reset"][128] < 100 * g[f"{q} detach_reset"][4], q
    assert g["lif"][128] < 2 * g["lif"][4]


def test_long_t_training_steps_stay_finite_with_detach_reset():
    """The digits convnet at T = 300: QIF's gradient overflows (inf/NaN) through the reset;
    with detach_reset a few optimizer steps keep every gradient finite."""
    x = torch.rand(8, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    y = torch.arange(8) % 10
    finite = {}
    for detach in (False, True):
        torch.manual_seed(0)
        model = create_model("convnet", neuron="qif", T=300, width=4, hidden=8,
                             neuron_kwargs={"detach_reset": detach})
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        ok = True
        for _ in range(3):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x).mean(0), y).backward()
            ok &= all(torch.isfinite(p.grad).all() for p in model.parameters())
            opt.step()
        finite[detach] = ok
    assert finite == {False: False, True: True}


def test_analyze_gradients_writes_the_curves(tmp_path, capsys):
    import json

    from quadfire.cli import main

    assert main(["analyze", "gradients", "--neurons", "qif", "lif", "--T", "4", "32",
                 "--samples", "4", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "gradients.json").read_text())
    assert set(data["curves"]) == {"qif", "qif detach_reset", "lif", "lif detach_reset"}
    assert all(set(c) == {"4", "32"} for c in data["curves"].values())
    assert (tmp_path / "gradients.png").stat().st_size > 0
    assert "qif detach_reset: T=4" in capsys.readouterr().out
