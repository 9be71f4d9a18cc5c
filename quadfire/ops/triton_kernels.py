"""Triton kernels of the fused multi-step neuron (launched by `quadfire.ops.gpu`).

One program owns BLOCK elements of a step and loops over T with the membrane in registers;
per-step tensors are [T, M] contiguous and addressed by pointers that advance by M per step
(64-bit pointer arithmetic, so T*M may exceed 2**31). Inputs may be float32, bfloat16 or
float16; the state and all arithmetic are float32. The charge, fire, reset and floor are
written in the operation order of `quadfire.functional.steps`, and the launcher disables FMA
fusion, so spikes equal the reference bit for bit; the table layout is `quadfire.ops.pack`'s.
"""
from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def _params(table_ptr, L, col, mask):
    a = tl.load(table_ptr + col, mask=mask, other=1.0)
    u1 = tl.load(table_ptr + L + col, mask=mask, other=0.0)
    u2 = tl.load(table_ptr + 2 * L + col, mask=mask, other=0.0)
    vth = tl.load(table_ptr + 3 * L + col, mask=mask, other=1.0)
    vr = tl.load(table_ptr + 4 * L + col, mask=mask, other=0.0)
    vmin = tl.load(table_ptr + 5 * L + col, mask=mask, other=0.0)
    w = tl.load(table_ptr + 6 * L + col, mask=mask, other=1.0)
    off = tl.load(table_ptr + 7 * L + col, mask=mask, other=0.0)
    return a, u1, u2, vth, vr, vmin, w, off


@triton.jit
def _charge(u, x, a, u1, u2, QIF: tl.constexpr):
    if QIF:
        h = (u + (a * (u - u1)) * (u - u2)) + x
    else:
        h = (u - a * (u - u1)) + x
    return h


@triton.jit
def _reset(h, s, vth, vr, SOFT: tl.constexpr):
    if SOFT:
        un = h - vth * s
    else:
        un = h * (1.0 - s) + vr * s
    return un


@triton.jit
def _window(z, w, off, SHAPE: tl.constexpr):
    d = z - off
    if SHAPE == 0:
        g = tl.where(tl.abs(d) < w / 2.0, 1.0 / w, 0.0)
    elif SHAPE == 1:
        g = tl.maximum(1.0 / w - tl.abs(d) / (w * w), 0.0)
    elif SHAPE == 2:
        k = 4.0 / w
        s = tl.sigmoid(k * d)
        g = k * s * (1.0 - s)
    else:
        r = 3.141592653589793 * d / w
        g = (1.0 / w) / (1.0 + r * r)
    return g


