// Fused multi-step QIF / LIF-family kernels for CPU: one pass over [T, M] per direction.
//
// Layout: time-major, [T, M] contiguous (M = elements of one step). Elements are split into
// chunks of CHUNK that OpenMP hands to threads; inside a chunk the loop over T is outermost and
// the chunk's membrane lives in a small local array, so the inner loop over elements is
// unit-stride and vectorizes while the state stays in L1/L2. Results are stored straight
// into the [T, M] outputs: an L1 buffer copied out with non-temporal stores saves the
// read-for-ownership of each output line, but on a compute-bound 2-core AMD EPYC the extra
// pass cost more than it saved (forward 17%, backward 8% slower). Each inner loop carries
// `#pragma omp simd` (its elements are independent: no alias checks needed, which Clang could
// not do across the chunk arrays and outputs) and the marker comment that the build's
// vectorization check looks for (quadfire/ops/vectorization.py).
//
// Saved-tensor discipline: forward writes the charged potential H [T, M] (when backward or the
// trace needs it); backward recomputes spikes, surrogate values and U[t-1] = floor(reset(H[t-1]))
// from it, so no other per-step tensor is stored.
#include "kernels.h"

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "neuron.h"

namespace quadfire {
namespace {

// A chunk walks T runs of CHUNK elements per array, M elements apart. Long runs are what a
// memory-bound loop needs: at 256 (1 KiB runs) the hardware prefetchers lost track of the
// 3-4 x T interleaved streams, and T = 32 ran at 45% of copy bandwidth on the AMD EPYC Zen 3 (AVX2, 2 cores)
// (by-hand prefetching recovered only part of it); at 4096 (16 KiB runs, four whole pages)
// the same machine gives ~80% at T = 4 .. 32. The cost: chunk-local arrays take up to
// 17 x 4096 elements of stack per thread (272 KiB float, 544 KiB double; thread stacks are
// MiBs), and a step of fewer than threads x 4096 elements runs on fewer threads.
constexpr int64_t CHUNK = 4096;

// A parameter row as the inner loops read it: one value per element (Col<T, false>, a pointer
// into the chunk's gathered rows) or one value for every element (Col<T, true>, the table has
// a single column: L == 1, no per-channel parameter). The shared form keeps each parameter in
// a register, which saves the inner loops six (forward) to nine (backward) loads per element;
// it is the common case (every non-learnable neuron, and PLIF's per-layer tau).
template <typename T, bool SHARED>
struct Col;
template <typename T>
struct Col<T, false> {
  const T* p;
  static Col of(const T* row) { return {row}; }
  T operator[](int64_t i) const { return p[i]; }
};
template <typename T>
struct Col<T, true> {
  T v;
  static Col of(const T* row) { return {row[0]}; }
  T operator[](int64_t) const { return v; }
};

// One chunk's parameters by name, in table row order (neuron.h Row); wa and wb are the
// surrogate window's constants derived from its width (neuron.h window_consts).
template <typename T, bool SHARED>
struct ParamRows {
  Col<T, SHARED> c0, c1, c2, c3, vth, vr, rest, vmin, wa, wb, off;
};

// The parameter rows of one chunk, gathered from the [ROWS, L] table once per chunk, or, when
// every element shares column 0 (SHARED), once per thread. For backward (SHAPE >= 0) the
// width row becomes the window's constants, so that no division is left in the loop over
// time steps.
template <typename T, bool SHARED>
struct ChunkParams {
  static constexpr int64_t COLS = SHARED ? 1 : CHUNK;
  T v[ROWS + 1][COLS];  // the table's rows, then the window's second constant
  bool loaded = false;  // SHARED: column 0 is in v[.][0], loaded once per thread

