"""What a new user reads: the demo's closing report, the --help of the pip-only tools, readable training
logs, and the all-val synthetic world."""

from __future__ import annotations

import json
import re
from pathlib import Path

from cli_runner import run_cli
from tool_modules import load_tool

from simdistill_ros.detection.live_stats import BUSY, NO_SET, TIME_JUMP, PipelineStats
from simdistill_ros.synth.export import split_scenes
from simdistill_ros.training.command import store_label_note
from simdistill_ros.training.loop import format_log_row

demo_report = load_tool("demo_report")  # tools/demo_report.py: the report of `make demo`
DemoRun = demo_report.DemoRun
card_reference = demo_report.card_reference
collect_demo_run = demo_report.collect_demo_run
format_demo_report = demo_report.format_demo_report
node_counts = demo_report.node_counts

ROOT = Path(__file__).resolve().parents[1]

# The demo report --------------------------------------------------------------------------------------------


def _run() -> DemoRun:
    return DemoRun(
        model="/x/models/student_tiny",
        scene="scene-0007-0001",
        frames_in_bag=6,
        frames_published=6,
        frames_recorded=5,
        dropped=1,
        failed=0,
        live={
            "mean_ap": 0.1823,
            "nd_score": 0.1651,
            "tp_errors": {
                "trans_err": 0.912,
                "scale_err": 0.41,
                "orient_err": 1.5,
                "vel_err": 7.7,
                "attr_err": 0.3,
            },
        },
        reference={"mAP": 6.6, "NDS": 16.0, "mATE": 0.981, "mASE": 0.407, "mAOE": 1.561, "mAVE": 1.099},
        sanity_map=1.0,
        pictures="out/demo/pictures",
        overview="out/demo/pictures/overview.png",
        detect_bag="out/demo/detect_bag",
        live_detections="out/demo/live/detections.json",
        metrics="out/demo/live/eval/report.txt",
        seconds=95.4,
        card_frames=400,
        model_ms=212.4,
    )


def test_demo_report_labels_every_number_and_puts_the_live_metrics_beside_the_card():
    text = format_demo_report(_run())
    lines = text.splitlines()
    assert any("demo report" in line for line in lines)
    k = next(i for i, line in enumerate(lines) if line.startswith("What ran"))
    ran = " ".join(line.strip() for line in lines[k : k + 2])
    assert "bag_player (scene-0007-0001) -> detector_node (student_tiny) -> detection_recorder" in ran
    assert "`simdistill detect`" in ran
    frames = next(line for line in lines if line.startswith("Frames"))
    assert "6 played, 6 published by the node, 5 recorded; 1 dropped, 0 failed" in frames
    # mAP and NDS in points, this run first, then the model card.
    assert any(line.split() == ["mAP", "18.2", "6.6"] for line in lines), text
    assert any(line.split() == ["NDS", "16.5", "16.0"] for line in lines), text
    assert any(line.split() == ["mATE", "0.912", "0.981", "m"] for line in lines), text
    header = next(line for line in lines if "this run" in line)
    assert header.index("this run") < header.index("model card")
    # No bare fractions: the live mAP 0.182 never appears as such.
    assert "0.182" not in text and "0.165" not in text
    # mAVE is explained, never given a number (the live 7.7 nor the card's 1.099).
    assert "mAVE is not shown: Detection3DArray has no velocity field" in text
    assert "7.700" not in text and "1.099" not in text
    assert not any(re.match(r"\s*mAVE\s+[\d.?]", line) for line in lines)  # no row of numbers
    # The sanity check is labelled as such.
    check = next(line for line in lines if line.startswith("Metric check"))
    assert "ground truth scored as detections" in check and "100.0" in check and "ok" in check
    for label, path in (
        ("Pictures", "out/demo/pictures"),
        ("Overview", "out/demo/pictures/overview.png"),
        ("Output bag", "out/demo/detect_bag"),
        ("Live detections", "out/demo/live/detections.json"),
    ):
        assert any(line.startswith(label) and path in line for line in lines), label
    assert any(line.startswith("Took") and "95 s" in line for line in lines)
    # Like with like: the frames each column scored, said plainly, and the speed this run measured.
    assert any(line.split() == ["frames", "5", "400"] for line in lines), text
    assert "Not like for like: this run scores 5 frames of one scene" in text
    speed = next(line for line in lines if line.startswith("Speed"))
    assert "model median 212 ms/frame in this run" in speed