@triton.jit
def forward_kernel(x_ptr, u0_ptr, table_ptr, s_ptr, u_ptr, h_ptr, steps, M, L, inner, period,
                   QIF: tl.constexpr, SOFT: tl.constexpr, NEED_H: tl.constexpr,
                   BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < M
    col = (offs // inner) % period
    a, u1, u2, vth, vr, vmin, w, off = _params(table_ptr, L, col, mask)
    u = tl.load(u0_ptr + offs, mask=mask, other=0.0)
    xp = x_ptr + offs
    sp = s_ptr + offs
    hp = h_ptr + offs
    for _ in range(steps):
        x = tl.load(xp, mask=mask, other=0.0).to(tl.float32)
        h = _charge(u, x, a, u1, u2, QIF)
        s = tl.where(h - vth >= 0.0, 1.0, 0.0)
        un = _reset(h, s, vth, vr, SOFT)
        u = tl.where(un < vmin, vmin, un)
        tl.store(sp, s.to(s_ptr.dtype.element_ty), mask=mask)
        if NEED_H:
            tl.store(hp, h, mask=mask)
            hp += M
        xp += M
        sp += M
    tl.store(u_ptr + offs, u, mask=mask)


@triton.jit
def backward_kernel(gs_last, gu_ptr, gh_last, h_last, u0_ptr, table_ptr, gx_last, gu0_ptr, gp_ptr,
                    steps, M, L, inner, period, vmin_eq,
                    QIF: tl.constexpr, SOFT: tl.constexpr, SHAPE: tl.constexpr,
                    HAS_GS: tl.constexpr, HAS_GU: tl.constexpr, HAS_GH: tl.constexpr,
                    SLOT_A: tl.constexpr, SLOT_U1: tl.constexpr, SLOT_U2: tl.constexpr,
                    SLOT_VTH: tl.constexpr, SLOT_VR: tl.constexpr, BLOCK: tl.constexpr):
    """Reverse-time BPTT (see quadfire/ops/csrc/kernels.cpp for the equations). The *_last
    pointers address row T-1 and step back by M; U[t-1] is recomputed from H[t-1]."""
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < M
    col = (offs // inner) % period
    a, u1, u2, vth, vr, vmin, w, off = _params(table_ptr, L, col, mask)
    u0 = tl.load(u0_ptr + offs, mask=mask, other=0.0)
    if HAS_GU:
        gU = tl.load(gu_ptr + offs, mask=mask, other=0.0)
    else:
        gU = tl.zeros([BLOCK], dtype=tl.float32)
    acc_a = tl.zeros([BLOCK], dtype=tl.float32)
    acc_u1 = tl.zeros([BLOCK], dtype=tl.float32)
    acc_u2 = tl.zeros([BLOCK], dtype=tl.float32)
    acc_vth = tl.zeros([BLOCK], dtype=tl.float32)
    acc_vr = tl.zeros([BLOCK], dtype=tl.float32)
    hp = h_last + offs
    gsp = gs_last + offs
    ghp = gh_last + offs
    gxp = gx_last + offs
    h = tl.load(hp, mask=mask, other=0.0)
    for i in range(steps):
        has_prev = i < steps - 1
        h_prev = tl.load(hp - M, mask=mask & has_prev, other=0.0)
        s_prev = tl.where(h_prev - vth >= 0.0, 1.0, 0.0)
        un_prev = _reset(h_prev, s_prev, vth, vr, SOFT)
        U = tl.where(has_prev, tl.where(un_prev < vmin, vmin, un_prev), u0)
        z = h - vth
        s = tl.where(z >= 0.0, 1.0, 0.0)
        g = _window(z, w, off, SHAPE)
        un = _reset(h, s, vth, vr, SOFT)
        gu = gU * tl.where(un > vmin, 1.0, tl.where(un == vmin, vmin_eq, 0.0))
        if SOFT:
            dudh = 1.0 - vth * g
        else:
            dudh = (1.0 - s) + (vr - h) * g
        gh = gu * dudh
        if HAS_GS:
            gsv = tl.load(gsp, mask=mask, other=0.0).to(tl.float32)
            gh = gsv * g + gh
        else:
            gsv = tl.zeros([BLOCK], dtype=tl.float32)
        if HAS_GH:
            gh = gh + tl.load(ghp, mask=mask, other=0.0)
        tl.store(gxp, gh.to(gx_last.dtype.element_ty), mask=mask)
        if QIF:
            gU = gh * (1.0 + a * ((U - u1) + (U - u2)))
            acc_a += gh * ((U - u1) * (U - u2))
            acc_u1 -= gh * (a * (U - u2))
            acc_u2 -= gh * (a * (U - u1))
        else:
            gU = gh * (1.0 - a)
            acc_a -= gh * (U - u1)
            acc_u1 += gh * a
        if SOFT:
            acc_vth += gu * (vth * g - s) - gsv * g
        else:
            acc_vth += gu * ((h - vr) * g) - gsv * g
            acc_vr += gu * s
        h = h_prev
        hp -= M
        gsp -= M
        ghp -= M
        gxp -= M
    tl.store(gu0_ptr + offs, gU, mask=mask)
    if SLOT_A >= 0:
        tl.store(gp_ptr + SLOT_A * M + offs, acc_a, mask=mask)
    if SLOT_U1 >= 0:
        tl.store(gp_ptr + SLOT_U1 * M + offs, acc_u1, mask=mask)
    if SLOT_U2 >= 0:
        tl.store(gp_ptr + SLOT_U2 * M + offs, acc_u2, mask=mask)
    if SLOT_VTH >= 0:
        tl.store(gp_ptr + SLOT_VTH * M + offs, acc_vth, mask=mask)
    if SLOT_VR >= 0:
        tl.store(gp_ptr + SLOT_VR * M + offs, acc_vr, mask=mask)
