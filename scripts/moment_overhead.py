"""Run: python scripts/moment_overhead.py

Per-step cost of the moment rule with learnable per-channel QIF parameters against band:
the digits convnet (channels 32, 64, 128), Adam lr 1e-3, batch 64, T = 4; 5 warm-up steps,
then 40 steps each, the two models interleaved step by step (same load for both)."""
import time, torch
import torch.nn.functional as F
from quadfire.functional.moments import cached_moment_width
from quadfire.models import create_model
torch.set_num_threads(1)
g = torch.Generator().manual_seed(0)
x = torch.randn(64, 1, 8, 8, generator=g); y = torch.randint(0, 10, (64,), generator=g)
runs = {}
for rule in ("band", "moment"):
    torch.manual_seed(0)
    m = create_model("convnet", neuron="qif", T=4,
                     neuron_kwargs={"surrogate": rule, "learnable": "channel"})
    runs[rule] = (m, torch.optim.Adam(m.parameters(), lr=1e-3), [])
for step in range(45):
    for rule, (m, opt, times) in runs.items():
        t = time.perf_counter()
        loss = F.cross_entropy(m(x).mean(0), y)
        opt.zero_grad(); loss.backward(); opt.step()
        if step >= 5:
            times.append(time.perf_counter() - t)
for rule, (_, _, times) in runs.items():
    times.sort()
    print(f"{rule}: median {1e3 * times[len(times) // 2]:.1f} ms/step, "
          f"mean {1e3 * sum(times) / len(times):.1f} ms/step")
print(f"neurons computed by the moment rule over 45 steps: {cached_moment_width.misses}")
