"""Shared hypothesis strategies and comparisons for the fused-kernel tests (test_ops_*.py).

A case is a real neuron module (QIF in each discretization / LIF / PLIF / IF with random valid
parameters, reset mode, floor, surrogate and learnable parameters perturbed away from their
init) and an input
of random shape, layout and scale. `run` pushes it through one backend and returns outputs and
every gradient; `assert_same` checks spikes, state and trace bit for bit and gradients within
1e-5 relative (measured against each tensor's largest magnitude); `assert_matches_reference`
runs a case through the reference and a fused run and compares them; `assert_half_input`
checks a float16/bfloat16 input against float32 on the rounded input.
"""
from __future__ import annotations

import copy
import math

import torch
from hypothesis import assume, currently_in_test_context
from hypothesis import strategies as st

from quadfire import ops
from quadfire.neurons import IF, LIF, PLIF, QIF

RTOL = 1e-5
SURROGATES = ("band", "band-below", "noise", "rect", "triangle", "sigmoid", "atan")
SHAPES = ("rect", "triangle", "sigmoid", "atan")


DISCRETIZATIONS = ("euler", "exact", "hybrid")


@st.composite
def qif_neurons(draw, channels: int | None, discretizations=DISCRETIZATIONS):
    discretization = draw(st.sampled_from(discretizations))
    u1 = draw(st.floats(-0.5, 0.3))
    d = draw(st.floats(0.1, 0.9))
    u2 = u1 + d
    v_th = u2 + draw(st.floats(0.1, 0.8))
    a = draw(st.floats(0.05, 1.9)) / d
    floor = draw(st.sampled_from(["vertex", None, "float"]))
    lowest = {"euler": u1 - 1 / a, "exact": u1 - 5.0,
              "hybrid": u1 - (d / (a * d - 1) if a * d > 1 else 5.0)}[discretization]
    v_min = draw(st.floats(lowest, u1)) if floor == "float" else floor
    reset = draw(st.sampled_from(["hard", "soft"]))
    v_reset = draw(st.one_of(st.none(), st.floats(max(u1 - 0.3, u1 - 1 / a), u1 + 0.15)))
    learnable = draw(st.sampled_from([False, "scalar"] + (["channel"] if channels else [])))
    surrogate = draw(st.sampled_from(SURROGATES))
    width = draw(st.floats(0.3, 2.0))
    return QIF(a=a, u1=u1, u2=u2, v_th=v_th, reset=reset, v_reset=v_reset, v_min=v_min,
               surrogate=surrogate, surrogate_width=width, sigma=draw(st.floats(0.3, 1.5)),
               learnable=learnable, channels=channels if learnable == "channel" else None,
               discretization=discretization, detach_reset=draw(st.booleans()))


@st.composite
def lif_neurons(draw, channels: int | None):
    kind = draw(st.sampled_from(["lif", "plif", "if"]))
    kw = dict(v_th=draw(st.floats(0.5, 1.5)), reset=draw(st.sampled_from(["hard", "soft"])),
              v_reset=draw(st.floats(-0.3, 0.2)), surrogate=draw(st.sampled_from(SHAPES)),
              surrogate_width=draw(st.floats(0.3, 2.0)), detach_reset=draw(st.booleans()))
    if kind == "if":
        return IF(**kw)
    tau = draw(st.floats(1.1, 8.0))
    if kind == "lif":
        return LIF(tau=tau, v_rest=draw(st.floats(-0.3, 0.2)), **kw)
    learnable = draw(st.sampled_from(["scalar"] + (["channel"] if channels else [])))
    return PLIF(tau=tau, learnable=learnable, channels=channels if learnable == "channel" else None, **kw)


@st.composite
def cases(draw, max_t: int = 64, max_elems: int = 4000):
    """(neuron, x, state or None, trace flag, gradient weights seed)."""
    steps = draw(st.integers(1, max_t))
    ndim = draw(st.integers(1, 4))
    shape = [draw(st.integers(1, 7)) for _ in range(ndim)]
    while steps * math.prod(shape) > max_elems and max(shape) > 1:
        shape[shape.index(max(shape))] //= 2
    channels = shape[1] if ndim >= 2 else None
    neuron = draw(st.one_of(qif_neurons(channels), qif_neurons(channels), lif_neurons(channels)))
    seed = draw(st.integers(0, 2**31 - 1))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # move learnable parameters away from their (uniform) init
        for prm in neuron.parameters():
            prm.add_(0.3 * torch.randn(prm.shape, generator=gen))
    layout = draw(st.sampled_from(["contiguous", "strided", "transposed"]))
    full = [steps] + shape
    mu, sigma = draw(st.floats(-0.2, 0.8)), draw(st.floats(0.05, 1.5))
    if layout == "strided":
        x = torch.randn(full[:-1] + [2 * full[-1]], generator=gen)[..., ::2]
    elif layout == "transposed":
        x = torch.randn([full[1], full[0]] + full[2:], generator=gen).transpose(0, 1)
    else:
        x = torch.randn(full, generator=gen)
    x = x.mul_(sigma).add_(mu)  # in place: a strided or transposed view stays non-contiguous
    state = None
    if draw(st.booleans()):
        state = 0.5 * torch.randn(shape, generator=gen)
    return neuron, x, state, draw(st.booleans()), seed


