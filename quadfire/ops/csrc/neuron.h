// Per-element neuron maths shared by the fused forward and backward CPU kernels.
//
// The equations are those of quadfire/neurons/steps.py; every expression below evaluates in
// exactly the operation order of that file, and the extension is built with -ffp-contract=off,
// so the charged potential H (and hence every spike) is bit-identical to the reference loop.
#pragma once

#include <cmath>
#include <cstdint>

namespace quadfire {

// Rows of the parameter table [ROWS, L] built by quadfire/ops/pack.py. For LIF-family neurons
// row A holds the leak k and row U1 holds v_rest; row U2 is unused.
enum Row : int { A = 0, U1 = 1, U2 = 2, VTH = 3, VRESET = 4, VMIN = 5, WIDTH = 6, OFFSET = 7, ROWS = 8 };
constexpr int GRAD_ROWS = 5;  // rows that can carry gradient: A, U1, U2, VTH, VRESET

// Surrogate shapes, numbered as quadfire.neurons.surrogate.SHAPE_CODES.
enum Shape : int { RECT = 0, TRIANGLE = 1, SIGMOID = 2, ATAN = 3 };

// Charge, in steps.py order: qif_charge = (u + (a*(u - u1))*(u - u2)) + x,
// lif_charge = (u - k*(u - v_rest)) + x.
template <typename T, bool QIF>
inline T charge(T u, T x, T a, T u1, T u2) {
  if constexpr (QIF) {
    return (u + (a * (u - u1)) * (u - u2)) + x;
  } else {
    return (u - a * (u - u1)) + x;
  }
}

// Reset without the floor, as fire_reset writes it: h - v_th*s (soft) or h*(1 - s) + v_reset*s.
template <typename T, bool SOFT>
inline T reset(T h, T s, T vth, T vreset) {
  if constexpr (SOFT) {
    return h - vth * s;
  } else {
    return h * (T(1) - s) + vreset * s;
  }
}

// torch.clamp(u, min=v_min); a missing floor is v_min = -inf. NaN passes through as in torch.
template <typename T>
inline T floor_at(T u, T vmin) {
  return u < vmin ? vmin : u;
}

// Heaviside(H - v_th): fires at H >= v_th, computed as the reference does, on z = H - v_th.
template <typename T>
inline T fire(T z) {
  return z >= T(0) ? T(1) : T(0);
}

// The surrogate window g(z - offset) of quadfire.neurons.surrogate.Window.grad.
template <typename T, int SHAPE>
inline T window(T z, T w, T offset) {
  const T d = z - offset;
  if constexpr (SHAPE == RECT) {
    return std::abs(d) < w / T(2) ? T(1) / w : T(0);
  } else if constexpr (SHAPE == TRIANGLE) {
    const T g = T(1) / w - std::abs(d) / (w * w);
    return g > T(0) ? g : T(0);
  } else if constexpr (SHAPE == SIGMOID) {
    const T k = T(4) / w;
    const T s = T(1) / (T(1) + std::exp(-k * d));
    return k * s * (T(1) - s);
  } else {
    const T r = T(M_PI) * d / w;
    return (T(1) / w) / (T(1) + r * r);
  }
}

// dH/dU[t-1] of the charge.
template <typename T, bool QIF>
inline T charge_slope(T u, T a, T u1, T u2) {
  if constexpr (QIF) {
    return T(1) + a * ((u - u1) + (u - u2));
  } else {
    return T(1) - a;
  }
}

}  // namespace quadfire
