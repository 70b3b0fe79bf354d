"""The balanced feature terms (per-channel scale, foreground and background apart), the loss options of
`simdistill train`, and the per-term gradient norms that the weights are set from."""

from __future__ import annotations

import argparse
import dataclasses

import pytest
import torch
from test_training_exact import make_batch, small_config

from simdistill_ros.errors import UserError
from simdistill_ros.models import StudentModel, TeacherModel
from simdistill_ros.training.command import build_config
from simdistill_ros.training.distillation import balanced_feature_loss
from simdistill_ros.training.gradient_shares import term_gradient_norms
from simdistill_ros.training.objectives import OnlineDistillationObjective


def _maps(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    s = torch.rand(2, 4, 8, 8, generator=g)
    t = torch.rand(2, 4, 8, 8, generator=g)
    mask = torch.zeros(2, 1, 8, 8)
    mask[:, :, 2:4, 2:4] = 1.0
    return s, t, mask


def test_every_channel_weighs_alike_whatever_its_scale() -> None:
    s, t, mask = _maps(0)
    base = balanced_feature_loss(s, t, mask, 1.0, 0.1)
    k = torch.tensor([1.0, 100.0, 0.01, 7.0]).view(1, 4, 1, 1)
    assert float(balanced_feature_loss(s * k, t * k, mask, 1.0, 0.1)) == pytest.approx(float(base), rel=1e-5)
    assert float(balanced_feature_loss(t, t, mask, 1.0, 0.1)) == 0.0


def test_foreground_and_background_are_averaged_apart() -> None:
    s, t, mask = _maps(1)
    only_bg = torch.where(mask.bool().expand_as(s), t, s)  # errors on background cells only
    assert float(balanced_feature_loss(only_bg, t, mask, 1.0, 0.0)) == 0.0
    bg = float(balanced_feature_loss(only_bg, t, mask, 0.0, 1.0))
    assert bg > 0
    # a tiny foreground is not swamped: its mean counts as much as the background's at equal weights
    only_fg = torch.where(mask.bool().expand_as(s), s, t)
    fg = float(balanced_feature_loss(only_fg, t, mask, 1.0, 0.0))
    both = float(balanced_feature_loss(s, t, mask, 1.0, 1.0))
    assert both == pytest.approx(fg + bg, rel=1e-5)


def _args(model: str, **kw) -> argparse.Namespace:
    base = dict(
        config="tiny", model=model, disable=[], loss_weights=[], depth_weight=None, feature_loss=None,
        sim_channels=None, sim_depthnet_channels=None, sim_gcm_stride=None,
    )  # fmt: skip
    return argparse.Namespace(**{**base, **kw})


def test_loss_options_set_the_config_and_refuse_what_cannot_apply() -> None:
    cfg = build_config(_args("student", loss_weights=["imd=0.5", "feature_bg=0.2"], feature_loss="balanced"))
    assert (cfg.loss.imd, cfg.loss.feature_bg, cfg.loss.feature_loss) == (0.5, 0.2, "balanced")
    assert build_config(_args("baseline", depth_weight=3.0)).loss.depth == 3.0
    for bad, words in (
        (_args("student", loss_weights=["imd"]), "NAME=VALUE"),
        (_args("student", loss_weights=["nope=1"]), "NAME one of"),
        (_args("student", loss_weights=["cmd=x"]), "not a number"),
        (_args("student", loss_weights=["cmd=-1"]), ">= 0"),
        (_args("baseline", loss_weights=["imd=1"]), "student only"),
        (_args("teacher", feature_loss="balanced"), "student only"),
    ):
        with pytest.raises(UserError, match=words):
            build_config(bad)


def test_gradient_norms_name_what_each_term_reaches() -> None:
    cfg = small_config()
    cfg.loss = dataclasses.replace(cfg.loss, feature_loss="balanced")
    torch.manual_seed(0)
    teacher, student = TeacherModel(cfg), StudentModel(cfg).train()
    terms = OnlineDistillationObjective(cfg, teacher)(student, make_batch(5))
    camera = term_gradient_norms(terms, student.camera.parameters())
    head = term_gradient_norms(terms, student.head.parameters())
    assert {"gt_heatmap", "imd", "cmd", "mmd_feat"} <= set(camera)
    assert all(v > 0 for v in camera.values())
    # the head lies after the fused map: the feature terms never reach it
    assert head["imd"] == head["cmd"] == head["mmd_feat"] == 0.0 and head["gt_heatmap"] > 0
