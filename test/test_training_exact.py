"""The training loop, in process, on tiny hand-built batches: the teacher stays bit-identical through real
student steps, a resumed run equals an uninterrupted one exactly, and DDP ranks end with equal weights."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from simdistill_ros.models import BaselineModel, StudentModel, TeacherModel, save_checkpoint
from simdistill_ros.models.config import (
    BackboneConfig,
    BEVGridConfig,
    DecoderConfig,
    GCMConfig,
    HeadConfig,
    ModelConfig,
    PillarConfig,
    ViewTransformConfig,
)
from simdistill_ros.training.batch import Batch
from simdistill_ros.training.distributed import DistContext
from simdistill_ros.training.loop import OptimConfig, train
from simdistill_ros.training.objectives import BaselineObjective, OnlineDistillationObjective

REPO = Path(__file__).resolve().parents[1]
H, W = 48, 88
OPTICAL_TO_BASE = torch.tensor([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


def small_config() -> ModelConfig:
    return ModelConfig(
        image_size=(H, W),
        grid=BEVGridConfig(xbound=(-38.4, 38.4, 1.6), ybound=(-38.4, 38.4, 1.6), dbound=(1.0, 41.0, 2.0)),
        backbone=BackboneConfig(widths=(8, 16, 32, 32), stem_channels=8, neck_channels=16),
        view_transform=ViewTransformConfig(context_channels=8, depthnet_channels=16, out_channels=16),
        pillars=PillarConfig(point_channels=8, out_channels=16),
        fused_channels=16,
        decoder=DecoderConfig(stage_channels=(16, 32), out_channels=16),
        head=HeadConfig(head_channels=16),
        gcm=GCMConfig(image_heads=2, bev_heads=2),
        sim_context_channels=8,
        sim_bev_channels=16,
    )


def make_batch(seed: int, n: int = 2) -> Batch:
    """One frame: n cameras on a ring looking outwards, random images, a LiDAR sweep, two boxes."""
    g = torch.Generator().manual_seed(seed)
    k = torch.tensor([[0.7 * W, 0.0, W / 2], [0.0, 0.7 * W, H / 2], [0.0, 0.0, 1.0]])
    poses = []
    for i in range(n):
        yaw = 2 * math.pi * i / n
        c, s = math.cos(yaw), math.sin(yaw)
        t = torch.eye(4)
        t[:3, :3] = torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]) @ OPTICAL_TO_BASE
        t[:3, 3] = torch.tensor([c, s, 1.6])
        poses.append(t)
    boxes = torch.tensor(
        [[10.0, 3.0, 0.8, 4.5, 1.9, 1.6, 0.3, 1.0, 0.0], [-8.0, -6.0, 0.9, 0.7, 0.7, 1.8, 0, 0, 0]]
    )
    return Batch(
        images=torch.randn(1, n, 3, H, W, generator=g),
        intrinsics=k.expand(1, n, 3, 3).clone(),
        cam_to_base=torch.stack(poses)[None],
        points=[torch.randn(2000, 4, generator=g) * torch.tensor([20.0, 20.0, 1.0, 1.0])],
        boxes=[boxes],
        labels=[torch.tensor([0, 8])],
    )


def first(items: list[Batch]) -> Batch:
    return items[0]


def _no_save(path: Path, extra: dict) -> None:
    path.mkdir(parents=True, exist_ok=True)  # the loop writes its optimiser state beside the weights


def test_teacher_stays_bit_identical_through_real_student_steps(tmp_path: Path) -> None:
    cfg = small_config()
    torch.manual_seed(0)
    teacher = TeacherModel(cfg).train()  # handed over in train mode: the objective must freeze it
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    assert any("running_mean" in k for k in before)  # BatchNorm buffers are part of the check
    student = StudentModel(cfg)
    student_before = {k: v.clone() for k, v in student.state_dict().items()}
    objective = OnlineDistillationObjective(cfg, teacher)
    data = [make_batch(1), make_batch(2)]
    optim = OptimConfig(epochs=1, batch_size=1, lr=1e-3)
    train(student, objective, data, first, optim, tmp_path, _no_save, DistContext())
    after = teacher.state_dict()
    changed = [k for k, v in before.items() if not torch.equal(v, after[k])]
    assert not changed, changed[:5]
    assert not teacher.training and all(not p.requires_grad for p in teacher.parameters())
    # the two steps did train the student
    moved = [k for k, v in student.state_dict().items() if not torch.equal(v, student_before[k])]
    assert len(moved) > len(student_before) // 2


class _Interrupted(Exception):
    pass


class _StopAtCall:
    """Wraps an objective; raises on call ``stop`` (1-based), like a killed run."""

    def __init__(self, objective, stop: int) -> None:
        self.objective, self.stop, self.calls = objective, stop, 0

    def __call__(self, model, batch):
        self.calls += 1
        if self.calls == self.stop:
            raise _Interrupted
        return self.objective(model, batch)


def test_resume_restores_weights_optimizer_and_scheduler_exactly(tmp_path: Path) -> None:
    cfg = small_config()
    data = [make_batch(3)]  # one step per epoch: the data order cannot differ between the runs
    optim = OptimConfig(epochs=3, batch_size=1, lr=1e-3)

    def run(run_dir: Path, objective, resume: bool) -> BaselineModel:
        torch.manual_seed(0)
        model = BaselineModel(cfg)

        def save(path: Path, extra: dict) -> None:
            save_checkpoint(path, model, cfg, extra)

        train(model, objective, data, first, optim, run_dir, save, DistContext(), resume=resume)
        return model

    straight = run(tmp_path / "straight", BaselineObjective(cfg), False)
    with pytest.raises(_Interrupted):  # killed during epoch 3, after two checkpoints
        run(tmp_path / "resumed", _StopAtCall(BaselineObjective(cfg), 3), False)
    resumed = run(tmp_path / "resumed", BaselineObjective(cfg), True)

    a, b = straight.state_dict(), resumed.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])][:5]
    # equal weights after a step taken from the restored state need Adam's moments restored exactly
    # (a fresh optimiser moves the weights differently); the schedule's rate is logged per epoch
    log_a = (tmp_path / "straight" / "log.csv").read_text().splitlines()
    log_b = (tmp_path / "resumed" / "log.csv").read_text().splitlines()
    lr = log_a[0].split(",").index("lr")
    assert [r.split(",")[lr] for r in log_a[1:]] == [r.split(",")[lr] for r in log_b[1:]]
    assert len(log_a) == len(log_b) == 4  # header and epochs 1-3, epoch 3 logged once after the resume


DDP_SCRIPT = """
import sys
from pathlib import Path
import torch
sys.path.insert(0, {test_dir!r})
from test_training_exact import first, make_batch, small_config, _no_save
from simdistill_ros.models import BaselineModel
from simdistill_ros.training.distributed import init_distributed, shutdown_distributed
from simdistill_ros.training.loop import OptimConfig, train
from simdistill_ros.training.objectives import BaselineObjective