  template <int SHAPE = -1>
  ParamRows<T, SHARED> load(const Problem<T>& p, int64_t e0, int64_t n) {
    if (!loaded) {
      const int64_t m = SHARED ? 1 : n;
      for (int64_t i = 0; i < m; ++i) {
        const int64_t col = SHARED ? 0 : ((e0 + i) / p.inner) % p.period;
        for (int r = 0; r < ROWS; ++r) v[r][i] = p.table[r * p.L + col];
      }
      if constexpr (SHAPE >= 0)
        for (int64_t i = 0; i < m; ++i)
          window_consts<T, SHAPE>(v[WIDTH][i], &v[WIDTH][i], &v[ROWS][i]);
      loaded = SHARED;
    }
    using C = Col<T, SHARED>;
    return {C::of(v[C0]),   C::of(v[C1]),    C::of(v[C2]),   C::of(v[C3]),
            C::of(v[VTH]),  C::of(v[VRESET]), C::of(v[REST]), C::of(v[VMIN]),
            C::of(v[WIDTH]), C::of(v[ROWS]),  C::of(v[OFFSET])};
  }
};

// The state element i of the chunk at e0 starts from: the given u0, else the row REST.
template <typename T, bool SHARED>
inline T start_state(const Problem<T>& p, Col<T, SHARED> rest, int64_t e0, int64_t i) {
  return p.u0 ? p.u0[e0 + i] : rest[i];
}

template <typename T, int MODEL, bool SOFT, bool SHARED>
void forward_kernel(const Problem<T>& p, const T* __restrict__ x, T* __restrict__ spikes,
                    T* __restrict__ u_out, T* __restrict__ h_out) {
  const int64_t M = p.M, chunks = (M + CHUNK - 1) / CHUNK;
  const T big = p.big;
#pragma omp parallel
  {
    ChunkParams<T, SHARED> pr;
    T u[CHUNK];
    T h_sink[CHUNK];  // H goes here when nobody needs it
#pragma omp for schedule(static)
    for (int64_t c = 0; c < chunks; ++c) {
      const int64_t e0 = c * CHUNK, n = std::min(CHUNK, M - e0);
      const ParamRows<T, SHARED> rows = pr.load(p, e0, n);
      // named copies, not a structured binding: OpenMP regions cannot capture those
      const auto c0 = rows.c0, c1 = rows.c1, c2 = rows.c2, c3 = rows.c3, vth = rows.vth,
                 vr = rows.vr, rest = rows.rest, vmin = rows.vmin;
      for (int64_t i = 0; i < n; ++i) u[i] = floor_at(start_state(p, rest, e0, i), vmin[i]);
      for (int64_t t = 0; t < p.steps; ++t) {
        const T* __restrict__ xt = x + t * M + e0;
        T* __restrict__ st = spikes + t * M + e0;
        T* __restrict__ ht = h_out ? h_out + t * M + e0 : h_sink;
        #pragma omp simd
        for (int64_t i = 0; i < n; ++i) {  // vectorized
          const T h = Charge<T, MODEL>::h(u[i], xt[i], c0[i], c1[i], c2[i], c3[i]);
          const T hc = finite(h, big);
          const T s = fire(hc - vth[i]);
          u[i] = floor_at(reset<T, SOFT>(hc, s, vth[i], vr[i]), vmin[i]);
          st[i] = s;
          ht[i] = h;
        }
      }
      for (int64_t i = 0; i < n; ++i) u_out[e0 + i] = u[i];
    }
  }
}

// Reverse-time BPTT through charge, clamp, fire, reset and floor (the gradient flows through
// the reset; the clamp of H passes it where H is finite; the floor passes it where U > v_min
// and vmin_tie of it where U == v_min, as torch.clamp does for a float / a tensor bound, also
// for the floored starting state). Parameter gradients accumulate per element over T in
// registers and are written once as [G, M] for the caller to reduce: no atomics.
template <typename T, int MODEL, bool SOFT, bool SHARED, int SHAPE, bool PARAM_GRADS>
void backward_kernel(const Problem<T>& p, const T* gs, const T* gu_final, const T* gh_in,
                     const T* __restrict__ H, T* __restrict__ gx, T* __restrict__ gu0,
                     T* __restrict__ gparams) {
  const int64_t M = p.M, chunks = (M + CHUNK - 1) / CHUNK;
  const T tie = p.vmin_tie, big = p.big;
#pragma omp parallel
  {
    // a thread-local copy: Clang reloads a captured shared value in every iteration, as if
    // the stores could change it, and then leaves the SOFT instantiations unvectorized
    const T rg = p.reset_grad;
    ChunkParams<T, SHARED> pr;
    T gU[CHUNK], uprev[CHUNK], zero[CHUNK], gs_fill[CHUNK];
    T acc[GRAD_ROWS][CHUNK];
    std::fill(zero, zero + CHUNK, T(0));
    // a broadcast gradient of the spikes (GS_SCALAR: one value) is read from a chunk-sized
    // copy, so the inner loop stays the dense one and nothing [T, M] is materialized
    if (gs && p.gs_layout == GS_SCALAR) std::fill(gs_fill, gs_fill + CHUNK, gs[0]);
    const int64_t gs_tstride = p.gs_layout == GS_DENSE ? M : 0;
#pragma omp for schedule(static)
    for (int64_t c = 0; c < chunks; ++c) {
      const int64_t e0 = c * CHUNK, n = std::min(CHUNK, M - e0);
      const ParamRows<T, SHARED> rows = pr.template load<SHAPE>(p, e0, n);
      const auto c0 = rows.c0, c1 = rows.c1, c2 = rows.c2, c3 = rows.c3, vth = rows.vth,
                 vr = rows.vr, rest = rows.rest, vmin = rows.vmin, wa = rows.wa, wb = rows.wb,
                 off = rows.off;
      for (int64_t i = 0; i < n; ++i) gU[i] = gu_final ? gu_final[e0 + i] : T(0);
      if (PARAM_GRADS)
        for (int r = 0; r < GRAD_ROWS; ++r) std::fill(acc[r], acc[r] + n, T(0));
      for (int64_t t = p.steps - 1; t >= 0; --t) {
        if (t > 0) {
          const T* __restrict__ hp = H + (t - 1) * M + e0;
          #pragma omp simd
          for (int64_t i = 0; i < n; ++i) {  // vectorized
            const T hc = finite(hp[i], big);
            const T s = fire(hc - vth[i]);
            uprev[i] = floor_at(reset<T, SOFT>(hc, s, vth[i], vr[i]), vmin[i]);
          }
        } else {
          for (int64_t i = 0; i < n; ++i) uprev[i] = floor_at(start_state(p, rest, e0, i), vmin[i]);
        }
        const T* __restrict__ ht = H + t * M + e0;
        const T* __restrict__ gst =
            !gs ? zero : (p.gs_layout == GS_SCALAR ? gs_fill : gs + t * gs_tstride + e0);
        const T* __restrict__ ght = gh_in ? gh_in + t * M + e0 : zero;
        T* __restrict__ gxt = gx + t * M + e0;
        #pragma omp simd
        for (int64_t i = 0; i < n; ++i) {  // vectorized
          const T h = ht[i];
          const T hc = finite(h, big);
          const T z = hc - vth[i];
          const T s = fire(z);
          const T g = window<T, SHAPE>(z - off[i], wa[i], wb[i]);
          const T gu = gU[i] * floor_pass(reset<T, SOFT>(hc, s, vth[i], vr[i]), vmin[i], tie);
          // rg = 0 detaches the reset's spike; rg = 1 multiplies exactly, changing no bit
          const T dudh = SOFT ? T(1) - rg * (vth[i] * g) : (T(1) - s) + rg * ((vr[i] - hc) * g);
          const T ghc = gst[i] * g + gu * dudh;  // dL/d clamp(H)
          const T gh = (in_range(h, big) ? ghc : T(0)) + ght[i];
          const ChargeGrad<T> cg =
              Charge<T, MODEL>::grad(gh, uprev[i], c0[i], c1[i], c2[i], c3[i]);
          gxt[i] = gh;
          gU[i] = cg.u;
          if (PARAM_GRADS) {
            acc[C0][i] += cg.c0;
            acc[C1][i] += cg.c1;
            acc[C2][i] += cg.c2;
            acc[C3][i] += cg.c3;
            acc[VTH][i] += SOFT ? gu * (rg * (vth[i] * g) - s) - gst[i] * g
                                : gu * (rg * ((hc - vr[i]) * g)) - gst[i] * g;
            if (!SOFT) acc[VRESET][i] += gu * s;
          }
        }
      }
      if (gu0)
        for (int64_t i = 0; i < n; ++i)
          gu0[e0 + i] = gU[i] * floor_pass(start_state(p, rest, e0, i), vmin[i], tie);
      if (PARAM_GRADS) {
        int64_t row = 0;
        for (int r = 0; r < GRAD_ROWS; ++r) {
          if (!(p.rows_mask & (1 << r))) continue;
          std::copy(acc[r], acc[r] + n, gparams + row * M + e0);
          ++row;
        }
      }
    }
  }
}

using Yes = std::true_type;
using No = std::false_type;

}  // namespace

// Calls f(std::integral_constant<int, MODEL>) for the model code p.model: one case per entry
// of neuron.h's QUADFIRE_MODELS, so a new model needs no edit here.
template <typename F>
void by_model(int model, F&& f) {
  switch (model) {
#define QUADFIRE_CASE(id, name) \
  case id:                      \
    f(std::integral_constant<int, id>{}); \
    break;
    QUADFIRE_MODELS(QUADFIRE_CASE)
#undef QUADFIRE_CASE
  }
}

template <typename T>
void fused_forward(const Problem<T>& p, const T* x, T* spikes, T* u_out, T* h_out) {
  by_model(p.model, [&](auto model) {
    constexpr int Q = decltype(model)::value;
    auto run = [&](auto soft) {
      constexpr bool S = decltype(soft)::value;
      if (p.L == 1) forward_kernel<T, Q, S, true>(p, x, spikes, u_out, h_out);
      else forward_kernel<T, Q, S, false>(p, x, spikes, u_out, h_out);
    };
    p.soft ? run(Yes{}) : run(No{});
  });
}

template <typename T>
void fused_backward(const Problem<T>& p, const T* gs, const T* gu, const T* gh, const T* h,
                    T* gx, T* gu0, T* gparams) {
  auto run = [&](auto model, auto soft, auto shape) {
    constexpr int Q = decltype(model)::value, W = decltype(shape)::value;
    constexpr bool S = decltype(soft)::value;
    auto with = [&](auto shared, auto grads) {
      backward_kernel<T, Q, S, decltype(shared)::value, W, decltype(grads)::value>(
          p, gs, gu, gh, h, gx, gu0, gparams);
    };
    if (p.L == 1) p.rows_mask ? with(Yes{}, Yes{}) : with(Yes{}, No{});
    else p.rows_mask ? with(No{}, Yes{}) : with(No{}, No{});
  };
  auto by_shape = [&](auto model, auto soft) {
    switch (p.shape) {
      case RECT: run(model, soft, std::integral_constant<int, RECT>{}); break;
      case TRIANGLE: run(model, soft, std::integral_constant<int, TRIANGLE>{}); break;
      case SIGMOID: run(model, soft, std::integral_constant<int, SIGMOID>{}); break;
      default: run(model, soft, std::integral_constant<int, ATAN>{}); break;
    }
    static_assert(SHAPES == 4, "a new surrogate shape needs its case here");
  };
  by_model(p.model, [&](auto model) { p.soft ? by_shape(model, Yes{}) : by_shape(model, No{}); });
}

// One dtype per translation unit, so the two halves of the (template-heavy) compile run in
// parallel: this file instantiates float, kernels_double.cpp includes it for double.
#ifndef QUADFIRE_KERNEL_T
#define QUADFIRE_KERNEL_T float
#endif
using K = QUADFIRE_KERNEL_T;
template void fused_forward<K>(const Problem<K>&, const K*, K*, K*, K*);
template void fused_backward<K>(const Problem<K>&, const K*, const K*, const K*, const K*, K*, K*,
                                K*);

}  // namespace quadfire
