// Per-element neuron maths shared by the fused forward and backward CPU kernels, and the names
// of the table rows, neuron models and surrogate shapes they read.
//
// The equations are those of quadfire/functional/steps.py (fire, reset, floor) and of each
// model's parameter class in quadfire/functional/params.py (charge); every expression below
// evaluates in exactly the operation order of those files, and the extension is built with -ffp-contract=off,
// so the charged potential H (and hence every spike) is bit-identical to the reference loop.
// Every select is written as a ternary on values already computed: with -fno-trapping-math
// (quadfire/ops/cpu.py) the compilers turn them into vector blends.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

namespace quadfire {

// Rows of the parameter table [ROWS, L], in the order of quadfire/ops/pack.py ROWS; the
// loader compares the names with pack.py and refuses a library that disagrees. The charge
// rows C0..C3 mean what each model's kernel_rows() says (quadfire/functional/params.py).
#define QUADFIRE_ROWS(X)                                                                   \
  X(C0, "c0") X(C1, "c1") X(C2, "c2") X(C3, "c3") X(VTH, "v_th") X(VRESET, "v_reset")     \
  X(REST, "rest") X(VMIN, "v_min") X(WIDTH, "width") X(OFFSET, "offset")
enum Row : int {
#define QUADFIRE_ENUM(id, name) id,
  QUADFIRE_ROWS(QUADFIRE_ENUM) ROWS
};
constexpr int GRAD_ROWS = REST;  // the rows before rest can carry gradient

// Neuron models; their code is the position here and in quadfire/functional/protocol.py
// KERNEL_MODELS. Each has one Model<T, CODE> specialization below; kernels.cpp instantiates
// the kernels for every entry of this list.
#define QUADFIRE_MODELS(X) X(LIF, "lif") X(QIF, "qif") X(QIF_EXACT, "qif-exact") X(QIF_HYBRID, "qif-hybrid")
enum Model : int { QUADFIRE_MODELS(QUADFIRE_ENUM) MODELS };

// Surrogate shapes; their code is the position here and in quadfire/ops/pack.py SHAPES.
#define QUADFIRE_SHAPES(X) X(RECT, "rect") X(TRIANGLE, "triangle") X(SIGMOID, "sigmoid") X(ATAN, "atan")
enum Shape : int { QUADFIRE_SHAPES(QUADFIRE_ENUM) SHAPES };

// Layouts of the spikes' gradient in backward (pack.py GRAD_LAYOUTS).
#define QUADFIRE_GRAD_LAYOUTS(X) X(GS_DENSE, "dense") X(GS_ROW, "row") X(GS_SCALAR, "scalar")
enum GradLayout : int { QUADFIRE_GRAD_LAYOUTS(QUADFIRE_ENUM) GRAD_LAYOUTS };
#undef QUADFIRE_ENUM

// Gradients of a charge for dL/dH = gh: to U[t-1] and to the charge rows C0..C3.
template <typename T>
struct ChargeGrad {
  T u, c0, c1, c2, c3;
};

// A model's charge H = charge(U[t-1], X[t]) from its rows c0..c3, in the operation order of
// its parameter class's charge() in quadfire/functional/params.py (so H is bit-identical), and
// its gradient. One specialization per model.
template <typename T, int MODEL>
struct Charge;

// LIF: c0 = k, c1 = v_rest. (u - k*(u - v_rest)) + x.
template <typename T>
struct Charge<T, LIF> {
  static T h(T u, T x, T k, T rest, T, T) { return (u - k * (u - rest)) + x; }
  static ChargeGrad<T> grad(T gh, T u, T k, T rest, T, T) {
    return {gh * (T(1) - k), -(gh * (u - rest)), gh * k, T(0), T(0)};
  }
};

// Euler QIF: c0 = a, c1 = u1, c2 = u2. (u + (a*(u - u1))*(u - u2)) + x. The gradient follows
// the reference's factors, t1 = a*(u - u1) and t1*(u - u2), as autograd differentiates them,
// so a huge |U| (after a +-inf input with v_min=None or a soft reset) meets a zero gh as
// 0 * finite, never as 0 * inf = NaN from a precomputed slope.
template <typename T>
struct Charge<T, QIF> {
  static T h(T u, T x, T a, T u1, T u2, T) { return (u + (a * (u - u1)) * (u - u2)) + x; }
  static ChargeGrad<T> grad(T gh, T u, T a, T u1, T u2, T) {
    const T t1 = a * (u - u1);
    const T g1 = gh * (u - u2);  // dL/dt1
    return {(gh + g1 * a) + gh * t1, g1 * (u - u1), -(g1 * a), -(gh * t1), T(0)};
  }
};

// Exact-flow QIF: c0 = E = exp(a d), c1 = u1, c2 = c = (1 - E)/d. With x = u - u1 and
// den = E + c*x: (u1 + x/den) + X where den > 0, else +inf (the flow blows up within the
// step). The gradient is 0 where den <= 0, as the reference's where() passes it.
template <typename T>
struct Charge<T, QIF_EXACT> {
  static T h(T u, T x, T E, T u1, T c, T) {
    const T xx = u - u1;
    const T den = E + c * xx;
    const T flow = den > T(0) ? u1 + xx / den : std::numeric_limits<T>::infinity();
    return flow + x;
  }
  static ChargeGrad<T> grad(T gh, T u, T E, T u1, T c, T) {
    const T xx = u - u1;
    const T den = E + c * xx;
    const bool ok = den > T(0);
    const T q = T(1) / (ok ? den : T(1));
    // autograd's order, -gh * ((x / den) / den): never forms gh * x, which overflows for the
    // huge |x| a -inf input leaves (x = -max) where the quotient is small
    const T gxx = ok ? gh * q : T(0);                   // dL/dx through x/den
    const T gden = ok ? -(gh * ((xx * q) * q)) : T(0);  // dL/dden
    const T gu = gxx + gden * c;
    return {gu, gden, (ok ? gh : T(0)) - gu, gden * xx, T(0)};
  }
};

// Hybrid QIF: c0 = a, c1 = u1, c2 = u2, c3 = k = a d. The Euler QIF charge for u >= u1, the
// leak (u - k*(u - u1)) below.
template <typename T>
struct Charge<T, QIF_HYBRID> {
  static T h(T u, T x, T a, T u1, T u2, T k) {
    const T above = u + (a * (u - u1)) * (u - u2);
    const T below = u - k * (u - u1);
    return (u >= u1 ? above : below) + x;
  }
  static ChargeGrad<T> grad(T gh, T u, T a, T u1, T u2, T k) {
    const ChargeGrad<T> q = Charge<T, QIF>::grad(gh, u, a, u1, u2, T(0));
    const ChargeGrad<T> l = Charge<T, LIF>::grad(gh, u, k, u1, T(0), T(0));
    const bool above = u >= u1;
    return {above ? q.u : l.u, above ? q.c0 : T(0), above ? q.c1 : l.c1,
            above ? q.c2 : T(0), above ? T(0) : l.c0};
  }
};

// fire_reset's clamp of H to the finite range of T before threshold, reset and floor: +-inf
// becomes +-max, NaN stays NaN (as torch.clamp). `big` is std::numeric_limits<T>::max(),
// passed in at run time (Problem::big): with the constant in sight GCC folds the two selects
// into range tests of nine instructions instead of one max and one min.
template <typename T>
inline T finite(T h, T big) {
  const T lo = h < -big ? -big : h;
  return lo > big ? big : lo;
}

// Where the clamp passes the gradient: -max <= H <= max (false for +-inf and NaN).
template <typename T>
inline bool in_range(T h, T big) {
  return std::abs(h) <= big;
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

// The share of the gradient torch.clamp(u, min=v_min) passes: 1 above the floor, `tie` on it.
template <typename T>
inline T floor_pass(T u, T vmin, T tie) {
  return u > vmin ? T(1) : (u == vmin ? tie : T(0));
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
// target: std::exp is a library call that GCC vectorizes only with a vector math library
// (glibc's libmvec under -ffast-math), which macOS, musl and older AArch64 glibc lack.
// Cephes' range reduction x = n ln2 + r, |r| <= ln2/2, and its minimax polynomial (float) or
// rational function (double); n is rounded by adding 1.5 * 2^mantissa_bits, which leaves n in
// the low bits of the sum, so 2^n is built with integer adds and shifts, no float-to-int
// conversion. Error: 1.4 ulp (float), 2.4 ulp (double) against the exact exp; the backward
// pass needs 1e-5 relative. Beyond the range where 2^n is a normal number the result
// saturates to 0 and inf, as the exact exp does for the sigmoid (s = 1/(1 + exp(-kz)) is then
// exactly 1 or 0 and the window exactly 0, as torch.sigmoid gives); NaN stays NaN.
inline float exp_vec(float x) {
  const float xc = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
  constexpr float ROUND = 12582912.0f;  // 1.5 * 2^23
  const float t = xc * 1.44269504088896341f + ROUND;
  const float n = t - ROUND;
  const float r = (xc - n * 0.693359375f) - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = (p * (r * r) + r) + 1.0f;
  const float y = p * bits_as<float>((bits_as<uint32_t>(t) + 127u) << 23);
  return x < -87.0f ? 0.0f : (x > 88.0f ? std::numeric_limits<float>::infinity() : y);
}

inline double exp_vec(double x) {
  const double xc = x < -708.0 ? -708.0 : (x > 709.0 ? 709.0 : x);
  constexpr double ROUND = 6755399441055744.0;  // 1.5 * 2^52
  const double t = xc * 1.4426950408889634074 + ROUND;
  const double n = t - ROUND;
  const double r = (xc - n * 6.93145751953125e-1) - n * 1.42860682030941723212e-6;
  const double rr = r * r;
  double p = 1.26177193074810590878e-4;
  p = p * rr + 3.02994407707441961300e-2;
  p = (p * rr + 9.99999999999999999910e-1) * r;
  double q = 3.00198505138664455042e-6;
  q = q * rr + 2.52448340349684104192e-3;
  q = q * rr + 2.27265548208155028766e-1;
  q = q * rr + 2.00000000000000000009e0;
  const double y = (1.0 + 2.0 * (p / (q - p))) * bits_as<double>((bits_as<uint64_t>(t) + 1023u) << 52);
  return x < -708.0 ? 0.0 : (x > 709.0 ? std::numeric_limits<double>::infinity() : y);
}

// The window's constants from its width w, computed once per chunk instead of per step:
// rect 1/w and w/2 (exactly the reference's numbers), triangle 1/w and 1/w^2, sigmoid
// k = 4/w, atan 1/w and pi/w. Multiplying by a reciprocal instead of dividing moves a
// gradient by at most an ulp or two; spikes and states never depend on the window.
template <typename T, int SHAPE>
inline void window_consts(T w, T* wa, T* wb) {
  if constexpr (SHAPE == RECT) {
    *wa = T(1) / w;
    *wb = w / T(2);
  } else if constexpr (SHAPE == TRIANGLE) {
    *wa = T(1) / w;
    *wb = T(1) / (w * w);
  } else if constexpr (SHAPE == SIGMOID) {
    *wa = T(4) / w;
    *wb = T(0);
  } else {
    *wa = T(1) / w;
    *wb = T(M_PI) / w;
  }
}

// The surrogate window g(d), d = z - offset, of quadfire.functional.surrogate.Window.grad,
// from the constants of window_consts.
template <typename T, int SHAPE>
inline T window(T d, T wa, T wb) {
  if constexpr (SHAPE == RECT) {
    return std::abs(d) < wb ? wa : T(0);
  } else if constexpr (SHAPE == TRIANGLE) {
    const T g = wa - std::abs(d) * wb;
    return g < T(0) ? T(0) : g;  // torch.clamp(min=0): NaN stays NaN
  } else if constexpr (SHAPE == SIGMOID) {
    const T s = T(1) / (T(1) + exp_vec(-wa * d));
    return wa * s * (T(1) - s);
  } else {
    const T r = d * wb;
    return wa / (T(1) + r * r);
  }
}

}  // namespace quadfire
