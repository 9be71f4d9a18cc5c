// Torch binding of the fused CPU kernels as the operators quadfire_cpu::forward / ::backward,
// plus layout() (the interface this library was built with, checked by quadfire/ops/cpu.py
// against quadfire/ops/pack.py at load) and the output-buffer cache controls.
// Only light ATen headers are included (no pybind, no torch/extension.h): they dominate the
// first-use compile time. quadfire/ops/fused.py wraps the operators as torch.library custom
// ops with fake implementations and autograd.
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/from_blob.h>
#include <torch/library.h>

#include <optional>
#include <string>
#include <vector>

#include "buffers.h"
#include "kernels.h"
#include "neuron.h"

namespace quadfire {
namespace {

// The integer settings of each operator, in the order of the int[] that pack.py builds
// (pack.Forward / pack.Backward).
#define QUADFIRE_FORWARD_SETTINGS(X) \
  X(INNER, "inner") X(PERIOD, "period") X(MODEL, "model") X(SOFT, "soft") X(NEED_H, "need_h")
#define QUADFIRE_BACKWARD_SETTINGS(X)                                                     \
  X(INNER, "inner") X(PERIOD, "period") X(MODEL, "model") X(SOFT, "soft") X(SHAPE, "shape") \
  X(ROWS_MASK, "rows_mask") X(VMIN_TIE, "vmin_tie") X(STATE_GRAD, "state_grad")            \
  X(GS_LAYOUT, "gs_layout") X(DETACH_RESET, "detach_reset")
#define QUADFIRE_ENUM(id, name) id,
#define QUADFIRE_NAME(id, name) name ","
namespace fwd {
enum : int { QUADFIRE_FORWARD_SETTINGS(QUADFIRE_ENUM) COUNT };
}
namespace bwd {
enum : int { QUADFIRE_BACKWARD_SETTINGS(QUADFIRE_ENUM) COUNT };
}

// One line per fact, "name: a,b,c" (quadfire/ops/cpu.py parses it).
std::string layout() {
  return std::string("rows: ") + QUADFIRE_ROWS(QUADFIRE_NAME) + "\ngrad_rows: " +
         std::to_string(GRAD_ROWS) + "\nmodels: " + QUADFIRE_MODELS(QUADFIRE_NAME) +
         "\nshapes: " + QUADFIRE_SHAPES(QUADFIRE_NAME) +
         "\ngrad_layouts: " + QUADFIRE_GRAD_LAYOUTS(QUADFIRE_NAME) +
         "\nforward: " + QUADFIRE_FORWARD_SETTINGS(QUADFIRE_NAME) +
         "\nbackward: " + QUADFIRE_BACKWARD_SETTINGS(QUADFIRE_NAME) + "\n";
}

void check_settings(at::IntArrayRef settings, int64_t count, const char* op) {
  TORCH_CHECK(int64_t(settings.size()) == count, "quadfire cpu kernel: ", op, " takes ", count,
              " settings, got ", settings.size(), "; this library's layout is:\n", layout());
}

void check_inputs(const at::Tensor& steps, const std::optional<at::Tensor>& u0,
                  const at::Tensor& table, int64_t inner, int64_t period) {
  TORCH_CHECK(steps.device().is_cpu(), "quadfire cpu kernel: expected CPU tensors, got ",
              steps.device());
  TORCH_CHECK(steps.scalar_type() == at::kFloat || steps.scalar_type() == at::kDouble,
              "quadfire cpu kernel: expected float32 or float64, got ", steps.scalar_type());
  TORCH_CHECK(steps.dim() == 2 && steps.is_contiguous(),
              "quadfire cpu kernel: expected a contiguous [T, M] tensor, got shape ", steps.sizes());
  const int64_t M = steps.size(1);
  if (u0.has_value())
    TORCH_CHECK(u0->device().is_cpu() && u0->numel() == M && u0->is_contiguous() &&
                    u0->scalar_type() == steps.scalar_type(),
                "quadfire cpu kernel: state must be a contiguous CPU tensor of ", M, " ",
                steps.scalar_type(), " elements, got ", u0->sizes(), " ", u0->scalar_type());
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
Problem<T> problem(const at::Tensor& steps, const std::optional<at::Tensor>& u0,
                   const at::Tensor& table, int64_t inner, int64_t period, int64_t model,
                   int64_t soft) {
  TORCH_CHECK(model >= 0 && model < MODELS, "quadfire cpu kernel: neuron model code must be in "
              "[0, ", int(MODELS), "), got ", model);
  Problem<T> p;
  p.steps = steps.size(0);
  p.M = steps.size(1);
  p.L = table.size(1);
  p.inner = inner;
  p.period = period;
  p.model = static_cast<int>(model);
  p.soft = soft != 0;
  p.table = table.data_ptr<T>();
  p.u0 = u0.has_value() ? u0->data_ptr<T>() : nullptr;
  return p;
}

template <typename T>
const T* ptr_or_null(const std::optional<at::Tensor>& t, at::IntArrayRef sizes,
                     at::ScalarType dtype, const char* what) {
  if (!t.has_value() || !t->defined()) return nullptr;
  TORCH_CHECK(t->sizes() == sizes && t->is_contiguous() && t->scalar_type() == dtype &&
                  t->device().is_cpu(),
              "quadfire cpu kernel: ", what, " must be a contiguous CPU ", dtype,
              " tensor of shape ", sizes, ", got ", t->sizes(), " ", t->scalar_type());
  return t->data_ptr<T>();
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> forward(const at::Tensor& x,
                                                       const std::optional<at::Tensor>& u0,
                                                       const at::Tensor& table,
                                                       at::IntArrayRef settings) {
  check_settings(settings, fwd::COUNT, "forward");
  check_inputs(x, u0, table, settings[fwd::INNER], settings[fwd::PERIOD]);
  new_pass();  // for the buffer cache: sizes asked for again in a later pass are a loop's
  const bool need_h = settings[fwd::NEED_H] != 0;
  auto spikes = output(x.sizes(), x.options());
  auto u_out = output({x.size(1)}, x.options());
  auto h = need_h ? output(x.sizes(), x.options()) : at::empty({0}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "quadfire_cpu_forward", [&] {
    const auto p = problem<scalar_t>(x, u0, table, settings[fwd::INNER], settings[fwd::PERIOD],
                                     settings[fwd::MODEL], settings[fwd::SOFT]);
    fused_forward<scalar_t>(p, x.data_ptr<scalar_t>(), spikes.data_ptr<scalar_t>(),
                            u_out.data_ptr<scalar_t>(), need_h ? h.data_ptr<scalar_t>() : nullptr);
  });
  return {spikes, u_out, h};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> backward(
    const std::optional<at::Tensor>& grad_spikes, const std::optional<at::Tensor>& grad_state,
    const std::optional<at::Tensor>& grad_trace, const at::Tensor& h,
    const std::optional<at::Tensor>& u0, const at::Tensor& table, at::IntArrayRef settings) {
  check_settings(settings, bwd::COUNT, "backward");
  check_inputs(h, u0, table, settings[bwd::INNER], settings[bwd::PERIOD]);
  const int64_t shape = settings[bwd::SHAPE], rows_mask = settings[bwd::ROWS_MASK];
  TORCH_CHECK(shape >= 0 && shape < SHAPES, "quadfire cpu kernel: surrogate shape code must be "
              "in [0, ", int(SHAPES), "), got ", shape);
  TORCH_CHECK(rows_mask >= 0 && rows_mask < (1 << GRAD_ROWS),
              "quadfire cpu kernel: gradient row mask must be in [0, ", 1 << GRAD_ROWS, "), got ",
              rows_mask);
  const int64_t gs_layout = settings[bwd::GS_LAYOUT];
  TORCH_CHECK(gs_layout >= 0 && gs_layout < GRAD_LAYOUTS, "quadfire cpu kernel: gradient layout "
              "code must be in [0, ", int(GRAD_LAYOUTS), "), got ", gs_layout);
  const bool state_grad = settings[bwd::STATE_GRAD] != 0;
  TORCH_CHECK(!state_grad || u0.has_value(),
              "quadfire cpu kernel: a state gradient needs the state u0");
  const int64_t M = h.size(1);
  int64_t G = 0;
  for (int r = 0; r < GRAD_ROWS; ++r) G += (rows_mask >> r) & 1;
  auto gx = output(h.sizes(), h.options());
  auto gu0 = state_grad ? output({M}, h.options()) : at::empty({0}, h.options());
  auto gp = at::empty({G, M}, h.options());
  AT_DISPATCH_FLOATING_TYPES(h.scalar_type(), "quadfire_cpu_backward", [&] {
    using T = scalar_t;
    auto p = problem<T>(h, u0, table, settings[bwd::INNER], settings[bwd::PERIOD],
                        settings[bwd::MODEL], settings[bwd::SOFT]);
    p.shape = static_cast<int>(shape);
    p.gs_layout = static_cast<int>(gs_layout);
    p.reset_grad = settings[bwd::DETACH_RESET] ? T(0) : T(1);
    p.vmin_tie = settings[bwd::VMIN_TIE] ? T(0.5) : T(0);
    p.rows_mask = static_cast<int>(rows_mask);
    const std::vector<int64_t> gs_sizes =
        gs_layout == GS_DENSE ? h.sizes().vec()
                              : (gs_layout == GS_ROW ? std::vector<int64_t>{M}
                                                     : std::vector<int64_t>{1});
    fused_backward<T>(p, ptr_or_null<T>(grad_spikes, gs_sizes, h.scalar_type(), "grad of spikes"),
                      ptr_or_null<T>(grad_state, {M}, h.scalar_type(), "grad of state"),
                      ptr_or_null<T>(grad_trace, h.sizes(), h.scalar_type(), "grad of trace"),
                      h.data_ptr<T>(), gx.data_ptr<T>(), state_grad ? gu0.data_ptr<T>() : nullptr,
                      G ? gp.data_ptr<T>() : nullptr);
  });
  return {gx, gu0, gp};
}

}  // namespace
}  // namespace quadfire

TORCH_LIBRARY(quadfire_cpu, m) {
  m.def("layout() -> str", [] { return quadfire::layout(); });
  m.def("empty_cache() -> int", [] { return int64_t(quadfire::empty_cache()); });
  m.def("cache_info() -> int[]", [] {
    const auto info = quadfire::cache_info();
    return std::vector<int64_t>{int64_t(info.buffers), int64_t(info.bytes), int64_t(info.limit)};
  });
  m.def("forward(Tensor x, Tensor? u0, Tensor table, int[] settings) -> (Tensor, Tensor, Tensor)");
  m.def("backward(Tensor? grad_spikes, Tensor? grad_state, Tensor? grad_trace, Tensor h, "
        "Tensor? u0, Tensor table, int[] settings) -> (Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(quadfire_cpu, CPU, m) {
  m.impl("forward", &quadfire::forward);
  m.impl("backward", &quadfire::backward);
}
