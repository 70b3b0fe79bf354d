"""The fair reproduction harness end to end on a micro configuration: one optimizer step per arm, a tiny
world, two seeds. Every finished run leaves a result JSON, a second invocation trains nothing, and the table
is assembled from the JSONs alone (mean +- sd over seeds, per-class AP, AP at 2 m and 4 m)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from tool_modules import load_tool

from simdistill_ros.models import load_checkpoint

card_reference = load_tool("demo_report").card_reference
table = load_tool("reproduction_table")
format_fair = table.format_fair
load_records = table.load_records
metrics_from_summary = table.metrics_from_summary

ROOT = Path(__file__).resolve().parents[1]


ProgressLine = Callable[[str], None]


@pytest.fixture
def progress(request: pytest.FixtureRequest, tmp_path: Path) -> ProgressLine:
    """Writes a line to the terminal while the test runs (past output capture, also under ``-q``), so a
    test that runs the harness for minutes shows where it is instead of going silent."""
    reporter = request.config.pluginmanager.getplugin("terminalreporter")
    capture = request.config.pluginmanager.getplugin("capturemanager")

    def write(line: str) -> None:
        if reporter is None or capture is None:
            return
        with capture.global_and_fixture_disabled():
            short = line.split(" (log: ")[0].replace(str(tmp_path), "<tmp_path>")
            reporter.write_line(f"  {request.node.name}: {short}")

    return write


def _reproduce(
    env: dict[str, str], progress: ProgressLine = lambda line: None
) -> subprocess.CompletedProcess:
    """One run of the harness, ``tools/reproduce.sh``, from the checkout's root; its ``== `` stage lines
    go to ``progress`` as they come."""
    args = ["bash", str(ROOT / "tools" / "reproduce.sh")]
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=err, text=True, cwd=ROOT)
        out = []
        for line in proc.stdout:
            out.append(line)
            if line.startswith("== "):
                progress(line.rstrip())
        proc.wait()
        err.seek(0)
        return subprocess.CompletedProcess(args, proc.returncode, "".join(out), err.read())


def _summary(mean_ap: float) -> dict:
    aps = {"car": {"0.5": 0.0, "1.0": mean_ap, "2.0": 2 * mean_ap, "4.0": 3 * mean_ap}}
    return {
        "mean_ap": mean_ap,
        "nd_score": 0.2,
        "tp_errors": {"trans_err": 0.5, "scale_err": 0.3, "orient_err": 1.0, "vel_err": 1.0, "attr_err": 1.0},
        "mean_dist_aps": {"car": mean_ap},
        "label_aps": aps,
        "classes_evaluated": ["car"],
    }


def test_table_mean_and_sd_from_records() -> None:
    records = [
        {
            "name": f"student_s{s}",
            "arm": "student",
            "seed": s,
            "trained_at": "2026-11-29T10:00Z",
            "metrics": m,
        }
        for s, m in enumerate(metrics_from_summary(_summary(v)) for v in (0.10, 0.20, 0.30))
    ]
    records.append(
        {
            "name": "ablate_cmd",
            "arm": "ablate_cmd",
            "seed": 0,
            "trained_at": "2026-11-30T09:00Z",
            "metrics": metrics_from_summary(_summary(0.05)),
        }
    )
    text = format_fair(records)
    assert "| 3 (0,1,2) | 20.00 +- 10.00 |" in text  # mAP mean +- sd in points
    assert "40.00 +- 20.00 | 60.00 +- 30.00" in text  # AP@2m, AP@4m
    assert "one seed, ablation" in text
    assert "2026-11-29 (3 runs), 2026-11-30 (1 run)" in text


def test_table_says_what_the_vehicles_were_called_mean_over_seeds() -> None:
    def record(seed: int, right: float) -> dict:
        metrics = metrics_from_summary(_summary(0.1))
        metrics["class_called"] = {
            "construction_vehicle": {
                "boxes": 100,
                "called": {"construction_vehicle": right, "truck": 0.6 - right, "missed": 0.4},
            },
            "bus": {"boxes": 0, "called": {}},
        }
        return {"name": f"baseline_depth_warm_s{seed}", "arm": "baseline_depth_warm", "seed": seed,
                "trained_at": "2026-12-07T10:00Z", "metrics": metrics}  # fmt: skip

    text = format_fair([record(0, 0.1), record(1, 0.3)])
    assert "What the detections called the vehicles (val;" in text
    assert "| construction_vehicle | bus |" in text  # the devkit's vehicle order
    assert "depth supervision (2) | 20 / 40 / truck 40 |  |" in text  # a class without boxes: empty
    assert "the fresh world;" not in text  # no fresh-world counts recorded


def test_table_lists_the_distillation_probes_of_each_world(tmp_path) -> None:
    load_distillation_probes = table.load_distillation_probes

    def report(run: str, r2: float) -> dict:
        maps = {
            k: {"r2_all_cells": r2, "r2_foreground": r2 / 2, "student_gt_corr": 0.2, "teacher_gt_corr": 0.1}
            for k in ("camera_bev", "lidar_bev", "fused_bev")
        }
        probe = {"student": f"runs/fair/{run}/last", "frames": 40, "maps": maps}
        return {"distillation_probes": [probe | {"heatmap_corr_with_teacher": 0.5}]}

    (tmp_path / "student_s0.probe.json").write_text(json.dumps(report("student_s0", 0.9)))
    (tmp_path / "student_nodistill_s0.probe.json").write_text(json.dumps(report("student_nodistill_s0", 0.5)))
    (tmp_path / "student_s0.probe_fresh.json").write_text(json.dumps(report("student_s0", 0.8)))
    probes = load_distillation_probes(tmp_path)
    assert [len(probes[w]) for w in ("val", "fresh")] == [2, 1]
    record = {"name": "student_s0", "arm": "student", "seed": 0, "trained_at": "2026-11-29T10:00Z"}
    text = format_fair([record | {"metrics": metrics_from_summary(_summary(0.2))}], None, probes)
    assert "| student_s0 | +0.90 | +0.200 | +0.45 | +0.200 | +0.90 | +0.200 | +0.500 |" in text
    assert "| student_nodistill_s0 | +0.50 |" in text
    assert "(the fresh world, 40 frames;" in text and "| student_s0 | +0.80 |" in text
    assert "| teacher (its own maps; LiDAR for the middle pair) | 1 | +0.100 | 1 |" in text
    assert load_records(tmp_path) == []  # probe reports are not run records


def test_table_pairs_arms_by_seed() -> None:
    def record(arm: str, seed: int, m: float, fresh: float | None = None) -> dict:
        r = {"name": f"{arm}_s{seed}", "arm": arm, "seed": seed, "trained_at": "2026-11-29T10:00Z"}
        r["metrics"] = metrics_from_summary(_summary(m))
        if fresh is not None:
            r["metrics_fresh"] = metrics_from_summary(_summary(fresh))
        return r

    records = [record("student", 0, 0.20, 0.30), record("student", 1, 0.25, 0.30), record("student", 2, 0.5)]
    records += [record("baseline_warm", 0, 0.19, 0.28), record("baseline_warm", 1, 0.21, 0.29)]
    text = format_fair(records)
    line = next(ln for ln in text.splitlines() if ln.startswith("- SimDistill student"))
    # seed 2 has no warm baseline: only seeds 0 and 1 pair; sd of (+1, +4) is 2.12
    assert "minus Camera-only baseline, warm-started" in line
    assert "val mAP +1.00 (s0), +4.00 (s1); mean +2.50 +- 2.12" in line
    assert "fresh world mAP +2.00 (s0), +1.00 (s1); mean +1.50 +- 0.71" in line
    assert "val NDS +0.00 (s0), +0.00 (s1)" in line
    assert "student_nodistill" not in text and "Student, same start" not in text  # no such runs, no pair


def test_table_splits_the_gain_by_lever_and_checks_the_goal() -> None:
    def record(arm: str, seed: int, m: float, fresh: float) -> dict:
        r = {"name": f"{arm}_s{seed}", "arm": arm, "seed": seed, "trained_at": "2026-12-07T10:00Z"}
        r["metrics"] = metrics_from_summary(_summary(m))
        r["metrics_fresh"] = metrics_from_summary(_summary(fresh))
        return r

    records = [record("baseline", s, 0.10, 0.10) for s in (0, 1)]
    records += [record("baseline_long", 0, 0.12, 0.12), record("baseline_long", 1, 0.14, 0.12)]
    records += [record("baseline_depth_long", 0, 0.20, 0.15), record("baseline_depth_long", 1, 0.20, 0.15)]
    text = format_fair(records)
    rows = {ln.split(" | ")[0]: ln for ln in text.splitlines() if ln.startswith("| ") and " - " in ln}
    # length: +2 and +4 points (sd 1.41); NDS is 0.2 in every record, so its differences are zero
    assert rows["| training length: 3000 steps instead of 1000, ImageNet start"].endswith(
        "| baseline_long - baseline | 2 | +3.00 +- 1.41 | +0.00 +- 0.00 | +2.00 +- 0.00 | +0.00 +- 0.00 |"
    )
    shipped = (
        "| the goal: best LiDAR recipe over the equal-training baseline | baseline_depth_long - baseline_long"
        " | 2 | +7.00"
    )
    assert (
        shipped in text
        and "| LiDAR depth supervision (`--depth-weight 3`), 3000 steps | baseline_depth_long" in text
    )
    assert not any("teacher start" in row for row in rows)  # no such runs, no row
    # mAP clears +4.8 on val but NDS does not: the goal is not met anywhere
    assert (
        "(baseline_depth_long over baseline_long by >= +4.8 mAP and +4.1 NDS): not met on val (+7.00 mAP"
        in text
    )
    assert "not met on the fresh world (+3.00 mAP, +0.00 NDS over 2 seed(s))" in text
    # the README's table of the same levers: one decimal, a mean that rounds to zero without a sign
    levers = table.lever_table(records)
    assert (
        "| training length: 3000 steps instead of 1000, ImageNet start | 2 | +3.0 +- 1.4 | 0.0 +- 0.0 |"
        in levers
    )
    assert "teacher start" not in levers


def test_the_readme_quotes_the_lever_table_of_the_committed_records() -> None:
    committed = table.lever_table(load_records(ROOT / "results" / "reproduce"))
    assert committed in (ROOT / "README.md").read_text(), (
        "README's table of levers differs from the records: paste `python tools/reproduction_table.py levers "
        "results/reproduce`\n" + committed
    )


@pytest.mark.timeout(900)
def test_reproduce_micro_is_resumable(tmp_path: Path, progress: ProgressLine) -> None:
    py = sys.executable
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DATA": str(tmp_path / "data"),
        "RUNS": str(tmp_path / "runs"),
        "RESULTS": str(tmp_path / "results"),
        "FRESH": str(tmp_path / "fresh"),
        "FRESH_SCENES": "1",
        "FRESH_SEED": "7",
        "CONFIG": "tiny",
        "STEPS": "1",
        "BATCH": "1",
        "SEEDS": "0 1",
        "ARMS_ONLY": "teacher baseline student",
        "TRAIN_SCENES": "1",
        "VAL_SCENES": "1",
        "FRAMES": "1",
        "IMAGE_SIZE": "64x160",
        "DEVICE": "cpu",
        "SIM": f"{py} -m simdistill_ros.cli",
        "PY": py,
    }
    first = _reproduce(env, progress)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    results = tmp_path / "results"
    names = sorted(p.stem for p in results.glob("*.json"))
    probes = [f"student_s{s}.{w}" for s in (0, 1) for w in ("probe", "probe_fresh")]
    probes += [f"{n}.depth" for n in ("baseline_s0", "baseline_s1", "student_s0", "student_s1", "teacher")]
    assert names == sorted(
        ["baseline_s0", "baseline_s1", "student_s0", "student_s1", "teacher", "teacher_probe", *probes]
    )
    records = {r["name"]: r for r in load_records(results)}
    assert all(r["steps"] == 1 and r["val_frames"] == 1 for r in records.values())
    # every run is also scored on the fresh world, a val-only world of another seed
    assert all(
        "metrics_fresh" in r and r["fresh_seed"] == 7 and r["fresh_frames"] == 1 for r in records.values()
    )
    assert json.loads((tmp_path / "fresh" / "synth.json").read_text())["split"]["train"] == []
    assert records["student_s1"]["seed"] == 1 and records["teacher"]["arm"] == "teacher"
    assert "--init-from" in records["teacher"]["command"]  # staged: started from the camera-only model
    # what the detections called each vehicle class's boxes, on both worlds (evaluation/confusion.py)
    for key in ("metrics", "metrics_fresh"):
        called = records["baseline_s0"][key]["class_called"]
        assert sorted(called) == sorted(["car", "truck", "construction_vehicle", "bus", "trailer"])
        assert all(abs(sum(c["called"].values()) - 1.0) < 1e-3 for c in called.values() if c["boxes"])
    probe = json.loads((results / "teacher_probe.json").read_text())["probes"]
    assert len(probe) == 2 and all(-1.0 <= p["corr_mean"] <= 1.0 for p in probe)
    table = (results / "table.md").read_text()
    assert "SimDistill student" in table and "| 2 (0,1) |" in table and "AP@2m" in table
    assert "On a fresh world (seed 7, 1 frames; no model saw it)" in table
    # each student against the teacher, map by map, on both worlds (bev_probe --teacher)
    (probe_run,) = json.loads((results / "student_s1.probe_fresh.json").read_text())["distillation_probes"]
    assert probe_run["student"].endswith("student_s1/last") and probe_run["frames"] == 1
    assert "What the distillation put into the student's BEV maps (the fresh world, 1 frames" in table
    again = _reproduce(env, progress)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "training" not in again.stdout
    assert again.stdout.count("skipped") == 4  # baseline_s0/s1, student_s0/s1
    assert "| fresh world mAP" not in again.stdout  # nothing re-scored
    # a record from before the fresh world gets its fresh-world metrics while the run is still on disk
    for name in ("student_s1", "teacher"):
        record_file = results / f"{name}.json"
        old = json.loads(record_file.read_text())
        del old["metrics_fresh"]
        record_file.write_text(json.dumps(old))
    (results / "student_s0.probe.json").unlink()  # and a missing probe is made again
    before = json.loads((results / "baseline_s0.json").read_text())  # and a record without the vehicle count
    stripped = json.loads(json.dumps(before))
    for key in ("metrics", "metrics_fresh"):
        del stripped[key]["class_called"]
    (results / "baseline_s0.json").write_text(json.dumps(stripped))
    third = _reproduce(env, progress)
    assert third.returncode == 0, third.stderr[-3000:]
    assert "training" not in third.stdout and third.stdout.count("| fresh world mAP") == 2
    assert all(
        "metrics_fresh" in json.loads((results / f"{n}.json").read_text()) for n in ("student_s1", "teacher")
    )
    assert (results / "student_s0.probe.json").is_file()
    assert json.loads((results / "baseline_s0.json").read_text()) == before  # recounted, nothing else changed
    # the runs ship with cards made from their records (tools/ship_models.py, as the _v2 models were)
    ship = [py, str(ROOT / "tools" / "ship_models.py"), str(tmp_path / "runs")]
    dest = ["--suffix", "x", "--records", str(results), "--dest", str(tmp_path / "models")]
    shipped = subprocess.run(
        [*ship, "teacher", "student=student_s1", "baseline=baseline_s1", *dest],
        capture_output=True,
        text=True,
    )
    assert shipped.returncode == 0, shipped.stderr[-3000:]
    student = tmp_path / "models" / "student_x"
    card = (student / "README.md").read_text()
    assert "synthetic val split: 1 frames" in card and "On a fresh world no model trained" in card
    assert "seed 1, trained" in card and (tmp_path / "models" / "teacher_x" / "README.md").is_file()
    assert "IMD 1, CMD 100, MMD-F 1, MMD-P 0.25; feature terms SimDistill's" in card  # the card's recipe
    assert "LiDAR depth" not in card
    # the card compares the student with the baseline shipped beside it, by seed over every seed both have
    assert (
        "- Against `baseline_x` (`make reproduce` arms `student` minus `baseline`, paired by seed, 2 seeds"
        in card
    )
    assert "1 steps of batch" in card  # the schedule from the record, not a fixed sentence
    assert card_reference(student)["mAP"] == round(100 * records["student_s1"]["metrics"]["mAP"], 1)
    _, _, meta = load_checkpoint(student)  # the weights' sha256 is checked on load
    assert meta["synthetic_world"] == {"world": "v2", "image_size": "64x160"}  # the harness default
    wrong = subprocess.run([*ship, "baseline=student_s1", *dest], capture_output=True, text=True)
    assert wrong.returncode == 2 and "is a student: name it student or student_SOMETHING" in wrong.stderr
    # a fresh machine: the runs are gone and the shipped teacher stands in for the teacher run, so a
    # later arm trains alone (no camera stage, no teacher re-trained)
    shutil.rmtree(tmp_path / "runs")
    teacher = tmp_path / "models" / "teacher_x"
    given = {**env, "ARMS_ONLY": "ablate_init", "TEACHER": str(teacher)}
    fourth = _reproduce(given, progress)
    assert fourth.returncode == 0, fourth.stdout[-3000:] + fourth.stderr[-3000:]
    assert fourth.stdout.count("training") == 1 and "== ablate_init: training student" in fourth.stdout
    ablate = json.loads((results / "ablate_init.json").read_text())
    assert f"--teacher {teacher}" in ablate["command"] and "--init-from" not in ablate["command"]
    # the v3 arms: the equal-training control runs the student's whole lineage (3 x STEPS) and keeps
    # snapshots scored on val; the v3 student carries its recipe; every record keeps its loss curve
    v3 = {**given, "ARMS_ONLY": "baseline_long student_v3 baseline_depth_warm ablate_v3_cmd", "SEEDS": "0"}
    fifth = _reproduce(v3, progress)
    assert fifth.returncode == 0, fifth.stdout[-3000:] + fifth.stderr[-3000:]
    long = json.loads((results / "baseline_long_s0.json").read_text())
    assert long["steps"] == 3 and "--max-steps 3" in long["command"]
    assert list(long["val_at_steps"]) == ["1", "2"] and 0.0 <= long["val_at_steps"]["2"]["mAP"] <= 1.0
    assert long["curve"][-1]["step"] == 3 and "gt_heatmap" in long["curve"][-1]
    v3_record = json.loads((results / "student_v3_s0.json").read_text())
    assert "--depth-weight 3" in v3_record["command"] and "--feature-loss balanced" in v3_record["command"]
    assert "depth" in v3_record["curve"][-1] and v3_record["steps"] == 1
    v3_table = (results / "table.md").read_text()
    assert "as many steps as the student's whole lineage" in v3_table
    assert "- Camera-only baseline, ImageNet start, as many steps" in v3_table and "step 2: " in v3_table
    depth = json.loads((results / "baseline_long_s0.depth.json").read_text())["depth_probes"][0]
    assert depth["cells"] > 0 and 0.0 <= depth["argmax_within_1m"] <= 1.0
    assert "Camera depth against the LiDAR" in v3_table and "| baseline_long_s0 |" in v3_table
    # the control with the v3 student's start, steps and depth loss, and a v3 ablation, paired and listed
    warm_depth = json.loads((results / "baseline_depth_warm_s0.json").read_text())["command"]
    assert "--depth-weight 3" in warm_depth and f"--init-from {teacher}" in warm_depth
    ablated = json.loads((results / "ablate_v3_cmd.json").read_text())["command"]
    assert "--feature-loss balanced" in ablated and "--disable cmd" in ablated
    control = "Camera-only baseline, warm-started from the teacher, with LiDAR depth supervision"
    assert f"minus {control}" in v3_table
    assert "v3 - CMD" in v3_table
    # a v3 checkpoint's card states its recipe from its own config: depth weight, balanced terms, no CMD
    v3_ship = subprocess.run([*ship, "student=ablate_v3_cmd", *dest], capture_output=True, text=True)
    assert v3_ship.returncode == 0, v3_ship.stderr[-3000:]
    v3_card = (student / "README.md").read_text()
    assert "trained against LiDAR depth (BCE on each hit feature cell's bin, weight 3" in v3_card
    assert "on (weights): IMD 1.5, MMD-F 0.2, MMD-P 0.25; feature terms balanced" in v3_card
    missing = {**given, "TEACHER": str(tmp_path / "no_teacher")}
    bad = _reproduce(missing, progress)
    assert bad.returncode == 1 and "no_teacher is not a checkpoint (no meta.json)" in bad.stderr
    # a teacher lineage with its own arguments (teacher_v3: depth supervision in both stages): the camera
    # stage is its own run, not a baseline seed, and both records and the table say what it had; the
    # arguments of a screen (TRAIN_ARGS) go to every run and are said likewise
    lineage_results = tmp_path / "results_lineage"
    lineage_env = {**env, "RESULTS": str(lineage_results), "RUNS": str(tmp_path / "runs_lineage")}
    lineage_env |= {"ARMS_ONLY": "teacher", "SEEDS": "0", "LINEAGE_ARGS": "--depth-weight 2"}
    lineage_env |= {"TRAIN_ARGS": "--image-noise 2"}
    sixth = _reproduce(lineage_env, progress)
    assert sixth.returncode == 0, sixth.stdout[-3000:] + sixth.stderr[-3000:]
    lineage = {r["name"]: r for r in load_records(lineage_results)}
    assert sorted(lineage) == ["camera_stage", "teacher"]
    assert lineage["camera_stage"]["arm"] == "camera_stage"
    assert all(
        "--depth-weight 2" in r["command"] and r["lineage_args"] == "--depth-weight 2"
        for r in lineage.values()
    )
    assert all(
        "--image-noise 2" in r["command"] and r["train_args"] == "--image-noise 2" for r in lineage.values()
    )
    assert (
        f"--init-from {tmp_path / 'runs_lineage' / 'camera_stage' / 'last'}" in lineage["teacher"]["command"]
    )
    lineage_table = (lineage_results / "table.md").read_text()
    assert "trained with `--depth-weight 2`" in lineage_table
    assert "trained with `--image-noise 2`" in lineage_table


def test_bev_probe_correlation() -> None:
    import torch

    from simdistill_ros.evaluation.bev_probe import bev_gt_correlation

    heat = torch.zeros(2, 3, 8, 8)
    heat[:, 1, 2, 3] = 1.0
    heat[:, 2, 6, 6] = 0.5
    bev = torch.zeros(2, 4, 8, 8)
    bev[0, 0] = heat[0].amax(0) * 3.0  # energy where the objects are
    bev[1, :, 0, 0] = 1.0  # energy elsewhere
    same, elsewhere = bev_gt_correlation(bev, heat)
    assert same == pytest.approx(1.0)
    assert elsewhere < 0.0
    assert bev_gt_correlation(torch.ones(1, 4, 8, 8), heat[:1]) == [0.0]  # a constant map carries nothing


def test_explained_variance_of_a_teacher_map() -> None:
    import torch

    from simdistill_ros.evaluation.bev_probe import explained_variance

    torch.manual_seed(0)
    t = torch.randn(2, 4, 8, 8)
    mean = t.mean(dim=(0, 2, 3), keepdim=True).expand_as(t)
    assert explained_variance(t, t) == pytest.approx(1.0)
    assert explained_variance(mean, t) == pytest.approx(0.0, abs=1e-12)
    assert explained_variance(2 * t, t) < 0.0  # the right pattern at the wrong scale is worse than the mean
    noisy = t + 0.5 * torch.randn_like(t)
    assert 0.5 < explained_variance(noisy, t) < 0.9  # about 1 - 0.25
    mask = torch.zeros(2, 1, 8, 8)
    mask[:, :, :4] = 1.0
    half = torch.where(mask.bool(), t, torch.zeros_like(t))  # right on the masked cells only
    assert explained_variance(half, t, mask) == pytest.approx(1.0)
    assert explained_variance(half, t) < 1.0


def test_distillation_probe_compares_a_student_with_its_teacher(tmp_path) -> None:
    from simdistill_ros.evaluation.bev_probe import main as probe_main
    from simdistill_ros.models.checkpoint import resolve_model_path
    from simdistill_ros.synth.export import synthesize

    synthesize(tmp_path / "world", 1, 3, 5, image_size=(64, 112), val_fraction=0.0, progress=False)
    student, teacher = (str(resolve_model_path(n)) for n in ("student_tiny", "teacher_tiny"))
    out = tmp_path / "probe.json"
    argv = ["--model", student, "--teacher", teacher, "--data", str(tmp_path / "world"), "--split", "train"]
    assert probe_main([*argv, "--frames", "3", "--out", str(out)]) == 0
    (run,) = json.loads(out.read_text())["distillation_probes"]
    assert run["frames"] == 3 and set(run["maps"]) == {"camera_bev", "lidar_bev", "fused_bev"}
    assert run["maps"]["lidar_bev"]["pulled_by"] == "cmd"
    for m in run["maps"].values():
        assert all(
            np.isfinite(v) for k, v in m.items() if k.endswith(("r2_all_cells", "r2_foreground", "corr"))
        )
    # the shipped tiny student was distilled from this teacher: its heatmap follows the teacher's
    assert run["heatmap_corr_with_teacher"] > 0.3
    with pytest.raises(ValueError, match="not a student"):
        probe_main(
            ["--model", teacher, "--teacher", teacher, "--data", str(tmp_path / "world"), "--split", "train"]
        )
