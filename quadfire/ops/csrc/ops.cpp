// Torch binding of the fused CPU kernels as the operators quadfire_cpu::forward / ::backward.
// Only light ATen headers are included (no pybind, no torch/extension.h): they dominate the
// first-use compile time. quadfire/ops/cpu.py wraps these operators as torch.library custom ops
// with fake implementations and autograd.
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/from_blob.h>
#include <torch/library.h>

#include <optional>
#include <vector>

#include "buffers.h"
#include "kernels.h"
#include "neuron.h"

namespace quadfire {
namespace {

void check_inputs(const at::Tensor& steps, const at::Tensor& u0, const at::Tensor& table,
                  int64_t inner, int64_t period) {
  TORCH_CHECK(steps.device().is_cpu(), "quadfire cpu kernel: expected CPU tensors, got ",
              steps.device());
  TORCH_CHECK(steps.scalar_type() == at::kFloat || steps.scalar_type() == at::kDouble,
              "quadfire cpu kernel: expected float32 or float64, got ", steps.scalar_type());
  TORCH_CHECK(steps.dim() == 2 && steps.is_contiguous(),
              "quadfire cpu kernel: expected a contiguous [T, M] tensor, got shape ", steps.sizes());
  const int64_t M = steps.size(1);
  TORCH_CHECK(u0.device().is_cpu() && u0.numel() == M && u0.is_contiguous() &&
                  u0.scalar_type() == steps.scalar_type(),
              "quadfire cpu kernel: state must be a contiguous CPU tensor of ", M, " ",
              steps.scalar_type(), " elements, got ", u0.sizes(), " ", u0.scalar_type());
  TORCH_CHECK(table.device().is_cpu() && table.dim() == 2 && table.size(0) == ROWS &&
                  table.is_contiguous() && table.scalar_type() == steps.scalar_type(),
              "quadfire cpu kernel: parameter table must be a contiguous CPU [", ROWS, ", L] ",
              steps.scalar_type(), " tensor, got ", table.sizes(), " ", table.scalar_type());
  TORCH_CHECK(inner >= 1 && period >= 1 && (table.size(1) == 1 || table.size(1) == period),
              "quadfire cpu kernel: bad parameter mapping inner=", inner, " period=", period,
              " for a table of ", table.size(1), " columns");
}

// Outputs of 8 MiB and more come from the buffer cache (buffers.cpp explains why).
at::Tensor output(at::IntArrayRef sizes, const at::TensorOptions& options) {
  int64_t numel = 1;
  for (auto n : sizes) numel *= n;
  const size_t nbytes = size_t(numel) * options.dtype().itemsize();
  if (nbytes < 4 * HUGE_PAGE) return at::empty(sizes, options);
  size_t capacity = 0;
  void* data = acquire(nbytes, &capacity);
  if (data == nullptr) return at::empty(sizes, options);
  return at::from_blob(data, sizes, [capacity](void* p) { release(p, capacity); }, options);
}

template <typename T>
Problem<T> problem(const at::Tensor& steps, const at::Tensor& u0, const at::Tensor& table,
                   int64_t inner, int64_t period, bool qif, bool soft) {
  Problem<T> p;
  p.steps = steps.size(0);
  p.M = steps.size(1);
  p.L = table.size(1);
  p.inner = inner;
  p.period = period;
  p.qif = qif;
  p.soft = soft;
  p.table = table.data_ptr<T>();
  p.u0 = u0.data_ptr<T>();
  return p;
}

template <typename T>
const T* ptr_or_null(const std::optional<at::Tensor>& t, const at::Tensor& like, const char* what) {
  if (!t.has_value() || !t->defined()) return nullptr;
  TORCH_CHECK(t->sizes() == like.sizes() && t->is_contiguous() &&
                  t->scalar_type() == like.scalar_type() && t->device().is_cpu(),
              "quadfire cpu kernel: ", what, " must be a contiguous CPU ", like.scalar_type(),
              " tensor of shape ", like.sizes(), ", got ", t->sizes(), " ", t->scalar_type());
  return t->data_ptr<T>();
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> forward(const at::Tensor& x, const at::Tensor& u0,
                                                       const at::Tensor& table, int64_t inner,
                                                       int64_t period, bool qif, bool soft,
                                                       bool need_h) {
  check_inputs(x, u0, table, inner, period);
  auto spikes = output(x.sizes(), x.options());
  auto u_out = output({x.size(1)}, x.options());
  auto h = need_h ? output(x.sizes(), x.options()) : at::empty({0}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "quadfire_cpu_forward", [&] {
    const auto p = problem<scalar_t>(x, u0, table, inner, period, qif, soft);
    fused_forward<scalar_t>(p, x.data_ptr<scalar_t>(), spikes.data_ptr<scalar_t>(),
                            u_out.data_ptr<scalar_t>(), need_h ? h.data_ptr<scalar_t>() : nullptr);
  });
  return {spikes, u_out, h};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> backward(
    const std::optional<at::Tensor>& grad_spikes, const std::optional<at::Tensor>& grad_state,
    const std::optional<at::Tensor>& grad_trace, const at::Tensor& h, const at::Tensor& u0,
    const at::Tensor& table, int64_t inner, int64_t period, bool qif, bool soft, int64_t shape,
    double vmin_eq, int64_t rows_mask, bool need_state_grad) {
  check_inputs(h, u0, table, inner, period);
  TORCH_CHECK(shape >= RECT && shape <= ATAN,
              "quadfire cpu kernel: surrogate shape code must be 0..3, got ", shape);
  TORCH_CHECK(rows_mask >= 0 && rows_mask < (1 << GRAD_ROWS),
              "quadfire cpu kernel: gradient row mask must be in [0, ", 1 << GRAD_ROWS, "), got ",
              rows_mask);
  const int64_t M = h.size(1);
  int64_t G = 0;
  for (int r = 0; r < GRAD_ROWS; ++r) G += (rows_mask >> r) & 1;
  auto gx = output(h.sizes(), h.options());
  auto gu0 = need_state_grad ? output({M}, h.options()) : at::empty({0}, h.options());
  auto gp = at::empty({G, M}, h.options());
  AT_DISPATCH_FLOATING_TYPES(h.scalar_type(), "quadfire_cpu_backward", [&] {
    using T = scalar_t;
    auto p = problem<T>(h, u0, table, inner, period, qif, soft);
    p.shape = static_cast<int>(shape);
    p.vmin_eq = static_cast<T>(vmin_eq);
    p.rows_mask = static_cast<int>(rows_mask);
    const at::Tensor state_like = u0.view({M});
    fused_backward<T>(p, ptr_or_null<T>(grad_spikes, h, "grad of spikes"),
                      ptr_or_null<T>(grad_state, state_like, "grad of state"),
                      ptr_or_null<T>(grad_trace, h, "grad of trace"), h.data_ptr<T>(),
                      gx.data_ptr<T>(), need_state_grad ? gu0.data_ptr<T>() : nullptr,
                      G ? gp.data_ptr<T>() : nullptr);
  });
  return {gx, gu0, gp};
}

}  // namespace
}  // namespace quadfire

TORCH_LIBRARY(quadfire_cpu, m) {
  m.def("empty_cache() -> int", [] { return int64_t(quadfire::empty_cache()); });
  m.def("cached_bytes() -> int", [] { return int64_t(quadfire::cached_bytes()); });
  m.def("forward(Tensor x, Tensor u0, Tensor table, int inner, int period, bool qif, bool soft, "
        "bool need_h) -> (Tensor, Tensor, Tensor)");
  m.def("backward(Tensor? grad_spikes, Tensor? grad_state, Tensor? grad_trace, Tensor h, "
        "Tensor u0, Tensor table, int inner, int period, bool qif, bool soft, int shape, "
        "float vmin_eq, int rows_mask, bool need_state_grad) -> (Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(quadfire_cpu, CPU, m) {
  m.impl("forward", &quadfire::forward);
  m.impl("backward", &quadfire::backward);
}
