// Output buffers of the fused CPU kernels.
//
// A fresh [T, M] output is written exactly once, so its first-touch page faults (and the
// kernel's zeroing of every new page) can cost as much as the kernel itself: PyTorch's CPU
// allocator hands large tensors straight to malloc/mmap and back on free, so a training loop
// faults in its activations anew at every step. Like the CUDA caching allocator, this cache
// keeps freed buffers of the exact sizes a training loop requests again (spikes, H, dX) and
// reuses them. (Advising transparent huge pages was tried and dropped: on a 2-core AMD EPYC the first
// huge-page faults of a process cost ~4 s per GB, far more than the 4 KiB faults they save.)
// Only sizes that come back are kept: a buffer is cached on release only if a later forward
// pass (a kernel call, i.e. a neuron layer) asked for its size again, so a process that ran
// one layer keeps nothing, while a training or evaluation loop keeps its own working set from
// its second step on (a ResNet-19 step at batch 8: 224 MiB). The cache is bounded (QUADFIRE_CPU_CACHE_MB; default 1/8 of the
// physical memory, at most 2 GiB: a step of a 4M-neuron layer at T = 32 needs 1.5 GiB) and can
// be emptied (quadfire.ops.cpu.empty_cache(), which also forgets the sizes seen); 
// quadfire.ops.cpu.cache_info() and
// `quadfire info` show what it holds. It holds memory, never numerical state.
#include "buffers.h"

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <mutex>

namespace quadfire {
namespace {

std::mutex lock;
std::multimap<size_t, void*> free_blocks;  // capacity -> buffer
size_t held = 0;

// For each requested size: how many forward passes asked for it, and the last one that did.
struct Seen {
  uint64_t passes = 0, last = 0;
};
std::map<size_t, Seen> seen;
uint64_t pass = 1;
constexpr size_t MAX_SEEN = 1024;  // forget the history rather than grow without bound

size_t limit() {
  static const size_t value = [] {
    if (const char* env = std::getenv("QUADFIRE_CPU_CACHE_MB")) {
      const long long mb = std::atoll(env);
      return size_t(mb > 0 ? mb : 0) << 20;
    }
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    const size_t ram = pages > 0 && page > 0 ? size_t(pages) * size_t(page) : size_t(0);
    return std::min(size_t(2048) << 20, ram / 8);
  }();
  return value;
}

}  // namespace

void new_pass() {
  std::lock_guard<std::mutex> guard(lock);
  ++pass;
}

void* acquire(size_t bytes, size_t* capacity) {
  const size_t rounded = (bytes + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
  *capacity = rounded;
  {
    std::lock_guard<std::mutex> guard(lock);
    if (seen.size() >= MAX_SEEN && !seen.count(rounded)) seen.clear();
    Seen& e = seen[rounded];
    if (e.last != pass) {
      ++e.passes;
      e.last = pass;
    }
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
    auto e = seen.find(capacity);
    if (e != seen.end() && e->second.passes >= 2 && held + capacity <= limit()) {
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
  seen.clear();  // and forget which sizes came back: what follows starts like a new process
  return released;
}

CacheInfo cache_info() {
  std::lock_guard<std::mutex> guard(lock);
  return {free_blocks.size(), held, limit()};
}

}  // namespace quadfire
