"""Closed-form dynamics helpers against plain iteration of the map."""
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from quadfire.analysis import dynamics as dyn
from quadfire.errors import ParameterError
from quadfire.functional import QIFExactParams, QIFParams
from quadfire.neurons import QIF


def iterate(u, n, p, I=0.0):
    for _ in range(n):
        u = dyn.qif_map(u, p, I)
    return u


@st.composite
def params(draw):
    u1 = draw(st.floats(-1, 1))
    d = draw(st.floats(0.1, 2))
    return QIFParams(draw(st.floats(0.05, 1.95)) / d, u1, u1 + d)


@given(params(), st.floats(-1, 0.99))
def test_fixed_points_are_fixed_and_stability_matches_iteration(p, frac):
    I = frac * dyn.rheobase(p)
    lo, hi = dyn.fixed_points(p, I)
    for fp in (lo, hi):
        assert dyn.qif_map(fp.u, p, I) == pytest.approx(fp.u, abs=1e-9)
    assert not hi.stable  # the upper point always repels (slope > 1)
    # the lower one is stable iff abs(slope) < 1; inhibition can push its slope below -1
    delta = 1e-4 * (hi.u - lo.u)
    for fp in (lo, hi):
        moved = abs(iterate(fp.u + delta, 60, p, I) - fp.u)
        assert (moved < delta) == fp.stable


def test_null_input_slopes():
    (r, c) = dyn.fixed_points()  # the defaults: a = 0.25, u1 = 0, u2 = 0.5
    assert (r.u, r.slope, c.u, c.slope) == pytest.approx((0.0, 0.875, 0.5, 1.125))


@given(params())
def test_rheobase_is_the_saddle_node(p):
    i_star = dyn.rheobase(p)
    assert len(dyn.fixed_points(p, i_star * 0.999)) == 2
    assert dyn.fixed_points(p, i_star * 1.001) == []
    # just above the rheobase plain iteration runs away from rest
    assert iterate(p.u1, 20000, p, i_star * 1.01) > p.u2


@given(params())
def test_vertex_is_the_minimum_and_throw_point(p):
    v = dyn.vertex(p)
    f = lambda u: dyn.qif_map(u, p)  # noqa: E731
    assert f(v - 1e-3) > f(v) and f(v + 1e-3) > f(v)
    t = dyn.throw_point(p)
    assert f(t - 1e-3) > p.u2 > f(t + 1e-3)


def test_rest_stability_classes():
    assert dyn.rest_stability(QIFParams(0.25, 0, 0.5)) == "monotone"
    assert dyn.rest_stability(QIFParams(3.0, 0, 0.5)) == "oscillatory"
    # oscillatory: the distance to rest alternates in sign while shrinking
    u = [0.05]
    for _ in range(4):
        u.append(dyn.qif_map(u[-1], QIFParams(3.0, 0, 0.5)))
    assert all(x * y < 0 for x, y in zip(u, u[1:])) and abs(u[-1]) < abs(u[0])
    assert dyn.rest_stability(QIFParams(4.5, 0, 0.5)) == "unstable"


@given(params(), st.lists(st.floats(-0.5, 3.0), min_size=1, max_size=8))
def test_steps_to_threshold_matches_the_neuron(p, inputs):
    neuron = QIF(a=p.a, u1=p.u1, u2=p.u2, v_th=p.u2 + 0.5)
    steps = dyn.steps_to_threshold(inputs, neuron.params(), max_steps=400)
    x = torch.tensor(inputs, dtype=torch.float64).expand(400, -1).contiguous()
    spikes = neuron.run(x).spikes
    for j, s in enumerate(steps):
        fired = spikes[:, j].nonzero()
        if np.isfinite(s):
            assert fired.numel() and fired[0].item() + 1 == s
        else:
            assert fired.numel() == 0


def test_firing_rate_is_monotone_and_zero_below_rheobase():
    i_star = dyn.rheobase()
    rates = dyn.firing_rate(np.linspace(0, 2, 41))
    assert np.all(np.diff(rates) >= 0)
    assert dyn.firing_rate([i_star * 0.9])[0] == 0
    assert dyn.firing_rate([i_star * 1.5])[0] > 0


def test_the_closed_forms_are_the_euler_maps_only():
    with pytest.raises(ParameterError, match="Euler QIF map.*got QIFExactParams.*model_"):
        dyn.fixed_points(QIFExactParams())
