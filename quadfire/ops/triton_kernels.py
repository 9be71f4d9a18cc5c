"""Triton kernels of the fused multi-step neuron (launched by `quadfire.ops.gpu`).

One program owns BLOCK elements of a step and loops over T with the membrane in registers;
per-step tensors are [T, M] contiguous and addressed by pointers that advance by M per step
(64-bit pointer arithmetic, so T*M may exceed 2**31). Inputs may be float32, bfloat16 or
float16; the state and all arithmetic are float32. The charge, clamp, fire, reset and floor
are written in the operation order of `quadfire.functional.steps`, and the launcher disables
FMA fusion, so spikes equal the reference bit for bit. The table layout is `quadfire.ops.pack`'s:
its row indices arrive as the constexprs R_C0, R_C1, ... (`pack.triton_rows`), the neuron
model (`quadfire.functional.KERNEL_MODELS`) and the surrogate shape as their names.
"""
from __future__ import annotations

import triton
import triton.language as tl

BIG = tl.constexpr(3.4028234663852886e38)  # float32 max, for fire_reset's clamp of H


@triton.jit
def _params(table_ptr, L, col, mask, R_C0: tl.constexpr, R_C1: tl.constexpr, R_C2: tl.constexpr,
            R_C3: tl.constexpr, R_V_TH: tl.constexpr, R_V_RESET: tl.constexpr,
            R_REST: tl.constexpr, R_V_MIN: tl.constexpr, R_WIDTH: tl.constexpr,
            R_OFFSET: tl.constexpr):
    c0 = tl.load(table_ptr + R_C0 * L + col, mask=mask, other=1.0)
    c1 = tl.load(table_ptr + R_C1 * L + col, mask=mask, other=0.0)
    c2 = tl.load(table_ptr + R_C2 * L + col, mask=mask, other=0.0)
    c3 = tl.load(table_ptr + R_C3 * L + col, mask=mask, other=0.0)
    vth = tl.load(table_ptr + R_V_TH * L + col, mask=mask, other=1.0)
    vr = tl.load(table_ptr + R_V_RESET * L + col, mask=mask, other=0.0)
    rest = tl.load(table_ptr + R_REST * L + col, mask=mask, other=0.0)
    vmin = tl.load(table_ptr + R_V_MIN * L + col, mask=mask, other=0.0)
    w = tl.load(table_ptr + R_WIDTH * L + col, mask=mask, other=1.0)
    off = tl.load(table_ptr + R_OFFSET * L + col, mask=mask, other=0.0)
    return c0, c1, c2, c3, vth, vr, rest, vmin, w, off


@triton.jit
def _charge(u, x, c0, c1, c2, c3, MODEL: tl.constexpr):
    """H from U[t-1] and X[t]: one branch per model, in its parameter class's operation order
    (quadfire/functional/params.py; the rows' meaning as in quadfire/ops/csrc/neuron.h)."""
    if MODEL == "qif":
        h = (u + (c0 * (u - c1)) * (u - c2)) + x
    elif MODEL == "qif-exact":
        xx = u - c1
        den = c0 + c2 * xx
        ok = den > 0.0
        flow = c1 + tl.math.div_rn(xx, tl.where(ok, den, 1.0))
        h = tl.where(ok, flow, float("inf")) + x
    elif MODEL == "qif-hybrid":
        above = u + (c0 * (u - c1)) * (u - c2)
        below = u - c3 * (u - c1)
        h = tl.where(u >= c1, above, below) + x
    else:
        tl.static_assert(MODEL == "lif", "unknown neuron model")
        h = (u - c0 * (u - c1)) + x
    return h


@triton.jit
def _qif_grad(gh, u, a, u1, u2):
    # the reference's factors, t1 = a*(U - u1) and t1*(U - u2) (neuron.h Charge<T, QIF>)
    t1 = a * (u - u1)
    g1 = gh * (u - u2)
    return (gh + g1 * a) + gh * t1, g1 * (u - u1), -(g1 * a), -(gh * t1)


@triton.jit
def _charge_grad(gh, u, c0, c1, c2, c3, MODEL: tl.constexpr):
    """dL/dU[t-1] and dL/dc0 .. dc3 for dL/dH = gh (neuron.h Charge<T, MODEL>::grad)."""
    zero = tl.zeros_like(gh)
    if MODEL == "qif":
        gu, g0, g1, g2 = _qif_grad(gh, u, c0, c1, c2)
        g3 = zero
    elif MODEL == "qif-exact":
        xx = u - c1
        den = c0 + c2 * xx
        ok = den > 0.0
        q = 1.0 / tl.where(ok, den, 1.0)
        gxx = tl.where(ok, gh * q, 0.0)
        gden = tl.where(ok, -(gh * ((xx * q) * q)), 0.0)  # autograd's order (neuron.h)
        gu = gxx + gden * c2
        g0 = gden
        g1 = tl.where(ok, gh, 0.0) - gu
        g2 = gden * xx
        g3 = zero
    elif MODEL == "qif-hybrid":
        qu, q0, q1, q2 = _qif_grad(gh, u, c0, c1, c2)
        above = u >= c1
        gu = tl.where(above, qu, gh * (1.0 - c3))
        g0 = tl.where(above, q0, 0.0)
        g1 = tl.where(above, q1, gh * c3)
        g2 = tl.where(above, q2, 0.0)
        g3 = tl.where(above, 0.0, -(gh * (u - c1)))
    else:
        gu = gh * (1.0 - c0)
        g0 = -(gh * (u - c1))
        g1 = gh * c0
        g2 = zero
        g3 = zero
    return gu, g0, g1, g2, g3


