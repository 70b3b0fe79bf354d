"""Folding BatchNorm into the convolution before it changes no output: every model of both configs, with
BatchNorm statistics and affine parameters far from their defaults, gives the same head maps after."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from simdistill_ros.geometry import nuscenes_like_rig
from simdistill_ros.models import BaselineModel, CameraInputs, StudentModel, TeacherModel
from simdistill_ros.models.batchnorm_fold import fold_batchnorm, fold_conv_batchnorm
from simdistill_ros.models.config import tiny, tiny_v2


def _randomise_batchnorm(model: nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.running_mean.copy_(torch.randn(c, generator=g) * 0.5)
                m.running_var.copy_(torch.rand(c, generator=g) * 2 + 0.2)
                m.weight.copy_(torch.rand(c, generator=g) + 0.5)
                m.bias.copy_(torch.randn(c, generator=g) * 0.3)


@pytest.mark.parametrize("config", [tiny, tiny_v2], ids=["tiny", "tiny_v2"])
@pytest.mark.parametrize("kind", [BaselineModel, StudentModel, TeacherModel], ids=lambda k: k.model_type)
def test_folded_models_give_the_same_maps(config, kind):
    torch.manual_seed(0)
    cfg = config()
    cfg.backbone.pretrained = False  # the weights do not matter here; no file read
    model = kind(cfg).eval()
    _randomise_batchnorm(model, 1)
    h, w = 64, 128
    rig = nuscenes_like_rig(h, w)
    cams = CameraInputs(
        torch.randn(1, 6, 3, h, w),
        torch.from_numpy(rig.intrinsics_array())[None].float(),
        torch.from_numpy(rig.cam_to_base_array())[None].float(),
    )
    points = [torch.rand(2000, 4) * torch.tensor([80.0, 80.0, 4.0, 1.0]) - torch.tensor([40.0, 40.0, 2.0, 0])]
    args = (cams, points) if kind is TeacherModel else (cams,)
    folded = copy.deepcopy(model)
    before = sum(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    n = fold_batchnorm(folded)
    left = [name for name, m in folded.named_modules() if isinstance(m, nn.BatchNorm2d)]
    assert n == before and left == []  # every one follows a convolution
    assert not any(p.requires_grad for p in folded.parameters())
    with torch.no_grad():
        want, got = model(*args).head, folded(*args).head
    for name in want:
        torch.testing.assert_close(got[name], want[name], rtol=1e-4, atol=1e-4, msg=name)


def test_folding_into_a_transposed_and_a_grouped_convolution():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 4, 5, 6, generator=g)
    for conv in (nn.ConvTranspose2d(4, 3, 2, stride=2, bias=True), nn.Conv2d(4, 4, 3, padding=1, groups=4)):
        bn = nn.BatchNorm2d(conv.out_channels)
        _randomise_batchnorm(bn, 3)
        bn.eval()
        with torch.no_grad():
            want = bn(conv(x))
            fold_conv_batchnorm(conv, bn)
            torch.testing.assert_close(conv(x), want, rtol=1e-5, atol=1e-5)
