"""Geometry Compensation Module: single-scale Deformable-DETR-style attention, used residually."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class DeformableAttention(nn.Module):
    """Each query attends to ``num_points`` bilinearly-sampled locations per head around its own cell.

    forward: query (B, C, H, W), value (B, C, H, W) -> (B, C, H, W).

    Sampling offsets are in cells of the map. At initialisation the offset layer has zero weights and a
    radial bias (head h points along angle 2*pi*h/heads, point k at (k + 1) cells), and the attention
    weight layer is all zero, i.e. uniform weights: the output is then independent of the query.
    """

    def __init__(self, embed_dim: int, num_heads: int, num_points: int) -> None:
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
        self.embed_dim, self.num_heads, self.num_points = embed_dim, num_heads, num_points
        self.value_proj = nn.Linear(embed_dim, embed_dim)
        self.sampling_offsets = nn.Linear(embed_dim, num_heads * num_points * 2)
        self.attention_weights = nn.Linear(embed_dim, num_heads * num_points)
        self.output_proj = nn.Linear(embed_dim, embed_dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.zeros_(self.sampling_offsets.weight)
        theta = torch.arange(self.num_heads, dtype=torch.float32) * (2 * math.pi / self.num_heads)
        direction = torch.stack([theta.cos(), theta.sin()], -1)
        direction = direction / direction.abs().max(-1, keepdim=True).values  # onto the unit square
        steps = torch.arange(1, self.num_points + 1, dtype=torch.float32)
        with torch.no_grad():
            self.sampling_offsets.bias.copy_((direction[:, None, :] * steps[None, :, None]).flatten())
        nn.init.zeros_(self.attention_weights.weight)
        nn.init.zeros_(self.attention_weights.bias)
        nn.init.xavier_uniform_(self.value_proj.weight)
        nn.init.zeros_(self.value_proj.bias)
        nn.init.xavier_uniform_(self.output_proj.weight)
        nn.init.zeros_(self.output_proj.bias)

    def forward(self, query: Tensor, value: Tensor) -> Tensor:
        b, c, h, w = query.shape
        nh, npt = self.num_heads, self.num_points
        q = query.flatten(2).transpose(1, 2)  # (B, HW, C)
        v = self.value_proj(value.flatten(2).transpose(1, 2))  # (B, HW, C)
        v = v.view(b, h * w, nh, c // nh).permute(0, 2, 3, 1).reshape(b * nh, c // nh, h, w)
        offsets = self.sampling_offsets(q).view(b, h * w, nh, npt, 2)
        attn = self.attention_weights(q).view(b, h * w, nh, npt).softmax(-1)
        ref = _reference_points(h, w, query.device, offsets.dtype)  # (HW, 2) in [0, 1], (x, y)
        scale = offsets.new_tensor([w, h])
        loc = ref[None, :, None, None, :] + offsets / scale
        grid = (2 * loc - 1).permute(0, 2, 1, 3, 4).reshape(b * nh, h * w, npt, 2)
        sampled = F.grid_sample(
            v, grid.to(v.dtype), mode="bilinear", padding_mode="zeros", align_corners=False
        )
        attn = attn.permute(0, 2, 1, 3).reshape(b * nh, 1, h * w, npt)
        out = (sampled * attn.to(sampled.dtype)).sum(-1)  # (B*heads, C/heads, HW)
        out = self.output_proj(out.reshape(b, c, h * w).transpose(1, 2))
        return out.transpose(1, 2).reshape(b, c, h, w)


def _reference_points(h: int, w: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    ys = (torch.arange(h, device=device, dtype=dtype) + 0.5) / h
    xs = (torch.arange(w, device=device, dtype=dtype) + 0.5) / w
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx.reshape(-1), gy.reshape(-1)], -1)


def sine_position_encoding(channels: int, h: int, w: int, device: torch.device | None = None) -> Tensor:
    """DETR-style 2D sine encoding (channels, H, W): first half encodes rows, second half columns."""
    if channels % 4:
        raise ValueError(f"channels {channels} must be a multiple of 4")
    half = channels // 2
    ys = (torch.arange(h, dtype=torch.float32, device=device) + 1) / h * 2 * math.pi
    xs = (torch.arange(w, dtype=torch.float32, device=device) + 1) / w * 2 * math.pi
    dim_t = 10000 ** (2 * (torch.arange(half, dtype=torch.float32, device=device) // 2) / half)

    def enc(coord: Tensor) -> Tensor:  # (L,) -> (half, L): sin on even, cos on odd channels
        x = coord[None, :] / dim_t[:, None]
        return torch.where((torch.arange(half, device=device) % 2 == 0)[:, None], x.sin(), x.cos())

    pos_y = enc(ys)[:, :, None].expand(half, h, w)
    pos_x = enc(xs)[:, None, :].expand(half, h, w)
    return torch.cat([pos_y, pos_x], 0)


class GeometryCompensation(nn.Module):
    """x + DeformableAttention(query = x + pos, value = x), pos a fixed sine encoding.

    forward: (B, C, H, W) -> (B, C, H, W)
    """

    def __init__(self, embed_dim: int, num_heads: int, num_points: int) -> None:
        super().__init__()
        self.attn = DeformableAttention(embed_dim, num_heads, num_points)
        self._pos_cache: dict[tuple, Tensor] = {}

    def position(self, h: int, w: int, device: torch.device, dtype: torch.dtype) -> Tensor:
        key = (h, w, str(device), dtype)
        if key not in self._pos_cache:
            self._pos_cache[key] = sine_position_encoding(self.attn.embed_dim, h, w, device).to(dtype)
        return self._pos_cache[key]

    def forward(self, x: Tensor) -> Tensor:
        pos = self.position(x.shape[2], x.shape[3], x.device, x.dtype)
        return x + self.attn(x + pos, x)