@triton.jit
def _finite(h):
    """clamp(H, -max, max); NaN stays NaN."""
    lo = tl.where(h < -BIG, -BIG, h)
    return tl.where(lo > BIG, BIG, lo)


@triton.jit
def _reset(h, s, vth, vr, SOFT: tl.constexpr):
    if SOFT:
        un = h - vth * s
    else:
        un = h * (1.0 - s) + vr * s
    return un


@triton.jit
def _floor(u, vmin):
    return tl.where(u < vmin, vmin, u)


@triton.jit
def _floor_pass(u, vmin, tie):
    return tl.where(u > vmin, 1.0, tl.where(u == vmin, tie, 0.0))


@triton.jit
def _window(z, w, off, SHAPE: tl.constexpr):
    d = z - off
    if SHAPE == "rect":
        g = tl.where(tl.abs(d) < w / 2.0, 1.0 / w, 0.0)
    elif SHAPE == "triangle":
        g = 1.0 / w - tl.abs(d) / (w * w)
        g = tl.where(g < 0.0, 0.0, g)  # torch.clamp(min=0): NaN stays NaN
    elif SHAPE == "sigmoid":
        k = 4.0 / w
        s = tl.sigmoid(k * d)
        g = k * s * (1.0 - s)
    else:
        tl.static_assert(SHAPE == "atan", "unknown surrogate shape")
        r = 3.141592653589793 * d / w
        g = (1.0 / w) / (1.0 + r * r)
    return g


