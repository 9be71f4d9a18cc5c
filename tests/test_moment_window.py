"""The `moment` window rule (quadfire/functional/moments.py, docs/surrogate-window.md): the
stationary law of H against simulation and closed forms, the width criterion, the rule in the
QIF module for every discretization and for learnable parameters, and its errors."""
import math

import pytest
import torch

from quadfire.errors import ParameterError
from quadfire.functional import qif_window
from quadfire.functional import moments, qif_default_floor, windows
from quadfire.functional.moments import (COARSE, FINE, cached_moment_width, moment_width,
                                         mse_curve, stationary)
from quadfire.functional.params import (LIFParams, QIFExactParams, QIFHybridParams,
                                        QIFParams)
from quadfire.neurons import QIF

MODELS = {
    "euler": QIFParams(v_min=-1.75),
    "exact": QIFExactParams(),
    "hybrid": QIFHybridParams(),
    "hybrid-oscillating": QIFHybridParams(a=2.5, v_min=-0.3),
    "lif": LIFParams(k=0.5),
    "lif-soft": LIFParams(k=0.5, soft=True),
}


def _simulate(p, sigma=1.0, mu=0.0, n=20000, steps=130, burn=30, seed=0):
    g = torch.Generator().manual_seed(seed)
    u = torch.full((n,), float(p.rest()), dtype=torch.float64)
    hs, rate, floor = [], 0.0, 0.0
    for t in range(steps):
        s, u, h = p.step(mu + sigma * torch.randn(n, generator=g, dtype=torch.float64), u)
        if t >= burn:
            hs.append(h)
            rate += s.mean().item()
            if p.floor() is not None:
                floor += (h < p.floor()).double().mean().item()
    k = steps - burn
    return torch.cat(hs), rate / k, floor / k


@pytest.mark.parametrize("name", list(MODELS))
def test_stationary_law_matches_simulation(name):
    p = MODELS[name]
    st = stationary(p, 1.0, mu=0.1)
    h, rate, floor = _simulate(p, mu=0.1)
    # samples are correlated over steps; 0.01 is several standard errors of these estimates
    assert st.mean_h.item() == pytest.approx(h.mean().item(), abs=0.01)
    assert st.std_h.item() == pytest.approx(h.std().item(), abs=0.01)
    assert st.rate.item() == pytest.approx(rate, abs=0.004)
    assert st.floor_share.item() == pytest.approx(floor, abs=0.004)
    width = 0.05
    near = ((h - p.v_th).abs() < width / 2).double().mean().item() / width
    dens = st.density_h(torch.tensor([[p.v_th]], dtype=torch.float64)).item()
    assert dens == pytest.approx(near, rel=0.06)


def test_linear_chain_matches_its_closed_form():
    # a LIF whose threshold is out of reach is the AR(1) chain H = lam U + X: Var H = s^2/(1-lam^2)
    lam = 0.7
    st = stationary(LIFParams(k=1 - lam, v_th=8.0), 1.0)
    assert st.std_h.item() == pytest.approx(1 / math.sqrt(1 - lam * lam), rel=2e-3)
    # P(H >= 8) = P(z >= 5.7) = 6e-9 for this chain
    assert abs(st.mean_h.item()) < 1e-5 and st.rate.item() < 1e-7


def test_width_minimises_the_criterion_and_shrinks_like_n_to_the_minus_fifth():
    st = stationary(QIFParams(v_min=-1.75), 1.0)
    w = moment_width(st, 64, 0.5)
    around = w * torch.tensor([[0.9, 0.97, 1.0, 1.03, 1.1]], dtype=torch.float64)
    J = mse_curve(st, 64, 0.5, around)[0]
    assert int(torch.argmin(J)) == 2
    widths = [moment_width(st, n, 0.5).item() for n in (512, 4096, 32768)]
    for wide, narrow in zip(widths, widths[1:]):
        assert narrow / wide == pytest.approx(8 ** -0.2, rel=0.03)  # the KDE bandwidth law


def test_batched_law_equals_one_parameter_set_at_a_time():
    a = torch.tensor([0.1, 0.25, 0.9], dtype=torch.float64)
    u2 = torch.tensor([0.5, 0.4, 0.7], dtype=torch.float64)
    batched = moment_width(stationary(QIFHybridParams(a=a, u2=u2), 0.8))
    one = [moment_width(stationary(QIFHybridParams(a=float(ai), u2=float(ui)), 0.8)).item()
           for ai, ui in zip(a, u2)]
    assert batched.tolist() == pytest.approx(one, rel=1e-9)


@pytest.mark.parametrize("discretization", ["euler", "exact", "hybrid"])
def test_qif_module_uses_the_rule_for_its_own_map(discretization):
    n = QIF(surrogate="moment", discretization=discretization, sigma=0.8, samples=128, rho=0.6)
    p = n.params()
    expected = moment_width(stationary(p, 0.8), 128, 0.6).item()
    assert p.window.width == pytest.approx(expected, rel=1e-12)
    x = torch.randn(6, 4, 10, requires_grad=True)
    n(x).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_rule_reads_reset_and_floor():
    base = qif_window("moment", 0.25, 0.0, 0.5, 1.0, v_min=-1.75).width
    assert qif_window("moment", 0.25, 0.0, 0.5, 1.0, v_min=-0.5).width != base
    assert qif_window("moment", 0.25, 0.0, 0.5, 1.0, v_min=-1.75, v_reset=-0.5).width != base


