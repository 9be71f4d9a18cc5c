"""Run: python scripts/moment_overhead.py [steps] [convnet|csnn]

Per-step cost of the moment rule with learnable per-channel QIF parameters against band:
the digits convnet (8x8 images, channels 32, 64, 128) or the Fashion-MNIST csnn (28x28,
channels 32, 64 and 256 hidden), Adam lr 1e-3, batch 64, T = 4, one thread; 5
warm-up steps, then `steps` (default 200) steps each, the two models interleaved step by step
(same load for both).

Step times scatter by a few percent between two runs of the same code, more than the cost
sought, so the script also times the window itself: everything the neuron does to choose it
(`qif_window`: band's arithmetic; moment's rounding, lookups and the computation of the
channels whose rounded parameters are new), and the share of that spent computing widths. It
reports the first 40 measured steps (parameters move fastest) and the rest."""
import sys, time, torch
import torch.nn.functional as F
import quadfire.functional.windows as windows
import quadfire.neurons.qif as qif
from quadfire.functional.moments import cached_moment_width
from quadfire.models import create_model

steps = int(sys.argv[1]) if len(sys.argv) > 1 else 200
model = sys.argv[2] if len(sys.argv) > 2 else "convnet"
side = {"convnet": 8, "csnn": 28}[model]
torch.set_num_threads(1)
clock = {"window": 0.0, "computing": 0.0}


def timer(slot, fn):
    def timed(*args, **kwargs):
        t = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            clock[slot] += time.perf_counter() - t
    return timed


qif.qif_window = timer("window", windows.qif_window)
windows.cached_moment_width = timer("computing", cached_moment_width)
g = torch.Generator().manual_seed(0)
x = torch.randn(64, 1, side, side, generator=g); y = torch.randint(0, 10, (64,), generator=g)
runs = {}
for rule in ("band", "moment"):
    torch.manual_seed(0)
    m = create_model(model, neuron="qif", T=4,
                     neuron_kwargs={"surrogate": rule, "learnable": "channel"})
    runs[rule] = (m, torch.optim.Adam(m.parameters(), lr=1e-3), [])
for step in range(5 + steps):
    for rule, (m, opt, rows) in runs.items():
        before, t = dict(clock), time.perf_counter()
        loss = F.cross_entropy(m(x).mean(0), y)
        opt.zero_grad(); loss.backward(); opt.step()
        if step >= 5:
            rows.append((time.perf_counter() - t, *(clock[k] - before[k] for k in clock)))


def median(v):
    return sorted(v)[len(v) // 2]


for name, part in (("steps 1-40", slice(0, 40)), (f"steps 41-{steps}", slice(40, None))):
    line = []
    for rule, (_, _, rows) in runs.items():
        step, window, computing = (list(c) for c in zip(*rows[part]))
        line.append(f"{rule} {1e3 * median(step):.1f} ms/step (median), window "
                    f"{1e3 * sum(window) / len(window):.2f} ms/step "
                    f"({sum(window) / sum(step):.1%}; computing widths "
                    f"{1e3 * sum(computing) / len(computing):.2f})")
    print(f"{name}: " + "; ".join(line))
print(f"neurons computed by the moment rule over {5 + steps} steps: {cached_moment_width.misses}")
