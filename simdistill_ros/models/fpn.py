"""FPN neck fusing stride 8/16/32 maps into one stride-8 map."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from simdistill_ros.models.backbone import conv_bn_relu


class FPN(nn.Module):
    """Top-down FPN with a single stride-8 output.

    forward: [(B, C2, H/8, W/8), (B, C3, H/16, W/16), (B, C4, H/32, W/32)] -> (B, out_channels, H/8, W/8)
    """

    def __init__(self, in_channels: list[int], out_channels: int) -> None:
        super().__init__()
        self.lateral = nn.ModuleList(nn.Conv2d(c, out_channels, 1) for c in in_channels)
        self.output = conv_bn_relu(out_channels, out_channels, 3)

    def forward(self, feats: list[Tensor]) -> Tensor:
        x = self.lateral[-1](feats[-1])
        for lat, f in zip(reversed(self.lateral[:-1]), reversed(feats[:-1])):
            x = lat(f) + F.interpolate(x, size=f.shape[-2:], mode="bilinear", align_corners=False)
        return self.output(x)
