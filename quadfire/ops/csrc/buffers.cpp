// Output buffers of the fused CPU kernels.
//
// A fresh [T, M] output is written exactly once, so its first-touch page faults (and the
// kernel's zeroing of every new page) can cost as much as the kernel itself: PyTorch's CPU
// allocator hands large tensors straight to malloc/mmap and back on free, so a training loop
// faults in its activations anew at every step. Like the CUDA caching allocator, this cache
// keeps freed buffers of the exact sizes a training loop requests again (spikes, H, dX) and
// reuses them. (Advising transparent huge pages was tried and dropped: on the test VM the first
// huge-page faults of a process cost ~4 s per GB, far more than the 4 KiB faults they save.)
// The cache is bounded (QUADFIRE_CPU_CACHE_MB, default DEFAULT_MB) and can be emptied
// (quadfire.ops.cpu.empty_cache()); it holds memory, never numerical state, and
// quadfire.ops.cpu.cache_info() (and `quadfire info`) shows what it holds.
#include "buffers.h"

#include <cstdlib>
#include <map>
#include <mutex>

namespace quadfire {
namespace {

std::mutex lock;
std::multimap<size_t, void*> free_blocks;  // capacity -> buffer
size_t held = 0;

// 256 MiB: a layer's spikes, H and dX up to 1M neurons x T = 16 or 4M neurons x T = 4, or a
// whole ResNet-19 training step at batch 8, T = 4 (224 MiB between steps), come back without
// page faults, yet a process that ran a neuron layer once keeps no more than that behind its
// back. Bigger batches, layers or T need a step's worth of outputs (QUADFIRE_CPU_CACHE_MB);
// without it they pay first-touch faults that cost about as much as the kernels.
constexpr long long DEFAULT_MB = 256;

size_t limit() {
  static const size_t value = [] {
    const char* env = std::getenv("QUADFIRE_CPU_CACHE_MB");
    const long long mb = env ? std::atoll(env) : DEFAULT_MB;
    return size_t(mb > 0 ? mb : 0) << 20;
  }();
  return value;
}

}  // namespace

void* acquire(size_t bytes, size_t* capacity) {
  const size_t rounded = (bytes + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
  *capacity = rounded;
  {
    std::lock_guard<std::mutex> guard(lock);
    auto it = free_blocks.find(rounded);
    if (it != free_blocks.end()) {
      void* data = it->second;
      free_blocks.erase(it);
      held -= rounded;
      return data;
    }
  }
  return std::aligned_alloc(HUGE_PAGE, rounded);
}

void release(void* data, size_t capacity) {
  {
    std::lock_guard<std::mutex> guard(lock);
    if (held + capacity <= limit()) {
      free_blocks.emplace(capacity, data);
      held += capacity;
      return;
    }
  }
  std::free(data);
}

size_t empty_cache() {
  std::lock_guard<std::mutex> guard(lock);
  const size_t released = held;
  for (auto& [size, data] : free_blocks) std::free(data);
  free_blocks.clear();
  held = 0;
  return released;
}

CacheInfo cache_info() {
  std::lock_guard<std::mutex> guard(lock);
  return {free_blocks.size(), held, limit()};
}

}  // namespace quadfire
