"""One training step that is never applied when its numbers are not finite.

`train_step` returns a `Verdict`; the loop decides what a step that was not applied means
(`cfg.nonfinite`: stop with an error, or skip the batch). The forward pass updates the BN
running statistics before the loss is known, so the buffers are copied first and put back
when the step is refused. Under DDP the decision is agreed by all ranks (a bad sample on one
rank would otherwise desynchronise them).
"""
from __future__ import annotations

import contextlib
import dataclasses
import math

import torch
from torch import nn

from ..errors import NonFiniteError
from . import distributed

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def autocast(device: torch.device, amp: str):
    """Mixed precision for the forward pass ("none": full precision)."""
    if amp == "none":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=AMP_DTYPES[amp])


@dataclasses.dataclass(frozen=True)
class Verdict:
    applied: bool
    loss: float = math.nan     # the batch's mean loss
    correct: int = 0           # correct predictions of the time-mean output
    samples: int = 0
    problem: str = ""          # what was not finite: "loss", "BN statistics" or "gradients"


def train_step(run, x: torch.Tensor, y: torch.Tensor, criterion) -> Verdict:
    """One optimizer step of `run` (an `engine.Run`) on the batch (x [N, ...] or [T, N, ...],
    y [N]), applied only when the loss, the BN statistics and the gradients are finite."""
    cfg, model = run.cfg, run.model
    buffers = list(model.buffers())
    saved = [b.detach().clone() for b in buffers]
    with autocast(run.dist.device, cfg.amp):
        out = run.net(x)
        loss = criterion(out.float(), y)
    run.optimizer.zero_grad(set_to_none=True)
    value, problem = _forward_check(loss, [b for b in buffers if b.is_floating_point()], run.dist)
    if not problem:
        run.scaler.scale(loss).backward()
        params = [p for p in model.parameters() if p.grad is not None]
        if cfg.grad_clip > 0 or cfg.amp != "fp16":
            run.scaler.unscale_(run.optimizer)  # a no-op without fp16's scaler
            norm = nn.utils.get_total_norm([p.grad for p in params])
            # fp16: an inf gradient is the scaler's to handle (it skips the step and lowers
            # the scale); NaN data shows up in the BN statistics checked above. The norm is
            # the same on every rank: DDP averaged the gradients.
            if cfg.amp != "fp16" and not bool(torch.isfinite(norm)):
                problem = "gradients"
            elif cfg.grad_clip > 0:
                nn.utils.clip_grads_with_norm_(params, cfg.grad_clip, norm)
    if problem:
        with torch.no_grad():
            for b, old in zip(buffers, saved):
                b.copy_(old)
        run.optimizer.zero_grad(set_to_none=True)
        check_weights(model)
        return Verdict(False, value, problem=problem)
    run.scaler.step(run.optimizer)
    run.scaler.update()
    run.scheduler.step()
    correct = (out.detach().float().mean(0).argmax(1) == y).sum().item()
    return Verdict(True, value, correct, y.shape[0])


def _forward_check(loss: torch.Tensor, stats: list[torch.Tensor], info) -> tuple[float, str]:
    """(the loss value, "" or what is not finite on some rank: "loss" or "BN statistics")."""
    norm = nn.utils.get_total_norm(stats) if stats else loss.new_zeros(())
    value, norm = torch.stack([loss.detach().float(), norm.float()]).tolist()
    bad = distributed.all_sum([float(not math.isfinite(value)),
                               float(not math.isfinite(norm))], info)
    return value, "loss" if bad[0] else "BN statistics" if bad[1] else ""


def check_weights(model: nn.Module, when: str = "") -> None:
    """Stop for good when the weights themselves are no longer finite (a learning rate that
    diverged): a skipped batch cannot repair them, and no checkpoint may hold them."""
    params = [p.detach() for p in model.parameters()]
    if params and not bool(torch.isfinite(nn.utils.get_total_norm(params))):
        raise NonFiniteError(
            f"the weights are no longer finite{when} (the optimizer step diverged: lower lr?); "
            f"last.pt was not overwritten and still holds the last good state")
