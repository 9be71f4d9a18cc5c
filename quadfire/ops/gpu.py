"""The Triton backend: availability checks and launchers for `quadfire.ops.triton_kernels`.

Runs CUDA tensors of float32, bfloat16 and float16 (float32 state). Under ``TRITON_INTERPRET=1``
(set before triton is imported) the same kernels run on CPU tensors through Triton's
interpreter, which is how the test suite checks them on machines without a GPU.
"""
from __future__ import annotations

import importlib.util
import os

import torch

from .pack import GRAD_ROWS

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


def forward(x, u0, table, inner, period, qif, soft, need_h):
    """Raw fused forward on [T, M] (spikes in x's dtype, state and H float32)."""
    k = _kernels()
    steps, m = x.shape
    spikes = torch.empty_like(x)
    state = torch.empty_like(u0)
    h = x.new_empty(x.shape if need_h else (0,), dtype=u0.dtype)
    k.forward_kernel[_grid(m)](x, u0, table, spikes, state, h if need_h else spikes, steps, m,
                               table.shape[1], inner, period, QIF=qif, SOFT=soft, NEED_H=need_h,
                               BLOCK=BLOCK, num_warps=NUM_WARPS, enable_fp_fusion=False)
    return spikes, state, h


def backward(grad_spikes, grad_state, grad_trace, h, u0, table, inner, period, qif, soft, shape,
             vmin_eq, rows_mask, need_state_grad, x_dtype):
    """Raw fused backward: (grad x in x_dtype, grad u0, per-element parameter grads [G, M])."""
    k = _kernels()
    steps, m = h.shape
    gx = h.new_empty(h.shape, dtype=x_dtype)
    gu0 = torch.empty_like(u0)
    slots, g = [], 0
    for r in range(GRAD_ROWS):
        slots.append(g if rows_mask >> r & 1 else -1)
        g += rows_mask >> r & 1
    gp = h.new_empty((g, m))
    last = max(steps - 1, 0)
    gs = grad_spikes if grad_spikes is not None else h
    gh = grad_trace if grad_trace is not None else h
    k.backward_kernel[_grid(m)](
        gs[last], grad_state if grad_state is not None else u0, gh[last], h[last], u0, table,
        gx[last], gu0, gp if g else gu0, steps, m, table.shape[1], inner, period, float(vmin_eq),
        QIF=qif, SOFT=soft, SHAPE=shape, HAS_GS=grad_spikes is not None,
        HAS_GU=grad_state is not None, HAS_GH=grad_trace is not None, SLOT_A=slots[0],
        SLOT_U1=slots[1], SLOT_U2=slots[2], SLOT_VTH=slots[3], SLOT_VR=slots[4], BLOCK=BLOCK,
        num_warps=NUM_WARPS, enable_fp_fusion=False)
    return gx, (gu0 if need_state_grad else gu0.new_empty((0,))), gp
