"""Property tests of the QIF dynamics (hypothesis) on the reference path, in float64, for each
discretization (Euler, exact flow, hybrid)."""
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from quadfire.analysis.dynamics import rheobase
from quadfire.functional import QIFParams
from quadfire.neurons import QIF


@st.composite
def qif_params(draw, max_ad=1.98):
    discretization = draw(st.sampled_from(["euler", "exact", "hybrid"]))
    u1 = draw(st.floats(-1.0, 1.0))
    d = draw(st.floats(0.05, 2.0))
    ad = draw(st.floats(0.05, max_ad))
    gap = draw(st.floats(0.05, 2.0))
    return dict(a=ad / d, u1=u1, u2=u1 + d, v_th=u1 + d + gap, discretization=discretization)


def simulate(p, x, state=None):
    return QIF(**p).run(x, state=state)


@settings(max_examples=25)
@given(qif_params(), st.floats(0.001, 0.999))
def test_null_input_rest_attracts(p, frac):
    d = p["u2"] - p["u1"]
    u0 = torch.tensor([p["u1"] + frac * d], dtype=torch.float64)
    out = simulate(p, torch.zeros(1500, 1, dtype=torch.float64), u0)
    assert out.spikes.sum() == 0
    assert abs(out.state.item() - p["u1"]) < 1e-6


@settings(max_examples=25)
@given(qif_params(), st.floats(1e-3, 0.5))
def test_null_input_critical_point_repels(p, eps):
    d = p["u2"] - p["u1"]
    x = torch.zeros(2000, 2, dtype=torch.float64)
    u0 = torch.tensor([p["u2"] + eps * d, p["u2"] - eps * d], dtype=torch.float64)
    out = simulate(p, x, u0)
    assert out.spikes[:, 0].sum() >= 1  # above u2 the potential climbs to threshold
    assert out.spikes[:, 1].sum() == 0  # below u2 it falls back to rest


@settings(max_examples=25)
@given(qif_params(), st.floats(-1.0, 0.99))
def test_below_rheobase_never_fires(p, frac):
    i_star = QIF(**p).params().rheobase()
    if p["discretization"] == "euler":
        assert i_star == rheobase(QIFParams(p["a"], p["u1"], p["u2"]))
        assert i_star == pytest.approx(p["a"] * (p["u2"] - p["u1"]) ** 2 / 4)
    x = torch.full((1000, 1), frac * i_star, dtype=torch.float64)
    assert simulate(p, x).spikes.sum() == 0


@settings(max_examples=25)
@given(qif_params(), st.floats(1.05, 50.0))
def test_above_rheobase_fires(p, factor):
    i_star = QIF(**p).params().rheobase()
    # the bottleneck passage near the rheobase takes ~ pi / sqrt(a (I - I*)) steps
    steps = int(4 * math.pi / math.sqrt(p["a"] * (factor - 1) * i_star)) + 100
    x = torch.full((steps, 1), factor * i_star, dtype=torch.float64)
    assert simulate(p, x).spikes.sum() >= 1


@given(qif_params(), st.lists(st.floats(-1e6, 0.0), min_size=1, max_size=60),
       st.sampled_from(["hard", "soft"]))
def test_inhibition_never_causes_a_spike(p, xs, reset):
    x = torch.tensor(xs, dtype=torch.float64).view(-1, 1)
    assert QIF(**p, reset=reset).run(x).spikes.sum() == 0


@given(st.integers(0, 2**31 - 1), st.sampled_from(["scalar", "channel"]),
       st.sampled_from(["sgd", "adam"]), st.floats(0.1, 1e3),
       st.sampled_from(["euler", "exact", "hybrid"]))
def test_learnable_parameters_stay_valid(seed, mode, opt_name, lr, discretization):
    torch.manual_seed(seed)
    q = QIF(learnable=mode, channels=4, discretization=discretization)
    opt = (torch.optim.SGD if opt_name == "sgd" else torch.optim.Adam)(q.parameters(), lr=lr)
    for _ in range(100):
        opt.zero_grad()
        for prm in q.parameters():
            prm.grad = torch.randn_like(prm) * 10 ** torch.empty(()).uniform_(-3, 3)
        opt.step()
        a, u1, u2 = q.values()
        d = u2 - u1
        for v in (a, u1, u2):
            assert torch.isfinite(v).all()
        assert (a > 0).all() and (u1 < u2).all() and (u2 < q.v_th).all() and (a * d < 2).all()
        p = q.params(3)
        assert all(torch.isfinite(torch.as_tensor(v)).all() for v in p.kernel_rows().values())
