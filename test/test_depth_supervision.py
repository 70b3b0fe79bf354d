"""LiDAR depth supervision: targets agree with the view transform's own frustum under augmentation, the
loss behaves as a BCE on one-hot bins, and a training step moves the depth net toward the LiDAR."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from test_training_exact import make_batch, small_config

from simdistill_ros.models import BaselineModel, CameraInputs
from simdistill_ros.models.depth_supervision import (
    NO_RETURN,
    depth_loss,
    depth_quality,
    lidar_depth_targets,
    nearest_depth_per_cell,
    project_to_cameras,
)
from simdistill_ros.models.lift_splat import frustum_points
from simdistill_ros.training.augment import BEVAugConfig, ImageAugConfig, bev_matrix, image_affine
from simdistill_ros.training.objectives import BaselineObjective

OPTICAL_TO_BASE = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


def _rig(seed: int, h: int, w: int, n: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """Augmented intrinsics (1, n, 3, 3) and cam_to_base (1, n, 4, 4): a random pixel map folded into K and
    a random BEV rotation / scale / flip folded into the extrinsics, as the training data pipeline does."""
    rng = np.random.default_rng(seed)
    ks, poses = [], []
    m = bev_matrix(rng, BEVAugConfig())
    for i in range(n):
        k0 = np.array([[300.0, 0.0, 200.0], [0.0, 300.0, 112.0], [0.0, 0.0, 1.0]])
        a = image_affine((224, 400), (h, w), rng, ImageAugConfig(), k0)
        ks.append(a @ k0)
        yaw = 2 * math.pi * i / n
        c, s = math.cos(yaw), math.sin(yaw)
        t = np.eye(4)
        t[:3, :3] = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]) @ OPTICAL_TO_BASE
        t[:3, 3] = [c, s, 1.6]
        poses.append(m @ t)
    return torch.tensor(np.stack(ks))[None], torch.tensor(np.stack(poses))[None]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_targets_put_each_frustum_point_in_its_own_cell_and_bin(seed: int) -> None:
    """Points placed at the view transform's own frustum positions (one depth bin per cell, chosen at
    random) come back as exactly that bin on exactly that cell, through augmented K and extrinsics."""
    cfg = small_config()
    h, w, fh, fw = 48, 88, 6, 11
    k, pose = _rig(seed, h, w)
    pts = frustum_points(cfg.grid, k, pose, (h, w), (fh, fw))[0]  # (N, D, P, 3)
    n, d, p, _ = pts.shape
    chosen = torch.randint(0, d, (n, p), generator=torch.Generator().manual_seed(seed))
    picked = pts.gather(1, chosen[:, None, :, None].expand(n, 1, p, 3))[:, 0]  # (N, P, 3)
    # each camera's points alone, so another camera's points cannot occlude them
    for cam in range(n):
        target = lidar_depth_targets(
            [picked[cam].float()], k[:, cam : cam + 1], pose[:, cam : cam + 1], (h, w), (fh, fw), cfg.grid
        )
        assert torch.equal(target[0, 0].reshape(-1), chosen[cam])


def test_a_cell_takes_the_nearest_return_and_ignores_out_of_range_ones() -> None:
    u = torch.tensor([[5.0, 6.0, 5.5, 200.0, 5.0]])
    v = torch.tensor([[5.0, 6.0, 5.5, 5.0, 5.0]])
    z = torch.tensor([[20.0, 12.0, 30.0, 10.0, 0.5]])  # the last is nearer than dbound starts
    out = nearest_depth_per_cell(u, v, z, (16, 16), (2, 2), (1.0, 41.0, 2.0))
    assert out[0, 0, 0] == 12.0
    assert torch.isinf(out[0, 0, 1]) and torch.isinf(out[0, 1, 0]) and torch.isinf(out[0, 1, 1])


def test_points_behind_the_camera_are_not_targets() -> None:
    k = torch.tensor([[[100.0, 0.0, 8.0], [0.0, 100.0, 8.0], [0.0, 0.0, 1.0]]])
    pose = torch.eye(4)[None]
    pose[0, :3, :3] = torch.tensor(OPTICAL_TO_BASE)
    behind = torch.tensor([[-10.0, 0.0, 0.0]])  # base x backwards = optical -z
    u, v, z = project_to_cameras(behind, k, pose)
    assert z[0, 0] < 0
    cfg = small_config()
    t = lidar_depth_targets([behind], k[None], pose[None], (16, 16), (2, 2), cfg.grid)
    assert (t == NO_RETURN).all()


def test_depth_loss_is_bce_on_one_hot_bins_over_supervised_cells() -> None:
    d = 5
    target = torch.full((1, 1, 2, 2), NO_RETURN)
    target[0, 0, 0, 0] = 3
    uniform = torch.full((1, 1, d, 2, 2), 1.0 / d)
    expected = -(math.log(1.0 / d) + (d - 1) * math.log(1.0 - 1.0 / d))
    assert float(depth_loss(uniform, target)) == pytest.approx(expected, rel=1e-5)
    onehot = torch.zeros(1, 1, d, 2, 2)
    onehot[0, 0, 3] = 1.0
    assert float(depth_loss(onehot, target)) < 1e-4
    none = torch.full_like(target, NO_RETURN)
    logits = torch.randn(1, 1, d, 2, 2, requires_grad=True)
    zero = depth_loss(logits.softmax(2), none)
    zero.backward()  # no supervised cell: zero and still part of the graph
    assert float(zero.detach()) == 0.0 and logits.grad is not None


def test_depth_quality_reads_a_perfect_and_a_uniform_distribution() -> None:
    cfg = small_config()
    d = cfg.grid.num_depth_bins
    target = torch.full((1, 1, 1, 4), NO_RETURN)
    target[0, 0, 0, :2] = torch.tensor([2, 9])
    perfect = torch.zeros(1, 1, d, 1, 4)
    perfect[0, 0, 2, 0, 0] = perfect[0, 0, 9, 0, 1] = 1.0
    q = depth_quality(perfect, target, cfg.grid)
    assert q["cells"] == 2 and q["median_abs_error_m"] == pytest.approx(0.0, abs=1e-5)
    assert q["argmax_within_1m"] == 1.0 and q["entropy_nats"] == pytest.approx(0.0, abs=1e-6)
    uniform = torch.full((1, 1, d, 1, 4), 1.0 / d)
    assert depth_quality(uniform, target, cfg.grid)["entropy_nats"] == pytest.approx(math.log(d), rel=1e-5)


def _points_on_rays(batch, cfg, seed: int) -> list[torch.Tensor]:
    """A LiDAR sweep that hits surfaces the model can see: one frustum point per feature cell."""
    h, w = batch.images.shape[-2:]
    pts = frustum_points(cfg.grid, batch.intrinsics, batch.cam_to_base, (h, w), (h // 8, w // 8))[0]
    g = torch.Generator().manual_seed(seed)
    n, d, p, _ = pts.shape
    chosen = torch.randint(0, d, (n, 1, p, 1), generator=g).expand(n, 1, p, 3)
    return [pts.gather(1, chosen).reshape(-1, 3).float()]


def test_baseline_objective_adds_the_depth_term_and_training_moves_the_depth_net() -> None:
    cfg = small_config()
    cfg.loss = dataclasses.replace(cfg.loss, depth=3.0)
    torch.manual_seed(0)
    model = BaselineModel(cfg)
    batch = make_batch(4)
    batch.points = _points_on_rays(batch, cfg, 4)
    objective = BaselineObjective(cfg)
    terms = objective(model, batch)
    assert "depth" in terms and float(terms["depth"].detach()) > 0
    total = sum(float(v.detach()) for k, v in terms.items() if k != "loss")
    assert float(terms["loss"].detach()) == pytest.approx(total, rel=1e-5)
    rig = (batch.intrinsics, batch.cam_to_base)
    target = lidar_depth_targets(batch.points, *rig, (48, 88), (6, 11), cfg.grid)
    with torch.no_grad():  # train mode both times: BatchNorm on the batch's own statistics
        before = depth_loss(model(CameraInputs.from_batch(batch)).depth, target).item()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(15):
        opt.zero_grad()
        objective(model, batch)["loss"].backward()
        opt.step()
    with torch.no_grad():
        after = depth_loss(model(CameraInputs.from_batch(batch)).depth, target).item()
    assert after < before

    off = BaselineObjective(small_config())(model, batch)
    assert "depth" not in off
