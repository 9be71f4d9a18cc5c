"""The fused backends as torch.library custom ops, with fake kernels, and their autograd.

Each backend (``cpu``: the C++ extension, ``triton``: the Triton kernels) provides two raw
functions on flattened tensors and is registered here as the operators
``quadfire::<backend>_forward`` and ``quadfire::<backend>_backward``:

    forward(x [T, M], u0 [M] or None, table [R, L], settings: pack.Forward)
        -> (spikes [T, M], state [M], H [T, M] or [0])
    backward(grad spikes, grad state, grad H, H, u0 or None, table, settings: pack.Backward,
             x_dtype) -> (grad x, grad u0 or [0], grad rows [G, M])

u0 = None starts from rest (the table's row u1), so a run from rest reads no state tensor.
`Fused` (a torch.autograd.Function) calls the two: forward gets only forward's settings, and
backward's own settings (surrogate shape, gradient rows, floor tie rule) ride on the autograd
context. The fake kernels give torch.compile the output shapes without running anything, so a
network of fused neurons compiles with ``fullgraph=True``. Forward saves H alone (plus u0 and
the tiny parameter table); backward recomputes spikes, surrogate values and the pre-step
membrane. Double backward is not implemented by the kernels and raises, naming the reference
backend, which supports it.
"""
from __future__ import annotations

import math
from typing import Callable, Optional

import torch
from torch import Tensor

from . import pack
from .reference import compute_dtype

OPS: dict[str, tuple] = {}

DOUBLE_BACKWARD = ("double backward (a gradient of a gradient) through the fused {} neuron "
                   "kernels is not supported; run the neuron with backend='reference' "
                   "(e.g. neuron.backend = 'reference'), which supports it")


def _popcount(mask: int) -> int:
    return bin(mask).count("1")


def register(name: str, forward_impl: Callable, backward_impl: Callable) -> None:
    """Register backend `name` from its raw forward/backward functions (signatures above)."""

    @torch.library.custom_op(f"quadfire::{name}_forward", mutates_args=())
    def forward(x: Tensor, u0: Optional[Tensor], table: Tensor,
                settings: list[int]) -> tuple[Tensor, Tensor, Tensor]:
        return forward_impl(x, u0, table, pack.Forward(*settings))

    @forward.register_fake
    def _(x, u0, table, settings):
        need_h = pack.Forward(*settings).need_h
        h = x.new_empty(x.shape if need_h else (0,), dtype=table.dtype)
        return torch.empty_like(x), x.new_empty(x.shape[1:], dtype=table.dtype), h

    @torch.library.custom_op(f"quadfire::{name}_backward", mutates_args=())
    def backward(grad_spikes: Optional[Tensor], grad_state: Optional[Tensor],
                 grad_trace: Optional[Tensor], h: Tensor, u0: Optional[Tensor], table: Tensor,
                 settings: list[int], x_dtype: torch.dtype) -> tuple[Tensor, Tensor, Tensor]:
        return backward_impl(grad_spikes, grad_state, grad_trace, h, u0, table,
                             pack.Backward(*settings), x_dtype)

    @backward.register_fake
    def _(grad_spikes, grad_state, grad_trace, h, u0, table, settings, x_dtype):
        s = pack.Backward(*settings)
        gu0 = h.new_empty(h.shape[1:]) if s.state_grad else h.new_empty((0,))
        return (h.new_empty(h.shape, dtype=x_dtype), gu0,
                h.new_empty((_popcount(s.rows_mask), h.shape[1])))

    OPS[name] = (forward, backward)


class _FirstOrderOnly(torch.autograd.Function):
    """Identity on the gradients `Fused.backward` returns under create_graph=True: a gradient
    of them raises, instead of silently treating the kernels' second derivative as 0."""

    @staticmethod
    def forward(ctx, backend, *grads):
        ctx.backend = backend
        return tuple(g.view_as(g) for g in grads)

    @staticmethod
    def backward(ctx, *_):
        raise RuntimeError(DOUBLE_BACKWARD.format(ctx.backend))


