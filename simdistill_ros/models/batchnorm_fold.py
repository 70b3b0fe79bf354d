"""Inference: every BatchNorm that directly follows a convolution folded into that convolution.

In eval mode a BatchNorm is a per-channel affine map, ``y = x * s + t`` with ``s = gamma / sqrt(var + eps)``
and ``t = beta - mean * s``, so ``bn(conv(x))`` is one convolution with weights scaled by ``s`` per output
channel and bias ``bias * s + t``: a pass over every feature map fewer. Exporters and runtimes (ONNX
Runtime, TensorRT) do this to a graph; this does it to the torch modules the ``torch`` backend runs.

Pairs are found two ways: consecutive children of an ``nn.Sequential`` (a convolution, then its
BatchNorm2d), and the ``(conv, bn)`` attribute names a module lists in ``CONV_BN_PAIRS`` (modules that call
them from ``forward``: residual blocks, the EfficientNet blocks). A folded BatchNorm becomes ``Identity``.
"""

from __future__ import annotations

import torch
from torch import nn

_CONVS = (nn.Conv2d, nn.ConvTranspose2d)


@torch.no_grad()
def fold_conv_batchnorm(conv: nn.Conv2d | nn.ConvTranspose2d, bn: nn.BatchNorm2d) -> None:
    """Fold eval-mode ``bn`` into ``conv`` (in place; ``bn`` is left as it was)."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    shift = bn.bias - bn.running_mean * scale
    if isinstance(conv, nn.ConvTranspose2d):
        if conv.groups != 1:
            raise ValueError("folding into a grouped transposed convolution is not supported")
        conv.weight.mul_(scale.view(1, -1, 1, 1))  # (C_in, C_out, kH, kW)
    else:
        conv.weight.mul_(scale.view(-1, 1, 1, 1))  # (C_out, C_in / groups, kH, kW)
    bias = conv.bias * scale + shift if conv.bias is not None else shift
    conv.bias = nn.Parameter(bias.clone(), requires_grad=False)


def fold_batchnorm(model: nn.Module) -> int:
    """Fold, in place, every BatchNorm2d that directly follows a convolution into it; returns how many.

    For inference only: the model is put in eval mode and its gradients are turned off, since a folded
    model no longer has the BatchNorm statistics that training updates."""
    model.eval()
    model.requires_grad_(False)
    folded = 0
    for module in list(model.modules()):
        for conv_name, bn_name in _conv_bn_names(module):
            conv, bn = getattr(module, conv_name, None), getattr(module, bn_name, None)
            if isinstance(conv, _CONVS) and type(bn) is nn.BatchNorm2d:
                fold_conv_batchnorm(conv, bn)
                setattr(module, bn_name, nn.Identity())
                folded += 1
    return folded


def _conv_bn_names(module: nn.Module) -> list[tuple[str, str]]:
    """Candidate (conv, bn) child names: consecutive children of a Sequential, and ``CONV_BN_PAIRS``."""
    pairs = list(getattr(module, "CONV_BN_PAIRS", ()))
    if isinstance(module, nn.Sequential):
        names = [name for name, _ in module.named_children()]
        pairs += zip(names, names[1:])
    return pairs
