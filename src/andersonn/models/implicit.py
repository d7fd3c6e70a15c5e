"""The poster's implicit layer f(z, x)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["ImplicitConvBlock"]


class ImplicitConvBlock(nn.Module):
    """f(z, x) = norm(ReLU(z + norm(x + W2 * norm(ReLU(W1 * z))))).

    W1 maps the ``channels`` (d) outer channels to ``inner_channels`` (k1) with a
    3x3 convolution, W2 maps them back, and every norm is a GroupNorm, which
    treats samples independently (required for per-sample convergence). The
    output has the shape of z (and of the injected x): (n, d, H, W).

    Example:
        >>> import torch
        >>> f = ImplicitConvBlock(channels=48, inner_channels=64)
        >>> z = torch.zeros(2, 48, 8, 8)
        >>> f(z, torch.randn(2, 48, 8, 8)).shape
        torch.Size([2, 48, 8, 8])
    """

    def __init__(
        self, channels: int = 48, inner_channels: int = 64, groups: int = 8, kernel_size: int = 3,
        init_std: float = 0.01,
    ) -> None:
        super().__init__()
        for name, c in (("channels", channels), ("inner_channels", inner_channels)):
            if c % groups:
                raise ValueError(f"{name}={c} must be divisible by groups={groups}")
        pad = kernel_size // 2
        self.conv1 = nn.Conv2d(channels, inner_channels, kernel_size, padding=pad, bias=False)
        self.conv2 = nn.Conv2d(inner_channels, channels, kernel_size, padding=pad, bias=False)
        self.norm1 = nn.GroupNorm(groups, inner_channels)
        self.norm2 = nn.GroupNorm(groups, channels)
        self.norm3 = nn.GroupNorm(groups, channels)
        # Small weights keep f contractive at initialisation (as in the implicit-layers tutorial).
        nn.init.normal_(self.conv1.weight, 0.0, init_std)
        nn.init.normal_(self.conv2.weight, 0.0, init_std)

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        y = self.norm1(F.relu(self.conv1(z)))
        return self.norm3(F.relu(z + self.norm2(x + self.conv2(y))))
