"""Your own neuron model, in Python alone: an adaptive LIF (ALIF) through quadfire's neuron
protocol, trained on the bundled digits and measured like any built-in neuron.

    python examples/custom_neuron.py            # trains 2 epochs, prints accuracy and energy

A neuron model is two small classes (docs/neuron.md, "Your own neuron"):
- its parameters, a frozen dataclass deriving from `NeuronParams` that holds the equations
  (here `step`, because ALIF carries an adaptation variable besides the membrane) and declares
  the arithmetic of one update (`ops`, for the energy estimate);
- its module, a `MultiStepNeuron` whose `params()` returns them.
With no kernel code it runs on the reference backend everywhere: training, `quadfire eval`,
firing rates, SOPs and energy, studies. Registered by name, recipes and ``--set neuron=alif``
reach it; from the command line use its import path, ``--set neuron=custom_neuron:ALIF`` with
this folder on PYTHONPATH.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from quadfire.functional import NeuronParams, Ops, Window, spike
from quadfire.neurons import MultiStepNeuron, register_neuron


@dataclass(frozen=True)
class ALIFParams(NeuronParams):
    """Adaptive LIF with a threshold that rises after each spike and relaxes back:

        H[t] = U[t-1] - k U[t-1] + X[t]
        S[t] = Heaviside(H[t] - (v_th + beta B[t-1]))
        U[t] = H[t] (1 - S[t]) + v_reset S[t]
        B[t] = rho B[t-1] + (1 - rho) S[t]

    State: (U, B), both 0 at rest. k = 1/tau is the leak, rho the adaptation's decay per step
    and beta its strength.
    """

    k: float = 0.5
    rho: float = 0.9
    beta: float = 0.5
    v_th: float = 1.0
    v_reset: float = 0.0
    soft: bool = False
    window: Window = Window("triangle", 1.0)

    kind = "ALIF"
    state_vars = 2  # (U, B): a tuple of tensors

    def initial_state(self, shape, dtype, device):
        u = torch.zeros(shape, dtype=dtype, device=device)
        return u, torch.zeros_like(u)

    def start(self, state):
        return state  # no floor

    def step(self, x, state):
        u, b = state
        h = u - self.k * u + x
        s = spike(h - (self.v_th + self.beta * b), self.window)
        u = h * (1 - s) + self.v_reset * s
        b = self.rho * b + (1 - self.rho) * s
        return s, (u, b), h

    def ops(self) -> Ops:
        # U (1 - k) + X, v_th + beta B, rho B (+ the spike's share, a select on a binary S)
        return Ops(mults=3, adds=3)

    def summary(self) -> dict:
        return {"k": self.k, "rho": self.rho, "beta": self.beta, "v_th": self.v_th}


class ALIF(MultiStepNeuron):
    """The ALIF module over time-major ``[T, N, ...]`` input; starts from rest on every call."""

    def __init__(self, tau: float = 2.0, rho: float = 0.9, beta: float = 0.5, v_th: float = 1.0):
        super().__init__()
        if not (tau >= 1 and 0 <= rho < 1 and beta >= 0 and math.isfinite(v_th) and v_th > 0):
            raise ValueError(f"ALIF needs tau >= 1, 0 <= rho < 1, beta >= 0 and v_th > 0; got "
                             f"tau={tau!r}, rho={rho!r}, beta={beta!r}, v_th={v_th!r}")
        self.tau, self.rho, self.beta, self.v_th = tau, rho, beta, v_th

    def params(self, ndim_step: int = 2) -> ALIFParams:
        return ALIFParams(1 / self.tau, self.rho, self.beta, self.v_th)


register_neuron("alif", ALIF)


def main(epochs: int = 2) -> dict:
    """Train the digits `convnet` with ALIF neurons, then measure it as `quadfire eval` does."""
    from quadfire.analysis.monitor import format_measure, measure
    from quadfire.data.digits import digits_datasets
    from quadfire.models import create_model

    torch.manual_seed(0)
    train, test = digits_datasets()
    model = create_model("convnet", neuron="alif", T=4)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    loader = torch.utils.data.DataLoader(train, batch_size=64, shuffle=True)
    for _ in range(epochs):
        for x, y in loader:
            loss = torch.nn.functional.cross_entropy(model(x).mean(0), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    result = measure(model, torch.utils.data.DataLoader(test, batch_size=256))
    print(format_measure(result))
    print(f"test accuracy {result['accuracy']:.2f}%")
    return result


if __name__ == "__main__":
    main()