def test_demo_report_flags_a_broken_sanity_check_and_unknown_numbers():
    run = _run()
    run.sanity_map = 0.5
    run.frames_published = None
    run.live = {}
    text = format_demo_report(run)
    assert "WRONG" in text
    assert "6 played, ? published" in text
    assert any(line.split() == ["mAP", "?", "6.6"] for line in text.splitlines())


def test_card_reference_reads_the_shipped_student_card():
    ref = card_reference(ROOT / "models" / "student_tiny")
    card = (ROOT / "models" / "student_tiny" / "README.md").read_text()
    assert set(ref) == {"mAP", "NDS", "mATE", "mASE", "mAOE", "mAVE", "mAAE"}
    assert f"| {ref['mAP']:.1f} | {ref['NDS']:.1f} | {ref['mATE']:.3f} |" in card
    assert card_reference(ROOT / "does-not-exist") == {}


def test_node_counts_reads_the_stopped_line():
    stats = PipelineStats(["CAM_FRONT"])  # the node's own summary line
    for _ in range(6):
        stats.frame_synced(1.0, False)
    stats.published = 5
    stats.frame_failed("boom", 1.0)
    stats.drop(BUSY, "x", 1.0, n=2)
    stats.drop(NO_SET, "y", 1.0, n=3)
    stats.drop(TIME_JUMP, "z", 1.0)
    log = f"[INFO] [1.0] [node]: started\n[INFO] [9.0] [node]: stopped: {stats.summary()}\n"
    assert node_counts(log) == {"synced": 6, "published": 5, "failed": 1, "dropped_busy": 2, "unmatched": 3}
    clean = "stopped: 4 frames synced, 4 published, 0 failed, dropped: none"
    assert node_counts(clean) == {"synced": 4, "published": 4, "failed": 0, "dropped_busy": 0, "unmatched": 0}
    assert node_counts("nothing here") == {}


def test_collect_demo_run_reads_a_demo_directory(tmp_path: Path):
    live = tmp_path / "live"
    (live / "eval").mkdir(parents=True)
    (live / "node.log").write_text(
        "stopped: 6 frames synced, 6 published, 0 failed, dropped: 1 no complete camera set"
    )
    (live / "detections.json").write_text(json.dumps({"frames": [{}, {}, {}]}))
    (live / "eval" / "metrics_summary.json").write_text(json.dumps({"mean_ap": 0.25, "nd_score": 0.2}))
    (tmp_path / "sanity").mkdir()
    (tmp_path / "sanity" / "metrics_summary.json").write_text(json.dumps({"mean_ap": 1.0}))
    (tmp_path / "detect.log").write_text(
        "detect: 6 frames, 40 detections (score >= 0.25) with student (torch) on cpu; model median 451.7 "
        "ms/frame; 9.1 s in all\n"
    )
    run = collect_demo_run(tmp_path, ROOT / "models" / "student_tiny", "scene-x", frames=6)
    assert run.model_ms == 451.7
    assert run.card_frames is None  # the tiny card does not say how many frames it scored
    assert demo_report.card_frames(ROOT / "models" / "student_v2") == 400  # "val split: 400 frames"
    assert (run.frames_in_bag, run.frames_published, run.frames_recorded) == (6, 6, 3)
    assert (run.dropped, run.failed, run.sanity_map) == (1, 0, 1.0)
    assert run.reference["mAP"] == card_reference(ROOT / "models" / "student_tiny")["mAP"]
    assert run.overview == ""  # no overview written
    assert "25.0" in format_demo_report(run)
    assert run.frames_with_velocity == 0 and run.offline == {}