def test_learnable_widths_follow_rounded_parameters_and_are_cached():
    n = QIF(surrogate="moment", learnable="channel", channels=3, discretization="hybrid")
    w0 = n.params(3).window.width
    assert w0.shape == (3, 1)
    assert torch.allclose(w0, w0[0].expand_as(w0))
    misses = cached_moment_width.misses
    n.params(3)
    assert cached_moment_width.misses == misses  # nothing new: nothing computed
    with torch.no_grad():
        n.raw_a[1] += 1e-6            # inside the rounding grid: the same width
        n.raw_a[2] += 1.0             # a moves by several percent: its own width
    w1 = n.params(3).window.width
    assert w1[0] == w0[0] and w1[1] == w0[1] and w1[2] != w0[2]
    assert cached_moment_width.misses == misses + 1  # only the channel that moved


def _learnable(discretization, a, u1, u2, floor="default"):
    """The moment width a learnable layer of one channel uses at (a, u1, u2)."""
    t = lambda v: torch.tensor([v], dtype=torch.float64)  # noqa: E731
    p = {"euler": QIFParams, "exact": QIFExactParams, "hybrid": QIFHybridParams}[
        discretization](a=a, u1=u1, u2=u2, v_reset=u1)
    floor = p.floor() if floor == "default" else floor
    return qif_window("moment", t(a), t(u1), t(u2), 1.0, discretization=discretization,
                      v_reset=t(u1), v_min=None if floor is None else t(floor)).width.item()


@pytest.mark.parametrize("discretization", ["euler", "exact", "hybrid"])
def test_learnable_rounding_and_coarse_search_cost_nothing_measurable(discretization):
    """Learnable parameters enter on a 5% grid and the width is searched coarsely; against
    the fine width at the exact parameters, both together move the width by under 2% and
    raise the mismatch J by under 1e-3 (docs/surrogate-window.md, "Cost")."""
    g = torch.Generator().manual_seed(1)
    for _ in range(3):
        a, u1, u2 = (float(lo + (hi - lo) * torch.rand(1, generator=g))
                     for lo, hi in ((0.1, 0.5), (-0.2, 0.0), (0.3, 0.7)))
        p = {"euler": QIFParams, "exact": QIFExactParams, "hybrid": QIFHybridParams}[
            discretization](a=a, u1=u1, u2=u2, v_reset=u1)
        st = stationary(p, 1.0)
        fine, learnt = moment_width(st).item(), _learnable(discretization, a, u1, u2)
        assert abs(learnt / fine - 1) < 0.02
        J = mse_curve(st, 64, 0.5, torch.tensor([[fine, learnt]], dtype=torch.float64))[0]
        assert J[1] / J[0] - 1 < 1e-3
        # the coarse search alone, at the same parameters
        assert abs(moment_width(st, search=COARSE).item() / fine - 1) < 0.006


def test_learnable_width_is_a_function_of_the_parameters_alone():
    """A resumed run starts with empty caches; the widths must not depend on what was looked
    up before (the layer memo, the per-channel cache), only on the parameters."""
    def widths():
        torch.manual_seed(0)
        n = QIF(surrogate="moment", learnable="channel", channels=6, discretization="euler")
        with torch.no_grad():
            n.raw_a.add_(0.3 * torch.randn(6))
            n.raw_d.add_(0.3 * torch.randn(6))
        return n.params(3).window.width
    first = widths()
    again = widths()                                   # all from the caches
    windows._layer_widths.cache_clear()
    warm = widths()                                    # the per-channel cache only
    windows._layer_widths.cache_clear()
    moments._CACHE.clear()
    cold = widths()                                    # as in a fresh process
    assert all(torch.equal(first, w) for w in (again, warm, cold))
    n = QIF(surrogate="moment", learnable="channel", channels=6, discretization="euler")
    with torch.no_grad():
        torch.manual_seed(0)
        n.raw_a.add_(0.3 * torch.randn(6))
        n.raw_d.add_(0.3 * torch.randn(6))
    a, u1, u2 = (v.detach().double().flatten() for v in n.values())
    one_by_one = [_learnable("euler", *(float(v[i]) for v in (a, u1, u2)),
                             floor=float(qif_default_floor(a[i], u1[i], u2[i])))
                  for i in range(6)]
    assert first.flatten().tolist() == pytest.approx(one_by_one, rel=1e-6)


def test_fine_search_is_the_default_of_fixed_neurons():
    assert qif_window("moment", 0.25, 0.0, 0.5, 1.0, v_min=-1.75).width == \
        moment_width(stationary(MODELS["euler"], 1.0), search=FINE).item()


def test_the_solve_runs_on_one_blas_thread(monkeypatch):
    """OpenBLAS's own pool spinning against torch's training threads made each solve ~10x
    slower on a loaded 2-core CPU; the small systems are solved on one thread."""
    import numpy
    from threadpoolctl import threadpool_info
    seen, solve = [], numpy.linalg.solve

    def spy(a, b):
        blas = [i for i in threadpool_info() if i["user_api"] == "blas"]
        # the solve's BLAS is numpy's own (scipy, loaded later by other tests, has another)
        seen.extend(i["num_threads"] for i in
                    [i for i in blas if "numpy" in i["filepath"]] or blas)
        return solve(a, b)
    monkeypatch.setattr(numpy.linalg, "solve", spy)
    stationary(MODELS["euler"], 1.0)
    assert seen and set(seen) == {1}


def test_soft_reset_qif_runs_away_and_the_rule_says_so():
    with pytest.raises(ParameterError, match="runs away"):
        QIF(surrogate="moment", reset="soft").params()


@pytest.mark.parametrize("kwargs, match", [({"samples": 0}, "samples"), ({"rho": 1.0}, "rho"),
                                           ({"samples": 2.5}, "samples")])
def test_bad_rule_inputs_are_refused(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        QIF(surrogate="moment", **kwargs)
