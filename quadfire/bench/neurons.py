"""`quadfire bench neurons`: forward+backward time and peak memory of one spiking layer.

Each row runs a multi-step layer of about 4M neurons (float32, time-major [T, M]) forward and
backward for T in {4, 8, 32}: quadfire's reference loop and fused kernels (QIF in the Euler,
exact-flow and hybrid discretizations, LIF, and the Euler QIF under a ``spikes.sum()`` loss,
whose broadcast gradient must cost no more than a dense one), SpikingJelly 2.0
QIFNode and LIFNode (multi-step, the library's own default dispatch on that device),
snnTorch Leaky (stepped in a Python loop, its API) and Norse LIF, plus a bandwidth yardstick:
copies (`copy_` into preallocated buffers) of the bytes the fused kernels must move, 3 [T, M]
arrays read and 3 written (forward reads X, writes S and H; backward reads dS and H, writes dX).

Every (row, T) runs in a fresh subprocess, so a peer's caches or a crash cannot leak into the
next row and peak memory is per row: CPU peak is the resident-set high-water mark above the
pre-run level (Linux /proc), CUDA peak is torch.cuda.max_memory_allocated. Time is the minimum
over the repeats, and every row gets at least `MIN_RUNS` of them whatever the budget: the
first runs of every library pay for fresh output buffers (first-touch page faults), and
quadfire's output-buffer cache keeps a size only once a second pass asks for it, so the
third run is the first in steady state, as every step of a training loop after the second is.
Peers that are not installed are reported as such (pip install '.[bench]').
"""
from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import time

ROWS = ("copy", "quadfire-reference", "quadfire-fused", "quadfire-fused-exact",
        "quadfire-fused-hybrid", "quadfire-fused-lif", "quadfire-fused-sum", "sj-qif", "sj-lif",
        "snntorch-leaky", "norse-lif")
LABELS = {
    "copy": "tensor copy (same bytes)", "quadfire-reference": "quadfire QIF reference",
    "quadfire-fused": "quadfire QIF fused", "quadfire-fused-exact": "quadfire exact QIF fused",
    "quadfire-fused-hybrid": "quadfire hybrid QIF fused",
    "quadfire-fused-lif": "quadfire LIF fused",
    "quadfire-fused-sum": "quadfire QIF fused, loss spikes.sum()",
    "sj-qif": "SpikingJelly QIFNode", "sj-lif": "SpikingJelly LIFNode",
    "snntorch-leaky": "snnTorch Leaky", "norse-lif": "Norse LIF",
}
PEERS = {"sj-qif": "spikingjelly", "sj-lif": "spikingjelly", "snntorch-leaky": "snntorch",
         "norse-lif": "norse"}


def _layer(row: str, device: str):
    """A function x [T, M] -> spikes [T, M] with autograd, for one row."""
    import torch

    if row.startswith("quadfire"):
        from quadfire.neurons import LIF, QIF

        disc = {"quadfire-fused-exact": "exact", "quadfire-fused-hybrid": "hybrid"}.get(row, "euler")
        neuron = LIF() if row.endswith("lif") else QIF(discretization=disc)
        neuron.backend = "reference" if row == "quadfire-reference" else None
        return neuron
    if row.startswith("sj"):
        from spikingjelly.activation_based import functional, neuron

        node = (neuron.QIFNode if row == "sj-qif" else neuron.LIFNode)(step_mode="m").to(device)

        def run(x):
            functional.reset_net(node)
            return node(x)
        return run
    if row == "snntorch-leaky":
        import snntorch

        leaky = snntorch.Leaky(beta=0.5, init_hidden=False).to(device)

        def run(x):
            mem = torch.zeros_like(x[0])
            spikes = []
            for xt in x.unbind(0):
                spk, mem = leaky(xt, mem)
                spikes.append(spk)
            return torch.stack(spikes)
        return run
    if row == "norse-lif":
        import norse.torch as norse

        lif = norse.LIF().to(device)
        return lambda x: lif(x)[0]
    raise ValueError(f"unknown row {row!r}; expected one of {ROWS}")


def machine_line(device: str) -> str:
    """The CPU model and vector ISA, and the GPU on CUDA, for a benchmark's header."""
    import torch

    from .diagnostics import cpu_model, kernel_target, vector_isa

    line = f"CPU: {cpu_model()} ({vector_isa()}, {os.cpu_count()} cores){kernel_target()}"
    if device == "cuda" and torch.cuda.is_available():
        line += f"; GPU: {torch.cuda.get_device_name()}"
    return line


def _cache_mb(args) -> int:
    if args.cache_mb is not None:
        return args.cache_mb
    from ..ops import cpu

    return cpu.cache_info()["limit_bytes"] >> 20


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _hwm_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _reset_hwm() -> bool:
    try:  # "5" resets the resident-set high-water mark (Linux >= 4.0)
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


MIN_RUNS = 3  # timed runs every row gets (see the module docstring)


