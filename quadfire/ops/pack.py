"""The fused kernels' interface, in one place: the parameter table, the settings bundles, the
model codes and the surrogate shape codes. The C++ library reports the layout it was built with
and `quadfire.ops.cpu` refuses one that differs from this file; the Triton kernels receive the
row indices (`triton_rows`), the model name and the shape name as constexprs from here.

Table ``[len(ROWS), L]``: one row per name in `ROWS`, each a float, a 0-d tensor or a
per-channel tensor broadcastable against one step ``[N, ...]``. The charge rows c0 .. c3 mean
what the model's `kernel_rows` says (QIF: a, u1, u2; exact QIF: exp(a d), u1, (1 - exp(a d))/d;
LIF: k, v_rest; unused rows hold 0); "rest" is the state a run starts from. Only the first
`GRAD_ROWS` rows can carry gradient. Element e of a flattened step reads column
``(e // inner) % period``: the columns cover the span of step dims from the first to the last
dim on which any parameter varies, so a per-channel ``[C, 1, 1]`` parameter against
``[N, C, H, W]`` gives period = C, inner = H*W. Tensor parameters enter the table through
`expand`/`stack`, so autograd routes the table's gradient back to a, u1, u2, v_reset (which
may be the very tensor u1), k, and through derived rows such as exp(a d) to a, u1, u2, with no
special casing.

Settings: each op takes its integer settings as one ``int[]``, the fields of `Forward` or
`Backward` in order; the backward-only ones (surrogate shape, gradient rows, floor tie rule)
reach backward through the autograd function of `quadfire.ops.fused`, never through forward.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch

from ..functional import CHARGE_ROWS, KERNEL_MODELS, NeuronParams

ROWS = CHARGE_ROWS + ("v_th", "v_reset", "rest", "v_min", "width", "offset")
GRAD_ROWS = len(CHARGE_ROWS) + 2  # the charge rows, v_th and v_reset can carry gradient
ROW = {name: i for i, name in enumerate(ROWS)}
MODELS = KERNEL_MODELS
MODEL_CODES = {name: i for i, name in enumerate(MODELS)}
# Surrogate shapes the kernels implement; a shape's code is its position. A window shape
# that is missing here runs on the reference path (`supported`).
SHAPES = ("rect", "triangle", "sigmoid", "atan")
SHAPE_CODES = {name: i for i, name in enumerate(SHAPES)}
# How the gradient of the spikes reaches backward (`quadfire.ops.fused`): a dense [T, M]
# tensor, one [M] row for every step (a loss that sums over time), or one value for every
# element (``spikes.sum()``, ``.mean()``), so that a broadcast gradient is never materialized.
GRAD_LAYOUTS = ("dense", "row", "scalar")


class Forward(NamedTuple):
    """Settings of the forward op."""

    inner: int
    period: int
    model: int  # MODEL_CODES
    soft: int  # 1: soft reset
    need_h: int  # 1: write H (for backward or the trace)


class Backward(NamedTuple):
    """Settings of the backward op."""

    inner: int
    period: int
    model: int
    soft: int
    shape: int  # surrogate code, SHAPE_CODES
    rows_mask: int  # bit r: row r needs its gradient
    vmin_tie: int  # 1: the floor passes half the gradient where U == v_min (tensor bound)
    state_grad: int  # 1: return the gradient of the starting state
    gs_layout: int  # GRAD_LAYOUTS code of the spikes' gradient
    detach_reset: int  # 1: no gradient through the reset's spike (`fire_reset`)


class Table(NamedTuple):
    table: torch.Tensor  # [len(ROWS), L] in the compute dtype
    inner: int
    period: int
    rows_mask: int
    vmin_tie: int  # torch.clamp passes 0 (float bound) or 1/2 (tensor bound) where U == v_min


def rows_of(p: NeuronParams) -> list:
    """The row values of `p` in table order (floats or tensors)."""
    w, v_min = p.window, p.floor()
    values = {name: 0.0 for name in CHARGE_ROWS}
    values.update(p.kernel_rows())
    values.update({"v_th": p.v_th, "v_reset": p.v_reset, "width": w.width, "offset": w.offset,
                   "v_min": -math.inf if v_min is None else v_min})
    return [values[name] for name in ROWS]


def triton_rows() -> dict[str, int]:
    """Row indices as the Triton kernels' constexprs: {"R_C0": 0, "R_C1": 1, ...}."""
    return {f"R_{name.upper()}": i for i, name in enumerate(ROWS)}


def _span(shapes: list[tuple[int, ...]], step: tuple[int, ...]) -> tuple[int, int] | None:
    """First and last step dim on which any parameter varies (None: all uniform)."""
    nd = len(step)
    dims = [nd - len(s) + i for s in shapes for i, n in enumerate(s) if n != 1]
    return (min(dims), max(dims)) if dims else None


def supported(p: NeuronParams, step: tuple[int, ...], dtype: torch.dtype,
              device: torch.device) -> bool:
    """True when the kernels implement p's model and surrogate shape and every tensor parameter can be
    packed: broadcastable against one step without growing it, in the compute dtype (0-d
    tensors may differ: they are cast like scalars), and on the input's device, and no
    gradient wanted for the floor or the window. Anything else runs on the reference path."""
    if p.model not in MODEL_CODES or p.window.shape not in SHAPE_CODES:
        return False
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


def pack(p: NeuronParams, step: tuple[int, ...], dtype: torch.dtype,
         device: torch.device) -> Table:
    """The table for `p` against one step of shape `step` (call `supported` first)."""
    rows = rows_of(p)
    tensors = [v for v in rows if isinstance(v, torch.Tensor)]
    mask = sum(1 << r for r, v in enumerate(rows[:GRAD_ROWS])
               if isinstance(v, torch.Tensor) and v.requires_grad)
    tie = int(isinstance(rows[ROW["v_min"]], torch.Tensor))
    if not tensors:
        table = torch.tensor(rows, dtype=dtype, device=device).view(len(ROWS), 1)
        return Table(table, 1, 1, 0, tie)
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
    return Table(table, math.prod(step[last + 1:]), math.prod(cols), mask, tie)


def forward_settings(p: NeuronParams, t: Table, need_h: bool) -> Forward:
    return Forward(t.inner, t.period, MODEL_CODES[p.model], int(bool(p.soft)), int(need_h))


def backward_settings(p: NeuronParams, t: Table) -> Backward:
    """Backward's settings; `state_grad` and `gs_layout` are decided when backward runs
    (`fused`)."""
    return Backward(t.inner, t.period, MODEL_CODES[p.model], int(bool(p.soft)),
                    SHAPE_CODES[p.window.shape], t.rows_mask, t.vmin_tie, 0, 0,
                    int(bool(p.detach_reset)))


def layout() -> dict:
    """This file's interface, in the form the C++ library reports its own (`cpu.check_layout`)."""
    return {"rows": list(ROWS), "grad_rows": GRAD_ROWS, "models": list(MODELS),
            "shapes": list(SHAPES), "grad_layouts": list(GRAD_LAYOUTS),
            "forward": list(Forward._fields), "backward": list(Backward._fields)}
