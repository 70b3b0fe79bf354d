"""ConvFuser: concatenate BEV maps of the same grid and mix them with one 3x3 conv."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class ConvFuser(nn.Module):
    """[(B, C_i, X, Y), ...] -> concat -> 3x3 conv + BN + ReLU -> (B, out_channels, X, Y)."""

    def __init__(self, in_channels: list[int], out_channels: int) -> None:
        super().__init__()
        self.fuse = nn.Sequential(
            nn.Conv2d(sum(in_channels), out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, maps: list[Tensor]) -> Tensor:
        return self.fuse(torch.cat(maps, dim=1))
