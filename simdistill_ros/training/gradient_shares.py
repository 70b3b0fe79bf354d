"""How much each loss term pulls on a part of the model: the gradient norm of every term alone, so that
term weights can be set from measurement (a distillation term whose gradient is a hundredth of the
detection loss's cannot teach the camera branch anything, whatever it measures)."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import Tensor, nn


def term_gradient_norms(terms: dict[str, Tensor], params: Iterable[nn.Parameter]) -> dict[str, float]:
    """The L2 norm over ``params`` of the gradient of each term of ``terms`` (all but "loss") taken alone;
    0 for a term that does not reach them."""
    params = [p for p in params if p.requires_grad]
    norms: dict[str, float] = {}
    for name, value in terms.items():
        if name == "loss" or not value.requires_grad:
            continue
        grads = torch.autograd.grad(value, params, retain_graph=True, allow_unused=True)
        norms[name] = math.sqrt(sum(float(g.pow(2).sum()) for g in grads if g is not None))
    return norms