def test_demo_report_shows_the_published_mave_beside_the_cards():
    run = _run()
    run.frames_with_velocity = 5
    run.offline = {"mean_ap": 0.2, "nd_score": 0.19, "tp_errors": {"vel_err": 1.234}}
    text = format_demo_report(run)
    lines = text.splitlines()
    assert any(line.split() == ["mAVE", "7.700", "1.099", "m/s"] for line in lines), text
    assert "mAVE from the velocity the node published in DetectedObjects (5 of 5 frames)" in text
    assert "mAVE is not shown" not in text
    k = next(i for i, line in enumerate(lines) if line.startswith("Offline bag"))
    assert "simdistill evaluate --detections" in lines[k]
    assert "mAP 20.0, NDS 19.0, mAVE 1.234 m/s" in lines[k + 1]


def test_collect_demo_run_counts_frames_with_published_velocity(tmp_path: Path):
    live = tmp_path / "live"
    (live / "eval").mkdir(parents=True)
    frames = [{"has_velocity": True}, {"has_velocity": True}, {"has_velocity": False}]
    (live / "detections.json").write_text(json.dumps({"frames": frames}))
    (tmp_path / "offline_eval").mkdir()
    (tmp_path / "offline_eval" / "metrics_summary.json").write_text(json.dumps({"mean_ap": 0.3}))
    run = collect_demo_run(tmp_path, ROOT / "models" / "student_tiny", "scene-x")
    assert run.frames_with_velocity == 2 and run.offline == {"mean_ap": 0.3}


# Training logs ---------------------------------------------------------------------------------------------


def test_training_log_line_rounds_the_numbers():
    row = {
        "epoch": 3,
        "step": 480,
        "lr": 0.0005014999999999993,
        "seconds": 41.237,
        "loss": 4.406734,
        "imd": 0.03,
    }
    assert format_log_row(row) == "epoch=3 step=480 lr=5.01e-04 seconds=41.2 loss=4.4067 imd=0.0300"


def test_store_label_note_names_only_the_label_sources_that_occur():
    assert store_label_note(640, 640, 0.3) == "640 frames, all with ground truth"
    assert store_label_note(640, 0, 0.3) == "640 frames, all on teacher pseudo-labels >= 0.3"
    mixed = store_label_note(640, 600, 0.3)
    assert mixed == "640 frames, 600 with ground truth, the other 40 on teacher pseudo-labels >= 0.3"
    assert "the rest" not in store_label_note(640, 640, 0.3) and "pseudo" not in store_label_note(
        640, 640, 0.3
    )


# The all-val world -----------------------------------------------------------------------------------------


def test_split_scenes_at_one_puts_every_scene_in_val():
    names = [f"s{k}" for k in range(3)]
    assert split_scenes(names, 1.0) == {"train": [], "val": names}
    assert split_scenes(["only"], 1.0) == {"train": [], "val": ["only"]}
    assert split_scenes(names, 0.5) == {"train": names[:1], "val": names[1:]}  # a mixed world keeps both


def test_synth_val_fraction_one_makes_an_all_val_world_that_evaluates_but_does_not_train(tmp_path: Path):
    world = tmp_path / "w"
    args = ["synth", "--out", str(world), "--scenes", "2", "--frames-per-scene", "1", "--seed", "3"]
    proc = run_cli(*args, "--image-size", "48x80", "--val-fraction", "1.0", check=False, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "train 0 scenes, val 2" in proc.stdout
    splits = json.loads((world / "v1.0-synth" / "splits.json").read_text())
    assert splits["train"] == [] and len(splits["val"]) == 2
    ev = run_cli(
        "evaluate", "--data", str(world), "--split", "val", "--gt-as-results", check=False, timeout=240
    )
    assert ev.returncode == 0 and re.search(r"^mAP\s+1\.000", ev.stdout, re.M), ev.stdout + ev.stderr[-2000:]
    train_args = ["train", "baseline", "--config", "tiny", "--data", str(world), "--out", str(tmp_path / "r")]
    train = run_cli(*train_args, check=False, timeout=240)
    assert train.returncode == 2 and "holds no frames" in train.stderr and "Traceback" not in train.stderr
    bad = run_cli("synth", "--out", str(tmp_path / "x"), "--val-fraction", "1.5", check=False)
    assert bad.returncode == 2 and "--val-fraction" in bad.stderr
