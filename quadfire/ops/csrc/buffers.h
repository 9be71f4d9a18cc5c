// A small cache of large output buffers for the fused CPU kernels (buffers.cpp).
#pragma once

#include <cstddef>

namespace quadfire {

// A 2 MiB-aligned buffer of at least `bytes` (sizes round to 2 MiB so near sizes share cache
// entries); reuses a cached buffer of the same rounded size when there is one. `*capacity`
// receives the rounded size, to pass back to `release`. Returns nullptr when the allocation
// fails.
void* acquire(size_t bytes, size_t* capacity);

// Return a buffer from `acquire`: kept for reuse when its size came back in a later forward
// pass and the cache is under its limit, freed otherwise.
void release(void* data, size_t capacity);

// Mark the start of a forward pass (ops.cpp): sizes requested in two passes are a loop's.
void new_pass();

// Free every cached buffer; returns the number of bytes released.
size_t empty_cache();

// What the cache holds now and may hold at most (QUADFIRE_CPU_CACHE_MB).
struct CacheInfo {
  size_t buffers, bytes, limit;
};
CacheInfo cache_info();

constexpr size_t HUGE_PAGE = size_t(2) << 20;

}  // namespace quadfire
