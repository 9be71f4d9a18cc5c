"""Input encoders: static images become T identical frames (direct encoding), event frames
pass through. Every model starts with one, so ``model(x)`` accepts either form."""
from __future__ import annotations

import torch
from torch import nn


class Encoder(nn.Module):
    """Static ``[N, C, H, W]`` -> ``[T, N, C, H, W]`` (repeated T times, the first conv sees
    the analogue image: direct encoding); event frames ``[T', N, C, H, W]`` pass through
    unchanged and T' is taken from the input. With ``spatial_dims=0`` the same holds for
    feature vectors: ``[N, C]`` is repeated, sequences ``[T', N, C]`` pass through.

    Args:
        T: number of time steps for static inputs (>= 1).
        in_channels: the channel count C the model expects (checked, for a clear error).
        spatial_dims: 2 for images (H, W), 0 for feature vectors.
    """

    def __init__(self, T: int, in_channels: int, spatial_dims: int = 2):
        super().__init__()
        if not isinstance(T, int) or T < 1:
            raise ValueError(f"T must be a positive int, got {T!r}")
        if spatial_dims not in (0, 2):
            raise ValueError(f"spatial_dims must be 2 (images) or 0 (vectors), "
                             f"got {spatial_dims!r}")
        self.T, self.in_channels, self.spatial_dims = T, in_channels, spatial_dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"model input must be a torch.Tensor, got {type(x).__name__}")
        static, channel_axis = 2 + self.spatial_dims, -1 - self.spatial_dims
        if x.dim() not in (static, static + 1) or x.shape[channel_axis] != self.in_channels:
            c = self.in_channels
            expected = (f"images [N, {c}, H, W] or event frames [T, N, {c}, H, W]"
                        if self.spatial_dims else f"vectors [N, {c}] or sequences [T, N, {c}]")
            raise ValueError(f"model input must be {expected}, got shape {tuple(x.shape)}")
        if not x.is_floating_point():
            raise TypeError(f"model input must be floating point, got {x.dtype}")
        if x.dim() == static + 1:
            return x
        return x.unsqueeze(0).expand(self.T, *x.shape).contiguous()

    def extra_repr(self) -> str:
        extra = "" if self.spatial_dims == 2 else f", spatial_dims={self.spatial_dims}"
        return f"T={self.T}, in_channels={self.in_channels}{extra}"
