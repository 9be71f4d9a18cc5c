"""Store spike inputs of stateless layers compactly for the backward pass.

A conv or linear layer keeps its input for the weight gradient. After a spiking layer that
input holds small non-negative integers (0/1 spikes; 0..2 after a SEW residual sum), which
uint8 represents exactly in a quarter of the memory of float32. `saved_as_uint8` packs that
one tensor while the layer runs and restores it, bit for bit, when backward needs it.
"""
from __future__ import annotations

import contextlib

import torch


def as_uint8_exact(x: torch.Tensor) -> torch.Tensor | None:
    """x as uint8 when that is exact (every value an integer in [0, 255]), else None."""
    if not x.is_floating_point() or x.numel() == 0:
        return None
    packed = x.to(torch.uint8)
    # Casting wraps or truncates anything outside {0..255}; the round trip catches it.
    return packed if torch.equal(packed.to(x.dtype), x) else None


@contextlib.contextmanager
def saved_as_uint8(x: torch.Tensor):
    """While active, autograd saves the tensor `x` as uint8 (if exact) instead of float.

    Only `x` itself (same storage, shape and strides) is packed; weights and every other
    saved tensor are stored as usual. Outside autograd, or under torch.compile (which traces
    saved tensors itself), this does nothing.
    """
    if not torch.is_grad_enabled() or torch.compiler.is_compiling():
        yield
        return
    packed = as_uint8_exact(x)
    if packed is None:
        yield
        return
    key = (x.data_ptr(), x.shape, x.stride(), x.dtype)

    def pack(t: torch.Tensor):
        if (t.data_ptr(), t.shape, t.stride(), t.dtype) == key:
            return packed, t.dtype
        return t

    def unpack(saved):
        return saved[0].to(saved[1]) if isinstance(saved, tuple) else saved

    with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
        yield