@triton.jit
def forward_kernel(x_ptr, u0_ptr, table_ptr, s_ptr, u_ptr, h_ptr, steps, M, L, inner, period,
                   MODEL: tl.constexpr, SOFT: tl.constexpr, NEED_H: tl.constexpr,
                   FROM_REST: tl.constexpr, BLOCK: tl.constexpr, R_C0: tl.constexpr,
                   R_C1: tl.constexpr, R_C2: tl.constexpr, R_C3: tl.constexpr,
                   R_V_TH: tl.constexpr, R_V_RESET: tl.constexpr, R_REST: tl.constexpr,
                   R_V_MIN: tl.constexpr, R_WIDTH: tl.constexpr, R_OFFSET: tl.constexpr):
    """FROM_REST: start from the table's row rest (u0_ptr unused); else from u0, floored."""
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < M
    col = (offs // inner) % period
    c0, c1, c2, c3, vth, vr, rest, vmin, w, off = _params(
        table_ptr, L, col, mask, R_C0, R_C1, R_C2, R_C3, R_V_TH, R_V_RESET, R_REST, R_V_MIN,
        R_WIDTH, R_OFFSET)
    if FROM_REST:
        u = _floor(rest, vmin)
    else:
        u = _floor(tl.load(u0_ptr + offs, mask=mask, other=0.0), vmin)
    xp = x_ptr + offs
    sp = s_ptr + offs
    hp = h_ptr + offs
    for _ in range(steps):
        x = tl.load(xp, mask=mask, other=0.0).to(tl.float32)
        h = _charge(u, x, c0, c1, c2, c3, MODEL)
        hc = _finite(h)
        s = tl.where(hc - vth >= 0.0, 1.0, 0.0)
        u = _floor(_reset(hc, s, vth, vr, SOFT), vmin)
        tl.store(sp, s.to(s_ptr.dtype.element_ty), mask=mask)
        if NEED_H:
            tl.store(hp, h, mask=mask)
            hp += M
        xp += M
        sp += M
    tl.store(u_ptr + offs, u, mask=mask)


@triton.jit
def backward_kernel(gs_last, gu_ptr, gh_last, h_last, u0_ptr, table_ptr, gx_last, gu0_ptr, gp_ptr,
                    steps, M, L, inner, period, tie, gs_tstride, gs_estride, rg,
                    MODEL: tl.constexpr, SOFT: tl.constexpr, SHAPE: tl.constexpr,
                    FROM_REST: tl.constexpr, STATE_GRAD: tl.constexpr, HAS_GS: tl.constexpr,
                    HAS_GU: tl.constexpr, HAS_GH: tl.constexpr, BLOCK: tl.constexpr,
                    SLOT_C0: tl.constexpr, SLOT_C1: tl.constexpr, SLOT_C2: tl.constexpr,
                    SLOT_C3: tl.constexpr, SLOT_V_TH: tl.constexpr, SLOT_V_RESET: tl.constexpr,
                    R_C0: tl.constexpr, R_C1: tl.constexpr, R_C2: tl.constexpr,
                    R_C3: tl.constexpr, R_V_TH: tl.constexpr, R_V_RESET: tl.constexpr,
                    R_REST: tl.constexpr, R_V_MIN: tl.constexpr, R_WIDTH: tl.constexpr,
                    R_OFFSET: tl.constexpr):
    """Reverse-time BPTT (see quadfire/ops/csrc/kernels.cpp and neuron.h for the equations).
    The *_last pointers address row T-1 and step back by M (the spikes' gradient by
    gs_tstride, its elements gs_estride apart: 0 for a broadcast gradient, pack.GRAD_LAYOUTS);
    U[t-1] is recomputed from H[t-1]."""
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < M
    col = (offs // inner) % period
    c0, c1, c2, c3, vth, vr, rest, vmin, w, off = _params(
        table_ptr, L, col, mask, R_C0, R_C1, R_C2, R_C3, R_V_TH, R_V_RESET, R_REST, R_V_MIN,
        R_WIDTH, R_OFFSET)
    if FROM_REST:
        start = rest
    else:
        start = tl.load(u0_ptr + offs, mask=mask, other=0.0)
    u0 = _floor(start, vmin)
    if HAS_GU:
        gU = tl.load(gu_ptr + offs, mask=mask, other=0.0)
    else:
        gU = tl.zeros([BLOCK], dtype=tl.float32)
    acc_c0 = tl.zeros([BLOCK], dtype=tl.float32)
    acc_c1 = tl.zeros([BLOCK], dtype=tl.float32)
    acc_c2 = tl.zeros([BLOCK], dtype=tl.float32)
    acc_c3 = tl.zeros([BLOCK], dtype=tl.float32)
    acc_vth = tl.zeros([BLOCK], dtype=tl.float32)
    acc_vr = tl.zeros([BLOCK], dtype=tl.float32)
    hp = h_last + offs
    gsp = gs_last + offs * gs_estride
    ghp = gh_last + offs
    gxp = gx_last + offs
    h = tl.load(hp, mask=mask, other=0.0)
    for i in range(steps):
        has_prev = i < steps - 1
        h_prev = tl.load(hp - M, mask=mask & has_prev, other=0.0)
        hc_prev = _finite(h_prev)
        s_prev = tl.where(hc_prev - vth >= 0.0, 1.0, 0.0)
        U = tl.where(has_prev, _floor(_reset(hc_prev, s_prev, vth, vr, SOFT), vmin), u0)
        hc = _finite(h)
        z = hc - vth
        s = tl.where(z >= 0.0, 1.0, 0.0)
        g = _window(z, w, off, SHAPE)
        gu = gU * _floor_pass(_reset(hc, s, vth, vr, SOFT), vmin, tie)
        if SOFT:  # rg: 0 detaches the reset's spike (neuron.h, kernels.cpp)
            dudh = 1.0 - rg * (vth * g)
        else:
            dudh = (1.0 - s) + rg * ((vr - hc) * g)
        ghc = gu * dudh
        if HAS_GS:
            gsv = tl.load(gsp, mask=mask, other=0.0).to(tl.float32)
            ghc = gsv * g + ghc
        else:
            gsv = tl.zeros([BLOCK], dtype=tl.float32)
        gh = tl.where((h >= -BIG) & (h <= BIG), ghc, 0.0)  # the clamp passes finite H only
        if HAS_GH:
            gh = gh + tl.load(ghp, mask=mask, other=0.0)
        tl.store(gxp, gh.to(gx_last.dtype.element_ty), mask=mask)
        gU, g0, g1, g2, g3 = _charge_grad(gh, U, c0, c1, c2, c3, MODEL)
        acc_c0 += g0
        acc_c1 += g1
        acc_c2 += g2
        acc_c3 += g3
        if SOFT:
            acc_vth += gu * (rg * (vth * g) - s) - gsv * g
        else:
            acc_vth += gu * (rg * ((hc - vr) * g)) - gsv * g
            acc_vr += gu * s
        h = h_prev
        hp -= M
        gsp -= gs_tstride
        ghp -= M
        gxp -= M
    if STATE_GRAD:
        tl.store(gu0_ptr + offs, gU * _floor_pass(start, vmin, tie), mask=mask)
    if SLOT_C0 >= 0:
        tl.store(gp_ptr + SLOT_C0 * M + offs, acc_c0, mask=mask)
    if SLOT_C1 >= 0:
        tl.store(gp_ptr + SLOT_C1 * M + offs, acc_c1, mask=mask)
    if SLOT_C2 >= 0:
        tl.store(gp_ptr + SLOT_C2 * M + offs, acc_c2, mask=mask)
    if SLOT_C3 >= 0:
        tl.store(gp_ptr + SLOT_C3 * M + offs, acc_c3, mask=mask)
    if SLOT_V_TH >= 0:
        tl.store(gp_ptr + SLOT_V_TH * M + offs, acc_vth, mask=mask)
    if SLOT_V_RESET >= 0:
        tl.store(gp_ptr + SLOT_V_RESET * M + offs, acc_vr, mask=mask)
