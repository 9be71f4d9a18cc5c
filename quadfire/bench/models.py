"""`quadfire bench models`: one training step of ResNet-19 (forward, backward, SGD step),
quadfire with QIF against the same network built from SpikingJelly 2.0 layers and QIFNode.

Each row runs in its own subprocess, so the two libraries never share an allocator:

- images/s = batch / median wall time of one step, over `--steps` steps after `--warmup`.
- peak memory = the high-water mark of the resident set (VmHWM, reset through
  ``/proc/self/clear_refs`` on Linux) over warm-up and timed steps, minus the resident set
  once the library is loaded and before the model is built: model, gradients, optimizer
  state, saved activations, temporaries and any buffers a library keeps between steps
  (details in `measure`). The child runs with ``MALLOC_MMAP_THRESHOLD_=65536`` so that glibc
  returns large freed tensors to the OS at once instead of caching them, which would make
  RSS lag behind live memory.

The SpikingJelly network mirrors `quadfire.models.resnet19` layer by layer: layer.Conv2d,
layer.ThresholdDependentBatchNorm2d (same alpha, v_th), multi-step QIFNode with tau = 2,
a0 = 0.5, v_c = 0.5, v_rest = v_reset = 0 (the same map H = U + 0.25 U (U - 0.5) + X/2) and
the PiecewiseQuadratic surrogate, which routes QIFNode to SpikingJelly's registered CPU
implementation (its fastest CPU path; other surrogates fall back to autograd on the formula).
"""
from __future__ import annotations

import datetime
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time

import torch
from torch import nn

ROWS = ("quadfire", "spikingjelly")


def build_quadfire(T: int, num_classes: int) -> nn.Module:
    from quadfire.models import create_model
    return create_model("resnet19", neuron="qif", T=T, num_classes=num_classes)


def sj_qif(**kw) -> nn.Module:
    """SpikingJelly's QIFNode configured as quadfire's default QIF (module docstring)."""
    from spikingjelly.activation_based import neuron, surrogate
    return neuron.QIFNode(tau=2.0, a0=0.5, v_c=0.5, v_rest=0.0, v_reset=0.0,
                          surrogate_function=surrogate.PiecewiseQuadratic(alpha=1.0), **kw)