def worker(row: str, steps: int, neurons: int, repeats: int, device: str, budget: float) -> dict:
    """Time and peak memory of one row in this process; returns a JSON-able dict."""
    import torch

    torch.manual_seed(0)
    x = (torch.randn(steps, neurons, device=device) * 0.6 + 0.3).requires_grad_()
    grad = torch.randn(steps, neurons, device=device)
    if row == "copy":
        srcs = (x.detach(), grad, torch.randn(steps, neurons, device=device))
        dsts = [torch.empty_like(s) for s in srcs]

        def once():
            return [d.copy_(s) for d, s in zip(dsts, srcs)]
    else:
        layer = _layer(row, device)

        def once(x=x, grad=grad):
            x.grad = None
            out = layer(x)
            # the -sum row: the loss most quick scripts use, whose gradient is one broadcast 1
            out.sum().backward() if row.endswith("-sum") else out.backward(grad)
            return out
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    # warm-up (lazy builds, kernel compiles): at full size on CUDA, where it is cheap, on a
    # slice on CPU, where a slow row would otherwise pay a whole extra run
    small = x if device == "cuda" else x.detach()[:, :4096].clone().requires_grad_()
    once(small, grad[:, :small.shape[1]]) if row != "copy" else once()
    sync()
    gc.collect()
    if device == "cuda":
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    else:
        exact = _reset_hwm()
        base = _rss_bytes()
    start = time.perf_counter()
    result = once()
    sync()
    times = [time.perf_counter() - start]
    if device == "cuda":
        peak = torch.cuda.max_memory_allocated() - base
    else:
        peak = _hwm_bytes() - base if exact else float("nan")
    del result
    while len(times) < repeats and (len(times) < MIN_RUNS or sum(times) < budget):
        start = time.perf_counter()
        once()
        sync()
        times.append(time.perf_counter() - start)
    return {"row": row, "steps": steps, "time_s": min(times), "runs": len(times), "times_s": times,
            "peak_bytes": peak}


def _run_row(row: str, steps: int, args) -> dict:
    peer = PEERS.get(row)
    if peer:
        import importlib.util

        if importlib.util.find_spec(peer) is None:
            return {"row": row, "steps": steps, "error": f"{peer} not installed "
                                                         f"(pip install '.[bench]')"}
    cmd = [sys.executable, "-m", "quadfire.cli", "bench", "neurons", "--worker", row, "--steps", str(steps),
           "--neurons", str(args.neurons), "--repeats", str(args.repeats), "--device", args.device,
           "--budget", str(args.budget)]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    if args.cache_mb is not None:
        env["QUADFIRE_CPU_CACHE_MB"] = str(args.cache_mb)
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {"row": row, "steps": steps, "error": f"timed out after {args.timeout} s"}
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
    if r.returncode != 0 or not lines:
        tail = (r.stderr.strip().splitlines() or ["no output"])[-1]
        return {"row": row, "steps": steps, "error": f"failed: {tail[:160]}"}
    return json.loads(lines[-1])


def fastest_rounds(runs: list[dict]) -> list[dict]:
    """One result per (T, row) in first-seen order: its fastest round (an error only when every
    round failed), with every round's time under "round_times_s"."""
    best: dict[tuple, dict] = {}
    for r in runs:
        key = (r["steps"], r["row"])
        kept = best.get(key)
        if kept is None or ("time_s" in r and ("time_s" not in kept
                                                or r["time_s"] < kept["time_s"])):
            best[key] = dict(r)
    for key, r in best.items():
        if "time_s" in r:
            r["round_times_s"] = [x["time_s"] for x in runs
                                  if (x["steps"], x["row"]) == key and "time_s" in x]
    return list(best.values())


def table(results: list[dict], neurons: int) -> str:
    """Markdown table: time, ratio to quadfire fused QIF, peak memory, effective bandwidth."""
    lines = ["| T | row | fwd+bwd ms | x fused QIF | peak MB | GB/s (fused bytes) |",
             "|---|---|---|---|---|---|"]
    for steps in sorted({r["steps"] for r in results}):
        rows = [r for r in results if r["steps"] == steps]
        fused = next((r for r in rows if r["row"] == "quadfire-fused" and "time_s" in r), None)
        moved = 6 * steps * neurons * 4  # bytes the fused kernels must move, float32
        for r in rows:
            if "error" in r:
                lines.append(f"| {steps} | {LABELS[r['row']]} | {r['error']} | | | |")
                continue
            ratio = f"{r['time_s'] / fused['time_s']:.2f}" if fused else "-"
            bw = f"{moved / r['time_s'] / 1e9:.2f}" if r["row"] == "copy" or \
                r["row"].startswith("quadfire-fused") else ""
            peak = r["peak_bytes"] / 2**20
            lines.append(f"| {steps} | {LABELS[r['row']]} | {r['time_s'] * 1e3:.1f} | {ratio} | "
                         f"{peak:.0f} | {bw} |")
    return "\n".join(lines)


MAX_ELEMENTS = 1 << 31  # T x neurons of one [T, M] array: int32 indexing, and memory


def run(args) -> int:
    """The benchmark for the options of `quadfire bench neurons` (quadfire.cli.bench), or one
    row's worker when ``args.worker`` names it."""
    if args.device is None:
        import torch

        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.worker:
        import torch

        torch.set_num_threads(args.threads)
        print(json.dumps(worker(args.worker, args.steps[0], args.neurons, args.repeats,
                                args.device, args.budget)))
        return 0
    runs = []
    start = time.perf_counter()
    for _ in range(args.rounds):
        for steps in args.steps:
            for row in args.rows:
                runs.append(_run_row(row, steps, args))
                print(f"T={steps} {LABELS[row]}: " + (runs[-1].get("error") or
                      f"{runs[-1]['time_s'] * 1e3:.1f} ms"), file=sys.stderr, flush=True)
    results = fastest_rounds(runs)
    rounds = f", fastest of {args.rounds} interleaved rounds" if args.rounds > 1 else ""
    print(f"# quadfire bench neurons: {args.neurons} neurons, float32, {args.device}, "
          f"{args.threads} threads, {time.strftime('%Y-%m-%d')}, "
          f"{time.perf_counter() - start:.0f} s{rounds}")
    print(f"# {machine_line(args.device)}; CPU output-buffer cache limit {_cache_mb(args)} MiB")
    print(table(results, args.neurons))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "results": results}, f, indent=1)
    return 0
