"""Residual blocks on time-major ``[T, N, C, H, W]`` tensors.

Both blocks have a main branch ``conv1 -> sn1 -> conv2`` (each ``conv`` a `ConvBN`) and a
``shortcut`` (nn.Identity, or a strided 1x1 `ConvBN` when the shape changes). They differ in
where the last neuron sits:

- `SpikingBlock` (spiking ResNet, ResNet-19 of tdBN/TET): ``sn2(conv2(...) + shortcut(x))``;
  both added branches are tdBN outputs, so they use alpha = 1/sqrt(2) (tdBN's rule: the sum
  of two unit-variance branches has variance 2).
- `SEWBlock` (SEW ResNet, ADD connection, Fang et al. 2021): ``sn2(conv2(...)) + shortcut(x)``;
  the sum of spikes reaches the next block, and the downsampling shortcut ends in a neuron.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..layers import conv_bn
from ..neurons import NeuronSpec
from ..errors import ParameterError

RESIDUAL_ALPHA = 1 / math.sqrt(2)


def _shortcut(cin: int, cout: int, stride: int, alpha: float, v_th: float) -> nn.Module:
    if stride == 1 and cin == cout:
        return nn.Identity()
    return conv_bn(cin, cout, 1, stride, 0, alpha=alpha, v_th=v_th)


class ResidualBlock(nn.Module):
    """A block whose dataflow is declared once, in ``BRANCHES`` and ``AFTER``: the output is
    ``after(sum of the branches(x))``, each branch and ``after`` a chain of named children
    applied in order. `forward` and the NIR exporter (`quadfire.export.graph`) both read the
    declaration, so the topology is written in one place."""

    BRANCHES: tuple[tuple[str, ...], ...] = ()
    AFTER: tuple[str, ...] = ()

    def _chain(self, names: tuple[str, ...], x: torch.Tensor) -> torch.Tensor:
        for name in names:
            x = getattr(self, name)(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self._chain(self.BRANCHES[0], x)
        for branch in self.BRANCHES[1:]:
            out = out + self._chain(branch, x)
        return self._chain(self.AFTER, out)


class SpikingBlock(ResidualBlock):
    """``sn2(conv2(sn1(conv1(x))) + shortcut(x))``; conv1 carries the stride."""

    BRANCHES = (("conv1", "sn1", "conv2"), ("shortcut",))
    AFTER = ("sn2",)

    def __init__(self, cin: int, cout: int, stride: int, spec: NeuronSpec):
        super().__init__()
        self.conv1 = conv_bn(cin, cout, 3, stride, v_th=spec.v_th)
        self.sn1 = spec.make(cout)
        self.conv2 = conv_bn(cout, cout, 3, 1, alpha=RESIDUAL_ALPHA, v_th=spec.v_th)
        self.shortcut = _shortcut(cin, cout, stride, RESIDUAL_ALPHA, spec.v_th)
        self.sn2 = spec.make(cout)


class SEWBlock(ResidualBlock):
    """``sn2(conv2(sn1(conv1(x)))) + shortcut_sn(shortcut(x))`` (SEW ADD); a downsampling
    shortcut is ``ConvBN`` followed by its own neuron ``shortcut_sn`` (nn.Identity otherwise)."""

    BRANCHES = (("conv1", "sn1", "conv2", "sn2"), ("shortcut", "shortcut_sn"))

    def __init__(self, cin: int, cout: int, stride: int, spec: NeuronSpec):
        super().__init__()
        self.conv1 = conv_bn(cin, cout, 3, stride, v_th=spec.v_th)
        self.sn1 = spec.make(cout)
        self.conv2 = conv_bn(cout, cout, 3, 1, v_th=spec.v_th)
        self.sn2 = spec.make(cout)
        self.shortcut = _shortcut(cin, cout, stride, 1.0, spec.v_th)
        self.shortcut_sn = nn.Identity() if isinstance(self.shortcut, nn.Identity) else spec.make(cout)


BLOCKS = {"spiking": SpikingBlock, "sew": SEWBlock}


def make_stage(block: type[nn.Module], cin: int, cout: int, depth: int, stride: int,
               spec: NeuronSpec) -> nn.Sequential:
    """`depth` blocks; the first maps cin -> cout with `stride`, the rest keep the shape."""
    if depth < 1:
        raise ParameterError(f"a stage needs depth >= 1, got {depth!r}")
    return nn.Sequential(block(cin, cout, stride, spec),
                         *(block(cout, cout, 1, spec) for _ in range(depth - 1)))
