"""Single-neuron analysis against hand computations and plain iteration."""
import math

import numpy as np
import pytest

from quadfire.analysis import dynamics
from quadfire.analysis.single_neuron import bifurcation, fi_curve, null_orbit, summary
from quadfire.functional import QIFParams
from quadfire.neurons import IF, LIF, QIF


def test_qif_fi_curve_matches_steps_to_threshold():
    steps = 600
    I = np.array([0.0, 0.01, 0.0157, 0.02, 0.05, 0.2, 0.7, 1.5])
    n = dynamics.steps_to_threshold(I)
    finite = np.isfinite(n)
    expected = np.where(finite, np.floor(steps / np.where(finite, n, 1)) / steps, 0.0)
    np.testing.assert_allclose(fi_curve(QIF(), I, steps), expected, atol=1e-12)
    assert fi_curve(QIF(), [dynamics.rheobase() * 0.99], steps)[0] == 0.0


def test_lif_fi_curve_matches_closed_form():
    # From rest U_n = (I/k)(1 - (1-k)^n); the first n with U_n >= v_th is the period.
    steps, k = 500, 0.5
    for I in (0.51, 0.6, 0.8, 1.0, 3.0):
        n = next(n for n in range(1, 10_000) if (I / k) * (1 - (1 - k) ** n) >= 1.0)
        assert fi_curve(LIF(tau=2.0), [I], steps)[0] == pytest.approx((steps // n) / steps)
    assert fi_curve(LIF(tau=2.0), [0.49], steps)[0] == 0.0  # I/k < v_th never fires
    assert fi_curve(IF(), [0.25], steps)[0] == pytest.approx(0.25)


def test_null_orbit_is_the_iterated_map_with_reset():
    u, expected_u, expected_s = 0.6, [], []
    for _ in range(40):
        expected_u.append(u)
        h = dynamics.qif_map(u)
        expected_s.append(float(h >= 1.0))
        u = 0.0 if h >= 1.0 else h
    orbit = null_orbit(QIF(), 0.6, 40)
    np.testing.assert_allclose(orbit.u, expected_u, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(orbit.spikes, expected_s)
    assert orbit.spikes.sum() == 1  # climbs past u2 to threshold once, then rests


def test_null_orbit_respects_the_floor():
    orbit = null_orbit(QIF(), -3.0, 5)  # below the vertex: the start is floored at v_min = -1.75
    assert orbit.u[1] == pytest.approx(max(dynamics.qif_map(-1.75), -1.75))
    assert orbit.spikes.sum() == 0


def test_bifurcation_rest_then_period_two():
    u1, u2 = 0.0, 0.5
    out = bifurcation([0.3, 1.0, 1.7, 2.2], QIFParams(u1=u1, u2=u2))
    for values in out[:3]:
        np.testing.assert_allclose(values, [u1], atol=1e-8)
    # Period-2 points of v <- b v + a v^2 (v = u - u1, b = 1 - a d) solve
    # a^2 v^2 + a (b + 1) v + (b + 1) = 0.
    a = 2.2 / (u2 - u1)
    b = 1 - 2.2
    disc = (a * (b + 1)) ** 2 - 4 * a * a * (b + 1)
    roots = sorted((-a * (b + 1) + s * math.sqrt(disc)) / (2 * a * a) + u1 for s in (-1, 1))
    np.testing.assert_allclose(out[3], roots, atol=1e-7)


def test_bifurcation_rejects_escaping_range():
    with pytest.raises(ValueError, match=r"\(0, 3\]"):
        bifurcation([3.5])


def test_summary_closed_forms():
    s = summary(QIF(0.25, 0.0, 0.5, 1.0).params())
    assert [fp["u"] for fp in s["fixed_points"]] == [0.0, 0.5]
    assert [fp["stable"] for fp in s["fixed_points"]] == [True, False]
    assert s["rheobase"] == pytest.approx(0.25 * 0.25 / 4)
    assert s["vertex"] == pytest.approx(-1.75) and s["v_min"] == pytest.approx(-1.75)
    assert s["rest"] == "monotone"
    with pytest.raises(ValueError, match="u2 < v_th"):
        summary(QIFParams(0.25, 0.0, 1.5, 1.0))


def test_a_step_cap_is_reported_as_more_than_not_never():
    """With a = 1e-9 the passage past the rheobase takes ~1e10 steps: beyond the cap the
    answer is "more than N", while below the rheobase "never" is proven."""
    s = summary(QIF(a=1e-9).params(), max_steps=300)
    assert list(s["steps_to_threshold"].values()) == ["never"] + ["more than 300"] * 3
    steps = dynamics.steps_to_threshold([0.0, 1.0], QIF(a=1e-9).params(), max_steps=50)
    assert np.isinf(steps[0]) and steps[1] == 1
    assert np.isnan(dynamics.steps_to_threshold([2e-10], QIF(a=1e-9).params(),
                                                max_steps=50)[0])
    assert dynamics.format_steps(np.nan, 50) == "more than 50"
    assert summary()["steps_to_threshold"] == {"0.0078125": "never", "0.0171875": 140,
                                               "0.03125": 34, "0.0625": 15}
