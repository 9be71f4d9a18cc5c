"""The Triton kernels on a real CUDA GPU against the CPU reference (skipped without a GPU).

The CPU suite checks the same kernels under TRITON_INTERPRET=1; this file is what
`scripts/gpu_check.sh` runs on a lent GPU, where the compiled kernels (no FMA contraction)
must still give spikes bit-identical to the CPU reference.
"""
from __future__ import annotations

import copy

import pytest
import torch
from hypothesis import given, settings

from quadfire import ops
from quadfire.models import create_model
from quadfire.neurons import QIF

from strategies import assert_matches_reference, cases

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


class _Out:
    """A NeuronOutput moved to the CPU (what assert_same compares)."""

    def __init__(self, out):
        self.spikes, self.state = out.spikes.cpu(), out.state.cpu()
        self.trace = None if out.trace is None else out.trace.cpu()


def run_cuda(neuron, x, state, trace, seed, dtype=None):
    """`run` on the GPU with the Triton backend, with the same loss weights, results on CPU."""
    neuron = copy.deepcopy(neuron).cuda()
    xc = x.detach().to("cuda", dtype or x.dtype).requires_grad_()
    u0 = neuron.rest_state(xc[0].detach()) if state is None else state.to("cuda", torch.float32)
    u0 = u0.detach().clone().requires_grad_()
    out = ops.neuron_multistep(xc, neuron.params(xc.dim() - 1), u0, trace=trace, backend="triton")
    gen = torch.Generator().manual_seed(seed + 1)
    weight = lambda shape, dt: torch.randn(shape, generator=gen).to("cuda", dt)  # noqa: E731
    loss = (out.spikes * weight(x.shape, xc.dtype)).sum()
    loss = loss + (out.state * weight(out.state.shape, out.state.dtype)).sum()
    if trace:
        loss = loss + 0.1 * (out.trace * weight(x.shape, out.trace.dtype)).sum()
    loss.backward()
    grads = [xc.grad, u0.grad] + [p.grad for p in neuron.parameters()]
    return _Out(out), [None if g is None else g.cpu() for g in grads]


@settings(max_examples=200)
@given(cases(max_t=64, max_elems=20000))
def test_triton_on_gpu_matches_the_cpu_reference(case):
    assert_matches_reference(case, run_cuda)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_inputs_spike_like_float32_on_the_rounded_input(dtype):
    x = (torch.randn(16, 64, 32, generator=torch.Generator().manual_seed(0)) + 0.4).to(dtype)
    neuron = QIF()
    out = neuron.cuda()(x.cuda())
    ref = QIF()(x.float())
    assert out.dtype == dtype and torch.equal(out.float().cpu(), ref)


def test_cuda_tensors_dispatch_to_triton_and_a_model_trains():
    assert ops.select_backend(torch.zeros(2, 2, device="cuda")) == "triton"
    model = create_model("resnet19", neuron="qif", T=2, num_classes=10).cuda()
    logits = model(torch.randn(4, 3, 32, 32, device="cuda"))
    logits.mean(0).logsumexp(1).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
