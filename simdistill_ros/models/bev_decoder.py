"""BEV decoder: residual stages at decreasing resolution, then an FPN back to the input resolution."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from simdistill_ros.models.backbone import BasicBlock
from simdistill_ros.models.config import DecoderConfig


class BEVDecoder(nn.Module):
    """(B, C_in, X, Y) -> (B, out_channels, X, Y).

    Stage i has ``stage_blocks[i]`` BasicBlocks at stride 2**i; every stage output is projected and
    upsampled back to stride 1, the projections are concatenated and mixed by a 3x3 conv.
    """

    def __init__(self, in_channels: int, cfg: DecoderConfig) -> None:
        super().__init__()
        if len(cfg.stage_channels) != len(cfg.stage_blocks):
            raise ValueError("DecoderConfig.stage_channels and .stage_blocks must have the same length")
        self.stages = nn.ModuleList()
        self.ups = nn.ModuleList()
        cin = in_channels
        lateral = cfg.out_channels // 2
        for i, (c, n) in enumerate(zip(cfg.stage_channels, cfg.stage_blocks)):
            blocks = [BasicBlock(cin, c, stride=1 if i == 0 else 2)]
            blocks += [BasicBlock(c, c) for _ in range(n - 1)]
            self.stages.append(nn.Sequential(*blocks))
            cin = c
            scale = 2**i
            up: nn.Module
            if scale == 1:
                up = nn.Conv2d(c, lateral, 1, bias=False)
            else:
                up = nn.ConvTranspose2d(c, lateral, scale, stride=scale, bias=False)
            self.ups.append(nn.Sequential(up, nn.BatchNorm2d(lateral), nn.ReLU(inplace=True)))
        self.out = nn.Sequential(
            nn.Conv2d(lateral * len(cfg.stage_channels), cfg.out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(cfg.out_channels),
            nn.ReLU(inplace=True),
        )
        self.out_channels = cfg.out_channels

    def forward(self, x: Tensor) -> Tensor:
        outs = []
        for stage, up in zip(self.stages, self.ups):
            x = stage(x)
            outs.append(up(x))
        return self.out(torch.cat(outs, dim=1))
