"""EfficientNet-Lite0 backbone: the published ImageNet weights load strictly and act like ImageNet weights."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from simdistill_ros.geometry import nuscenes_like_rig
from simdistill_ros.models import config as C
from simdistill_ros.models.checkpoint import load_checkpoint, save_checkpoint
from simdistill_ros.models.detectors import BaselineModel
from simdistill_ros.models.efficientnet import EfficientNetLite0, lite0_weights_path, load_lite0_imagenet
from simdistill_ros.models.preprocess import normalize_images
from simdistill_ros.synth.scenario import SceneRecording
from simdistill_ros.synth.world import WorldConfig, generate_scene


@pytest.fixture(scope="module")
def lite0() -> EfficientNetLite0:
    model = EfficientNetLite0()
    load_lite0_imagenet(model)
    return model.eval()


def test_every_published_tensor_loads_by_name() -> None:
    state = torch.load(lite0_weights_path(), map_location="cpu", weights_only=True)
    model = EfficientNetLite0()
    assert len(state) == 296
    assert set(state) == set(model.state_dict())
    assert all(state[k].shape == v.shape for k, v in model.state_dict().items())
    result = model.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys


def test_stem_pads_like_tensorflow_same(lite0: EfficientNetLite0) -> None:
    # TF SAME on an even input with stride 2 pads nothing above/left: output (0, 0) sees input rows/cols 0..2
    x = torch.randn(1, 3, 32, 48)
    conv = lite0._conv_stem
    out = conv(x)
    assert out.shape[-2:] == (16, 24)
    by_hand = (x[0, :, 0:3, 0:3] * conv.weight[5]).sum()
    torch.testing.assert_close(out[0, 5, 0, 0], by_hand, rtol=1e-4, atol=1e-5)
    # the last output row/col sees the one padded zero row/col at the bottom/right
    by_hand = (F.pad(x, [0, 1, 0, 1])[0, :, 30:33, 46:49] * conv.weight[5]).sum()
    torch.testing.assert_close(out[0, 5, 15, 23], by_hand, rtol=1e-4, atol=1e-5)


def test_feature_strides_and_classifier(lite0: EfficientNetLite0) -> None:
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        feats = lite0(x)
        logits = lite0.classify(x)
    assert [f.shape[1] for f in feats] == lite0.out_channels == [40, 112, 320]
    assert [tuple(f.shape[-2:]) for f in feats] == [(8, 12), (4, 6), (2, 3)]
    assert logits.shape == (2, 1000) and torch.isfinite(logits).all()


def test_batchnorm_statistics_match_road_images(lite0: EfficientNetLite0) -> None:
    """On rendered road images the per-channel variance entering each BatchNorm is close to the ImageNet
    running variance. A missing skip, a wrong activation or the wrong input normalisation puts it off by
    about e^2.3 (10x) in the median layer; the right network stays within e^0.3-ish."""
    scene = generate_scene(np.random.default_rng(3), WorldConfig())
    rec = SceneRecording(scene, nuscenes_like_rig(96, 160), num_frames=1)
    rgb = np.stack([rec.render_camera(0, i).rgb for i in range(3)])[None]
    x = normalize_images(torch.from_numpy(rgb))[0]
    log_ratio: list[float] = []

    def hook(m: torch.nn.BatchNorm2d, inputs: tuple[torch.Tensor], _out: torch.Tensor) -> None:
        var = inputs[0].var((0, 2, 3))
        ratio = (var + m.eps).log() - (m.running_var + m.eps).log()
        log_ratio.append(float(ratio.abs().median()))

    bns = [m for m in lite0.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    hooks = [m.register_forward_hook(hook) for m in bns]
    with torch.no_grad():
        logits = lite0.classify(x)
    for h in hooks:
        h.remove()
    assert len(log_ratio) == len(bns) == 49
    assert torch.isfinite(logits).all()
    assert float(np.median(log_ratio)) < 1.0


def test_freezing_keeps_stem_and_first_stages_fixed() -> None:
    model = EfficientNetLite0(frozen_stages=3).train()
    frozen = [model._conv_stem, model._bn0, *model._blocks[: model.stage_ends[2] + 1]]
    assert all(not p.requires_grad for m in frozen for p in m.parameters())
    assert all(not m.training for m in frozen)
    assert all(p.requires_grad for p in model._blocks[model.stage_ends[2] + 1].parameters())
    with pytest.raises(ValueError, match="frozen_stages"):
        EfficientNetLite0(frozen_stages=8)


def test_detector_with_pretrained_lite0_round_trips(tmp_path) -> None:
    cfg = C.tiny()
    cfg.backbone = C.BackboneConfig(
        kind="efficientnet_lite0", pretrained=True, frozen_stages=2, neck_channels=64
    )
    model = BaselineModel(cfg)
    reference = torch.load(lite0_weights_path(), map_location="cpu", weights_only=True)
    key = "_blocks.7._depthwise_conv.weight"
    torch.testing.assert_close(model.camera.backbone._blocks[7]._depthwise_conv.weight, reference[key])
    save_checkpoint(tmp_path / "m", model, cfg, {})
    # loading rebuilds without the ImageNet start (the checkpoint holds every weight) and keeps the config
    with mock.patch("simdistill_ros.models.efficientnet.load_lite0_imagenet") as imagenet:
        loaded, loaded_cfg, _ = load_checkpoint(tmp_path / "m")
    imagenet.assert_not_called()
    assert loaded_cfg.backbone.kind == "efficientnet_lite0" and loaded_cfg.backbone.pretrained
    mine, theirs = model.state_dict(), loaded.state_dict()
    assert set(mine) == set(theirs)
    assert all(torch.equal(mine[k], theirs[k]) for k in mine)


def test_old_config_without_kind_means_resnet() -> None:
    data = C.tiny().to_dict()
    for key in ("kind", "pretrained", "frozen_stages"):
        del data["backbone"][key]
    cfg = C.ModelConfig.from_dict(data)
    assert cfg.backbone.kind == "resnet"
    assert type(BaselineModel(cfg).camera.backbone).__name__ == "ResNet"
    bad = C.tiny()
    bad.backbone.kind = "vgg"
    with pytest.raises(ValueError, match="backbone.kind"):
        bad.validate()
