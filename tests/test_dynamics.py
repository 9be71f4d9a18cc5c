"""Closed-form dynamics helpers against plain iteration of the map."""
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from quadfire.analysis import dynamics as dyn
from quadfire.neurons import QIF


def iterate(u, n, a, u1, u2, I=0.0):
    for _ in range(n):
        u = dyn.qif_map(u, a, u1, u2, I)
    return u


@st.composite
def params(draw):
    u1 = draw(st.floats(-1, 1))
    d = draw(st.floats(0.1, 2))
    return draw(st.floats(0.05, 1.95)) / d, u1, u1 + d


@given(params(), st.floats(-1, 0.99))
def test_fixed_points_are_fixed_and_stability_matches_iteration(p, frac):
    a, u1, u2 = p
    I = frac * dyn.rheobase(a, u1, u2)
    lo, hi = dyn.fixed_points(a, u1, u2, I)
    for fp in (lo, hi):
        assert dyn.qif_map(fp.u, a, u1, u2, I) == pytest.approx(fp.u, abs=1e-9)
    assert not hi.stable  # the upper point always repels (slope > 1)
    # the lower one is stable iff abs(slope) < 1; inhibition can push its slope below -1
    delta = 1e-4 * (hi.u - lo.u)
    for fp in (lo, hi):
        moved = abs(iterate(fp.u + delta, 60, a, u1, u2, I) - fp.u)
        assert (moved < delta) == fp.stable


def test_null_input_slopes():
    (r, c) = dyn.fixed_points(0.25, 0.0, 0.5)
    assert (r.u, r.slope, c.u, c.slope) == pytest.approx((0.0, 0.875, 0.5, 1.125))


@given(params())
def test_rheobase_is_the_saddle_node(p):
    a, u1, u2 = p
    i_star = dyn.rheobase(a, u1, u2)
    assert len(dyn.fixed_points(a, u1, u2, i_star * 0.999)) == 2
    assert dyn.fixed_points(a, u1, u2, i_star * 1.001) == []
    # just above the rheobase plain iteration runs away from rest
    assert iterate(u1, 20000, a, u1, u2, i_star * 1.01) > u2


@given(params())
def test_vertex_is_the_minimum_and_throw_point(p):
    a, u1, u2 = p
    v = dyn.vertex(a, u1, u2)
    f = lambda u: dyn.qif_map(u, a, u1, u2)  # noqa: E731
    assert f(v - 1e-3) > f(v) and f(v + 1e-3) > f(v)
    t = dyn.throw_point(a, u1)
    assert f(t - 1e-3) > u2 > f(t + 1e-3)


def test_rest_stability_classes():
    assert dyn.rest_stability(0.25, 0, 0.5) == "monotone"
    assert dyn.rest_stability(3.0, 0, 0.5) == "oscillatory"
    # oscillatory: the distance to rest alternates in sign while shrinking
    u = [0.05]
    for _ in range(4):
        u.append(dyn.qif_map(u[-1], 3.0, 0, 0.5))
    assert all(x * y < 0 for x, y in zip(u, u[1:])) and abs(u[-1]) < abs(u[0])
    assert dyn.rest_stability(4.5, 0, 0.5) == "unstable"


@given(params(), st.lists(st.floats(-0.5, 3.0), min_size=1, max_size=8))
def test_steps_to_threshold_matches_the_neuron(p, inputs):
    a, u1, u2 = p
    v_th = u2 + 0.5
    steps = dyn.steps_to_threshold(inputs, a, u1, u2, v_th, max_steps=400)
    x = torch.tensor(inputs, dtype=torch.float64).expand(400, -1).contiguous()
    spikes = QIF(a=a, u1=u1, u2=u2, v_th=v_th).run(x).spikes
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
