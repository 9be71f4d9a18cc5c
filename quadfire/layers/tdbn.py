"""Threshold-dependent batch norm (tdBN, Zheng et al. 2021) and its folding into the conv
before it.

For channel c, over all of (T, N, H, W) at once (not per time step):

    y = weight_c * alpha * v_th * (x - mean_c) / sqrt(var_c + eps) + bias_c

alpha = 1, or 1/sqrt(2) on the two branches that a residual connection adds, so the sum
still has scale ~ v_th. In eval mode the running statistics make this a per-channel affine
map, which `fold_tdbn` merges into the preceding conv/linear weights for inference.
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..functional import check_time_major
from .time import TimeFold, fold_time, unfold_time
from ..errors import InputError, ParameterError


class TdBN(_BatchNorm):
    """tdBN over ``x [T, N, C, ...]``: statistics per channel over (T, N, ...).

    Args:
        num_features: channels C.
        alpha: branch factor (1, or 1/sqrt(2) on residual branches).
        v_th: the threshold of the neurons this layer feeds (from the model's neuron kwargs).
        eps, momentum: as in torch BatchNorm (momentum must be a float here).
    """

    def __init__(self, num_features: int, alpha: float = 1.0, v_th: float = 1.0,
                 eps: float = 1e-5, momentum: float = 0.1):
        if not (isinstance(num_features, int) and num_features > 0):
            raise ParameterError(f"TdBN num_features must be a positive int, got {num_features!r}")
        if not (alpha > 0 and v_th > 0):
            raise ParameterError(f"TdBN needs alpha > 0 and v_th > 0, got alpha={alpha!r}, v_th={v_th!r}")
        super().__init__(num_features, eps, momentum, affine=True, track_running_stats=True)
        self.alpha, self.v_th = float(alpha), float(v_th)

    @property
    def scale(self) -> float:
        """alpha * v_th, the target standard deviation of the output (before `weight`)."""
        return self.alpha * self.v_th

    def _check_input_dim(self, x: torch.Tensor) -> None:
        check_time_major(x, 3, "TdBN")
        if x.shape[2] != self.num_features:
            raise InputError(f"TdBN({self.num_features}) expects input [T, N, {self.num_features}, ...], "
                             f"got shape {tuple(x.shape)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input_dim(x)
        factor = 0.0
        if self.training:
            self.num_batches_tracked.add_(1)
            factor = self.momentum
        # Folding T into N makes F.batch_norm reduce over (T, N, ...) per channel: exactly tdBN.
        y = F.batch_norm(fold_time(x), self.running_mean, self.running_var,
                         self.weight * self.scale, self.bias, self.training, factor, self.eps)
        return unfold_time(y, x.shape[0])

    def eval_affine(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(gain [C], shift [C]) with eval output y = gain * x + shift (running statistics)."""
        gain = self.weight * self.scale / torch.sqrt(self.running_var + self.eps)
        return gain, self.bias - self.running_mean * gain

    def extra_repr(self) -> str:
        return f"{self.num_features}, alpha={self.alpha:.4g}, v_th={self.v_th}, eps={self.eps}"


class ConvBN(nn.Sequential):
    """``TimeFold(conv or linear)`` followed by `TdBN`: the unit `fold_tdbn` merges.

    Children are named ``conv`` (a TimeFold around nn.Conv2d or nn.Linear) and ``bn``.
    ``spike_input`` (default True: most convs follow a neuron) is passed to the TimeFold; set
    it False for a layer that sees analogue input, and ``encoding=True`` for the one that sees
    the network's input (a stem on images; implies spike_input=False).
    """

    def __init__(self, layer: nn.Module, bn: TdBN, spike_input: bool = True,
                 encoding: bool = False):
        out = getattr(layer, "out_channels", getattr(layer, "out_features", None))
        if out != bn.num_features:
            raise ParameterError(f"ConvBN: layer has {out} outputs but TdBN has {bn.num_features} channels")
        super().__init__()
        self.add_module("conv", TimeFold(layer, spike_input and not encoding, encoding))
        self.add_module("bn", bn)


def conv_bn(cin: int, cout: int, kernel: int = 3, stride: int = 1, padding: int | None = None,
            alpha: float = 1.0, v_th: float = 1.0, spike_input: bool = True,
            encoding: bool = False) -> ConvBN:
    """Bias-free conv (kernel x kernel, 'same' padding by default) + tdBN."""
    pad = kernel // 2 if padding is None else padding
    return ConvBN(nn.Conv2d(cin, cout, kernel, stride, pad, bias=False), TdBN(cout, alpha, v_th),
                  spike_input, encoding)


@torch.no_grad()
def fuse_conv_bn(layer: nn.Module, bn: TdBN) -> nn.Module:
    """A new conv/linear with bias computing ``bn(layer(x))`` in eval mode."""
    gain, shift = bn.eval_affine()
    fused = copy.deepcopy(layer)
    shape = (-1,) + (1,) * (layer.weight.dim() - 1)
    fused.weight.mul_(gain.view(shape))
    bias = shift if layer.bias is None else layer.bias * gain + shift
    fused.bias = nn.Parameter(bias.clone())
    return fused


def fold_tdbn(model: nn.Module) -> nn.Module:
    """An eval-mode copy of `model` with every `ConvBN` merged into one biased conv/linear.

    The copy computes the same eval outputs (to float rounding); its ConvBN units keep their
    names, with ``bn`` replaced by nn.Identity, so code that walks the model still finds them.
    """
    folded = copy.deepcopy(model).eval()
    for unit in folded.modules():
        if isinstance(unit, ConvBN) and isinstance(unit.bn, TdBN):
            unit.conv = TimeFold(fuse_conv_bn(unit.conv.module, unit.bn), unit.conv.spike_input,
                                 unit.conv.encoding)
            unit.bn = nn.Identity()
    return folded
