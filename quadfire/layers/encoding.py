"""Input encoders: static images become T identical frames (direct encoding), event frames
pass through. Every model starts with one, so ``model(x)`` accepts either form."""
from __future__ import annotations

import torch
from torch import nn
from ..errors import InputError, InputTypeError, ParameterError


class Encoder(nn.Module):
    """Static ``[N, C, H, W]`` -> ``[T, N, C, H, W]`` (repeated T times, the first conv sees
    the analogue image: direct encoding); event frames ``[T', N, C, H, W]`` pass through
    unchanged and T' is taken from the input.

    Args:
        T: number of time steps for static inputs (>= 1).
        in_channels: the channel count C the model expects (checked, for a clear error).
        image_size: the side H = W the model's layers were sized for, or None when any size
            works (checked, so a wrong size is named here and not inside a matmul).
    """

    def __init__(self, T: int, in_channels: int, image_size: int | None = None):
        super().__init__()
        if not isinstance(T, int) or isinstance(T, bool) or T < 1:
            raise ParameterError(f"T must be a positive int, got {T!r}")
        self.T, self.in_channels, self.image_size = T, in_channels, image_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise InputTypeError(f"model input must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() not in (4, 5) or x.shape[-3] != self.in_channels:
            raise InputError(
                f"model input must be images [N, {self.in_channels}, H, W] or event frames "
                f"[T, N, {self.in_channels}, H, W], got shape {tuple(x.shape)}")
        if not x.is_floating_point():
            raise InputTypeError(f"model input must be floating point, got {x.dtype}")
        size = self.image_size
        if size is not None and tuple(x.shape[-2:]) != (size, size):
            raise InputError(f"this model was built for {size}x{size} inputs (image_size={size}), "
                             f"got {x.shape[-2]}x{x.shape[-1]} (input shape {tuple(x.shape)})")
        if x.dim() == 5:
            if x.shape[0] == 0:
                raise InputError(f"event input [T', N, C, H, W] needs at least one frame, got "
                                 f"shape {tuple(x.shape)}")
            return x
        return x.unsqueeze(0).expand(self.T, *x.shape).contiguous()

    def extra_repr(self) -> str:
        size = "" if self.image_size is None else f", image_size={self.image_size}"
        return f"T={self.T}, in_channels={self.in_channels}{size}"
