"""Losses on time-major logits ``outputs [T, N, classes]`` with integer targets ``[N]``.

- `mean_ce`: cross-entropy of the time-mean output, CE(mean_t O[t], y) (tdBN, STBP).
- `tet_loss`: temporal efficient training (Deng et al. 2022, TET), the per-step CE mixed
  with a regulariser pulling every output towards the constant phi:

      L = (1 - lambda) * mean_t CE(O[t], y) + lambda * mean_{t,n,k} (O[t,n,k] - phi)^2

  as in the TET reference code (lambda = 0.05, phi = v_th = 1). For T = 1 and lambda = 0 both
  losses are the ordinary cross-entropy.
- `rate_mse`: mean squared error between the time-mean output and the one-hot target,
  mean_{n,k} (mean_t O[t,n,k] - [k = y_n])^2: the PLIF paper's loss on output firing rates
  (no label smoothing).
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from ..errors import ConfigError, InputError


def check_outputs(outputs: torch.Tensor, target: torch.Tensor) -> None:
    """Raise a clear error unless outputs is [T, N, classes] float and target [N] integer."""
    if not isinstance(outputs, torch.Tensor) or outputs.dim() != 3 or not outputs.is_floating_point():
        got = tuple(outputs.shape) if isinstance(outputs, torch.Tensor) else type(outputs).__name__
        raise InputError(f"loss expects float logits [T, N, classes], got {got}")
    if not isinstance(target, torch.Tensor) or target.dtype != torch.long or target.dim() != 1:
        got = (f"{target.dtype} {tuple(target.shape)}" if isinstance(target, torch.Tensor)
               else type(target).__name__)
        raise InputError(f"loss expects int64 class targets [N], got {got}")
    if target.shape[0] != outputs.shape[1]:
        raise InputError(f"outputs [T, N, classes] = {tuple(outputs.shape)} and target [N] = "
                         f"{tuple(target.shape)} disagree on N")


def mean_ce(outputs: torch.Tensor, target: torch.Tensor,
            label_smoothing: float = 0.0) -> torch.Tensor:
    """CE(mean over T of outputs, target): a scalar (label smoothing as in F.cross_entropy)."""
    check_outputs(outputs, target)
    return F.cross_entropy(outputs.mean(0), target, label_smoothing=label_smoothing)


def tet_loss(outputs: torch.Tensor, target: torch.Tensor, lam: float = 0.05,
             phi: float = 1.0, label_smoothing: float = 0.0) -> torch.Tensor:
    """(1 - lam) * mean_t CE(outputs[t], target) + lam * MSE(outputs, phi): a scalar. Label
    smoothing applies to the per-step CE."""
    check_outputs(outputs, target)
    if not 0.0 <= lam <= 1.0:
        raise ConfigError(f"TET lambda must be in [0, 1], got {lam!r}")
    T, N, K = outputs.shape
    # One CE over the folded [T*N] batch is the mean over t of the per-step CEs.
    per_step = F.cross_entropy(outputs.reshape(T * N, K), target.repeat(T),
                               label_smoothing=label_smoothing)
    if lam == 0.0:
        return per_step
    return (1 - lam) * per_step + lam * (outputs - phi).square().mean()


def rate_mse(outputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """MSE(mean over T of outputs, one_hot(target)): a scalar."""
    check_outputs(outputs, target)
    rates = outputs.mean(0)
    return F.mse_loss(rates, F.one_hot(target, rates.shape[-1]).to(rates.dtype))


LOSSES = ("ce", "tet", "mse")


def make_loss(name: str, tet_lambda: float = 0.05, tet_phi: float = 1.0,
              label_smoothing: float = 0.0) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The loss called `name` (one of LOSSES) as ``fn(outputs [T, N, K], target [N])``."""
    if not 0.0 <= label_smoothing < 1.0:
        raise ConfigError(f"label smoothing must be in [0, 1), got {label_smoothing!r}")
    if name == "ce":
        return lambda outputs, target: mean_ce(outputs, target, label_smoothing)
    if name == "mse":
        if label_smoothing:
            raise ConfigError(f"label smoothing applies to the ce and tet losses; loss=mse "
                              f"needs 0, got {label_smoothing!r}")
        return rate_mse
    if name == "tet":
        if not 0.0 <= tet_lambda <= 1.0:
            raise ConfigError(f"TET lambda must be in [0, 1], got {tet_lambda!r}")
        return lambda outputs, target: tet_loss(outputs, target, tet_lambda, tet_phi,
                                                label_smoothing)
    raise ConfigError(f"unknown loss {name!r}; expected one of {LOSSES}")
