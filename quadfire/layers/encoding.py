"""Input encoders: static images become T identical frames (direct encoding), event frames
pass through. Every model starts with one, so ``model(x)`` accepts either form."""
from __future__ import annotations

import torch
from torch import nn

from ..errors import InputError, InputTypeError, ParameterError


class Encoder(nn.Module):
    """Static ``[N, C, H, W]`` -> ``[T, N, C, H, W]`` (repeated T times, the first conv sees
    the analogue image: direct encoding); event frames ``[T', N, C, H, W]`` pass through
    unchanged and T' is taken from the input. With ``spatial_dims=0`` the same holds for
    feature vectors: ``[N, C]`` is repeated, sequences ``[T', N, C]`` pass through.

    Args:
        T: number of time steps for static inputs (>= 1).
        in_channels: the channel count C the model expects (checked, for a clear error).
        image_size: the side H = W the model's layers were sized for, or None when any size
            works (checked, so a wrong size is named here and not inside a matmul).
        spatial_dims: 2 for images (H, W), 0 for feature vectors.
    """

    def __init__(self, T: int, in_channels: int, image_size: int | None = None,
                 spatial_dims: int = 2):
        super().__init__()
        if not isinstance(T, int) or isinstance(T, bool) or T < 1:
            raise ParameterError(f"T must be a positive int, got {T!r}")
        if spatial_dims not in (0, 2):
            raise ParameterError(f"spatial_dims must be 2 (images) or 0 (vectors), "
                                 f"got {spatial_dims!r}")
        if spatial_dims == 0 and image_size is not None:
            raise ParameterError("image_size applies to images (spatial_dims=2), not vectors")
        self.T, self.in_channels = T, in_channels
        self.image_size, self.spatial_dims = image_size, spatial_dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise InputTypeError(f"model input must be a torch.Tensor, got {type(x).__name__}")
        static, channel_axis = 2 + self.spatial_dims, -1 - self.spatial_dims
        if x.dim() not in (static, static + 1) or x.shape[channel_axis] != self.in_channels:
            c = self.in_channels
            expected = (f"images [N, {c}, H, W] or event frames [T, N, {c}, H, W]"
                        if self.spatial_dims else f"vectors [N, {c}] or sequences [T, N, {c}]")
            raise InputError(f"model input must be {expected}, got shape {tuple(x.shape)}")
        if not x.is_floating_point():
            raise InputTypeError(f"model input must be floating point, got {x.dtype}")
        size = self.image_size
        if size is not None and tuple(x.shape[-2:]) != (size, size):
            raise InputError(f"this model was built for {size}x{size} inputs (image_size={size}), "
                             f"got {x.shape[-2]}x{x.shape[-1]} (input shape {tuple(x.shape)})")
        if x.dim() == static + 1:
            if x.shape[0] == 0:
                raise InputError(f"time-major input [T', N, ...] needs at least one step, got "
                                 f"shape {tuple(x.shape)}")
            return x
        return x.unsqueeze(0).expand(self.T, *x.shape).contiguous()

    def extra_repr(self) -> str:
        size = "" if self.image_size is None else f", image_size={self.image_size}"
        dims = "" if self.spatial_dims == 2 else f", spatial_dims={self.spatial_dims}"
        return f"T={self.T}, in_channels={self.in_channels}{size}{dims}"


class StemOnceEncoder(nn.Module):
    """Direct encoding with the stem run once: a static image ``[N, C, H, W]`` goes through
    `stem` (a stateless time-major layer such as a `ConvBN`) as one step, and that output
    ``[1, N, ...]`` is repeated T times; event frames ``[T', N, C, H, W]`` go through `stem`
    frame by frame, as with `Encoder`.

    Every step of a directly encoded image is the same, so the stem's output is too: the
    forward values and all gradients equal those of `Encoder` followed by `stem` (up to the
    float rounding of the sum over T). A tdBN in the stem sees the N images once instead of T
    copies: the same batch mean and variance, and a running variance updated with the unbiased
    factor n/(n-1) for n = N*H*W instead of T*N*H*W. (Operation counts in quadfire.analysis
    still charge the stem once per step, as for `Encoder`.)
    """

    def __init__(self, T: int, in_channels: int, stem: nn.Module, image_size: int | None = None):
        super().__init__()
        if not isinstance(T, int) or isinstance(T, bool) or T < 1:
            raise ParameterError(f"T must be a positive int, got {T!r}")
        self.input = Encoder(1, in_channels, image_size)  # checks, makes an image one step
        self.stem, self.T = stem, T

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        static = isinstance(x, torch.Tensor) and x.dim() == 2 + self.input.spatial_dims
        y = self.stem(self.input(x))
        return y.expand(self.T, *y.shape[1:]).contiguous() if static else y

    def extra_repr(self) -> str:
        return f"T={self.T}"
