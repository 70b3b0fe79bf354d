"""The optimisation loop shared by the teacher, the baseline and the student.

AdamW + one-cycle schedule, gradient clipping, AMP on CUDA, DDP when launched by torchrun, a progress bar
with the loss breakdown, a CSV log, atomic checkpoints every epoch and resumption from the last one.
A non-finite loss stops training with the step and the loss terms named; the last good checkpoint stays.
Resuming restores the weights, the optimiser, scheduler and grad-scaler state and the random generators
(``train_state``: safetensors + JSON, never a pickle), so a resumed run continues exactly where it stopped.
"""

from __future__ import annotations

import csv
import math
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler, RandomSampler
from tqdm import tqdm

from simdistill_ros.errors import UserError
from simdistill_ros.models.checkpoint import load_state_into
from simdistill_ros.training.distributed import DistContext, all_reduce_mean
from simdistill_ros.training.train_state import (
    LEGACY_PICKLE,
    STATE_JSON,
    TrainStateError,
    load_train_state,
    save_train_state,
)


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite."""


class ResumeError(UserError):
    """``--resume`` cannot continue the run: nothing of its schedule is left."""


@dataclass
class OptimConfig:
    epochs: int = 20
    batch_size: int = 4
    lr: float = 2e-4
    weight_decay: float = 0.01
    grad_clip: float = 35.0
    pct_start: float = 0.4
    seed: int = 0
    workers: int = 0
    max_steps: int | None = None
    # peak learning rate of the camera backbone's parameters as a share of ``lr``: a pretrained backbone is
    # fine-tuned gently while the BEV layers behind it learn from scratch at the full rate
    backbone_lr_scale: float = 1.0


# An objective maps a batch (already on the device) to named loss terms; "loss" is their weighted total.
Objective = Callable[[object], dict[str, torch.Tensor]]
# Saves a checkpoint of the (unwrapped) model with extra metadata, atomically.
SaveFn = Callable[[Path, dict], None]


def param_groups(model: nn.Module, trainable: Iterable[nn.Parameter] | None, cfg: OptimConfig) -> list[dict]:
    """AdamW parameter groups: the trainable parameters of any ``backbone`` module at ``lr *
    backbone_lr_scale``, all others at ``lr`` (one group when the scale is 1). Empty groups are left out."""
    params = [p for p in (trainable or model.parameters()) if p.requires_grad]
    if cfg.backbone_lr_scale == 1.0:
        return [{"params": params, "lr": cfg.lr}]
    in_backbone = {id(p) for name, p in model.named_parameters() if "backbone" in name.split(".")}
    slow = [p for p in params if id(p) in in_backbone]
    fast = [p for p in params if id(p) not in in_backbone]
    groups = [{"params": fast, "lr": cfg.lr}, {"params": slow, "lr": cfg.lr * cfg.backbone_lr_scale}]
    return [g for g in groups if g["params"]]


def _move(batch: object, device: torch.device) -> object:
    to = getattr(batch, "to", None)
    return to(device) if callable(to) else batch


def train(
    model: nn.Module,
    objective: Objective,
    dataset: Dataset,
    collate: Callable,
    cfg: OptimConfig,
    run_dir: Path,
    save: SaveFn,
    ctx: DistContext,
    resume: bool = False,
    trainable: Iterable[nn.Parameter] | None = None,
    verify: bool = True,
    snapshot_steps: Iterable[int] = (),
) -> dict:
    """Train ``model`` in place; returns the final log row. ``trainable`` defaults to all parameters that
    require a gradient (a frozen teacher inside the objective is never optimised). ``verify`` checks the
    resumed checkpoint's sha256. After each step of ``snapshot_steps`` the weights are also saved as
    ``run_dir/step_<N>`` (weights only: a snapshot is for scoring a run part way, not for resuming)."""
    snapshots = set(snapshot_steps)
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed + ctx.rank)
    model.to(ctx.device)
    groups = param_groups(model, trainable, cfg)
    params = [p for g in groups for p in g["params"]]
    optimizer = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if ctx.enabled:
        sampler = DistributedSampler(dataset, num_replicas=ctx.world_size, rank=ctx.rank, seed=cfg.seed)
    else:
        sampler = RandomSampler(dataset, generator=torch.Generator().manual_seed(cfg.seed))
    sampler_rng = getattr(sampler, "generator", None)  # RandomSampler's; DistributedSampler seeds per epoch
    loader = DataLoader(
        dataset,
        batch_size=cfg.batch_size,
        sampler=sampler,
        num_workers=cfg.workers,
        collate_fn=collate,
        drop_last=len(dataset) >= cfg.batch_size * ctx.world_size,
        persistent_workers=cfg.workers > 0,
    )
    steps_per_epoch = max(1, len(loader))
    total_steps = steps_per_epoch * cfg.epochs
    if cfg.max_steps is not None:
        total_steps = min(total_steps, cfg.max_steps)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=[g["lr"] for g in groups],
        total_steps=max(total_steps, 1),
        pct_start=cfg.pct_start,
        div_factor=10.0,
        final_div_factor=100.0,
    )
    use_amp = ctx.device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)

    start_epoch, step = 0, 0
    last = run_dir / "last"
    if resume:
        if not last.exists():
            raise FileNotFoundError(f"--resume: {last} does not exist")
        meta = load_state_into(model, last, verify=verify)
        start_epoch, step = int(meta.get("epoch", 0)), int(meta.get("step", 0))
        for legacy in (last / LEGACY_PICKLE, run_dir / LEGACY_PICKLE):
            if legacy.exists() and ctx.is_main:
                print(f"ignoring {legacy}: a pickle, never loaded (the state is in {last}/train_state.json)")
        try:
            state = load_train_state(last)
            missing = state is None
        except TrainStateError as err:
            state, missing = None, False
            if ctx.is_main:
                print(f"warning: {err}; the optimiser restarts, the schedule continues")
        if step > total_steps:  # OneCycleLR cannot be stepped past its end
            why = f"has no {STATE_JSON} and its weights are" if missing else "is"
            raise ResumeError(
                f"--resume: {last} {why} at step {step}, past the {total_steps} steps of this schedule "
                f"(--epochs {cfg.epochs}, --max-steps {cfg.max_steps}): nothing is left to train; give "
                f"more steps, or start a new run from these weights with --init-from {last}"
            )
        if missing and ctx.is_main:
            print(
                f"warning: {last} has no {STATE_JSON} (the optimiser, schedule and random generators were "
                f"not saved with it): the optimiser restarts, the schedule continues at step {step}"
            )
        # The training state is written after the weights: use it only if it belongs to the same step,
        # and only for the same settings (another --epochs is another schedule: OneCycleLR would refuse).
        changed = sorted(
            k
            for k, v in asdict(cfg).items()
            if k != "workers" and state is not None and state.get("optim_config", {}).get(k) != v
        )
        if state is not None and changed and ctx.is_main:
            print(f"settings changed since {last} ({', '.join(changed)}): optimiser and schedule restart")
        if state is not None and not changed and not _same_parameters(optimizer, state["optimizer"]):
            # another set of trainable tensors (a part frozen or added since): the moments belong to others
            changed = ["trainable parameters"]
            if ctx.is_main:
                print(
                    f"warning: {last}'s optimiser state holds other trainable parameters than this model "
                    "(the code changed what is trained): the optimiser restarts, the schedule continues"
                )
        if state is not None and state["step"] == step and not changed:
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            scaler.load_state_dict(state["scaler"])
            torch.set_rng_state(state["rng"]["torch"])
            if sampler_rng is not None and "sampler" in state["rng"]:
                sampler_rng.set_state(state["rng"]["sampler"])
        else:
            # Fast-forward the schedule to the step the run stopped at; no optimiser step belongs to these
            # calls, so torch's "lr_scheduler.step() before optimizer.step()" warning would be a false alarm.
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler\.step\(\)`")
                for _ in range(step):
                    scheduler.step()
        if ctx.is_main:
            print(f"resuming from {last} at epoch {start_epoch}, step {step}")

    wrapped: nn.Module = model
    if ctx.enabled:
        wrapped = DistributedDataParallel(
            model,
            device_ids=[ctx.local_rank] if ctx.device.type == "cuda" else None,
            find_unused_parameters=False,
        )
    log_path = run_dir / "log.csv"
    row: dict = {}
    for epoch in range(start_epoch, cfg.epochs):
        if step >= total_steps:
            break
        wrapped.train()
        if isinstance(sampler, DistributedSampler):
            sampler.set_epoch(epoch)
        sums: dict[str, float] = {}
        n = 0
        t0 = time.perf_counter()
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not ctx.is_main, leave=False)
        for batch in bar:
            if step >= total_steps:
                break
            batch = _move(batch, ctx.device)
            with torch.autocast(device_type=ctx.device.type, enabled=use_amp):
                terms = objective(wrapped, batch)
            loss = terms["loss"]
            if not torch.isfinite(loss):
                named = ", ".join(f"{k}={float(v):.4g}" for k, v in terms.items())
                raise TrainingDiverged(
                    f"non-finite loss at epoch {epoch + 1}, step {step}: {named}; "
                    f"the last good checkpoint is {last if last.exists() else 'none (first epoch)'}"
                )
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            step += 1
            n += 1
            if step in snapshots and ctx.is_main:
                save(run_dir / f"step_{step}", {"epoch": epoch, "step": step, "snapshot": True})
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach())
            sums["grad_norm"] = sums.get("grad_norm", 0.0) + float(grad_norm)
            if ctx.is_main:
                bar.set_postfix({k: f"{v / n:.3f}" for k, v in sums.items() if k != "grad_norm"})
        means = all_reduce_mean({k: v / max(n, 1) for k, v in sums.items()}, ctx)
        row = {
            "epoch": epoch + 1,
            "step": step,
            "lr": scheduler.get_last_lr()[0],
            "seconds": round(time.perf_counter() - t0, 2),
            **{k: round(v, 5) for k, v in means.items()},
        }
        if ctx.is_main:
            print(format_log_row(row), flush=True)
            _append_csv(log_path, row)
            save(last, {"epoch": epoch + 1, "step": step, "train_log": row})
            rng = {"torch": torch.get_rng_state()}
            if sampler_rng is not None:
                rng["sampler"] = sampler_rng.get_state()
            save_train_state(
                last,
                {
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "scaler": scaler.state_dict(),
                    "rng": rng,
                    "epoch": epoch + 1,
                    "step": step,
                    "optim_config": asdict(cfg),
                },
            )
        if ctx.enabled:
            torch.distributed.barrier()
    return row


def format_log_row(row: dict) -> str:
    """One epoch's log line: ``epoch=3 step=480 lr=1.23e-03 seconds=41.2 loss=4.4067 ...``.

    The CSV keeps the raw values; the printed line rounds them so they can be read at a glance.
    """

    def fmt(key: str, value: object) -> str:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return str(value)
        if isinstance(value, int):
            return str(value)
        if key == "lr":
            return f"{value:.2e}"
        if key == "seconds":
            return f"{value:.1f}"
        return f"{value:.4f}"

    return " ".join(f"{k}={fmt(k, v)}" for k, v in row.items())


def _append_csv(path: Path, row: dict) -> None:
    new = not path.exists()
    if not new:
        with path.open() as f:
            header = next(csv.reader(f), [])
        if header != list(row):
            new = True
            path = path.with_name(path.stem + f"_{int(time.time())}.csv")
    with path.open("a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(row))
        if new:
            w.writeheader()
        w.writerow(
            {k: (v if not isinstance(v, float) or math.isfinite(v) else "nan") for k, v in row.items()}
        )


def _same_parameters(optimizer: torch.optim.Optimizer, saved: dict) -> bool:
    """Whether a saved optimiser state dict has the groups and tensor counts ``optimizer`` has."""
    groups = saved.get("param_groups", [])
    return len(groups) == len(optimizer.param_groups) and all(
        len(g.get("params", [])) == len(mine["params"]) for g, mine in zip(groups, optimizer.param_groups)
    )
