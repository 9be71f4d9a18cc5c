"""Hand-computed 5-step trajectories (worked by hand from the equations in steps.py)."""
import pytest
import torch

from quadfire.neurons import IF, LIF, QIF

X = [0.6, 0.6, 0.1, -0.3, 2.0]


def run(neuron, xs=X):
    x = torch.tensor(xs, dtype=torch.float64).view(5, 1)
    out = neuron.run(x, trace=True)
    return out.spikes.view(-1).tolist(), out.trace.view(-1).tolist(), out.state.item()


def test_qif_hard_reset():
    # H1 = 0.6; H2 = 0.6 + .25*.6*(.6-.5) + .6 = 1.215 -> spike, U = u1 = 0;
    # H3 = 0.1; H4 = .1 + .25*.1*(-.4) - .3 = -0.21; H5 = -.21 + .25*(-.21)*(-.71) + 2 = 1.827275
    s, h, u = run(QIF())
    assert s == [0, 1, 0, 0, 1]
    assert h == pytest.approx([0.6, 1.215, 0.1, -0.21, 1.827275], abs=1e-12)
    assert u == 0.0


def test_qif_soft_reset():
    # U2 = 1.215 - 1 = 0.215; H3 = .215 + .25*.215*(-.285) + .1 = 0.29968125;
    # H4 = 0.29968125 + .25*0.29968125*(0.29968125 - .5) - .3 = -0.015326693349609375
    s, h, u = run(QIF(reset="soft"))
    assert s == [0, 1, 0, 0, 1]
    assert h == pytest.approx([0.6, 1.215, 0.29968125, -0.015326693349609375,
                               1.9866478702013501], abs=1e-12)
    assert u == pytest.approx(0.98664787020135, abs=1e-12)


def test_lif_tau2_hard_reset():
    # H = U/2 + X: 0.6, 0.9, 0.55, -0.025, 1.9875 -> one spike at the last step
    s, h, u = run(LIF())
    assert s == [0, 0, 0, 0, 1]
    assert h == pytest.approx([0.6, 0.9, 0.55, -0.025, 1.9875], abs=1e-12)
    assert u == 0.0


def test_if_integrates_without_leak():
    s, h, _ = run(IF())
    assert h == pytest.approx([0.6, 1.2, 0.1, -0.2, 1.8], abs=1e-12)
    assert s == [0, 1, 0, 0, 1]


def test_qif_floor_clamps_strong_inhibition():
    # rest 0, input -5: H = -5 is below the vertex -1.75, so U is floored there;
    # next step H = f(-1.75) + 0 = -1.75 + .25*(-1.75)*(-2.25) = -0.765625
    s, h, u = run(QIF(), [-5.0, 0.0, 0.0, 0.0, 0.0])
    assert s == [0] * 5
    assert h[:2] == pytest.approx([-5.0, -0.765625], abs=1e-12)


def test_step_function_matches_module():
    q = QIF()
    x = torch.randn(6, 3, 4, dtype=torch.float64)
    u = torch.zeros(3, 4, dtype=torch.float64)
    spikes = []
    for xt in x.unbind(0):
        s, u = q.step(xt, u)
        spikes.append(s)
    out = q.run(x)
    assert torch.equal(torch.stack(spikes), out.spikes)
    assert torch.equal(u, out.state)


def test_state_chaining_equals_one_long_run():
    q = QIF(reset="soft")
    x = torch.randn(8, 5, dtype=torch.float64)
    whole = q.run(x)
    first = q.run(x[:3])
    second = q.run(x[3:], state=first.state)
    assert torch.equal(torch.cat([first.spikes, second.spikes]), whole.spikes)
    assert torch.equal(second.state, whole.state)
