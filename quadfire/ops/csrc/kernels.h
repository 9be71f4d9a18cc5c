// Torch-free interface of the fused CPU kernels (kernels.cpp); ops.cpp binds them to torch.
// Keeping torch headers out of the kernel translation unit keeps the first-use compile short
// and lets any compiler (cross compilers included) report on its loops.
#pragma once

#include <cstdint>
#include <limits>

namespace quadfire {

// Everything one fused pass needs. Per-step arrays are [steps, M] contiguous; table is
// [ROWS, L] (neuron.h) and element e reads column (e / inner) % period (L == 1: column 0).
template <typename T>
struct Problem {
  int64_t steps = 0, M = 0, L = 1, inner = 1, period = 1;
  int model = 0;        // neuron.h Model
  bool soft = false;
  int gs_layout = 0;    // neuron.h GradLayout of the spikes' gradient (backward)
  T reset_grad = T(1);  // 0: no gradient through the reset's spike (detach_reset; backward)
  int shape = 0;        // surrogate code, neuron.h Shape (backward)
  T vmin_tie = T(0);    // share of the gradient the floor passes where U == v_min (backward)
  int rows_mask = 0;    // parameter rows (bits 0..GRAD_ROWS-1) whose gradient is wanted
  const T* table = nullptr;
  const T* u0 = nullptr;  // [M] starting state; null: start from rest, the table's row U1
  T big = std::numeric_limits<T>::max();  // the clamp of H (neuron.h finite)
};

// x -> spikes, u_out (final state) and, when h_out is not null, the charged potential H.
// The starting state is floored at v_min before the first step.
template <typename T>
void fused_forward(const Problem<T>& p, const T* x, T* spikes, T* u_out, T* h_out);

// Gradients from (grad spikes, grad final state, grad H), any of which may be null, and the
// saved H: gx [steps, M], gu0 [M] (skipped when null) and, for each wanted row in order,
// gparams [G, M].
template <typename T>
void fused_backward(const Problem<T>& p, const T* grad_spikes, const T* grad_state,
                    const T* grad_trace, const T* h, T* gx, T* gu0, T* gparams);

}  // namespace quadfire
