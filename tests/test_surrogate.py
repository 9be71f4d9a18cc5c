"""Each surrogate's backward is the derivative of its primitive (central differences)."""
import math

import pytest
import torch

from quadfire.functional import SHAPES, Window, qif_window, spike
from quadfire.neurons import QIF

PARAMS = [dict(), dict(a=0.5, u1=-0.2, u2=0.3, v_th=1.2), dict(a=1.5, u1=0.0, u2=0.9)]


def windows():
    for shape in SHAPES:
        for width in (0.3, 1.0, 2.5):
            yield Window(shape, width, 0.0)
            yield Window(shape, width, -0.2)
    for p in PARAMS:
        for rule in ("band", "band-below", "noise"):
            full = dict(a=0.25, u1=0.0, u2=0.5, v_th=1.0) | p
            yield qif_window(rule, **full)


@pytest.mark.parametrize("window", list(windows()), ids=str)
def test_backward_is_derivative_of_primitive(window):
    x = torch.linspace(-3, 3, 2001, dtype=torch.float64)
    # stay clear of the kinks of rect/triangle, where the derivative is one-sided
    kinks = torch.tensor([window.offset + k * window.width for k in (-1, -0.5, 0, 0.5, 1)],
                         dtype=torch.float64)
    x = x[(x.view(-1, 1) - kinks).abs().min(1).values > 1e-3]
    eps = 1e-6
    fd = (window.primitive(x + eps) - window.primitive(x - eps)) / (2 * eps)
    xr = x.clone().requires_grad_()
    spike(xr, window).sum().backward()
    assert torch.allclose(xr.grad, fd, atol=1e-6)


@pytest.mark.parametrize("shape", SHAPES)
def test_windows_integrate_to_one_and_peak_at_one_over_width(shape):
    w = Window(shape, 0.8)
    x = torch.linspace(-200, 200, 2_000_001, dtype=torch.float64)
    area = torch.trapezoid(w.grad(x), x).item()
    assert area == pytest.approx(1.0, abs=2e-3)
    assert w.grad(torch.zeros(1, dtype=torch.float64)).item() == pytest.approx(1 / 0.8)
    assert w.primitive(torch.tensor([-1e3, 1e3], dtype=torch.float64)).tolist() == pytest.approx([0, 1], abs=1e-3)


def test_rule_widths():
    assert qif_window("band", 0.25, 0.0, 0.5, 1.0).width == pytest.approx(1.0)
    below = qif_window("band-below", 0.25, 0.0, 0.5, 1.0)
    assert (below.width, below.offset) == pytest.approx((0.5, -0.25))
    noise = qif_window("noise", 0.25, 0.0, 0.5, 1.0, sigma=1.0)
    assert noise.width == pytest.approx(math.sqrt(2 * math.pi) / 1.375)


@pytest.mark.parametrize("sigma", [0.25, 0.5, 2.0])
def test_the_noise_window_scales_with_sigma(sigma):
    """w = sqrt(2 pi) sigma / f'(v_th): linear in sigma, through the neuron as well (the only
    other width check uses sigma = v_th, which a rule ignoring sigma would pass)."""
    slope = 1 + 0.25 * (2 * 1.2 - 0.0 - 0.5)  # f'(v_th) at a = 0.25, u1 = 0, u2 = 0.5, v_th = 1.2
    expected = math.sqrt(2 * math.pi) * sigma / slope
    assert qif_window("noise", 0.25, 0.0, 0.5, 1.2, sigma=sigma).width == pytest.approx(expected)
    neuron = QIF(v_th=1.2, surrogate="noise", sigma=sigma)
    assert float(neuron.params().window.width) == pytest.approx(expected)


def test_heaviside_fires_at_threshold():
    assert spike(torch.tensor([-1e-7, 0.0, 1e-7]), Window()).tolist() == [0, 1, 1]


def test_learnable_window_follows_parameters():
    q = QIF(learnable="scalar")
    w0 = q.params().window.width.item()
    with torch.no_grad():
        q.raw_d += 1.0  # moves u2 towards v_th: the band must narrow
    w1 = q.params().window.width.item()
    a, u1, u2 = q.values()
    assert w1 < w0
    assert w1 == pytest.approx(2 * (1.0 - u2.item()), rel=1e-6)


@pytest.mark.parametrize("bad", [dict(shape="gauss"), dict(width=0.0), dict(width=-1.0)])
def test_invalid_windows(bad):
    with pytest.raises(ValueError, match="surrogate"):
        Window(**({"shape": "rect", "width": 1.0} | bad))


def test_unknown_surrogate_spec():
    with pytest.raises(ValueError, match="surrogate must be"):
        QIF(surrogate="magic")
