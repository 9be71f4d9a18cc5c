"""tdBN with batch statistics shared across DDP ranks (the ``sync_bn`` option).

torch's SyncBatchNorm would replace `TdBN` and lose its time-major layout and alpha * v_th
scale, so this subclass keeps both and only changes where the statistics come from: the
per-channel sum, sum of squares and count over (T, N, H, W) are all-reduced with the
`GlobalSum` (an all-reduce whose backward all-reduces the incoming gradient), so gradients
flow through the global mean and variance exactly as through a single large batch.
"""
from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

from .tdbn import TdBN
from .time import fold_time, unfold_time


class GlobalSum(torch.autograd.Function):
    """Sum of a tensor over all ranks. Every rank's loss depends on the sum, so the gradient
    with respect to one rank's term is the sum of all ranks' incoming gradients."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        x = x.clone()
        dist.all_reduce(x)
        return x

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class SyncTdBN(TdBN):
    """`TdBN` whose training-mode statistics cover the whole global batch."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized()
                and dist.get_world_size() > 1):
            return super().forward(x)
        self._check_input_dim(x)
        xf = fold_time(x).float()                      # [T*N, C, ...]
        dims = [0] + list(range(2, xf.dim()))
        count = torch.full((1,), xf.numel() / xf.shape[1], device=xf.device)
        stats = GlobalSum.apply(torch.cat([xf.sum(dims), (xf * xf).sum(dims), count]))
        c = self.num_features
        n = stats[-1]
        mean = stats[:c] / n
        var = (stats[c:2 * c] / n - mean * mean).clamp_min(0)
        with torch.no_grad():
            self.num_batches_tracked.add_(1)
            m = self.momentum
            self.running_mean.mul_(1 - m).add_(m * mean)
            self.running_var.mul_(1 - m).add_(m * var * n / (n - 1).clamp_min(1))
        shape = (1, c) + (1,) * (xf.dim() - 2)
        gain = (self.weight * self.scale) * torch.rsqrt(var + self.eps)
        y = (xf - mean.view(shape)) * gain.view(shape) + self.bias.view(shape)
        return unfold_time(y.to(x.dtype), x.shape[0])


def convert_sync_tdbn(model: nn.Module) -> nn.Module:
    """Replace every `TdBN` in `model` by a `SyncTdBN` with the same state (in place)."""
    for name, child in model.named_children():
        if isinstance(child, TdBN) and not isinstance(child, SyncTdBN):
            sync = SyncTdBN(child.num_features, child.alpha, child.v_th, child.eps, child.momentum)
            sync.load_state_dict(child.state_dict())
            setattr(model, name, sync.to(child.weight.device))
        else:
            convert_sync_tdbn(child)
    return model
