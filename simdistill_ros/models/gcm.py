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
        # Layout chosen for the CPU (the profile's hot spots were transposes, two small matmuls and a
        # softmax over a last dim of 4): the projections run as 1x1 convolutions on the (B, C, HW) maps,
        # offsets and weights in one, and everything per point keeps HW innermost: the grid is
        # (B*heads, points, HW, 2), so that the softmax and the weighted sum over points run along
        # contiguous HW. Same weights and arithmetic as the (B, HW, C) formulation.
        b, c, h, w = query.shape
        nh, npt, hw = self.num_heads, self.num_points, h * w
        v = _conv1x1(value.flatten(2), self.value_proj.weight, self.value_proj.bias)  # (B, C, HW)
        v = v.reshape(b * nh, c // nh, h, w)  # C = (heads, C/heads)
        weight = torch.cat([self.sampling_offsets.weight, self.attention_weights.weight])
        bias = torch.cat([self.sampling_offsets.bias, self.attention_weights.bias])
        proj = _conv1x1(query.flatten(2), weight, bias)  # (B, heads*points*3, HW)
        k = nh * npt * 2
        offsets = proj[:, :k].reshape(b, nh, npt, 2, hw)
        attn = proj[:, k:].reshape(b * nh, 1, npt, hw).softmax(2)
        ref = _reference_points(h, w, query.device, offsets.dtype).T  # (2, HW) in [0, 1], (x, y)
        scale = offsets.new_tensor([w, h])[:, None]
        loc = ref + offsets / scale
        grid = (2 * loc - 1).transpose(-1, -2).reshape(b * nh, npt, hw, 2)
        sampled = F.grid_sample(
            v, grid.to(v.dtype), mode="bilinear", padding_mode="zeros", align_corners=False
        )  # (B*heads, C/heads, points, HW)
        out = (sampled * attn.to(sampled.dtype)).sum(2)  # (B*heads, C/heads, HW)
        out = _conv1x1(out.reshape(b, c, hw), self.output_proj.weight, self.output_proj.bias)
        return out.view(b, c, h, w)


def _conv1x1(x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    """A Linear's (weight, bias) applied to every column of x (B, C_in, L) -> (B, C_out, L), without
    transposing x."""
    return F.conv1d(x, weight[:, :, None], bias)


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

    With ``stride`` s > 1 the attention runs on x average-pooled by s (H/s x W/s queries, offsets in coarse
    cells) and its output is bilinearly upsampled before the residual add: s*s times fewer sampled points,
    for the light simulated-LiDAR branch, whose BEV attention is onnxruntime's costliest node at s = 1.

    forward: (B, C, H, W) -> (B, C, H, W); H and W divisible by ``stride``
    """

    def __init__(self, embed_dim: int, num_heads: int, num_points: int, stride: int = 1) -> None:
        super().__init__()
        if stride < 1:
            raise ValueError(f"stride {stride} must be >= 1")
        self.attn = DeformableAttention(embed_dim, num_heads, num_points)
        self.stride = stride
        self._pos_cache: dict[tuple, Tensor] = {}

    def position(self, h: int, w: int, device: torch.device, dtype: torch.dtype) -> Tensor:
        key = (h, w, str(device), dtype)
        if key not in self._pos_cache:
            self._pos_cache[key] = sine_position_encoding(self.attn.embed_dim, h, w, device).to(dtype)
        return self._pos_cache[key]

    def forward(self, x: Tensor) -> Tensor:
        if self.stride == 1:
            pos = self.position(x.shape[2], x.shape[3], x.device, x.dtype)
            return x + self.attn(x + pos, x)
        coarse = F.avg_pool2d(x, self.stride)
        pos = self.position(coarse.shape[2], coarse.shape[3], x.device, x.dtype)
        delta = self.attn(coarse + pos, coarse)
        return x + F.interpolate(delta, size=x.shape[-2:], mode="bilinear", align_corners=False)
