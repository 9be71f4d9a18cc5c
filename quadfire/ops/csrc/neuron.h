// Per-element neuron maths shared by the fused forward and backward CPU kernels.
//
// The equations are those of quadfire/neurons/steps.py; every expression below evaluates in
// exactly the operation order of that file, and the extension is built with -ffp-contract=off,
// so the charged potential H (and hence every spike) is bit-identical to the reference loop.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

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

// Reinterpret the bits of a float as an integer of the same size or back (std::bit_cast of C++20;
// compilers turn the memcpy into a register move, also inside vectorized loops).
template <typename To, typename From>
inline To bits_as(From v) {
  static_assert(sizeof(To) == sizeof(From), "bits_as needs types of one size");
  To out;
  std::memcpy(&out, &v, sizeof out);
  return out;
}

// exp(x) for the sigmoid window, written so that the loops calling it vectorize on every
// target: std::exp is a library call that GCC and Clang vectorize only with a vector math
// library (glibc's libmvec under -ffast-math), which macOS, musl and older AArch64 glibc lack.
// Cephes' range reduction x = n ln2 + r, |r| <= ln2/2, and its minimax polynomial (float) or
// rational function (double); n is rounded by adding 1.5 * 2^mantissa_bits, which leaves n in
// the low bits of the sum, so 2^n is built with integer adds and shifts, no float-to-int
// conversion. Error: 1.4 ulp (float), 2.4 ulp (double) against the exact exp; the backward
// pass needs 1e-5 relative. x is clamped to the range where 2^n stays a normal number (the
// sigmoid window is 0 to working precision beyond it); NaN stays NaN.
inline float exp_vec(float x) {
  x = x < -87.0f ? -87.0f : x;
  x = x > 88.0f ? 88.0f : x;
  constexpr float ROUND = 12582912.0f;  // 1.5 * 2^23
  const float t = x * 1.44269504088896341f + ROUND;
  const float n = t - ROUND;
  const float r = (x - n * 0.693359375f) - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = (p * (r * r) + r) + 1.0f;
  return p * bits_as<float>((bits_as<uint32_t>(t) + 127u) << 23);
}

inline double exp_vec(double x) {
  x = x < -708.0 ? -708.0 : x;
  x = x > 709.0 ? 709.0 : x;
  constexpr double ROUND = 6755399441055744.0;  // 1.5 * 2^52
  const double t = x * 1.4426950408889634074 + ROUND;
  const double n = t - ROUND;
  const double r = (x - n * 6.93145751953125e-1) - n * 1.42860682030941723212e-6;
  const double rr = r * r;
  double p = 1.26177193074810590878e-4;
  p = p * rr + 3.02994407707441961300e-2;
  p = (p * rr + 9.99999999999999999910e-1) * r;
  double q = 3.00198505138664455042e-6;
  q = q * rr + 2.52448340349684104192e-3;
  q = q * rr + 2.27265548208155028766e-1;
  q = q * rr + 2.00000000000000000009e0;
  const double y = 1.0 + 2.0 * (p / (q - p));
  return y * bits_as<double>((bits_as<uint64_t>(t) + 1023u) << 52);
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
    const T s = T(1) / (T(1) + exp_vec(-k * d));
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
