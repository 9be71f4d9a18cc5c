"""What the neuron kernels run on, and how fast: the library behind `quadfire info`.

`system_report()` gathers versions, the CPU and its vector ISA, the backend each device gets
and why, the compiled CPU library (path, flags, vectorization check), threads, CUDA devices
and the output-buffer cache. `self_benchmark()` times a fused QIF layer forward+backward
against a copy of the same bytes and against the reference path, in the same process.
"""
from __future__ import annotations

import importlib.util
import math
import os
import platform
import sys
import time
from pathlib import Path

import torch

from ..ops import cpu, gpu

# /proc/cpuinfo flag -> name, strongest first (x86; AArch64 reports "asimd" and "sve")
_ISA = (("avx512f", "AVX-512F"), ("avx2", "AVX2"), ("avx", "AVX"), ("sse4_2", "SSE4.2"),
        ("sve2", "SVE2"), ("sve", "SVE"), ("asimd", "NEON"))


def _cpuinfo() -> dict[str, str]:
    fields: dict[str, str] = {}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return fields
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields


def cpu_model() -> str:
    info = _cpuinfo()
    return (info.get("model name") or info.get("Model") or info.get("Hardware")
            or platform.processor() or platform.machine() or "unknown CPU")


def kernel_target() -> str:
    """For a benchmark header: the target the CPU kernels are built for, where it is not this
    CPU (QUADFIRE_CPU_ARCH); empty otherwise."""
    return "" if cpu.ARCH == "native" else f"; kernels built for {cpu.ARCH} ({cpu.ARCH_ENV})"


def vector_isa() -> str:
    """The widest vector instruction set of this CPU, e.g. "AVX2+FMA", "AVX-512F", "NEON"."""
    info = _cpuinfo()
    flags = set((info.get("flags") or info.get("Features") or "").split())
    for flag, name in _ISA:
        if flag in flags:
            return name + ("+FMA" if name in ("AVX2", "AVX") and "fma" in flags else "")
    machine = platform.machine().lower()
    if machine in ("arm64", "aarch64"):
        return "NEON"  # every AArch64 CPU has it (macOS has no /proc/cpuinfo)
    return "unknown"


def _versions() -> dict:
    from importlib import metadata

    def version(name):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    triton = version("triton") if importlib.util.find_spec("triton") else None
    return {"quadfire": version("quadfire") or "unknown", "torch": torch.__version__,
            "python": platform.python_version(), "triton": triton}


def _backends() -> dict:
    """The backend a CPU tensor and a CUDA tensor get by default, and why."""
    info = cpu.build_info()
    if "error" in info:
        cpu_line = f"reference (the fused C++ kernels could not be built: {info['error'][-300:]})"
    else:
        cpu_line = "fused C++ kernels (built)"
    if not torch.cuda.is_available():
        cuda_line = "no CUDA device"
    elif not gpu.installed():
        cuda_line = "reference (Triton is not installed)"
    else:
        cuda_line = "fused Triton kernels (float32/bfloat16/float16; float64 on the reference)"
    return {"cpu": cpu_line, "cuda": cuda_line}


def system_report() -> dict:
    """Everything `quadfire info` prints, as a JSON-able dict (builds the CPU kernels if they
    are not built yet)."""
    cuda = []
    if torch.cuda.is_available():
        cuda = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    library = cpu.build_info()
    return {
        "versions": _versions(),
        "cpu": {"model": cpu_model(), "isa": vector_isa(), "machine": platform.machine(),
                "cores": os.cpu_count()},
        "backends": _backends(),
        "cpu_library": library,
        "threads": {"torch": torch.get_num_threads(),
                    "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")},
        "cuda_devices": cuda,
        "output_cache": cpu.cache_info(),
        "platform": f"{platform.system()} {platform.release()} ({sys.platform})",
    }


