"""Train a small LIF network in quadfire, export it to NIR, and run the file in Norse and in
snnTorch: both give quadfire's spikes, step for step.

    python examples/nir_to_other_simulators.py          # needs norse and snntorch installed

Each tool reads NIR with conventions of its own (docs/export.md, "Other simulators"):
- Norse ignores a LIF node's input gain r, so export with ``unit_r=True`` (r = 1, the gain
  moved into the weights before each neuron) and give Norse the export's dt;
- snnTorch assumes dt = 1e-4 whatever the file says, so export at ``dt=1e-4``.
"""
from __future__ import annotations

import argparse

import torch
from torch import nn

from quadfire.data.digits import digits_datasets
from quadfire.export import from_nir, to_nir
from quadfire.layers import TimeFold
from quadfire.neurons import LIF

T = 4


def train(epochs: int, hidden: int) -> nn.Sequential:
    """64 pixels -> hidden LIF -> 10 LIF; the class is the output neuron that fires most."""
    torch.manual_seed(0)
    net = nn.Sequential(TimeFold(nn.Linear(64, hidden)), LIF(tau=2.0),
                        TimeFold(nn.Linear(hidden, 10)), LIF(tau=2.0))
    opt = torch.optim.Adam(net.parameters(), lr=5e-3)
    train_set, _ = digits_datasets()
    for _ in range(epochs):
        for x, y in torch.utils.data.DataLoader(train_set, batch_size=64, shuffle=True):
            spikes = net(x.flatten(1).expand(T, -1, -1))
            loss = nn.functional.cross_entropy(spikes.mean(0) * 5, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net.eval()


def run_norse(graph, frames: torch.Tensor) -> torch.Tensor:
    import norse.torch as norse

    module, state, out = norse.from_nir(graph, dt=1.0), None, []
    for x in frames.unbind(0):  # NIR describes one step: the time loop is ours
        y, state = module(x, state)
        out.append(y)
    return torch.stack(out)


def run_snntorch(graph, frames: torch.Tensor) -> torch.Tensor:
    from snntorch.import_nir import import_from_nir

    module = import_from_nir(graph)  # neurons keep their state inside (init_hidden)
    out = [module(x) for x in frames.unbind(0)]
    return torch.stack([y[0] if isinstance(y, tuple) else y for y in out])


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--hidden", type=int, default=64)
    args = p.parse_args(argv)

    net = train(args.epochs, args.hidden)
    _, test = digits_datasets()
    images, labels = test.samples, test.labels  # the whole test set as one batch
    frames = images.flatten(1).expand(T, -1, -1)  # [T, N, 64]: the image at every step
    results = {}
    with torch.no_grad():
        ours = net(frames)
        runs = {"quadfire (from_nir)": from_nir(to_nir(net, (64,)))(frames),
                "Norse": run_norse(to_nir(net, (64,), dt=1.0, unit_r=True), frames),
                "snnTorch": run_snntorch(to_nir(net, (64,), dt=1e-4), frames)}
    accuracy = (ours.sum(0).argmax(1) == labels).float().mean().item() * 100
    print(f"quadfire: test accuracy {accuracy:.1f}%, {int(ours.sum())} output spikes")
    for tool, spikes in runs.items():
        same = torch.equal(spikes, ours)
        results[tool] = same
        print(f"{tool}: {'the same spikes' if same else 'DIFFERENT spikes'} "
              f"({int((spikes != ours).sum())} of {ours.numel()} differ)")
    return {"accuracy": accuracy, "same": results}


if __name__ == "__main__":
    main()
