"""The fused backends as torch.library custom ops, with fake kernels and autograd.

Each backend (``cpu``: the C++ extension, ``triton``: the Triton kernels) provides two raw
functions on flattened tensors and is registered here as the operators
``quadfire::<backend>_forward`` and ``quadfire::<backend>_backward``:

    forward(x [T, M], u0 [M], table [8, L], ...) -> (spikes [T, M], state [M], H [T, M] or [0])
    backward(grad spikes, grad state, grad H, H, u0, table, ...) -> (grad x, grad u0 or [0],
                                                                      grad rows [G, M])

The fake kernels give torch.compile the output shapes without running anything, so a network
of fused neurons compiles with ``fullgraph=True``. Forward saves H alone (plus u0 and the tiny
parameter table); backward recomputes spikes, surrogate values and the pre-step membrane.
"""
from __future__ import annotations

import math
from typing import Callable, Optional

import torch
from torch import Tensor

from ..functional import QIFParams
from . import pack
from .reference import compute_dtype

OPS: dict[str, tuple] = {}


def _popcount(mask: int) -> int:
    return bin(mask).count("1")


def register(name: str, forward_impl: Callable, backward_impl: Callable) -> None:
    """Register backend `name` from its raw forward/backward functions (signatures above)."""

    @torch.library.custom_op(f"quadfire::{name}_forward", mutates_args=())
    def forward(x: Tensor, u0: Tensor, table: Tensor, inner: int, period: int, qif: bool,
                soft: bool, shape: int, vmin_eq: float, rows_mask: int,
                need_h: bool) -> tuple[Tensor, Tensor, Tensor]:
        return forward_impl(x, u0, table, inner, period, qif, soft, need_h)

    @forward.register_fake
    def _(x, u0, table, inner, period, qif, soft, shape, vmin_eq, rows_mask, need_h):
        h = x.new_empty(x.shape if need_h else (0,), dtype=u0.dtype)
        return torch.empty_like(x), torch.empty_like(u0), h

    @torch.library.custom_op(f"quadfire::{name}_backward", mutates_args=())
    def backward(grad_spikes: Optional[Tensor], grad_state: Optional[Tensor],
                 grad_trace: Optional[Tensor], h: Tensor, u0: Tensor, table: Tensor, inner: int,
                 period: int, qif: bool, soft: bool, shape: int, vmin_eq: float, rows_mask: int,
                 need_state_grad: bool, x_dtype: torch.dtype) -> tuple[Tensor, Tensor, Tensor]:
        return backward_impl(grad_spikes, grad_state, grad_trace, h, u0, table, inner, period,
                             qif, soft, shape, vmin_eq, rows_mask, need_state_grad, x_dtype)

    @backward.register_fake
    def _(grad_spikes, grad_state, grad_trace, h, u0, table, inner, period, qif, soft, shape,
          vmin_eq, rows_mask, need_state_grad, x_dtype):
        gu0 = torch.empty_like(u0) if need_state_grad else u0.new_empty((0,))
        return (h.new_empty(h.shape, dtype=x_dtype), gu0,
                h.new_empty((_popcount(rows_mask), h.shape[1])))

    def setup_context(ctx, inputs, output):
        x, u0, table, inner, period, qif, soft, shape, vmin_eq, rows_mask, need_h = inputs
        # unused outputs (final state, trace) get None, not a materialized [T, M] of zeros
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(output[2], u0, table)
        ctx.config = (inner, period, qif, soft, shape, vmin_eq, rows_mask)
        ctx.x_dtype = x.dtype

    def grad_fn(ctx, grad_spikes, grad_state, grad_trace):
        h, u0, table = ctx.saved_tensors
        inner, period, qif, soft, shape, vmin_eq, rows_mask = ctx.config
        cont = (lambda g: None if g is None else g.contiguous())
        need_state_grad = ctx.needs_input_grad[1]
        gx, gu0, rows = backward(cont(grad_spikes), cont(grad_state), cont(grad_trace), h, u0,
                                 table, inner, period, qif, soft, shape, vmin_eq, rows_mask,
                                 need_state_grad, ctx.x_dtype)
        g_table = None
        if ctx.needs_input_grad[2]:
            g_table = _table_grad(rows, table, inner, period, rows_mask)
        return (gx, gu0 if need_state_grad else None, g_table) + (None,) * 8

    forward.register_autograd(grad_fn, setup_context=setup_context)
    OPS[name] = (forward, backward)


def _table_grad(rows: Tensor, table: Tensor, inner: int, period: int, rows_mask: int) -> Tensor:
    """Reduce per-element gradients [G, M] to the table's columns [ROWS, L]."""
    g, m = rows.shape
    per_col = rows.view(g, m // (period * inner), period, inner).sum(dim=(1, 3))
    out, j = [], 0
    for r in range(pack.ROWS):
        if rows_mask >> r & 1:
            out.append(per_col[j].expand(table.shape[1]))
            j += 1
        else:
            out.append(table.new_zeros(table.shape[1]))
    return torch.stack(out)


def multistep(x: Tensor, p, u0: Tensor, trace: bool, backend: str):
    """Run ``x [T, N, ...]`` through backend `backend`: (spikes, final state, H trace or None)."""
    steps, step = x.shape[0], tuple(x.shape[1:])
    m = math.prod(step)
    cdt = compute_dtype(x.dtype)
    # the CPU kernels compute in float32/float64 and take their input in that dtype
    kx = x if backend == "triton" else x.to(cdt)
    x2 = kx.reshape(steps, m).contiguous()
    u = u0.to(cdt).reshape(m).contiguous()
    t = pack.pack(p, step, cdt, x.device)
    need_grad = torch.is_grad_enabled() and (
        x.requires_grad or u0.requires_grad or t.table.requires_grad)
    forward = OPS[backend][0]
    spikes, state, h = forward(x2, u, t.table, t.inner, t.period, isinstance(p, QIFParams),
                               bool(p.soft), p.window.code, t.vmin_eq, t.rows_mask,
                               bool(trace or need_grad))
    spikes = spikes.view(x.shape).to(x.dtype)
    return spikes, state.view(step), (h.view(x.shape) if trace else None)
