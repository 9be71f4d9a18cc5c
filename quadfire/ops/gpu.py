"""The Triton backend: availability checks and launchers for `quadfire.ops.triton_kernels`.

Runs CUDA tensors of float32, bfloat16 and float16 (float32 state). Under ``TRITON_INTERPRET=1``
(set before triton is imported) the same kernels run on CPU tensors through Triton's
interpreter, which is how the test suite checks them on machines without a GPU.
"""
from __future__ import annotations

import importlib.util
import os

import torch

from . import pack

DTYPES = (torch.float32, torch.bfloat16, torch.float16)
BLOCK = 1024
NUM_WARPS = 4


def interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET") == "1"


def installed() -> bool:
    return importlib.util.find_spec("triton") is not None


def available() -> bool:
    """True when CUDA tensors can run on the Triton kernels."""
    return installed() and torch.cuda.is_available()


def require(device: torch.device) -> None:
    """Raise a clear error unless tensors on `device` can run on the Triton kernels."""
    if device.type == "cuda":
        if not installed():
            raise RuntimeError("backend='triton' needs the triton package, which is not installed "
                               "(pip install triton), or use backend='reference'")
        return
    if device.type == "cpu" and interpreting() and installed():
        return
    raise ValueError(f"backend='triton' runs CUDA tensors (or CPU tensors under TRITON_INTERPRET=1 "
                     f"with triton installed); got a tensor on {device}")


def _kernels():
    from . import triton_kernels  # imported on first launch: importing triton is not free

    return triton_kernels


def _grid(m: int):
    return (max(1, -(-m // BLOCK)),)


def forward_constexprs(s: pack.Forward, from_rest: bool) -> dict:
    """The forward kernel's compile-time arguments for settings `s` (also used by the tests
    that compile the kernels for a GPU target)."""
    return dict(MODEL=pack.MODELS[s.model], SOFT=bool(s.soft), NEED_H=bool(s.need_h),
                FROM_REST=from_rest,
                BLOCK=BLOCK, **pack.triton_rows())


def backward_constexprs(s: pack.Backward, from_rest: bool, has_gs: bool, has_gu: bool,
                        has_gh: bool) -> dict:
    """The backward kernel's compile-time arguments: the surrogate shape travels by name, and
    each gradient row gets its slot in the [G, M] output (-1: not wanted)."""
    slots, g = {}, 0
    for r, name in enumerate(pack.ROWS[:pack.GRAD_ROWS]):
        wanted = s.rows_mask >> r & 1
        slots[f"SLOT_{name.upper()}"] = g if wanted else -1
        g += wanted
    return dict(MODEL=pack.MODELS[s.model], SOFT=bool(s.soft), SHAPE=pack.SHAPES[s.shape],
                FROM_REST=from_rest, STATE_GRAD=bool(s.state_grad), HAS_GS=has_gs, HAS_GU=has_gu, HAS_GH=has_gh,
                BLOCK=BLOCK, **slots, **pack.triton_rows())


def forward(x, u0, table, s: pack.Forward):
    """Raw fused forward on [T, M] (spikes in x's dtype, state and H float32); u0 None: rest."""
    k = _kernels()
    steps, m = x.shape
    spikes = torch.empty_like(x)
    state = x.new_empty((m,), dtype=table.dtype)
    h = x.new_empty(x.shape if s.need_h else (0,), dtype=table.dtype)
    k.forward_kernel[_grid(m)](x, table if u0 is None else u0, table, spikes, state,
                               h if s.need_h else spikes, steps, m, table.shape[1], s.inner,
                               s.period, **forward_constexprs(s, u0 is None),
                               num_warps=NUM_WARPS, enable_fp_fusion=False)
    return spikes, state, h


def backward(grad_spikes, grad_state, grad_trace, h, u0, table, s: pack.Backward, x_dtype):
    """Raw fused backward: (grad x in x_dtype, grad u0 or [0], per-element parameter grads
    [G, M])."""
    k = _kernels()
    steps, m = h.shape
    gx = h.new_empty(h.shape, dtype=x_dtype)
    gu0 = h.new_empty((m,) if s.state_grad else (0,))
    g = bin(s.rows_mask).count("1")
    gp = h.new_empty((g, m))
    last = max(steps - 1, 0)
    gs = grad_spikes if grad_spikes is not None else h
    layout = pack.GRAD_LAYOUTS[s.gs_layout] if grad_spikes is not None else "dense"
    # the spikes' gradient: [T, M], one [M] row for every step, or one value (pack.GRAD_LAYOUTS)
    gs_tstride, gs_estride = {"dense": (m, 1), "row": (0, 1), "scalar": (0, 0)}[layout]
    gs_last = gs[last] if layout == "dense" else gs
    gh = grad_trace if grad_trace is not None else h
    const = backward_constexprs(s, u0 is None, grad_spikes is not None, grad_state is not None,
                                grad_trace is not None)
    k.backward_kernel[_grid(m)](
        gs_last, grad_state if grad_state is not None else h, gh[last], h[last],
        table if u0 is None else u0, table, gx[last], gu0 if s.state_grad else gx,
        gp if g else gx, steps, m, table.shape[1], s.inner, s.period, 0.5 * s.vmin_tie,
        gs_tstride, gs_estride, 0.0 if s.detach_reset else 1.0,
        **const, num_warps=NUM_WARPS, enable_fp_fusion=False)
    return gx, gu0, gp
