"""Edge semantics on every backend: non-finite inputs, given states below the floor, empty
sequences and double backward (docs/neuron.md, "Non-finite inputs"; `fire_reset`).

The reference and the fused CPU kernels run here; the Triton kernels run the same tests under
TRITON_INTERPRET=1 in a child process (`test_interpreted`), where BACKENDS is ["triton"].
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from quadfire import ops
from quadfire.neurons import IF, LIF, PLIF, QIF

INTERPRETING = os.environ.get("TRITON_INTERPRET") == "1"
BACKENDS = ["triton"] if INTERPRETING else ["reference", "cpu"]
INF, NAN = float("inf"), float("nan")
BIG = torch.finfo(torch.float32).max
# the interpreter evaluates kernels with numpy, which warns on the inf/NaN arithmetic that
# these tests feed it on purpose (the reference computes the same silently)
pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning",
                                        "ignore:invalid value encountered:RuntimeWarning")

NEURONS = [QIF(), QIF(reset="soft"), QIF(v_min=None), QIF(learnable="scalar", surrogate="noise"),
           QIF(surrogate="sigmoid"), QIF(surrogate="atan", reset="soft"),
           QIF(surrogate="triangle", v_min=None), LIF(), LIF(reset="soft", surrogate="sigmoid"),
           PLIF(), IF(surrogate="atan"), QIF(discretization="exact"),
           QIF(discretization="exact", reset="soft", learnable="scalar", surrogate="atan"),
           QIF(discretization="hybrid"), QIF(discretization="hybrid", reset="soft",
                                               surrogate="sigmoid")]


def test_interpreted():
    if INTERPRETING:
        pytest.skip("this is the child process")
    pytest.importorskip("triton")
    r = subprocess.run([sys.executable, "-m", "pytest", __file__, "-q", "-x", "-p",
                        "no:cacheprovider"], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "TRITON_INTERPRET": "1"})
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-2000:]
    assert " passed" in r.stdout and "failed" not in r.stdout


def run(neuron, x, backend, state=None, weights=True):
    """The module path (`run`, from rest when state is None) with the given backend: outputs
    and the gradients of a weighted loss of spikes and final state (x, state, parameters)."""
    neuron.zero_grad()
    neuron.backend = backend
    x = x.detach().clone().requires_grad_()
    if state is not None:
        state = state.detach().clone().requires_grad_()
    out = neuron.run(x, state, trace=True)
    gen = torch.Generator().manual_seed(0)
    loss = (out.spikes.float() * torch.randn(x.shape, generator=gen)).sum()
    finite_state = torch.where(out.state.isfinite(), out.state, 0.0)
    loss = loss + (finite_state * torch.randn(out.state.shape, generator=gen)).sum()
    if weights:
        loss.backward()
    grads = [x.grad, None if state is None else state.grad] + [p.grad for p in neuron.parameters()]
    neuron.backend = None
    return out, grads


def same(a, b) -> bool:
    """Equal bit for bit, NaN where NaN."""
    return a.shape == b.shape and a.dtype == b.dtype and bool(
        ((a == b) | (a.isnan() & b.isnan())).all())


def assert_like_reference(neuron, x, backend, state=None, finite=True):
    """Spikes, state and trace as the reference's (NaN where NaN); gradients close to the
    reference's and, with `finite`, finite. Without it, only where the reference's are finite:
    for a finite but huge H (3e38) autograd evaluates the reset's dU/dS as
    v_reset*gU - H*gU, which overflows, and the window's 0 then turns it into NaN, where the
    kernels (and the exact value) give 0."""
    ref, r_grads = run(neuron, x, "reference", state)
    out, f_grads = run(neuron, x, backend, state)
    assert same(out.spikes, ref.spikes), "spikes"
    assert same(out.state, ref.state), "state"
    assert same(out.trace, ref.trace), "trace"
    for r, f in zip(r_grads, f_grads):
        assert (r is None) == (f is None)
        if r is None:
            continue
        if finite:
            assert torch.isfinite(r).all() and torch.isfinite(f).all(), "gradient not finite"
        ok = torch.isfinite(r)
        assert torch.isfinite(f[ok]).all(), "gradient not finite"
        scale = r[ok].abs().max().item() if ok.any() else 1.0
        torch.testing.assert_close(f[ok], r[ok], rtol=1e-5, atol=1e-5 * max(1.0, scale))
    return out, f_grads


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("neuron", NEURONS, ids=repr)
def test_infinite_inputs_fire_or_floor_and_leave_no_nan(neuron, backend):
    x = torch.full((6, 2, 3), 0.3)
    x[1, 0, :] = INF
    x[3, 1, 0] = -INF
    x[4, 1, 1] = -INF
    out, grads = assert_like_reference(neuron, x, backend)
    assert torch.isfinite(out.state).all()
    assert (out.spikes[1, 0] == 1).all()  # +inf fires
    assert out.trace[1, 0, 0] == INF and out.trace[3, 1, 0] == -INF  # H as charged, unclamped
    # the clamp passes no gradient at +-inf (beyond what the trace itself would carry)
    assert (grads[0][1, 0] == 0).all() and grads[0][3, 1, 0] == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_hard_reset_after_inf_and_half_overflow(backend):
    """+inf (or float16 70000, which rounds to inf) fires once and resets to v_reset; the old
    rule, h*(1 - s) + v_reset*s, made the state NaN for ever."""
    x = torch.zeros(4, 3, dtype=torch.float16)
    x[1] = 70000.0
    out, _ = assert_like_reference(QIF(v_reset=-0.25), x, backend)
    assert out.spikes[:, 0].tolist() == [0, 1, 0, 0]
    assert torch.isfinite(out.state).all() and out.trace.dtype == torch.float32
    assert (run(QIF(v_reset=-0.25), x[:2], backend)[0].state == -0.25).all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_minus_inf(backend):
    """-inf: QIF floors at v_min, LIF decays from -max, QIF(v_min=None) is thrown upwards and
    fires (what opting out of the floor means)."""
    x = torch.zeros(3, 2)
    x[0] = -INF
    qif = run(QIF(), x[:1], backend)[0]
    assert (qif.spikes == 0).all() and torch.equal(qif.state, torch.full((2,), -1.75))
    lif = run(LIF(), x, backend)[0]
    assert (lif.spikes == 0).all()
    assert torch.equal(lif.state, torch.full((2,), -BIG * 0.5 * 0.5))
    raw = run(QIF(v_min=None), x, backend)[0]
    assert raw.spikes[:, 0].tolist() == [0, 1, 0] and torch.isfinite(raw.state).all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_nan_stays_visible_and_never_spikes(backend):
    x = torch.full((5, 4), 2.0)
    x[1, :2] = NAN
    for neuron in (QIF(), QIF(reset="soft"), LIF()):
        out = run(neuron, x, backend, weights=False)[0]
        ref = run(neuron, x, "reference", weights=False)[0]
        assert same(out.spikes, ref.spikes) and same(out.state, ref.state)
        assert same(out.trace, ref.trace)
        assert (out.spikes[1:, :2] == 0).all() and out.state[:2].isnan().all()
        assert out.trace[1:, :2].isnan().all() and (out.spikes[:, 2:] == 1).all()


@settings(max_examples=8 if INTERPRETING else 30)
@given(st.sampled_from(NEURONS), st.integers(1, 7), st.integers(1, 12), st.integers(0, 2**31 - 1),
       st.sampled_from([INF, -INF, 3e38, -3e38, 1e30]))
def test_extreme_values_anywhere(neuron, steps, n, seed, value):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(steps, n, generator=gen) + 0.3
    x[torch.rand(steps, n, generator=gen) < 0.2] = value
    for backend in BACKENDS:
        if backend != "reference":
            assert_like_reference(neuron, x, backend, finite=False)


@settings(max_examples=8 if INTERPRETING else 40)
@given(st.floats(0.1, 1.9), st.integers(1, 6), st.integers(0, 2**31 - 1),
       st.sampled_from(["vertex", "float"]), st.booleans(),
       st.sampled_from(["euler", "exact", "hybrid"]))
def test_inhibition_never_spikes_from_any_given_state(ad, steps, seed, floor, learnable, disc):
    """A given state below v_min is floored before the first step, so inputs <= 0 never make a
    spike, whatever the state; its gradient follows torch.clamp's rule. The exact map needs no
    floor (it increases everywhere), the hybrid one only for a d > 1 (docs/neuron.md)."""
    a = ad / 0.5
    lowest = {"euler": -1 / a, "exact": -5.0, "hybrid": -0.5 / (ad - 1) if ad > 1 else -5.0}
    v_min = lowest[disc] / 2 if floor == "float" else "vertex"
    neuron = QIF(a=a, u1=0.0, u2=0.5, v_min=v_min, learnable="scalar" if learnable else False,
                 discretization=disc)
    gen = torch.Generator().manual_seed(seed)
    x = -torch.rand(steps, 9, generator=gen) * 10.0 ** torch.randint(-2, 7, (steps, 9), generator=gen)
    state = -torch.rand(9, generator=gen) * 10.0 ** torch.randint(-1, 7, (9,), generator=gen)
    for backend in BACKENDS:
        out, grads = run(neuron, x, backend, state)
        assert (out.spikes == 0).all(), backend
        if backend != "reference":
            ref, r_grads = run(neuron, x, "reference", state)
            assert same(out.state, ref.state) and same(out.trace, ref.trace)
            torch.testing.assert_close(grads[1], r_grads[1], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("learnable", [False, "scalar"])
def test_given_state_on_the_floor_follows_the_clamp_tie_rule(backend, learnable):
    """At U0 == v_min torch.clamp passes 0 of the gradient for a float bound (fixed neuron) and
    1/2 for a tensor bound (learnable); below the floor 0, above it all of it."""
    kw = dict(a=3.0, u1=0.0, u2=0.5, learnable=learnable)  # a*d > 1: the floor is rest itself,
    neuron, free = QIF(**kw), QIF(**kw, v_min=None)        # where the map's slope is -0.5
    floor = float(neuron.params(1).v_min)
    state = torch.tensor([floor - 1.0, floor, floor + 0.25])
    x = torch.full((2, 3), 0.1)  # keeps every later state above the floor
    out, grads = run(neuron, x, backend, state)
    ref, r_grads = run(neuron, x, "reference", state)
    assert same(out.state, ref.state)
    torch.testing.assert_close(grads[1], r_grads[1], rtol=1e-6, atol=0)
    full = run(free, x, backend, state)[1][1]
    share = 0.5 if learnable else 0.0
    assert grads[1][0] == 0 and full[1] != 0
    torch.testing.assert_close(grads[1][1:], torch.stack([share * full[1], full[2]]))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", [(0, 3), (0, 2, 4)])
def test_empty_sequence_is_part_of_the_graph(backend, shape):
    neuron = QIF(learnable="scalar")
    neuron.backend = backend
    x = torch.zeros(shape, requires_grad=True)
    out = neuron.run(x, trace=True)
    assert out.spikes.shape == x.shape and out.trace.shape == x.shape
    (out.spikes.sum() + out.trace.sum()).backward()
    assert x.grad is not None and x.grad.shape == x.shape
    given = torch.zeros(shape[1:], requires_grad=True)
    neuron.run(x, given).state.sum().backward()
    assert given.grad is not None and torch.equal(given.grad, torch.ones(shape[1:]))


@pytest.mark.parametrize("backend", BACKENDS)
def test_double_backward(backend):
    """The reference supports a gradient of a gradient; the fused kernels refuse it with an
    error naming the reference backend (instead of a silent zero second derivative)."""
    neuron = QIF(learnable="scalar", surrogate="sigmoid")
    neuron.backend = backend
    x = (torch.randn(3, 5, generator=torch.Generator().manual_seed(1)) + 0.6).requires_grad_()
    out = neuron.run(x, trace=True)
    loss = (out.spikes * torch.linspace(-1, 1, 5)).sum() + (out.trace ** 2).sum()
    (gx,) = torch.autograd.grad(loss, x, create_graph=True)
    if backend == "reference":
        (ggx,) = torch.autograd.grad(gx.pow(2).sum(), x)
        assert torch.isfinite(ggx).all() and ggx.abs().sum() > 0
    else:
        with pytest.raises(RuntimeError, match="double backward .* backend='reference'"):
            gx.pow(2).sum().backward()
    # without create_graph nothing changes
    assert torch.isfinite(torch.autograd.grad(neuron(x).sum(), x)[0]).all()
