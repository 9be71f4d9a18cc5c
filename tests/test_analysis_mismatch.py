"""Gradient-mismatch tool: estimators against closed forms at T = 1, and the ranking."""
import math

import pytest
import torch

from quadfire.analysis.mismatch import (MismatchSetup, _problem, format_table, measure_mismatch,
                                        surrogate_gradients, true_gradient)
from quadfire.functional import Window


def _phi(z):
    return torch.exp(-z * z / 2) / math.sqrt(2 * math.pi)


def _Phi(z):
    return 0.5 * (1 + torch.erf(z / math.sqrt(2)))


def test_true_gradient_matches_gaussian_density_at_T1():
    # One step from rest u1 = 0: H = X = m + s eps, so E[c S] = c Phi((m - v_th)/s) and the
    # smoothed gradient is c phi((m - v_th)/s) / s.
    setup = MismatchSetup(T=1, neurons=16, pairs=20000, rho=0.6, seed=3)
    m, c, _ = _problem(setup)
    s = setup.noise
    exact = c * _phi((m - setup.v_th) / s) / s
    est, ceiling = true_gradient(setup)
    assert torch.nn.functional.cosine_similarity(est.flatten(), exact.flatten(), dim=0) > 0.995
    assert (est - exact).abs().max() < 0.03
    assert 0.99 < ceiling <= 1.0


def test_surrogate_mean_matches_window_convolved_density_at_T1():
    # For a rect window E[g_w(m + s eps - v_th)]
    #   = (Phi((m - v_th + w/2)/s) - Phi((m - v_th - w/2)/s)) / w
    setup = MismatchSetup(T=1, neurons=16, batch=512, batches=16, seed=4)
    m, c, _ = _problem(setup)
    s, w = setup.noise, 0.8
    exact = c * (_Phi((m - 1 + w / 2) / s) - _Phi((m - 1 - w / 2) / s)) / w
    mean = surrogate_gradients(setup, Window("rect", w)).mean(0)
    assert (mean - exact).abs().max() < 0.03


def test_too_narrow_window_ranks_below_default():
    setup = MismatchSetup(T=4, neurons=32, batch=64, batches=8, pairs=4000, seed=0)
    result = measure_mismatch(setup, factors=(0.1, 1.0), rules=("band",))
    assert result.widths["rect x0.1"] == pytest.approx(0.1)
    assert result.cosine["band"] == pytest.approx(result.cosine["rect x1"])  # same window
    assert result.cosine["band"] > 0.9
    assert result.cosine["rect x0.1"] < result.cosine["band"] - 0.2
    assert "*" in format_table(result)


def test_setup_rejects_bad_values():
    with pytest.raises(ValueError, match="rho"):
        MismatchSetup(rho=1.0)
    with pytest.raises(ValueError, match="pairs"):
        MismatchSetup(pairs=0)
