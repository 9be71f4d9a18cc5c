"""A guard against a slow CPU kernel: the fused forward against a copy of the same bytes.

Inference forward reads X [T, M] and writes the spikes [T, M]: the bytes of one
``dst.copy_(x)``. Both run on this thread alone (torch.set_num_threads(1)) and are timed in
thread CPU time, so time the scheduler gives to other processes does not count; they
alternate after a warm-up and the minimum of each is compared.

The arrays are 128 MiB (1M neurons x 32 steps), beyond the last-level cache of the machines
this runs on, so both sides stream from memory. With a cache-resident size (T = 4, 16 MiB) the
copy runs at L3 bandwidth, which one thread of compute cannot match: on an AMD EPYC with
AVX-512, 2 cores (2026-12-02), the correct, vectorized kernel then took 3.1-4.3x the copy and
this guard failed for no fault. At this size the fused forward takes 1.5-2.4x the copy there
(2.4 with two other processes busy on the other core); the same kernels built without vectorization (AVX2 under the
default -ftrapping-math, the regression this guard is for) took 27x on that CPU (and 5.6x, at
T = 4, on the AMD EPYC Zen 3 (AVX2, 2 cores) where the regression was found), so it fails the 3x bound.
"""
from __future__ import annotations

import time

import torch

from quadfire.neurons import QIF
from quadfire.ops import cpu

NEURONS, STEPS, LIMIT = 1 << 20, 32, 3.0


def _min_cpu_times(fns, repeats: int = 15, budget_s: float = 3.0) -> list[float]:
    for fn in fns:  # warm-up: page faults, the output-buffer cache, lazy initialisation
        fn()
        fn()
    best = [float("inf")] * len(fns)
    start = time.perf_counter()
    for i in range(repeats):
        for k, fn in enumerate(fns):
            t0 = time.thread_time()
            fn()
            best[k] = min(best[k], time.thread_time() - t0)
        if i >= 4 and time.perf_counter() - start > budget_s:
            break
    return best


def test_fused_forward_runs_near_copy_speed():
    cpu.require()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        x = torch.randn(STEPS, NEURONS, generator=torch.Generator().manual_seed(0)) * 0.6 + 0.3
        dst = torch.empty_like(x)
        neuron = QIF()

        def fused():
            with torch.no_grad():
                return neuron(x)

        fused_s, copy_s = _min_cpu_times([fused, lambda: dst.copy_(x)])
    finally:
        torch.set_num_threads(threads)
    ratio = fused_s / copy_s
    assert ratio <= LIMIT, (f"the fused forward of {NEURONS} neurons x {STEPS} steps took "
                            f"{fused_s * 1e3:.2f} ms, {ratio:.1f}x a copy of the same bytes "
                            f"({copy_s * 1e3:.2f} ms); see build_info()['vectorization']: "
                            f"{cpu.build_info().get('vectorization')}")