torch.set_num_threads(1)
ctx = init_distributed("cpu")
cfg = small_config()
torch.manual_seed(0)
model = BaselineModel(cfg)
data = [make_batch(10 + i) for i in range(4)]  # each rank sees different frames
out = Path(sys.argv[1])
train(model, BaselineObjective(cfg), data, first, OptimConfig(epochs=1, batch_size=1, lr=1e-3, max_steps=2),
      out, _no_save, ctx)
torch.save({{k: v.detach().clone() for k, v in model.named_parameters()}}, out / f"rank{{ctx.rank}}.pt")
shutdown_distributed()
"""


def test_ddp_ranks_end_with_equal_weights(tmp_path: Path) -> None:
    script = tmp_path / "ddp_train.py"
    script.write_text(textwrap.dedent(DDP_SCRIPT.format(test_dir=str(Path(__file__).parent))))
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {"PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    # --standalone: the rendezvous port is taken free from the OS, never guessed
    proc = subprocess.run(
        [str(torchrun), "--standalone", "--nproc_per_node", "2", str(script), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    r0, r1 = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    torch.manual_seed(0)
    init = dict(BaselineModel(small_config()).named_parameters())
    assert r0.keys() == r1.keys() == init.keys()
    assert all(torch.equal(r0[k], r1[k]) for k in r0), [k for k in r0 if not torch.equal(r0[k], r1[k])][:5]
    assert sum(not torch.equal(r0[k], init[k]) for k in r0) > len(r0) // 2  # they did train