def build_spikingjelly(T: int, num_classes: int) -> nn.Module:
    """ResNet-19 from SpikingJelly layers, matching quadfire.models.resnet19."""
    from spikingjelly.activation_based import functional, layer

    def conv_bn(cin, cout, k, stride, alpha):
        return nn.Sequential(layer.Conv2d(cin, cout, k, stride, k // 2, bias=False),
                             layer.ThresholdDependentBatchNorm2d(alpha, 1.0, cout))

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            r = 1 / math.sqrt(2)
            self.branch = nn.Sequential(conv_bn(cin, cout, 3, stride, 1.0), sj_qif(),
                                        conv_bn(cout, cout, 3, 1, r))
            self.shortcut = (nn.Identity() if stride == 1 and cin == cout
                             else conv_bn(cin, cout, 1, stride, r))
            self.sn = sj_qif()

        def forward(self, x):
            return self.sn(self.branch(x) + self.shortcut(x))

    def stage(cin, cout, n, stride):
        return [Block(cin, cout, stride)] + [Block(cout, cout, 1) for _ in range(n - 1)]

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(
                conv_bn(3, 128, 3, 1, 1.0), sj_qif(),
                *stage(128, 128, 3, 1), *stage(128, 256, 3, 2), *stage(256, 512, 2, 2),
                layer.AdaptiveAvgPool2d(1), layer.Flatten(),
                layer.Linear(512, 256), sj_qif(), layer.Linear(256, num_classes))

        def forward(self, x):
            return self.body(x.unsqueeze(0).repeat(T, 1, 1, 1, 1))

    net = Net()
    functional.set_step_mode(net, "m")
    return net


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not found in /proc/self/status")


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _load_library(row: str) -> None:
    """Run the row's neuron once on a tiny input, so that library code and compiled kernels
    are loaded before the memory baseline is taken."""
    x = torch.rand(2, 1, 4, requires_grad=True)
    if row == "quadfire":
        from quadfire.neurons import QIF
        QIF()(x).sum().backward()
    else:
        sj_qif(step_mode="m")(x).sum().backward()


def _peak_kib() -> int:
    return _rss_kib("VmHWM")


def measure(row: str, T: int, batch: int, size: int, steps: int, warmup: int,
            threads: int) -> dict:
    """Time and measure one configuration in this process (called in the child).

    Memory, from /proc/self/status: `base` is VmRSS once the libraries are loaded; `peak_mib`
    is the high-water mark over warm-up and timed steps minus base (model, gradients,
    optimizer state, saved activations, temporaries and any buffers a library keeps between
    steps); `resident_mib` is what stays resident between steps after warm-up, minus base;
    `peak_step_mib` is the timed steps' high-water mark above that resident set.
    """
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    from quadfire.train.losses import mean_ce
    _load_library(row)
    base = _rss_kib("VmRSS")
    exact = _reset_peak()
    model = build_quadfire(T, 10) if row == "quadfire" else build_spikingjelly(T, 10)
    reset = None
    if row == "spikingjelly":
        from spikingjelly.activation_based import functional
        reset = functional.reset_net
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x, y = torch.rand(batch, 3, size, size), torch.randint(0, 10, (batch,))

    def step():
        opt.zero_grad()
        out = model(x)
        mean_ce(out, y).backward()
        opt.step()
        if reset is not None:
            reset(model)  # SpikingJelly keeps membrane state between calls
        return out

    for _ in range(warmup):
        out = step()
    if out.shape != (T, batch, 10):
        raise RuntimeError(f"{row} ResNet-19 returned {tuple(out.shape)}, expected {(T, batch, 10)}")
    warm_peak = _peak_kib() if exact else 0
    rest = _rss_kib("VmRSS")
    exact = exact and _reset_peak()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    # Without clear_refs (non-Linux or restricted) fall back to the lifetime maximum.
    step_peak = _peak_kib() if exact else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"row": row, "images_per_s": batch / statistics.median(times),
            "step_s_min": min(times), "step_s_median": statistics.median(times),
            "peak_mib": max(0, max(warm_peak, step_peak) - base) / 1024,
            "resident_mib": max(0, rest - base) / 1024,
            # Clamped at 0: a step too small to grow the resident set can even shrink it.
            "peak_step_mib": max(0, step_peak - rest) / 1024,
            "params": sum(p.numel() for p in model.parameters()), "exact_peak": exact}


def run_row(row: str, args) -> dict:
    """Run one row in a fresh interpreter and return its JSON result."""
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")
    cmd = [sys.executable, "-m", "quadfire.cli", "bench", "models", "--child", row, "--T", str(args.T),
           "--batch", str(args.batch), "--size", str(args.size), "--steps", str(args.steps),
           "--warmup", str(args.warmup), "--threads", str(args.threads)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"benchmark row {row!r} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(results: list[dict], args) -> str:
    base = next((r for r in results if r["row"] == "spikingjelly"), None)
    from .diagnostics import cpu_model, kernel_target, vector_isa

    lines = [f"ResNet-19, T={args.T}, batch {args.batch}, {args.size}x{args.size}, one SGD "
             f"training step, CPU ({cpu_model()}, {vector_isa()}, "
             f"{args.threads} threads{kernel_target()}), torch {torch.__version__}, "
             f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
             "",
             "| implementation | images/s | step median / min (s) | peak memory (MiB) "
             "| resident between steps (MiB) | vs SpikingJelly |",
             "|---|---|---|---|---|---|"]
    for r in results:
        rel = ""
        if base is not None and r is not base:
            rel = (f"{r['images_per_s'] / base['images_per_s']:.2f}x speed, "
                   f"{r['peak_mib'] / base['peak_mib']:.2f}x peak memory")
        lines.append(f"| {r['row']} | {r['images_per_s']:.2f} | {r['step_s_median']:.2f} / "
                     f"{r['step_s_min']:.2f} | {r['peak_mib']:.0f} | {r['resident_mib']:.0f} "
                     f"| {rel} |")
    return "\n".join(lines)


def run(args) -> int:
    """The benchmark for the options of `quadfire bench models` (quadfire.cli.bench), or one
    row's child process when ``args.child`` names it."""
    if args.child:
        print(json.dumps(measure(args.child, args.T, args.batch, args.size, args.steps,
                                 args.warmup, args.threads)))
        return 0
    results = [run_row(row, args) for row in args.rows]
    print(table(results, args))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": {k: v for k, v in vars(args).items() if k != "json"},
                       "results": results}, f, indent=2)
    return 0