class Fused(torch.autograd.Function):
    """The fused forward op, differentiated by the fused backward op."""

    @staticmethod
    def forward(ctx, x, u0, table, backend: str, fwd: pack.Forward, bwd: pack.Backward):
        spikes, state, h = OPS[backend][0](x, u0, table, list(fwd))
        # unused outputs (final state, trace) get None, not a materialized [T, M] of zeros
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(h, u0, table)
        ctx.backend, ctx.bwd, ctx.x_dtype = backend, bwd, x.dtype
        return spikes, state, h

    @staticmethod
    def backward(ctx, grad_spikes, grad_state, grad_trace):
        h, u0, table = ctx.saved_tensors
        state_grad = u0 is not None and ctx.needs_input_grad[1]
        layout, grad_spikes = _compact(grad_spikes)
        bwd = ctx.bwd._replace(state_grad=int(state_grad), gs_layout=layout)
        cont = (lambda g: None if g is None else g.contiguous())
        gx, gu0, rows = OPS[ctx.backend][1](grad_spikes, cont(grad_state), cont(grad_trace),
                                            h, u0, table, list(bwd), ctx.x_dtype)
        g_table = _table_grad(rows, table, bwd) if ctx.needs_input_grad[2] else None
        grads = [gx] + ([gu0] if state_grad else []) + ([g_table] if g_table is not None else [])
        if torch.is_grad_enabled() and not torch.compiler.is_compiling():
            grads = list(_FirstOrderOnly.apply(ctx.backend, *grads))
        gx = grads.pop(0)
        gu0 = grads.pop(0) if state_grad else None
        g_table = grads.pop(0) if g_table is not None else None
        return gx, gu0, g_table, None, None, None


def _compact(g: Tensor | None) -> tuple[int, Tensor | None]:
    """The spikes' gradient ``[T, M]`` in the smallest layout that holds it (pack.GRAD_LAYOUTS):
    a loss like ``spikes.sum()`` hands backward a broadcast (stride-0) tensor, which
    ``.contiguous()`` would write out in full, T x M values, before the kernel reads them
    back; the kernels read one value, or one row for every step, instead."""
    if g is None or g.numel() == 0:
        return 0, g
    if all(st == 0 for st, n in zip(g.stride(), g.shape) if n > 1):
        return pack.GRAD_LAYOUTS.index("scalar"), g.reshape(-1)[:1].contiguous()
    if g.stride(0) == 0:
        return pack.GRAD_LAYOUTS.index("row"), g[0].contiguous()
    return 0, g.contiguous()


def _table_grad(rows: Tensor, table: Tensor, s: pack.Backward) -> Tensor:
    """Reduce per-element gradients [G, M] to the table's columns [len(ROWS), L]."""
    g, m = rows.shape
    per_col = rows.view(g, m // (s.period * s.inner), s.period, s.inner).sum(dim=(1, 3))
    out, j = [], 0
    for r in range(len(pack.ROWS)):
        if s.rows_mask >> r & 1:
            out.append(per_col[j].expand(table.shape[1]))
            j += 1
        else:
            out.append(table.new_zeros(table.shape[1]))
    return torch.stack(out)


def multistep(x: Tensor, p, u0: Tensor | None, trace: bool, backend: str):
    """Run ``x [T, N, ...]`` through backend `backend` from `u0` (None: rest):
    (spikes, final state, H trace or None)."""
    steps, step = x.shape[0], tuple(x.shape[1:])
    m = math.prod(step)
    cdt = compute_dtype(x.dtype)
    # the CPU kernels compute in float32/float64 and take their input in that dtype
    kx = x if backend == "triton" else x.to(cdt)
    x2 = kx.reshape(steps, m).contiguous()
    u = None if u0 is None else u0.to(cdt).reshape(m).contiguous()
    t = pack.pack(p, step, cdt, x.device)
    need_grad = torch.is_grad_enabled() and (
        x.requires_grad or (u0 is not None and u0.requires_grad) or t.table.requires_grad)
    spikes, state, h = Fused.apply(x2, u, t.table, backend,
                                   pack.forward_settings(p, t, trace or need_grad),
                                   pack.backward_settings(p, t))
    spikes = spikes.view(x.shape).to(x.dtype)
    return spikes, state.view(step), (h.view(x.shape) if trace else None)
