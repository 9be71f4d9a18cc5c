"""Multi-step neuron ops behind one dispatch point.

`dispatch` is the only function neuron modules call (`neuron_multistep` is the same with the
argument checks, for direct functional use). It runs any neuron model (`NeuronParams`) forward,
and backward through autograd, on one of these backends, chosen by device, dtype and
availability (or forced with ``backend=``, for tests and benchmarks):

- ``"reference"``: the plain PyTorch loop (`quadfire.ops.reference`), always available.
- ``"cpu"``: the fused C++ kernels (`quadfire.ops.cpu`), the default for CPU tensors of every
  float dtype once they build (first use compiles them; with no compiler: warning, reference).
- ``"triton"``: the fused Triton kernels (`quadfire.ops.gpu`), the default for CUDA tensors when
  Triton is installed; CPU tensors are accepted under ``TRITON_INTERPRET=1`` (tests).

Spikes are bit-identical across backends (same operation order, no FMA contraction); state,
trace and gradients agree to rounding. Models without a kernel (`NeuronParams.model` not in
`KERNEL_MODELS`), parameter layouts the fused kernels cannot pack (`pack.supported`) and empty
inputs run on the reference path; an explicit fused backend refuses them with an error instead
of silently switching.
"""
from __future__ import annotations

import torch

from ..errors import InputError, InputTypeError, ParameterError
from ..functional import NeuronOutput, NeuronParams, check_state, check_time_major
from . import cpu, fused, gpu, pack, reference

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
        raise ParameterError(f"unknown backend {backend!r}; expected one of {BACKENDS}")
    if backend == "cpu":
        if x.device.type != "cpu":
            raise InputError(f"backend='cpu' runs CPU tensors; got a tensor on {x.device}")
        cpu.require()
    if backend == "triton":
        gpu.require(x.device)
        if x.dtype not in gpu.DTYPES:
            raise InputError(f"backend='triton' runs {', '.join(map(str, gpu.DTYPES))} inputs "
                             f"(float32 state); got {x.dtype}")
    return backend


def neuron_multistep(x: torch.Tensor, p: NeuronParams, u0=None, trace: bool = False,
                     backend: str | None = None) -> NeuronOutput:
    """Run a neuron model over ``x [T, N, ...]`` from membrane state ``u0 [N, ...]`` (None: from
    rest, with no gradient into it; a tuple for models with several state variables). A given
    state is floored at v_min before the first step, like every later state.

    Returns `NeuronOutput` (spikes in x.dtype; state and trace in float32, or float64 for
    float64 input). Equations: `quadfire.functional.steps`. This is the checked public entry;
    neuron modules, which check their own inputs, call `dispatch`.
    """
    check_time_major(x)
    if not isinstance(p, NeuronParams):
        raise InputTypeError(f"neuron parameters must be a NeuronParams (QIFParams, LIFParams, "
                             f"...), got {type(p).__name__}")
    if u0 is not None:
        for u in (u0 if isinstance(u0, tuple) else (u0,)):
            check_state(u, x)
    return dispatch(x, p, u0, trace, backend)


def dispatch(x: torch.Tensor, p: NeuronParams, u0=None,
             trace: bool = False, backend: str | None = None) -> NeuronOutput:
    """`neuron_multistep` without the argument checks (the caller has made them)."""
    name = select_backend(x, backend)
    if name != "reference":
        cdt = reference.compute_dtype(x.dtype)
        ok = pack.supported(p, tuple(x.shape[1:]), cdt, x.device)
        if x.numel() == 0 or not ok:
            if backend is not None and p.model not in pack.MODEL_CODES:
                raise InputError(f"backend={backend!r} has no kernel for the neuron model "
                                 f"{type(p).__name__} (fused models: {', '.join(pack.MODELS)}); "
                                 f"use the reference backend, which runs any model")
            if backend is not None and not ok:
                raise InputError(f"backend={backend!r} cannot pack these parameters (tensor "
                                 f"parameters must broadcast against one step {tuple(x.shape[1:])}"
                                 f", be {cdt} on {x.device}, only the charge parameters, v_th "
                                 f"and v_reset may require grad, and the surrogate shape must be one "
                                 f"of {pack.SHAPES}); use the reference backend")
            name = "reference"
    if name == "reference":
        return NeuronOutput(*reference.multistep(x, p, u0, trace))
    return NeuronOutput(*fused.multistep(x, p, u0, trace, name))


def rest_state(p: NeuronParams, shape, dtype: torch.dtype, device: torch.device):
    """The resting membrane [N, ...] a run starts from when no state is given."""
    return reference.rest_state(p, torch.Size(shape), dtype, device)
