"""Convolutional SNNs for 28x28 one-channel images (MNIST, Fashion-MNIST).

- `csnn`: {conv3x3 + tdBN + spike + 2x2 pool} x 2, FC + tdBN + spike, FC -> logits; the
  CPU-sized network of the fmnist-csnn recipes (after SpikingJelly's CSNN tutorial).
- `plif_net`: the MNIST / Fashion-MNIST network of the PLIF paper (Fang et al., ICCV 2021):
  {conv3x3 128 + BN + spike + max pool 2} x 2, dropout, FC 2048 + spike, dropout,
  FC 100 + spike, voting (mean of each group of 10 output neurons).
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError
from ..layers import ConvBN, Encoder, StemOnceEncoder, TdBN, TimeFold, conv_bn
from ..neurons import NeuronSpec
from .common import SpikingNet
from .registry import register_model

POOLS = {"max": nn.MaxPool2d, "avg": nn.AvgPool2d}


class TimeDropout(nn.Module):
    """Dropout whose mask is drawn once per sample and reused at every time step.

    ``x [T, N, ...]`` -> ``x * m`` with ``m [N, ...]`` in {0, 1/(1-p)}. A fresh mask per
    step would average the dropout out over T (the PLIF code's ``layer.Dropout``, after
    Lee et al. 2020). Identity in eval mode.
    """

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ConfigError(f"dropout probability must be in [0, 1), got {p!r}")
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = torch.empty_like(x[0]).bernoulli_(1.0 - self.p) / (1.0 - self.p)
        return x * keep

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Vote(nn.Module):
    """``[T, N, K * group]`` -> ``[T, N, K]``: the mean of each run of `group` neurons."""

    def __init__(self, group: int):
        super().__init__()
        self.group = group

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unflatten(-1, (-1, self.group)).mean(-1)

    def extra_repr(self) -> str:
        return f"group={self.group}"


def _conv_stages(spec: NeuronSpec, cin: int, widths: tuple[int, ...], pool: str) -> list:
    """conv3x3 + tdBN + spike + 2x2 pool per width; the first conv sees the analogue image."""
    if pool not in POOLS:
        raise ConfigError(f"pool must be one of {sorted(POOLS)}, got {pool!r}")
    layers, c = [], cin
    for i, w in enumerate(widths):
        # After a max pool the input is still spikes; after an average pool it is fractional.
        spikes_in = i > 0 and pool == "max"
        layers += [conv_bn(c, w, v_th=spec.v_th, spike_input=spikes_in, encoding=i == 0),
                   spec.make(w),
                   TimeFold(POOLS[pool](2))]
        c = w
    return layers + [TimeFold(nn.Flatten())]


def _check_size(name: str, image_size: int, pools: int) -> int:
    if image_size < 2 ** pools or image_size % 2 ** pools:
        raise ConfigError(f"{name} needs image_size a positive multiple of {2 ** pools} "
                         f"({pools} pools), got {image_size!r}")
    return image_size // 2 ** pools


def _encoder(T: int, in_channels: int, image_size: int, layers: list, stem_once: bool):
    """Direct encoding; with `stem_once` the first conv + tdBN (taken from `layers`) runs once
    per static image inside the encoder."""
    if stem_once:
        return StemOnceEncoder(T, in_channels, layers.pop(0), image_size)
    return Encoder(T, in_channels, image_size)


@register_model
def csnn(neuron="qif", T: int = 4, num_classes: int = 10, neuron_kwargs: dict | None = None,
         in_channels: int = 1, image_size: int = 28, widths: tuple = (32, 64), hidden: int = 256,
         pool: str = "max", stem_once: bool = True) -> SpikingNet:
    """conv3x3 in->widths[0], tdBN, spike, pool 2; conv3x3 -> widths[1], tdBN, spike, pool 2;
    flatten; linear -> hidden, tdBN, spike; linear -> classes. `pool`: "max" or "avg".
    `stem_once`: compute the first conv + tdBN once per static image and repeat it over T
    (`StemOnceEncoder`: the same results, less work). About 0.82 M parameters at the defaults
    (28x28, 10 classes)."""
    widths = tuple(widths)
    side = _check_size("csnn", image_size, len(widths))
    spec = NeuronSpec(neuron, neuron_kwargs)
    layers = _conv_stages(spec, in_channels, widths, pool)
    encoder = _encoder(T, in_channels, image_size, layers, stem_once)
    body = nn.Sequential(
        *layers,
        ConvBN(nn.Linear(widths[-1] * side * side, hidden, bias=False),
               TdBN(hidden, v_th=spec.v_th), spike_input=pool == "max"),
        spec.make(hidden),
        TimeFold(nn.Linear(hidden, num_classes), spike_input=True),
    )
    return SpikingNet(encoder, body, num_classes)


@register_model
def plif_net(neuron="qif", T: int = 8, num_classes: int = 10, neuron_kwargs: dict | None = None,
             in_channels: int = 1, image_size: int = 28, channels: int = 128,
             dropout: float = 0.5, vote: int = 10, stem_once: bool = True) -> SpikingNet:
    """The PLIF paper's (Fashion-)MNIST network: {conv3x3 channels, BN, spike, max pool 2}
    x 2; dropout; FC (channels * 7 * 7 -> channels * 16), spike; dropout; FC -> classes *
    `vote`, spike; voting: class k's output is the mean of spikes of neurons k*vote ..
    (k+1)*vote - 1. Bias-free FCs without BN, dropout masks fixed over time (`TimeDropout`),
    as in the paper's code, which also computes the first conv + BN once per image
    (`stem_once`). The output is firing rates in [0, 1] per step, not logits.
    About 13.2 M parameters at the defaults."""
    side = _check_size("plif_net", image_size, 2)
    spec = NeuronSpec(neuron, neuron_kwargs)
    hidden, out = channels * 16, num_classes * vote
    layers = _conv_stages(spec, in_channels, (channels, channels), "max")
    encoder = _encoder(T, in_channels, image_size, layers, stem_once)
    body = nn.Sequential(
        *layers,
        TimeDropout(dropout),
        TimeFold(nn.Linear(channels * side * side, hidden, bias=False), spike_input=True),
        spec.make(hidden),
        TimeDropout(dropout),
        TimeFold(nn.Linear(hidden, out, bias=False), spike_input=True),
        spec.make(out),
        Vote(vote),
    )
    return SpikingNet(encoder, body, num_classes)
