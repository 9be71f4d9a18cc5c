"""Run: python scripts/layer_table.py RECORD.json [RECORD.json ...]

One markdown table from the records of `quadfire analyze run RUN --mismatch --out RECORD.json`
(docs/results.md, "Per-variant layer analysis"): per spiking layer, the share of steps at the
floor, the share of neurons in each regime, H's std and the firing rate (measured / predicted
by the moment rule's i.i.d. model), and the gradient mismatch (cosine) of band, noise, moment
and the best fixed rect width. A record is named TASK-VARIANT-sSEED.json."""
import json
import sys
from pathlib import Path

print("| task, variant | layer | at floor | inhibited / excitable / tonic | H std | firing rate "
      "| cos: band / noise / moment / best rect (ceiling) |")
print("|---|---|---|---|---|---|---|")
for path in sys.argv[1:]:
    record = json.loads(Path(path).read_text())
    task, run = Path(path).stem.split("-", 1)
    for name, layer in record["layers"].items():
        if "predicted" not in layer:  # a LIF layer: no floor, no QIF regimes, no mismatch
            continue
        r, p, m = layer["regimes"], layer["predicted"], record["mismatch"][name]
        cos, best = m["cosine"], m["best"]
        print(f"| {task}, {run} | {name} | {layer['floor_fraction']:.3f} "
              f"| {r.get('inhibited', 0):.2f} / {r.get('excitable', 0):.2f} / "
              f"{r.get('tonic', 0):.2f} | {layer['h_std']:.2f} / {p['h_std']:.2f} "
              f"| {layer['firing_rate']:.3f} / {p['firing_rate']:.3f} "
              f"| {cos['band']:.3f} / {cos['noise']:.3f} / {cos['moment']:.3f} / "
              f"{cos[best]:.3f} {best.split()[1]} ({m['ceiling']:.3f}) |")
