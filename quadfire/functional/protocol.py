"""The neuron protocol: what every layer above asks a neuron model, instead of testing its class.

A neuron model is one frozen parameter class deriving from `NeuronParams`. Reference loop,
kernel packing, analysis, energy, layer statistics and export call its methods; the fused
kernels read its `model` name, whose position in `KERNEL_MODELS` is the code the C++ and Triton
kernels switch on (`quadfire.ops.pack` checks the C++ library's own list against this one).

Single-variable models (the membrane U alone, like every built-in one) implement `charge`,
`rest`, `kernel_rows` and `ops`; `step` then charges, fires and resets with `fire_reset`.
Models with more state (an adaptation variable, a synaptic current) override `initial_state`,
`start` and `step` and carry their state as a tuple of tensors; they run on the reference
backend (docs/neuron.md, "Your own neuron").
"""
from __future__ import annotations

from typing import ClassVar, NamedTuple, Union

import torch

from .steps import fire_reset

Scalar = Union[float, torch.Tensor]

# The models the fused kernels implement; a model's kernel code is its position here. The C++
# library reports its own list (quadfire/ops/csrc/neuron.h QUADFIRE_MODELS) and is refused
# when it differs; the Triton kernels receive the name as a constexpr.
KERNEL_MODELS = ("lif", "qif", "qif-exact", "qif-hybrid")
# The charge constants of the kernel table (`quadfire.ops.pack`): each model gives them its
# own meaning in `kernel_rows` (QIF: a, u1, u2; LIF: k, v_rest; ...). All may carry gradient.
CHARGE_ROWS = ("c0", "c1", "c2", "c3")


class Ops(NamedTuple):
    """Arithmetic of one neuron update's charge (for the energy estimate, docs/analysis.md).
    Threshold compare and reset are the same for every model and not counted."""

    mults: int = 0
    adds: int = 0
    divs: int = 0


class NeuronParams:
    """Base of every neuron model's frozen parameter dataclass.

    Every model has the fields ``v_th``, ``v_reset``, ``soft`` and ``window`` (the surrogate of
    dS/dH), which `fire_reset` reads, and may have ``detach_reset`` (default False). Values are Python floats or tensors broadcastable
    against one time step ``[N, ...]`` (learnable parameters).
    """

    detach_reset = False  # a field of the built-in models; see `fire_reset`
    model: ClassVar[str | None] = None  # name in KERNEL_MODELS; None: reference backend only
    kind: ClassVar[str] = "neuron"      # family name in reports and messages ("QIF", "LIF")
    state_vars: ClassVar[int] = 1       # tensors in the state; > 1: a tuple of them

    # -- the maths ---------------------------------------------------------------------------
    def charge(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """H[t] from the input X[t] and the membrane U[t-1]."""
        raise NotImplementedError(f"{type(self).__name__} defines no charge(); a model with "
                                  f"more than a membrane overrides step() instead")

    def rest(self) -> Scalar:
        """U[0], the potential a run starts from when no state is given."""
        raise NotImplementedError(f"{type(self).__name__} defines no rest()")

    def floor(self) -> Scalar | None:
        """v_min, the lower bound on U after every step, or None for none."""
        return None

    def slope(self, u):
        """dH/dU of the charge at U (no input): the map's local contraction, for analysis."""
        raise NotImplementedError(f"{type(self).__name__} defines no slope()")

    def critical(self) -> Scalar | None:
        """The unstable fixed point of the null-input map (QIF's u2), or None when it has none."""
        return None

    def regimes(self, I: torch.Tensor) -> dict[str, torch.Tensor]:
        """Boolean masks of the dynamical regimes of neurons with mean input ``I [M]`` (float64),
        for layer statistics; {} when the model names none."""
        return {}

    def summary(self) -> dict[str, Scalar]:
        """The model's own parameters by name, for reports and export."""
        return {}

    def ops(self) -> Ops:
        """The arithmetic of one charge step (energy)."""
        raise NotImplementedError(f"{type(self).__name__} declares no ops(): the energy "
                                  f"estimate needs the operation count of one update")

    def kernel_rows(self) -> dict[str, Scalar]:
        """Values of the kernel table's charge rows (`CHARGE_ROWS`) and ``rest`` for a model in
        `KERNEL_MODELS`; derived constants are computed here so that the reference charge and
        the kernels read the very same numbers."""
        raise NotImplementedError(f"{type(self).__name__} has no fused kernel")

    # -- the multi-step loop (`quadfire.ops.reference`) ----------------------------------------
    def initial_state(self, shape: torch.Size, dtype: torch.dtype, device: torch.device):
        """The state a run starts from when none is given: rest, floored. No gradient."""
        rest = self.rest()
        if isinstance(rest, torch.Tensor):
            u = torch.zeros(shape, dtype=dtype, device=device) + rest.detach()
        else:
            u = torch.full(shape, rest, dtype=dtype, device=device)
        return self.start(u)

    def start(self, state):
        """A given starting state, floored at v_min like every later state, so that no state
        below the floor can make inhibition cause a spike."""
        v_min = self.floor()
        return state if v_min is None else torch.clamp(state, min=v_min)

    def step(self, x: torch.Tensor, state):
        """One update: (spikes S[t], next state, charged potential H[t])."""
        h = self.charge(x, state)
        s, u = fire_reset(h, self)
        return s, u, h
