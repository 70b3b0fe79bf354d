"""`train --resume` reads safetensors + JSON only: a pickle planted in a run never runs, and a resumed run
continues exactly (weights, optimiser, scheduler, random generators) where it stopped."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from simdistill_ros.errors import UserError
from simdistill_ros.models.checkpoint import weights_sha256
from simdistill_ros.training.distributed import DistContext
from simdistill_ros.training.loop import OptimConfig, ResumeError, train
from simdistill_ros.training.train_state import (
    STATE_JSON,
    STATE_TENSORS,
    TrainStateError,
    load_train_state,
    save_train_state,
)


class Stop(Exception):
    """Raised by the save callback to cut a run short after some epochs."""


def make_model() -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.2), nn.ReLU(), nn.Linear(8, 1))


DATA = [
    (torch.randn(4, generator=torch.Generator().manual_seed(i)), torch.tensor([float(i % 3)]))
    for i in range(12)
]


def collate(items):
    return torch.stack([x for x, _ in items]), torch.stack([y for _, y in items])


def objective(model, batch):
    x, y = batch
    return {"loss": ((model(x) - y) ** 2).mean()}


def run(
    run_dir: Path, resume: bool = False, stop_after: int | None = None, freeze_first: bool = False
) -> nn.Module:
    """Three epochs of a tiny regression; ``stop_after`` epochs: stop (like a kill) before saving the next;
    ``freeze_first``: the first layer is not trained (fewer tensors in the optimiser)."""
    model = make_model()
    if freeze_first:
        model[0].requires_grad_(False)

    def save(path: Path, extra: dict) -> None:
        if stop_after is not None and extra["epoch"] > stop_after:
            raise Stop
        path.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path / "model.safetensors"))
        meta = {**extra, "weights_sha256": weights_sha256(path / "model.safetensors")}
        (path / "meta.json").write_text(json.dumps(meta))

    cfg = OptimConfig(epochs=3, batch_size=4, lr=1e-2, seed=0)
    try:
        train(model, objective, DATA, collate, cfg, run_dir, save, DistContext(), resume=resume)
    except Stop:
        pass
    return model


def test_a_resumed_run_ends_exactly_where_an_uninterrupted_one_does(tmp_path: Path):
    straight = run(tmp_path / "a")
    run(tmp_path / "b", stop_after=1)
    assert json.loads((tmp_path / "b/last/meta.json").read_text())["epoch"] == 1
    resumed = run(tmp_path / "b", resume=True)
    for (name, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), name
    sa, sb = load_train_state(tmp_path / "a/last"), load_train_state(tmp_path / "b/last")
    assert sa["step"] == sb["step"] == 9
    assert sa["scheduler"] == sb["scheduler"]
    for i, st in sa["optimizer"]["state"].items():
        for k, v in st.items():
            assert torch.equal(v, sb["optimizer"]["state"][i][k]), (i, k)
    assert sa["optimizer"]["param_groups"] == sb["optimizer"]["param_groups"]


def test_the_stored_state_round_trips_with_its_types():
    m = nn.Linear(3, 2)
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-3, total_steps=10)
    m(torch.ones(1, 3)).sum().backward()
    opt.step()
    sched.step()
    state = {"optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "rng": torch.get_rng_state()}
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        save_train_state(d, state)
        back = load_train_state(d)
    assert back["scheduler"] == state["scheduler"]
    assert back["optimizer"]["param_groups"] == state["optimizer"]["param_groups"]
    assert isinstance(back["optimizer"]["param_groups"][0]["betas"], tuple)
    assert set(back["optimizer"]["state"]) == {0, 1}  # int keys stay ints
    assert torch.equal(back["rng"], state["rng"])


class Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "pwned"))


def test_a_pickle_planted_at_the_resume_paths_never_runs(tmp_path: Path, capsys):
    run(tmp_path, stop_after=1)
    marker = tmp_path / "payload-ran"
    bomb = pickle.dumps({"optimizer": Payload(marker), "step": 3})
    pickle.loads(pickle.dumps(Payload(tmp_path / "probe")))  # the payload is live: it writes its marker
    assert (tmp_path / "probe").exists()
    for path in (tmp_path / "train_state.pt", tmp_path / "last/train_state.pt"):
        path.write_bytes(bomb)
    # and the JSON/safetensors pair replaced by a pickle too: refused as unreadable, never unpickled
    (tmp_path / "last" / STATE_TENSORS).write_bytes(bomb)
    run(tmp_path, resume=True)
    assert not marker.exists()
    out = capsys.readouterr().out
    assert "ignoring" in out and "a pickle, never loaded" in out
    assert f"{STATE_TENSORS}: missing or not the tensors" in out


# fast-forwarding the schedule is no optimiser step: torch's scheduler-order warning would read as a bug
@pytest.mark.filterwarnings("error:Detected call of `lr_scheduler.step\\(\\)`:UserWarning")
def test_a_resume_without_the_training_state_says_what_is_missing(tmp_path: Path, capsys):
    """Weights without train_state.json (a copied checkpoint): the run continues with a fresh optimiser,
    saying so in one line; past the end of the schedule it stops with one line instead of OneCycleLR's
    ValueError."""
    run(tmp_path, stop_after=2)  # 3 steps per epoch: last/ holds step 6
    for name in (STATE_JSON, STATE_TENSORS):
        (tmp_path / "last" / name).unlink()
    capsys.readouterr()
    run(tmp_path, resume=True)  # three epochs: 9 steps, 3 left
    out = capsys.readouterr().out
    (line,) = [ln for ln in out.splitlines() if "warning" in ln]
    assert f"{tmp_path / 'last'} has no {STATE_JSON}" in line and "continues at step 6" in line
    assert json.loads((tmp_path / "last" / "meta.json").read_text())["step"] == 9

    for name in (STATE_JSON, STATE_TENSORS):
        (tmp_path / "last" / name).unlink()
    cfg = OptimConfig(epochs=3, batch_size=4, lr=1e-2, seed=0, max_steps=2)
    with pytest.raises(ResumeError) as e:
        train(make_model(), objective, DATA, collate, cfg, tmp_path, None, DistContext(), resume=True)
    (line,) = str(e.value).splitlines()
    assert f"has no {STATE_JSON}" in line and "at step 9, past the 2 steps" in line and "--init-from" in line
    assert isinstance(e.value, UserError)


def test_a_resume_after_the_trainable_set_changed_restarts_the_optimiser(tmp_path: Path, capsys):
    """A run saved while a part was trained, resumed by code that freezes it: the optimiser state holds other
    tensors, so the run says so in one line and goes on with a fresh optimiser instead of torch's
    parameter-group ValueError."""
    run(tmp_path, stop_after=2)
    capsys.readouterr()
    model = run(tmp_path, resume=True, freeze_first=True)
    out = capsys.readouterr().out
    (line,) = [ln for ln in out.splitlines() if "warning" in ln]
    assert "holds other trainable parameters" in line and "optimiser restarts" in line
    assert json.loads((tmp_path / "last" / "meta.json").read_text())["step"] == 9
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_a_mismatched_pair_is_refused(tmp_path: Path):
    save_train_state(tmp_path, {"w": torch.ones(2), "step": 1})
    save_file({"state.w": torch.zeros(2)}, str(tmp_path / STATE_TENSORS))
    with pytest.raises(TrainStateError, match="not the tensors"):
        load_train_state(tmp_path)
    (tmp_path / STATE_JSON).write_text("{not json")
    with pytest.raises(TrainStateError, match="unreadable JSON"):
        load_train_state(tmp_path)