def self_benchmark(seconds: float = 2.0, neurons: int = 1 << 20, steps: int = 4) -> dict:
    """Forward+backward of a QIF layer of `neurons` neurons over `steps` steps (float32, CPU):
    the fused kernels against a same-run copy of the bytes they must move (three [T, N]
    arrays read and written, like `quadfire bench neurons`) and against the reference path.
    Runs alternate after a warm-up; each figure is the minimum wall time over about
    `seconds` in total."""
    from ..neurons import QIF

    if not cpu.available():
        return {"error": cpu.build_info().get("error")}
    gen = torch.Generator().manual_seed(0)
    x = (torch.randn(steps, neurons, generator=gen) * 0.6 + 0.3).requires_grad_()
    grad = torch.randn(steps, neurons, generator=gen)
    srcs = (x.detach(), grad, torch.randn(steps, neurons, generator=gen))
    dsts = [torch.empty_like(s) for s in srcs]
    fused, reference = QIF(), QIF()
    reference.backend = "reference"

    def layer(neuron):
        def run():
            x.grad = None
            neuron(x).backward(grad)
        return run

    def copy():
        for d, s in zip(dsts, srcs):
            d.copy_(s)

    fns = {"fused": layer(fused), "copy": copy, "reference": layer(reference)}
    fns["fused"]()  # warm-up: the output-buffer cache; the reference needs none
    copy()
    best = {k: math.inf for k in fns}
    runs = 0
    start = time.perf_counter()
    while runs < 2 or (time.perf_counter() - start < seconds and runs < 50):
        for k, fn in fns.items():
            if k == "reference" and runs >= 2 and time.perf_counter() - start > seconds / 2:
                continue  # the slow row gets its two runs, the fast ones the rest of the time
            t0 = time.perf_counter()
            fn()
            best[k] = min(best[k], time.perf_counter() - t0)
        runs += 1
    return {"neurons": neurons, "steps": steps, "threads": torch.get_num_threads(),
            "fused_ms": best["fused"] * 1e3, "copy_ms": best["copy"] * 1e3,
            "reference_ms": best["reference"] * 1e3,
            "copy_bandwidth_share": best["copy"] / best["fused"],
            "speedup_vs_reference": best["reference"] / best["fused"], "runs": runs}


def format_report(report: dict, bench: dict | None = None) -> str:
    """The human-readable `quadfire info` text."""
    v, c, lib = report["versions"], report["cpu"], report["cpu_library"]
    lines = [f"quadfire {v['quadfire']}, torch {v['torch']}, Python {v['python']}, "
             f"Triton {v['triton'] or 'not installed'}",
             f"CPU: {c['model']} ({c['isa']}, {c['cores']} cores, {c['machine']})",
             f"backend for CPU tensors: {report['backends']['cpu']}",
             f"backend for CUDA tensors: {report['backends']['cuda']}"]
    if "library" in lib:
        vec = lib["vectorization"]
        verdict = {True: "all hot loops vectorized", False: "NOT vectorized: " + "; ".join(
            f"kernels.cpp:{k}" for k in vec.get("failed", {})), None: vec.get("reason")}
        target = lib.get("target", "native")
        how = f"set by {cpu.ARCH_ENV}" if target != "native" else f"this CPU; {cpu.ARCH_ENV} unset"
        lines += [f"CPU kernel library: {lib['library']}", f"  target: {target} ({how})",
                  f"  flags: {lib['flags']}",
                  f"  vectorization check ({vec.get('compiler')}): {verdict[vec.get('ok')]}"]
    t = report["threads"]
    lines.append(f"threads: torch {t['torch']}, OMP_NUM_THREADS={t['OMP_NUM_THREADS'] or 'unset'}")
    lines.append("CUDA devices: " + (", ".join(report["cuda_devices"]) or "none"))
    cache = report["output_cache"]
    lines.append(f"CPU output-buffer cache: {cache['buffers']} buffers, "
                 f"{cache['bytes'] / 2**20:.0f} MiB held, limit {cache['limit_bytes'] / 2**20:.0f} "
                 f"MiB (QUADFIRE_CPU_CACHE_MB)")
    if bench:
        if "error" in bench:
            lines.append(f"self-benchmark: skipped ({bench['error']})")
        else:
            lines.append(
                f"self-benchmark, QIF layer {bench['neurons']} neurons x T = {bench['steps']}, "
                f"forward+backward, {bench['threads']} thread{'s' * (bench['threads'] != 1)}: "
                f"fused {bench['fused_ms']:.1f} ms "
                f"= {100 * bench['copy_bandwidth_share']:.0f}% of copy bandwidth "
                f"(copy of the same bytes {bench['copy_ms']:.1f} ms), "
                f"{bench['speedup_vs_reference']:.1f}x faster than the reference path "
                f"({bench['reference_ms']:.0f} ms)")
    return "\n".join(lines)
