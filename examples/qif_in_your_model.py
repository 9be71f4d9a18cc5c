"""QIF neurons in your own PyTorch model and training loop: no quadfire model, recipe or
trainer, only the neuron module.

    python examples/qif_in_your_model.py            # 3 epochs on the bundled digits, ~10 s

A quadfire neuron is an ordinary `nn.Module` over time-major input ``[T, N, ...]``; it starts
from rest on every call, so there is no state to reset between batches. Stateless layers
(Linear, Conv2d) see the T steps folded into the batch by `TimeFold`.
"""
from __future__ import annotations

import argparse

import torch
from torch import nn

from quadfire.data.digits import digits_datasets
from quadfire.layers import TimeFold
from quadfire.neurons import QIF


class TinySNN(nn.Module):
    """64 pixels -> `hidden` QIF neurons -> a linear readout of 10 classes, over T steps of the
    same image (direct encoding). The logits are the readout averaged over time."""

    def __init__(self, hidden: int = 128, T: int = 4):
        super().__init__()
        self.T = T
        self.fc1 = TimeFold(nn.Linear(64, hidden))
        # The paper's parameter set (docs/neuron.md); the surrogate window is derived from it.
        self.qif1 = QIF(a=0.25, u1=0.0, u2=0.5, v_th=1.0)
        self.readout = TimeFold(nn.Linear(hidden, 10))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.flatten(1).expand(self.T, -1, -1)   # [T, N, 64]: the image at every step
        spikes = self.qif1(self.fc1(x))                # [T, N, hidden], 0 or 1
        return self.readout(spikes)                    # [T, N, 10]


def main(argv: list[str] | None = None) -> float:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--hidden", type=int, default=128)
    args = p.parse_args(argv)

    torch.manual_seed(0)
    train, test = digits_datasets()
    model = TinySNN(args.hidden)
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    for epoch in range(args.epochs):
        model.train()
        for x, y in torch.utils.data.DataLoader(train, batch_size=64, shuffle=True):
            # The surrogate window lets the gradient of the loss flow back through the spikes.
            loss = nn.functional.cross_entropy(model(x).mean(0), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            correct = sum((model(x).mean(0).argmax(1) == y).sum().item()
                          for x, y in torch.utils.data.DataLoader(test, batch_size=512))
        accuracy = 100 * correct / len(test)
        print(f"epoch {epoch + 1}: loss {loss.item():.3f}, test accuracy {accuracy:.1f}%")
    return accuracy


if __name__ == "__main__":
    main()
