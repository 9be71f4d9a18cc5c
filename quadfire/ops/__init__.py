"""Multi-step neuron ops behind one dispatch point.

`neuron_multistep` is the only function neuron modules call. It runs QIF, LIF, PLIF and IF
(IF is LIF with k = 0) forward, and backward through autograd, on one of these backends, chosen
by device, dtype and availability (or forced with ``backend=``, for tests and benchmarks):

- ``"reference"``: the plain PyTorch loop (`quadfire.ops.reference`), always available.
- ``"cpu"``: the fused C++ kernels (`quadfire.ops.cpu`), the default for CPU tensors of every
  float dtype once they build (first use compiles them; with no compiler: warning, reference).
- ``"triton"``: the fused Triton kernels (`quadfire.ops.gpu`), the default for CUDA tensors when
  Triton is installed; CPU tensors are accepted under ``TRITON_INTERPRET=1`` (tests).

Spikes are bit-identical across backends (same operation order, no FMA contraction); state,
trace and gradients agree to rounding. Parameter layouts the fused kernels cannot pack
(`pack.supported`) and empty inputs run on the reference path; an explicit fused backend
refuses them with an error instead of silently switching.
"""
from __future__ import annotations

from typing import NamedTuple

import torch


class NeuronOutput(NamedTuple):
    """spikes [T, N, ...]; state: membrane U after the last step [N, ...];
    trace: charged potential H[t] (the value compared with v_th) [T, N, ...], or None."""

    spikes: torch.Tensor
    state: torch.Tensor
    trace: torch.Tensor | None


# Imported after NeuronOutput: quadfire.neurons imports it from here, so `import quadfire.ops`
# first (through quadfire.neurons.params) must find it already defined.
from ..neurons.params import LIFParams, QIFParams  # noqa: E402
from . import cpu, fused, gpu, pack, reference  # noqa: E402

BACKENDS = ("reference", "cpu", "triton")

fused.register("cpu", cpu.forward, cpu.backward)
fused.register("triton", gpu.forward, gpu.backward)


@torch.compiler.assume_constant_result
def _cpu_ready() -> bool:
    # a constant for torch.compile: the check may build the extension, which dynamo cannot trace
    return cpu.available()


@torch.compiler.assume_constant_result
def _triton_ready() -> bool:
    return gpu.available()


def select_backend(x: torch.Tensor, backend: str | None = None) -> str:
    """The backend that will run `x`; an explicit choice is checked, never silently replaced."""
    if backend is None:
        if x.device.type == "cpu":
            return "cpu" if _cpu_ready() else "reference"
        if x.device.type == "cuda" and x.dtype in gpu.DTYPES and _triton_ready():
            return "triton"
        return "reference"
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; expected one of {BACKENDS}")
    if backend == "cpu":
        if x.device.type != "cpu":
            raise ValueError(f"backend='cpu' runs CPU tensors; got a tensor on {x.device}")
        cpu.require()
    if backend == "triton":
        gpu.require(x.device)
        if x.dtype not in gpu.DTYPES:
            raise ValueError(f"backend='triton' runs {', '.join(map(str, gpu.DTYPES))} inputs "
                             f"(float32 state); got {x.dtype}")
    return backend


def _check(x: torch.Tensor, p, u0: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        got = x.dtype if isinstance(x, torch.Tensor) else type(x).__name__
        raise TypeError(f"neuron input must be a floating-point tensor (float16/bfloat16/"
                        f"float32/float64) [T, N, ...], got {got}")
    if x.dim() < 2:
        raise ValueError(f"neuron input must be time-major [T, N, ...] with at least 2 dims, "
                         f"got shape {tuple(x.shape)}")
    if not isinstance(p, (QIFParams, LIFParams)):
        raise TypeError(f"neuron parameters must be QIFParams or LIFParams, got {type(p).__name__}")
    if not isinstance(u0, torch.Tensor) or not u0.is_floating_point():
        got = u0.dtype if isinstance(u0, torch.Tensor) else type(u0).__name__
        raise TypeError(f"neuron state must be a floating-point tensor, got {got}")
    if tuple(u0.shape) != tuple(x.shape[1:]):
        raise ValueError(f"state must have the shape of one time step {tuple(x.shape[1:])}, "
                         f"got {tuple(u0.shape)}")
    if u0.device != x.device:
        raise ValueError(f"state is on {u0.device} but the input is on {x.device}")


def neuron_multistep(x: torch.Tensor, p: QIFParams | LIFParams, u0: torch.Tensor,
                     trace: bool = False, backend: str | None = None) -> NeuronOutput:
    """Run a QIF or LIF-family neuron over ``x [T, N, ...]`` from membrane state ``u0 [N, ...]``.

    Returns `NeuronOutput` (spikes in x.dtype; state and trace in float32, or float64 for
    float64 input). Equations: `quadfire.neurons.steps`.
    """
    _check(x, p, u0)
    name = select_backend(x, backend)
    if name != "reference":
        cdt = reference.compute_dtype(x.dtype)
        ok = pack.supported(p, tuple(x.shape[1:]), cdt, x.device)
        if x.numel() == 0 or not ok:
            if backend is not None and not ok:
                raise ValueError(f"backend={backend!r} cannot pack these parameters (tensor "
                                 f"parameters must broadcast against one step {tuple(x.shape[1:])}"
                                 f", be {cdt} on {x.device}, and only a, u1, u2, k, v_rest, "
                                 f"v_th, v_reset may require grad); use the reference backend")
            name = "reference"
    if name == "reference":
        return NeuronOutput(*reference.multistep(x, p, u0, trace))
    return NeuronOutput(*fused.multistep(x, p, u0, trace, name))
