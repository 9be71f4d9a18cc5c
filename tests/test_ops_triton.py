"""The Triton kernels against the reference, run on CPU by Triton's interpreter.

TRITON_INTERPRET=1 must be set before triton is imported, so the interpreted tests run in a
child pytest process (`test_interpreted_kernels`) that has it set; in the parent process they
are skipped. Interpretation is slow, so the cases are small.
"""
from __future__ import annotations

import functools
import os
import subprocess
import sys

import pytest
import torch
from hypothesis import given, settings

from quadfire import ops
from quadfire.neurons import LIF, PLIF, QIF
from quadfire.ops import gpu

from strategies import (assert_half_input, assert_matches_reference, assert_same,
                                 cases, run)

INTERPRETING = os.environ.get("TRITON_INTERPRET") == "1"
interpreted = pytest.mark.skipif(not INTERPRETING,
                                 reason="runs in the TRITON_INTERPRET=1 child process")
# The interpreter evaluates kernels with numpy, which warns where a runaway soft-reset QIF
# overflows to inf; the reference overflows identically, silently.
pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning",
                                        "ignore:invalid value encountered:RuntimeWarning")


def test_interpreted_kernels():
    if INTERPRETING:
        pytest.skip("this is the child process")
    pytest.importorskip("triton")
    r = subprocess.run([sys.executable, "-m", "pytest", __file__, "-q", "-x", "-p", "no:cacheprovider"],
                       capture_output=True, text=True, timeout=200,
                       env={**os.environ, "TRITON_INTERPRET": "1"})
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-2000:]
    assert " passed" in r.stdout and "failed" not in r.stdout


@interpreted
@settings(max_examples=20)
@given(cases(max_t=64, max_elems=800))
def test_triton_matches_reference(case):
    assert_matches_reference(case, functools.partial(run, backend="triton"))


@interpreted
@pytest.mark.parametrize("steps", [1, 64])
@pytest.mark.parametrize("discretization", ["euler", "exact", "hybrid"])
def test_triton_long_and_short_sequences(steps, discretization):
    neuron = QIF(learnable="channel", channels=2, surrogate="noise", discretization=discretization)
    x = torch.randn(steps, 3, 2, 5, generator=torch.Generator().manual_seed(steps)) + 0.4
    assert_same(run(neuron, x, None, True, steps, "reference"),
                run(neuron, x, None, True, steps, "triton"), f"T={steps}")


@interpreted
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("neuron", [QIF(), QIF(reset="soft", surrogate="atan"),
                                    PLIF(learnable="channel", channels=3), LIF(),
                                    QIF(discretization="exact"), QIF(discretization="hybrid")],
                         ids=repr)
def test_triton_half_inputs(dtype, neuron):
    x = ((torch.randn(7, 4, 3, 2, generator=torch.Generator().manual_seed(3)) + 0.5)
         .to(dtype).requires_grad_())
    assert_half_input(neuron, x, "triton")


@interpreted
def test_triton_refuses_float64():
    with pytest.raises(ValueError, match="backend='triton' runs .*got torch.float64"):
        ops.neuron_multistep(torch.ones(2, 3, dtype=torch.float64), QIF().params(),
                             torch.zeros(3, dtype=torch.float64), backend="triton")


def test_triton_needs_cuda_or_the_interpreter():
    if INTERPRETING:
        pytest.skip("CPU tensors are valid for Triton under the interpreter")
    with pytest.raises(ValueError, match="backend='triton' runs CUDA tensors .* got a tensor on cpu"):
        ops.neuron_multistep(torch.ones(2, 3), QIF().params(), torch.zeros(3), backend="triton")


def test_cuda_without_triton_is_named(monkeypatch):
    monkeypatch.setattr(gpu, "installed", lambda: False)
    with pytest.raises(RuntimeError, match="needs the triton package"):
        gpu.require(torch.device("cuda"))
    assert not gpu.available()


def _signature(kernel, types: dict, constexprs: dict) -> dict:
    names = kernel.arg_names
    return {n: ("constexpr" if n in constexprs else types.get(n, "i32")) for n in names}


@pytest.mark.parametrize("dtype", ["fp32", "bf16", "fp16"])
def test_kernels_compile_for_cuda_without_fma(dtype):
    """Compile (no GPU needed) to PTX for sm_90: the kernels type-check for every input dtype,
    and with FMA fusion off no fma.rn appears, so the charge rounds like the reference."""
    if INTERPRETING:
        pytest.skip("compiles for a GPU target, not under the interpreter")
    triton = pytest.importorskip("triton")
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from quadfire.ops import triton_kernels as k

    from quadfire.ops import pack

    target = GPUTarget("cuda", 90, 32)
    options = {"num_warps": 4, "enable_fp_fusion": False}
    p = QIF(reset="soft", surrogate="sigmoid", learnable="scalar").params(1)
    t = pack.pack(p, (8,), torch.float32, torch.device("cpu"))
    fwd_const = gpu.forward_constexprs(pack.forward_settings(p, t, need_h=True), from_rest=False)
    ptr = {n: "*fp32" for n in ("u0_ptr", "table_ptr", "u_ptr", "h_ptr")}
    fwd = _signature(k.forward_kernel, {**ptr, "x_ptr": f"*{dtype}", "s_ptr": f"*{dtype}"}, fwd_const)
    settings = pack.backward_settings(p, t)._replace(state_grad=1)
    bwd_const = gpu.backward_constexprs(settings, False, True, True, True)
    ptrs = {n: "*fp32" for n in ("gu_ptr", "gh_last", "h_last", "u0_ptr", "table_ptr", "gu0_ptr",
                                 "gp_ptr")}
    bwd = _signature(k.backward_kernel, {**ptrs, "gs_last": f"*{dtype}", "gx_last": f"*{dtype}",
                                         "tie": "fp32"}, bwd_const)
    for kernel, sig, const in ((k.forward_kernel, fwd, fwd_const), (k.backward_kernel, bwd, bwd_const)):
        compiled = triton.compile(ASTSource(kernel, sig, constexprs=const), target=target,
                                  options=options)
        ptx = compiled.asm["ptx"]
        assert ".entry" in ptx and "fma.rn" not in ptx


@interpreted
@pytest.mark.parametrize("loss", ["sum", "time-sum"])
def test_triton_reads_a_broadcast_spike_gradient(loss):
    """spikes.sum() (one value) and a loss that sums over time first (one [M] row per step)
    reach the kernel without being materialized; the gradients equal the dense ones."""
    n = QIF(discretization="exact", learnable="scalar")
    x = torch.randn(6, 4, 5, generator=torch.Generator().manual_seed(2)) * 0.8 + 0.3
    w = torch.rand(4, 5, generator=torch.Generator().manual_seed(3))
    reduce = (lambda s: s.sum()) if loss == "sum" else (lambda s: (s.sum(0) * w).sum())
    grads = []
    for dense in (False, True):
        xi = x.clone().requires_grad_()
        s = ops.neuron_multistep(xi, n.params(2), backend="triton").spikes
        reduce(s * torch.ones_like(s) if dense else s).backward()
        grads.append(xi.grad)
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-6, atol=1e-7)
