"""Flatten a neuron's parameters into the table the fused kernels read.

Every parameter (float, 0-d tensor or per-channel tensor broadcastable against one step
``[N, ...]``) becomes one row of a table ``[ROWS, L]``:

    row  0: a (QIF) or k (LIF)      3: v_th        6: window width
         1: u1 (QIF) or v_rest      4: v_reset     7: window offset
         2: u2 (QIF; unused by LIF) 5: v_min (-inf: no floor)

Element e of a flattened step reads column ``(e // inner) % period``. The columns cover the
span of step dims from the first to the last dim on which any parameter varies: a per-channel
``[C, 1, 1]`` parameter against ``[N, C, H, W]`` gives period = C, inner = H*W. Tensor
parameters enter the table through `expand`/`stack`, so autograd routes the table's gradient
back to a, u1, u2, v_reset (which may be the very tensor u1), k, ... with no special casing.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch

from ..functional import LIFParams, QIFParams

ROWS = 8
GRAD_ROWS = 5  # rows 0..4 can carry gradient; the floor and the window never do


class Table(NamedTuple):
    table: torch.Tensor  # [ROWS, L] in the compute dtype
    inner: int
    period: int
    rows_mask: int  # bit r set: row r needs its gradient
    vmin_eq: float  # share of gradient torch.clamp passes where U == v_min (0 float, 0.5 tensor)


def rows_of(p: QIFParams | LIFParams) -> list:
    """The eight row values of `p`, in table order (floats or tensors)."""
    w = p.window
    if isinstance(p, QIFParams):
        vmin = -math.inf if p.v_min is None else p.v_min
        return [p.a, p.u1, p.u2, p.v_th, p.v_reset, vmin, w.width, w.offset]
    return [p.k, p.v_rest, 0.0, p.v_th, p.v_reset, -math.inf, w.width, w.offset]


def _span(shapes: list[tuple[int, ...]], step: tuple[int, ...]) -> tuple[int, int] | None:
    """First and last step dim on which any parameter varies (None: all uniform)."""
    nd = len(step)
    dims = [nd - len(s) + i for s in shapes for i, n in enumerate(s) if n != 1]
    return (min(dims), max(dims)) if dims else None


def supported(p: QIFParams | LIFParams, step: tuple[int, ...], dtype: torch.dtype,
              device: torch.device) -> bool:
    """True when every tensor parameter can be packed: broadcastable against one step without
    growing it, in the compute dtype (0-d tensors may differ: they are cast like scalars), and
    on the input's device, and no gradient wanted for the floor or the window. Anything else
    runs on the reference path."""
    for r, v in enumerate(rows_of(p)):
        if not isinstance(v, torch.Tensor):
            continue
        if r >= GRAD_ROWS and v.requires_grad:
            return False
        if v.device != device or v.dim() > len(step):
            return False
        if v.dim() > 0 and v.dtype != dtype:
            return False
        tail = step[len(step) - v.dim():] if v.dim() else ()
        if any(n != 1 and n != m for n, m in zip(v.shape, tail)):
            return False
    return True


def pack(p: QIFParams | LIFParams, step: tuple[int, ...], dtype: torch.dtype,
         device: torch.device) -> Table:
    """The table for `p` against one step of shape `step` (call `supported` first)."""
    rows = rows_of(p)
    tensors = [v for v in rows if isinstance(v, torch.Tensor)]
    mask = sum(1 << r for r, v in enumerate(rows[:GRAD_ROWS])
               if isinstance(v, torch.Tensor) and v.requires_grad)
    vmin_eq = 0.5 if isinstance(rows[5], torch.Tensor) else 0.0
    if not tensors:
        table = torch.tensor(rows, dtype=dtype, device=device).view(ROWS, 1)
        return Table(table, 1, 1, 0, vmin_eq)
    nd = len(step)
    # no varying dim: an empty span past the last dim, so cols = () and period = inner = 1
    first, last = _span([tuple(t.shape) for t in tensors], step) or (nd, nd - 1)
    cols = tuple(step[first:last + 1])
    columns = []
    for v in rows:
        if isinstance(v, torch.Tensor):
            v = v.to(dtype).reshape((1,) * (nd - v.dim()) + tuple(v.shape))
            columns.append(v.reshape(v.shape[first:last + 1]).expand(cols).reshape(-1))
        else:
            columns.append(torch.full((max(1, math.prod(cols)),), v, dtype=dtype, device=device))
    table = torch.stack(columns).contiguous()
    return Table(table, math.prod(step[last + 1:]), math.prod(cols), mask, vmin_eq)
