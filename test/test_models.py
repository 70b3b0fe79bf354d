"""Models: shapes and gradients, view-transform geometry, pillars, targets/decoding, distillation, GCM,
checkpoints. Small inputs throughout (2 CPU threads)."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import warnings
from dataclasses import replace

import pytest
import torch

from simdistill_ros.models import (
    BaselineModel,
    CameraInputs,
    CheckpointError,
    DetectorOutputs,
    ModelConfig,
    StudentModel,
    TeacherModel,
    load_checkpoint,
    load_matching_weights,
    nuscenes,
    save_checkpoint,
    tiny,
)
from simdistill_ros.models.checkpoint import SHIPPED_MODELS
from simdistill_ros.models.config import light_sim_branch
from simdistill_ros.models.gcm import DeformableAttention, GeometryCompensation
from simdistill_ros.models.head import REG_FIELDS, CenterHead
from simdistill_ros.models.lift_splat import LiftSplat
from simdistill_ros.models.pillars import PillarEncoder
from simdistill_ros.training.distillation import (
    cmd_loss,
    distillation_losses,
    foreground_mask,
    pseudo_label_targets,
    simdistill_loss,
)

torch.set_num_threads(2)

H, W = 64, 176  # small test images (stride-8 features: 8 x 22)

# optical (x right, y down, z forward) -> base (x forward, y left, z up)
OPTICAL_TO_BASE = torch.tensor([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


def ring_cameras(b: int, n: int, h: int = H, w: int = W, seed: int = 0) -> CameraInputs:
    """n cameras on a ring, looking outwards, random images."""
    g = torch.Generator().manual_seed(seed)
    k = torch.tensor([[0.7 * w, 0.0, w / 2], [0.0, 0.7 * w, h / 2], [0.0, 0.0, 1.0]])
    poses = []
    for i in range(n):
        yaw = 2 * math.pi * i / n
        c, s = math.cos(yaw), math.sin(yaw)
        rz = torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
        t = torch.eye(4)
        t[:3, :3] = rz @ OPTICAL_TO_BASE
        t[:3, 3] = torch.tensor([1.0 * c, 1.0 * s, 1.6])
        poses.append(t)
    return CameraInputs(
        images=torch.randn(b, n, 3, h, w, generator=g),
        intrinsics=k.expand(b, n, 3, 3).clone(),
        cam_to_base=torch.stack(poses).expand(b, n, 4, 4).clone(),
    )


def random_points(b: int, p: int = 4000, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    scale = torch.tensor([30.0, 30.0, 1.0, 1.0])
    return [torch.randn(p, 4, generator=g) * scale for _ in range(b)]


def gt_boxes(b: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    boxes = torch.tensor(
        [
            [10.3, -5.1, 0.8, 4.5, 1.9, 1.6, 0.3, 2.0, -0.5],
            [-12.0, 8.7, 1.0, 11.0, 2.9, 3.5, -2.9, 0.0, 0.0],
            [3.1, 20.2, 0.9, 0.7, 0.7, 1.8, 1.2, 0.4, 0.1],
        ]
    )
    labels = torch.tensor([0, 3, 8])
    return [boxes.clone() for _ in range(b)], [labels.clone() for _ in range(b)]


def head_loss(out: DetectorOutputs) -> torch.Tensor:
    return sum(v.float().square().mean() for v in out.head.values()) + out.fused_bev.mean()


# --- models --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("model_cls", [TeacherModel, BaselineModel, StudentModel])
def test_tiny_forward_backward(model_cls: type) -> None:
    torch.manual_seed(0)
    cfg = tiny()
    model = model_cls(cfg)
    b, n = 2, 3
    cams = ring_cameras(b, n)
    out = model(cams, random_points(b)) if model_cls is TeacherModel else model(cams)
    bx, by = cfg.grid.bev_shape
    assert out.camera_bev.shape == (b, cfg.view_transform.out_channels, bx, by)
    assert out.head["heatmap"].shape == (b, cfg.head.num_classes, bx, by)
    for name, ch in REG_FIELDS:
        assert out.head[name].shape == (b, ch, bx, by)
    assert out.depth.shape == (b, n, cfg.grid.num_depth_bins, H // 8, W // 8)
    if model_cls is BaselineModel:
        assert out.lidar_bev is None
    else:
        assert out.lidar_bev.shape == (b, cfg.pillars.out_channels, bx, by)
        assert out.fused_bev.shape == (b, cfg.fused_channels, bx, by)
    head_loss(out).backward()
    # every parameter takes part (DDP runs with find_unused_parameters=False)
    unused = [k for k, p in model.named_parameters() if p.grad is None]
    assert not unused, unused[:5]
    model.eval()
    dets = model.detect(cams, random_points(b)) if model_cls is TeacherModel else model.detect(cams)
    assert len(dets) == b
    boxes, scores, labels = dets[0]
    assert boxes.shape[1] == 9 and scores.shape == labels.shape == boxes.shape[:1]


def test_any_number_of_cameras() -> None:
    model = StudentModel(tiny()).eval()
    for n in (1, 4):
        out = model(ring_cameras(1, n))
        assert out.depth.shape[1] == n


def test_nuscenes_config_forward_backward() -> None:
    # The full-size student at its 256x704 input, one camera (the heaviest part is the 360x360 splat grid,
    # which does not shrink with the image); ~15 s on 2 cores.
    torch.manual_seed(0)
    cfg = nuscenes()
    model = StudentModel(cfg)
    h, w = cfg.image_size
    out = model(ring_cameras(1, 1, h, w))
    assert out.fused_bev.shape == (1, 256, 180, 180)
    assert out.depth.shape == (1, 1, 118, 32, 88)
    head_loss(out).backward()
    # every trainable parameter learns (DDP needs that); the backbone starts from ImageNet, unfrozen
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    assert cfg.backbone.pretrained and cfg.backbone.frozen_stages == 0
    assert all(p.requires_grad for p in model.camera.backbone._blocks.parameters())


def test_nuscenes_teacher_and_baseline_build() -> None:
    cfg = nuscenes()
    for cls in (TeacherModel, BaselineModel):
        model = cls(cfg)
        assert model.head.branches["heatmap"][-1].out_channels == 10
    teacher = TeacherModel(cfg)
    assert cfg.pillars.lidar_sweeps == 10  # x, y, z, intensity and the sweep's time lag
    points = [torch.cat([p, torch.rand(len(p), 1) * 0.45], 1) for p in random_points(1, 2000)]
    lidar = teacher.lidar(points)
    assert lidar.shape == (1, cfg.pillars.out_channels, 180, 180)


def test_use_gcm_switch() -> None:
    cfg = tiny()
    cfg.gcm.enabled = False
    model = StudentModel(cfg)
    assert isinstance(model.sim_lidar.image_gcm, torch.nn.Identity)
    assert isinstance(model.sim_lidar.bev_gcm, torch.nn.Identity)
    assert model(ring_cameras(1, 2)).lidar_bev.shape[1] == cfg.pillars.out_channels
    assert isinstance(StudentModel(tiny()).sim_lidar.bev_gcm, GeometryCompensation)


def test_teacher_freeze_stays_in_eval() -> None:
    teacher = TeacherModel(tiny()).freeze()
    teacher.train()
    assert not teacher.training
    assert all(not p.requires_grad for p in teacher.parameters())


# --- lift-splat ----------------------------------------------------------------------------------------
def test_lift_splat_geometry_cache() -> None:
    cfg = tiny()
    ls = LiftSplat(cfg.grid, 8, 4, 4)
    cams = ring_cameras(1, 2)
    feats = torch.randn(2, 8, H // 8, W // 8)
    ls(feats, cams.intrinsics, cams.cam_to_base, (H, W))
    assert (ls.cache_misses, ls.cache_hits) == (1, 0)
    idx = ls.geometry(cams.intrinsics.clone(), cams.cam_to_base.clone(), (H, W), (H // 8, W // 8))
    assert (ls.cache_misses, ls.cache_hits) == (1, 1)
    moved = cams.cam_to_base.clone()
    moved[..., 0, 3] += 1.0
    idx2 = ls.geometry(cams.intrinsics, moved, (H, W), (H // 8, W // 8))
    assert (ls.cache_misses, ls.cache_hits) == (2, 1)
    assert not torch.equal(idx, idx2)
    # a fresh computation equals the cached one
    ls.clear_cache()
    assert torch.equal(ls.geometry(cams.intrinsics, cams.cam_to_base, (H, W), (H // 8, W // 8)), idx)


def test_splat_hand_made_case() -> None:
    cfg = tiny()  # 0.8 m cells over [-40, 40]; depth bin k centred at 1.5 + k m
    ls = LiftSplat(cfg.grid, 8, 3, 3)
    fh, fw = H // 8, W // 8
    i, j = 3, 10  # this feature cell's centre is the principal point, so its ray is the optical axis
    k = torch.tensor([[[100.0, 0.0, (j + 0.5) * 8], [0.0, 100.0, (i + 0.5) * 8], [0.0, 0.0, 1.0]]])
    pose = torch.eye(4)
    pose[:3, :3] = OPTICAL_TO_BASE
    pose[:3, 3] = torch.tensor([0.0, 0.4, 1.0])
    idx = ls.geometry(k[None], pose[None, None], (H, W), (fh, fw))
    pts = ls.frustum_points(k[None], pose[None, None], (H, W), (fh, fw))
    assert torch.allclose(pts[0, 0, 9, i * fw + j], torch.tensor([10.5, 0.4, 1.0], dtype=torch.float64))

    depth = torch.zeros(1, fh, fw, ls.num_bins)  # bins innermost
    depth[0, i, j, 9] = 1.0  # 10.5 m ahead -> x cell floor(50.5 / 0.8) = 63, y 0.4 -> cell 50
    context = torch.zeros(1, fh, fw, 3)
    context[0, i, j] = torch.tensor([1.0, 2.0, 3.0])
    bev = ls.splat(depth, context, idx, 1)
    assert bev.shape == (1, 3, 100, 100)
    assert torch.equal(bev[0, :, 63, 50], torch.tensor([1.0, 2.0, 3.0]))
    assert bev.abs().sum() == 6.0
    # the last bin (48.5 m) is outside the 40 m grid: it lands in the dump cell, not in the map
    depth.zero_()
    depth[0, i, j, -1] = 1.0
    assert ls.splat(depth, context, idx, 1).abs().sum() == 0.0


# --- pillars -------------------------------------------------------------------------------------------
def test_pillars_drop_nan_points() -> None:
    torch.manual_seed(0)
    cfg = tiny()
    enc = PillarEncoder(cfg.grid, cfg.pillars)
    pts = random_points(2, 1000)
    bad = torch.tensor(
        [[float("nan"), 1.0, 0.0, 0.5], [1.0, float("inf"), 0.0, 0.5], [2.0, 2.0, 0.0, float("nan")]]
    )
    dirty = [torch.cat([pts[0][:500], bad, pts[0][500:]]), torch.cat([bad, pts[1]])]
    for train in (True, False):
        enc.train(train)
        clean_out, dirty_out = enc(pts), enc(dirty)
        assert torch.isfinite(dirty_out).all()
        assert torch.allclose(clean_out, dirty_out, atol=1e-6)
    assert clean_out.shape == (2, cfg.pillars.out_channels, *cfg.grid.bev_shape)
    # an empty cloud still works
    enc.train()
    assert enc([torch.zeros(0, 4), bad]).shape[0] == 2


# --- head ----------------------------------------------------------------------------------------------
def test_targets_decode_round_trip() -> None:
    cfg = tiny()
    head = CenterHead(8, cfg.grid, cfg.head)
    boxes, labels = gt_boxes(2)
    boxes[1] = boxes[1][:2]
    labels[1] = labels[1][:2]
    t = head.build_targets(boxes, labels)
    assert t.mask.sum(1).tolist() == [3, 2]
    assert t.heatmap.max() == 1.0
    # perfect "logits": the target heatmap through the inverse sigmoid, regression at the centres
    eps = 1e-6
    hm = t.heatmap.clamp(eps, 1 - eps)
    outputs = {"heatmap": torch.log(hm / (1 - hm))}
    nx, ny = cfg.grid.bev_shape
    start = 0
    for name, ch in REG_FIELDS:
        m = torch.zeros(2, ch, nx * ny)
        for bi in range(2):
            for o in range(int(t.mask[bi].sum())):
                m[bi, :, t.indices[bi, o]] = t.reg[bi, o, start : start + ch]
        outputs[name] = m.view(2, ch, nx, ny)
        start += ch
    dets = head.decode(outputs, score_threshold=0.5, max_detections=50, nms=True)
    cell = cfg.grid.bev_cell[0]
    for bi, (pb, ps, pl) in enumerate(dets):
        gb, gl = boxes[bi], labels[bi]
        assert len(pb) == len(gb)
        order = torch.tensor(
            [int(torch.cdist(gb[:, :2], pb[r : r + 1, :2]).argmin()) for r in range(len(pb))]
        )
        gb, gl = gb[order], gl[order]
        assert torch.equal(pl, gl)
        assert ((pb[:, :2] - gb[:, :2]).abs() <= cell / 2).all()
        assert torch.allclose(pb[:, :2], gb[:, :2], atol=1e-4)  # the offset makes it exact
        assert torch.allclose(pb[:, 2:6], gb[:, 2:6], atol=1e-5)
        assert torch.allclose(pb[:, 6], gb[:, 6], atol=1e-5)
        assert torch.allclose(pb[:, 7:], gb[:, 7:], atol=1e-6)
        assert (ps > 0.99).all()


def test_circle_nms_suppresses_close_same_class() -> None:
    cfg = tiny()
    head = CenterHead(8, cfg.grid, cfg.head)
    nx, ny = cfg.grid.bev_shape
    hm = torch.full((1, 10, nx, ny), -10.0)
    hm[0, 0, 20, 20] = 5.0
    hm[0, 0, 20, 22] = 4.0  # same class, and its offset below puts it 1.76 m away (car radius 2 m)
    hm[0, 8, 20, 22] = 4.0  # other class: kept
    outputs = {"heatmap": hm, **{name: torch.zeros(1, ch, nx, ny) for name, ch in REG_FIELDS}}
    outputs["offset"][0, 1, 20, 22] = -0.9  # 1.6 m cells: (2 - 0.9) * 1.6 = 1.76 m
    assert len(head.decode(outputs, 0.5, 10, nms=False)[0].boxes) == 3
    kept = head.decode(outputs, 0.5, 10, nms=True)[0]
    assert sorted(kept.labels.tolist()) == [0, 8]


# --- distillation --------------------------------------------------------------------------------------
def test_distillation_gradients_flow_to_student_only() -> None:
    torch.manual_seed(0)
    cfg = tiny()
    teacher = TeacherModel(cfg).freeze()
    student = StudentModel(cfg)
    cams = ring_cameras(2, 2)
    t_out = teacher(cams, random_points(2))  # no no_grad here on purpose: freeze + detach must suffice
    s_out = student(cams)
    targets = student.head.build_targets(*gt_boxes(2))
    terms = simdistill_loss(s_out, t_out, targets, None, cfg.head, cfg.loss)
    expected = {"gt_heatmap", "gt_bbox", "imd", "cmd", "mmd_feat", "mmd_pred_heatmap", "mmd_pred_box", "loss"}
    assert set(terms) == expected
    assert all(torch.isfinite(v) for v in terms.values())
    terms["loss"].backward()
    assert all(p.grad is None for p in teacher.parameters())
    missing = [k for k, p in student.named_parameters() if p.grad is None]
    assert not missing, missing[:5]


def test_pseudo_labels_from_teacher_outputs() -> None:
    cfg = tiny()
    head = CenterHead(8, cfg.grid, cfg.head)
    t = head.build_targets(*gt_boxes(1))
    hm = t.heatmap.clamp(1e-6, 1 - 1e-6)
    nx, ny = cfg.grid.bev_shape
    outputs = {"heatmap": torch.log(hm / (1 - hm)), **{n: torch.zeros(1, ch, nx, ny) for n, ch in REG_FIELDS}}
    outputs["size"] += 0.5  # positive sizes so the decoded boxes are valid targets
    pseudo = pseudo_label_targets(head, outputs, score_threshold=0.5)
    assert torch.equal(pseudo.indices[pseudo.mask].sort().values, t.indices[t.mask].sort().values)
    assert foreground_mask(pseudo.heatmap).shape == (1, 1, nx, ny)


def _fake_outputs(seed: int, requires_grad: bool = False) -> DetectorOutputs:
    g = torch.Generator().manual_seed(seed)

    def r(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g).requires_grad_(requires_grad)

    head = {"heatmap": r(2, 10, 50, 50), **{name: r(2, ch, 50, 50) for name, ch in REG_FIELDS}}
    return DetectorOutputs(r(2, 32, 50, 50), r(2, 32, 50, 50), r(2, 64, 50, 50), head)


def test_distillation_terms_zero_when_student_equals_teacher() -> None:
    cfg = tiny()
    teacher = _fake_outputs(0)
    same = DetectorOutputs(
        teacher.camera_bev.clone(),
        teacher.lidar_bev.clone(),
        teacher.fused_bev.clone(),
        {k: v.clone() for k, v in teacher.head.items()},
    )
    head = CenterHead(8, cfg.grid, cfg.head)
    targets = head.build_targets(*gt_boxes(2))
    terms = distillation_losses(
        same, teacher, targets, foreground_mask(targets.heatmap), cfg.loss, cfg.head.code_weights
    )
    assert set(terms) == {"imd", "cmd", "mmd_feat", "mmd_pred_heatmap", "mmd_pred_box"}
    for name, v in terms.items():
        assert float(v) == pytest.approx(0.0, abs=1e-7), name
    different = _fake_outputs(1)
    terms = distillation_losses(
        different, teacher, targets, foreground_mask(targets.heatmap), cfg.loss, (1.0,) * 10
    )
    assert all(float(v) > 0 for v in terms.values())
    # a zero weight or a switched-off flag removes the term
    off = replace(cfg.loss, cmd=0.0, use_mmd_pred=False)
    terms = distillation_losses(
        different, teacher, targets, foreground_mask(targets.heatmap), off, (1.0,) * 10
    )
    assert set(terms) == {"imd", "mmd_feat"}


def test_cmd_ignores_background() -> None:
    g = torch.Generator().manual_seed(0)
    teacher = torch.randn(2, 8, 20, 20, generator=g)
    student = torch.randn(2, 8, 20, 20, generator=g)
    mask = torch.zeros(2, 1, 20, 20)
    mask[:, :, 5:9, 5:9] = 1.0
    mask[:, :, 9, 5:9] = 0.5
    before = cmd_loss(student, teacher, mask)
    changed = student.clone()
    changed[:, :, 12:, :] += 100.0  # only background cells
    assert torch.equal(cmd_loss(changed, teacher, mask), before)
    assert torch.equal(cmd_loss(changed, teacher, mask, True), cmd_loss(student, teacher, mask, True))
    changed[:, :, 6, 6] += 1.0  # a foreground cell
    assert cmd_loss(changed, teacher, mask) != before


def test_foreground_mask_sums_and_clamps() -> None:
    hm = torch.zeros(1, 3, 4, 4)
    hm[0, 0, 1, 1] = 0.7
    hm[0, 1, 1, 1] = 0.6
    hm[0, 2, 2, 2] = 0.3
    m = foreground_mask(hm)
    assert m.shape == (1, 1, 4, 4)
    assert m[0, 0, 1, 1] == 1.0 and m[0, 0, 2, 2] == pytest.approx(0.3)


# --- GCM -----------------------------------------------------------------------------------------------
def test_gcm_init_samples_a_fixed_radial_pattern() -> None:
    """At init the offsets ignore the query (zero weights, radial bias: head h along angle 2*pi*h/heads,
    point k at k + 1 cells) and the attention is uniform: the output is the mean of the projected values
    at those fixed cells (zero outside the map), independent of the query and positional encoding."""
    torch.manual_seed(0)
    heads, points, c, h, w = 4, 2, 8, 5, 6
    attn = DeformableAttention(c, heads, points)
    x = torch.randn(1, c, h, w)
    out = attn(x, x)
    assert torch.allclose(attn(x + torch.randn_like(x), x), out, atol=1e-6)

    v = attn.value_proj(x.flatten(2).transpose(1, 2)).transpose(1, 2).reshape(1, heads, c // heads, h, w)
    dirs = [(1, 0), (0, 1), (-1, 0), (0, -1)]  # (dx along W, dy along H) for angles 0, 90, 180, 270 deg
    expected = torch.zeros(1, heads, c // heads, h, w)
    for hd, (dx, dy) in enumerate(dirs):
        for k in range(1, points + 1):
            shifted = torch.zeros(c // heads, h, w)
            for i in range(h):
                for j in range(w):
                    si, sj = i + dy * k, j + dx * k
                    if 0 <= si < h and 0 <= sj < w:
                        shifted[:, i, j] = v[0, hd, :, si, sj]
            expected[0, hd] += shifted / points
    ref = attn.output_proj(expected.reshape(1, c, h * w).transpose(1, 2)).transpose(1, 2).reshape(1, c, h, w)
    assert torch.allclose(out, ref, atol=1e-5)

    gcm = GeometryCompensation(c, heads, points)
    assert not torch.allclose(gcm(x), x)  # not the identity at init: the output projection is random
    torch.nn.init.zeros_(gcm.attn.output_proj.weight)
    assert torch.equal(gcm(x), x)  # residual: x + 0


def test_coarse_gcm_attends_on_the_pooled_map_and_upsamples_its_correction() -> None:
    """stride 2: the same attention on the 2x2-average-pooled map (its own positional encoding), the
    correction bilinearly upsampled and added to the full-resolution input."""
    torch.manual_seed(0)
    c, heads, points = 8, 4, 3
    x = torch.randn(2, c, 8, 12)
    coarse = GeometryCompensation(c, heads, points, stride=2)
    fine = GeometryCompensation(c, heads, points)
    fine.attn.load_state_dict(coarse.attn.state_dict())
    pooled = torch.nn.functional.avg_pool2d(x, 2)
    correction = fine(pooled) - pooled
    expected = x + torch.nn.functional.interpolate(correction, size=(8, 12), mode="bilinear")
    assert torch.allclose(coarse(x), expected, atol=1e-6)
    with pytest.raises(ValueError, match="stride 0"):
        GeometryCompensation(c, heads, points, stride=0)


def test_light_student_config_builds_and_is_validated() -> None:
    cfg = light_sim_branch(tiny())
    net = StudentModel(cfg)
    assert net.sim_lidar.bev_gcm.stride == 2
    assert net.sim_lidar.lift.depthnet[0][0].out_channels == 32
    out = net(ring_cameras(1, 2))
    assert out.lidar_bev.shape[-2:] == cfg.grid.bev_shape
    bad = replace(tiny(), gcm=replace(tiny().gcm, bev_stride=3))
    with pytest.raises(ValueError, match="bev_stride 3"):
        bad.validate()


# --- checkpoints ---------------------------------------------------------------------------------------
def test_checkpoint_round_trip(tmp_path) -> None:
    torch.manual_seed(0)
    cfg = tiny()
    model = StudentModel(cfg).eval()
    path = tmp_path / "student"
    save_checkpoint(path, model, cfg, {"epoch": 3})
    save_checkpoint(path, model, cfg, {"epoch": 4})  # overwriting an existing checkpoint
    assert sorted(p.name for p in tmp_path.iterdir()) == ["student"]
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "meta.json", "model.safetensors"]
    loaded, cfg2, meta = load_checkpoint(str(path) + "/")
    assert isinstance(loaded, StudentModel) and meta["epoch"] == 4 and meta["model_type"] == "student"
    assert cfg2 == cfg
    loaded.eval()
    cams = ring_cameras(1, 2)
    with torch.no_grad():
        a, b = model(cams), loaded(cams)
    for k in a.head:
        assert torch.equal(a.head[k], b.head[k])
    assert isinstance(load_checkpoint(path / "model.safetensors")[0], StudentModel)
    assert meta["weights_sha256"] == hashlib.sha256((path / "model.safetensors").read_bytes()).hexdigest()
    assert meta["config_sha256"] == hashlib.sha256((path / "config.json").read_bytes()).hexdigest()


def test_a_config_that_no_longer_describes_the_weights_is_refused_naming_the_file(tmp_path) -> None:
    """The same weights on a BEV grid of doubled extent build and run, with every box centre metres off;
    the checksum of config.json is what catches it."""
    cfg = tiny()
    path = tmp_path / "student"
    save_checkpoint(path, StudentModel(cfg), cfg, {})
    f = path / "config.json"
    data = json.loads(f.read_text())
    data["grid"]["xbound"] = [
        2 * data["grid"]["xbound"][0],
        2 * data["grid"]["xbound"][1],
        2 * data["grid"]["xbound"][2],
    ]
    data["grid"]["ybound"] = [
        2 * data["grid"]["ybound"][0],
        2 * data["grid"]["ybound"][1],
        2 * data["grid"]["ybound"][2],
    ]
    f.write_text(json.dumps(data))
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(path)
    (line,) = str(e.value).splitlines()
    assert line.startswith(f"{f}: sha256 ") and "differs from config_sha256" in line and "--no-verify" in line
    model, loaded_cfg, _ = load_checkpoint(path, verify=False)  # it would load: nothing else notices
    assert loaded_cfg.grid.xbound[2] == 2 * cfg.grid.xbound[2]
    from simdistill_ros.models import load_state_into

    load_state_into(StudentModel(cfg), path)  # a resume builds from its own config: only the weights count


def test_a_checkpoint_saved_before_the_config_checksum_loads_with_its_weights_checked(tmp_path) -> None:
    cfg = tiny()
    path = tmp_path / "baseline"
    save_checkpoint(path, BaselineModel(cfg), cfg, {})
    meta = json.loads((path / "meta.json").read_text())
    del meta["config_sha256"]
    (path / "meta.json").write_text(json.dumps(meta))
    with pytest.warns(UserWarning, match=r"meta\.json has no config_sha256 .*config\.json cannot be checked"):
        assert isinstance(load_checkpoint(path)[0], BaselineModel)
    f = path / "model.safetensors"
    f.write_bytes(f.read_bytes()[:-8] + bytes(8))
    with pytest.raises(CheckpointError, match="differs from weights_sha256"):
        load_checkpoint(path)


def test_flipped_weight_bytes_are_refused_and_no_verify_loads_them(tmp_path) -> None:
    from simdistill_ros.models import load_matching_weights, load_state_into

    cfg = tiny()
    path = tmp_path / "baseline"
    save_checkpoint(path, BaselineModel(cfg), cfg, {})
    f = path / "model.safetensors"
    data = bytearray(f.read_bytes())
    data[-4096:] = bytes(b ^ 0xFF for b in data[-4096:])  # inside the last tensor: still a valid file
    f.write_bytes(bytes(data))
    for load in (
        lambda v: load_checkpoint(path, verify=v),
        lambda v: load_state_into(BaselineModel(cfg), path, verify=v),
        lambda v: load_matching_weights(BaselineModel(cfg), path, verify=v),
    ):
        with pytest.raises(CheckpointError, match=rf"{f}: sha256 \w+\.\.\. differs from weights_sha256"):
            load(True)
        load(False)  # the flipped weights load: the check is what catches them


def test_a_checkpoint_without_the_checksum_loads_with_a_warning(tmp_path) -> None:
    cfg = tiny()
    path = tmp_path / "baseline"
    save_checkpoint(path, BaselineModel(cfg), cfg, {})
    meta = json.loads((path / "meta.json").read_text())
    del meta["weights_sha256"]
    (path / "meta.json").write_text(json.dumps(meta))
    with pytest.warns(UserWarning, match=r"meta\.json has no weights_sha256"):
        assert isinstance(load_checkpoint(path)[0], BaselineModel)


@pytest.mark.parametrize("name", SHIPPED_MODELS)
def test_shipped_models_carry_their_checksum(name) -> None:
    from simdistill_ros.models.checkpoint import shipped_models_dir, verify_weights

    root = shipped_models_dir() / name
    meta = json.loads((root / "meta.json").read_text())
    assert len(meta["weights_sha256"]) == 64 and len(meta["config_sha256"]) == 64
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # both fields present: nothing to warn about
        verify_weights(root)  # raises on a mismatch


def test_checkpoint_errors(tmp_path) -> None:
    cfg = tiny()
    path = tmp_path / "baseline"
    save_checkpoint(path, BaselineModel(cfg), cfg, {})
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "nope")

    broken = tmp_path / "truncated"
    shutil.copytree(path, broken)
    f = broken / "model.safetensors"
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=r"model\.safetensors: sha256 .* differs .*--no-verify"):
        load_checkpoint(broken)
    with pytest.raises(CheckpointError, match=r"model\.safetensors.*truncated or corrupt"):
        load_checkpoint(broken, verify=False)

    wrong = tmp_path / "wrong"
    shutil.copytree(path, wrong)
    data = json.loads((wrong / "config.json").read_text())
    data["backbone"]["neck_channels"] = 48
    (wrong / "config.json").write_text(json.dumps(data))
    with pytest.raises(CheckpointError, match=r"config\.json: sha256 .* differs from config_sha256"):
        load_checkpoint(wrong)
    with pytest.raises(CheckpointError, match="shape mismatches") as e:
        load_checkpoint(wrong, verify=False)
    assert "camera.neck" in str(e.value)

    other = tmp_path / "other_type"
    shutil.copytree(path, other)
    (other / "meta.json").write_text(json.dumps({"model_type": "student"}))
    with (
        pytest.raises(CheckpointError, match="missing keys"),
        pytest.warns(UserWarning, match="no weights_sha256"),
    ):
        load_checkpoint(other)

    (other / "config.json").unlink()
    with pytest.raises(CheckpointError, match="config.json"):
        load_checkpoint(other, verify=False)


def test_student_warm_start_from_teacher(tmp_path) -> None:
    cfg = tiny()
    torch.manual_seed(0)
    teacher = TeacherModel(cfg)
    save_checkpoint(tmp_path / "teacher", teacher, cfg, {})
    torch.manual_seed(1)
    student = StudentModel(cfg)
    sim_before = {k: v.clone() for k, v in student.sim_lidar.state_dict().items()}
    copied, fresh = load_matching_weights(student, tmp_path / "teacher")
    # everything but the simulated-LiDAR branch has a same-shaped twin in the teacher
    assert fresh and all(k.startswith("sim_lidar.") for k in fresh)
    assert {k.split(".")[0] for k in copied} == {"camera", "fuser", "decoder", "head"}
    t_state = teacher.state_dict()
    for k in copied:
        assert torch.equal(student.state_dict()[k], t_state[k]), k
    for k, v in student.sim_lidar.state_dict().items():
        assert torch.equal(v, sim_before[k]), k

    # a checkpoint of the LiDAR encoder alone shares no name with a student
    save_checkpoint(tmp_path / "pillars_only", teacher.lidar, cfg, {"model_type": "teacher"})
    with pytest.raises(CheckpointError, match="no tensor matches"):
        load_matching_weights(StudentModel(cfg), tmp_path / "pillars_only")


def test_config_round_trip() -> None:
    for cfg in (tiny(), nuscenes()):
        again = ModelConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
        assert again == cfg
    assert nuscenes().grid.num_depth_bins == 118 and nuscenes().grid.bev_shape == (180, 180)
    assert tiny().grid.bev_shape == (50, 50)
    with pytest.raises(ValueError, match="unknown keys"):
        ModelConfig.from_dict({"bogus": 1})
