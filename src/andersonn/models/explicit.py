"""An explicit (weight-untied, fixed-depth) counterpart of the DEQ classifier, as a baseline."""

from __future__ import annotations

import torch
from torch import nn

from .classifier import DEQClassifier
from .implicit import ImplicitConvBlock

__all__ = ["ExplicitStack", "explicit_classifier"]


class ExplicitStack(nn.Module):
    """``depth`` independent copies of the poster's block applied once each from z = 0:
    z_{i+1} = f_i(z_i, x). With depth 1 it has exactly the DEQ's parameters, but no fixed point."""

    def __init__(self, channels: int, inner_channels: int, groups: int, depth: int) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self.blocks = nn.ModuleList(ImplicitConvBlock(channels, inner_channels, groups) for _ in range(depth))
        self.last_forward = None
        self.last_backward = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = torch.zeros_like(x)
        for block in self.blocks:
            z = block(z, x)
        return z


def explicit_classifier(
    in_channels: int = 3, image_size: int = 32, num_classes: int = 10, *, channels: int = 48,
    inner_channels: int = 64, groups: int = 8, pool: int = 8, depth: int = 1, channel_sums: bool = False,
) -> DEQClassifier:
    """Same stem and head as :func:`andersonn.models.deq_classifier`, with an explicit stack in place of the DEQ.

    Example:
        >>> from andersonn.models import count_parameters, deq_classifier, explicit_classifier
        >>> count_parameters(explicit_classifier()) == count_parameters(deq_classifier())
        True
    """
    model = DEQClassifier(in_channels, image_size, num_classes, channels, inner_channels, groups, pool, {},
                          channel_sums)
    model.deq = ExplicitStack(channels, inner_channels, groups, depth)
    model.config["arch"] = "explicit"
    model.config["depth"] = depth
    return model