def run(neuron, x, state, trace, seed, backend, dtype=None):
    """Outputs and gradients (x, state, every parameter) of a weighted loss on one backend."""
    neuron.zero_grad()
    x = x.detach().to(dtype or x.dtype).requires_grad_()
    u0 = neuron.rest_state(x[0].detach()) if state is None else state.to(
        torch.float64 if x.dtype == torch.float64 else torch.float32)
    u0 = u0.detach().clone().requires_grad_()
    out = ops.neuron_multistep(x, neuron.params(x.dim() - 1), u0, trace=trace, backend=backend)
    gen = torch.Generator().manual_seed(seed + 1)
    loss = (out.spikes * torch.randn(x.shape, generator=gen).to(x.dtype)).sum()
    loss = loss + (out.state * torch.randn(out.state.shape, generator=gen).to(out.state.dtype)).sum()
    if trace:
        loss = loss + 0.1 * (out.trace * torch.randn(x.shape, generator=gen).to(out.trace.dtype)).sum()
    loss.backward()
    grads = [x.grad, u0.grad] + [p.grad for p in neuron.parameters()]
    return out, grads


def finite(grads) -> bool:
    return all(g is None or bool(torch.isfinite(g).all() and g.abs().max() < 1e30) for g in grads)


def _close(f, r, scale) -> bool:
    return bool(((f - r).abs() <= RTOL * scale + RTOL * r.abs()).all())


def assert_same(ref, fused, what="", truth=None):
    """Spikes, state and trace bit-identical; gradients within RTOL of each tensor's scale.

    Float32 sums of many terms can cancel, so the reference itself may sit more than RTOL from
    the exact value. When a gradient misses RTOL, `truth()` (the reference run in float64) is
    the judge: the fused gradient must then be within RTOL of it, or no further from it than
    twice the float32 reference's own error, or (parameters) within RTOL of the scale of the
    terms summed into it, max |dL/dX|.
    """
    (r_out, r_grads), (f_out, f_grads) = ref, fused
    if currently_in_test_context():
        assume(finite(r_grads))  # a soft-reset QIF can run away to inf; nothing to compare then
    else:
        assert finite(r_grads), f"the reference gradients overflow {what}: pick another case"
    assert r_out.spikes.dtype == f_out.spikes.dtype and r_out.spikes.shape == f_out.spikes.shape
    assert torch.equal(r_out.spikes, f_out.spikes), f"spikes differ {what}"
    assert torch.equal(r_out.state, f_out.state), f"state differs {what}"
    assert (r_out.trace is None) == (f_out.trace is None)
    if r_out.trace is not None:
        assert torch.equal(r_out.trace, f_out.trace), f"trace differs {what}"
    exact = None
    for i, (r, f) in enumerate(zip(r_grads, f_grads)):
        assert (r is None) == (f is None), f"gradient {i} missing on one side {what}"
        if r is None:
            continue
        assert r.dtype == f.dtype and r.shape == f.shape
        scale = r.abs().max().item()
        if i == 1:
            # dL/du0 = dL/dH[1] * (1 + a(2 u0 - u1 - u2)) can cancel to ~0 (at rest with a*d = 1
            # the slope is exactly 0): judge it at the scale of the gradients through H
            scale = max(scale, r_grads[0].abs().max().item())
        if i >= 2 and truth is None:
            # float64 against float64, no judge: a parameter gradient whose T*M terms cancel to
            # ~1e-17 is judged at the scale of those terms, as the float32 path below is
            scale = max(scale, r_grads[0].abs().max().item())
        if _close(f, r, scale):
            continue
        assert truth is not None, f"gradient {i} {what}: max error {(f - r).abs().max().item():g}, scale {scale:g}"
        if exact is None:
            exact = truth()
            # float64 rounding may move an H across the threshold: then there is no judge
            same = torch.equal(exact[0].spikes.to(r_out.spikes.dtype), r_out.spikes)
            assert same or currently_in_test_context(), f"float64 spikes differ {what}"
            assume(same)
        t = exact[1][i].to(r.dtype)
        ok = (f - t).abs() <= RTOL * scale + RTOL * t.abs() + 2 * (r - t).abs()
        if i >= 2:
            # a parameter gradient sums T*M terms of size |dL/dH| * O(1); when they cancel, the
            # rounding of the terms, not the (tiny) sum, sets what float32 can promise
            ok = ok | ((f - t).abs() <= RTOL * r_grads[0].abs().max())
        assert bool(ok.all()), (f"gradient {i} {what}: fused error {(f - t).abs().max().item():g} "
                                f"vs float64, reference error {(r - t).abs().max().item():g}, "
                                f"value {t.abs().max().item():g}, x grad {r_grads[0].abs().max().item():g}")


def assert_matches_reference(case, run_fused):
    """`assert_same` of ``run_fused(*case)`` against the reference run of a `cases()` case, with
    the float64 reference as the judge of gradients that miss RTOL."""
    neuron, x, state, trace, seed = case
    ref = run(neuron, x, state, trace, seed, "reference")
    assert_same(ref, run_fused(neuron, x, state, trace, seed), repr(neuron), truth=lambda: run(
        copy.deepcopy(neuron).double(), x, state, trace, seed, "reference", torch.float64))


def assert_half_input(neuron, x, backend):
    """A float16/bfloat16 input ``x [T, N, ...]`` (requiring grad) on `backend`: spikes in x's
    dtype equal to the float32 reference's on the rounded input, float32 state equal too, and a
    finite gradient in x's dtype."""
    nd = x.dim() - 1
    out = ops.neuron_multistep(x, neuron.params(nd), neuron.rest_state(x[0]), backend=backend)
    ref = ops.neuron_multistep(x.detach().float(), neuron.params(nd), neuron.rest_state(x[0]),
                               backend="reference")
    assert out.spikes.dtype == x.dtype and out.state.dtype == torch.float32
    assert torch.equal(out.spikes.float(), ref.spikes)
    assert torch.equal(out.state, ref.state)
    out.spikes.float().sum().backward()
    assert x.grad.dtype == x.dtype and torch.isfinite(x.grad.float()).all()
