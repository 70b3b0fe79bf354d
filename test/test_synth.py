"""The synthetic world: determinism, sensor timing, LiDAR/camera geometric agreement, annotations."""

import json
from pathlib import Path

import numpy as np
import pytest

from simdistill_ros.geometry import Box3D, nuscenes_like_rig
from simdistill_ros.synth import (
    GROUND,
    SCENERY,
    SKY,
    CameraEvent,
    EgoPoseEvent,
    LidarEvent,
    SampleEvent,
    Scene,
    SceneObject,
    SceneRecording,
    SensorTimeline,
    WorldConfig,
    cast,
    generate_scene,
    render_camera_layers,
    render_lidar,
    render_lidar_layers,
)
from simdistill_ros.synth.catalog import MEAN_SIZE, mean_size, object_parts

CONFIG = WorldConfig(duration_s=2.0)
SMALL = (64, 112)


@pytest.fixture(scope="module")
def scene() -> Scene:
    return generate_scene(np.random.default_rng(5), CONFIG)


@pytest.fixture(scope="module")
def rig():
    return nuscenes_like_rig(*SMALL)


def _first_frame(seed: int, rig) -> list:
    sc = generate_scene(np.random.default_rng(seed), CONFIG)
    return list(SceneRecording(sc, rig, num_frames=1).events())


def test_recording_is_deterministic_per_seed(rig):
    a, b, c = _first_frame(3, rig), _first_frame(3, rig), _first_frame(4, rig)
    assert [e.kind for e in a] == [e.kind for e in b]
    for x, y in zip(a, b):
        if isinstance(x, CameraEvent):
            assert np.array_equal(x.rgb, y.rgb) and np.array_equal(x.depth, y.depth)
        if isinstance(x, LidarEvent):
            assert np.array_equal(x.points, y.points)
    cams_a = [e.rgb for e in a if isinstance(e, CameraEvent)]
    cams_c = [e.rgb for e in c if isinstance(e, CameraEvent)]
    assert not np.array_equal(cams_a[0], cams_c[0])
    pts_a = next(e.points for e in a if isinstance(e, LidarEvent))
    pts_c = next(e.points for e in c if isinstance(e, LidarEvent))
    assert pts_a.shape != pts_c.shape or not np.array_equal(pts_a, pts_c)


def test_scene_contents(scene):
    assert 15 <= len(scene.objects) <= 40
    labels = {o.label for o in scene.objects}
    assert len(labels) >= 3
    for o in scene.objects:
        assert np.isclose(o.center[2], o.size[2] / 2)  # standing on the ground


def test_timeline_order_and_stamps(scene, rig):
    rec = SceneRecording(scene, rig, num_frames=3)
    events = list(rec)
    stamps = [e.stamp_ns for e in events]
    assert stamps == sorted(stamps)
    samples = [e for e in events if isinstance(e, SampleEvent)]
    assert [s.frame_index for s in samples] == [0, 1, 2]
    period = 1e9 / 12
    for s in samples:
        assert abs(s.stamp_ns - rec.start_stamp_ns - s.frame_index * period) <= 1
        cams = [e for e in events if isinstance(e, CameraEvent) and e.frame_index == s.frame_index]
        assert [c.name for c in cams] == rig.names
        assert [c.stamp_ns - s.stamp_ns for c in cams] == [i * 8_000_000 for i in range(6)]
        assert s.camera_stamps_ns == {c.name: c.stamp_ns for c in cams}
        assert abs(s.lidar_stamp_ns - s.stamp_ns) <= 25_000_000  # nearest 20 Hz sweep
    sweeps = [e for e in events if isinstance(e, LidarEvent)]
    assert np.all(np.diff([e.stamp_ns for e in sweeps]) == 50_000_000)
    # Every sensor message is preceded by the ego pose at its stamp.
    for prev, e in zip(events, events[1:]):
        if isinstance(e, (CameraEvent, LidarEvent)) and not isinstance(prev, EgoPoseEvent):
            assert isinstance(prev, (CameraEvent, LidarEvent)) and prev.stamp_ns == e.stamp_ns
    for e in events:
        if isinstance(e, EgoPoseEvent):
            expected = scene.ego_pose_at(rec.scene_time(e.stamp_ns))
            assert np.allclose(e.pose.matrix(), expected.matrix())
    cam = next(e for e in events if isinstance(e, CameraEvent))
    assert cam.rgb.shape == (*SMALL, 3) and cam.rgb.dtype == np.uint8
    assert cam.depth.shape == SMALL and cam.depth.dtype == np.float32
    assert np.isinf(cam.depth[0]).any() and np.isfinite(cam.depth[-1]).all()  # sky above, ground below


def _bilinear_inverse_depth(depth: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Depth at sub-pixel (u, v), interpolating 1/depth between pixel centres: exact on planes, unlike the
    nearest pixel, whose depth on grazing ground differs from the point's by metres at this resolution."""
    h, w = depth.shape
    inv = np.where(np.isfinite(depth), 1.0 / depth, 0.0)
    x = np.clip(u - 0.5, 0, w - 1.001)
    y = np.clip(v - 0.5, 0, h - 1.001)
    x0, y0 = x.astype(int), y.astype(int)
    fx, fy = x - x0, y - y0
    i = (
        inv[y0, x0] * (1 - fx) * (1 - fy)
        + inv[y0, x0 + 1] * fx * (1 - fy)
        + inv[y0 + 1, x0] * (1 - fx) * fy
        + inv[y0 + 1, x0 + 1] * fx * fy
    )
    return 1.0 / np.maximum(i, 1e-9)


def test_lidar_points_agree_with_camera_depth(scene):
    # Twice the small size: at 64 x 112 silhouette pixels (poles, tree trunks, edges) alone are ~10 %.
    rig = nuscenes_like_rig(128, 224)
    t = 1.0  # both sensors at the same instant (the scene moves)
    pose = scene.ego_pose_at(t)
    points = render_lidar(rig.lidar_to_base, pose, scene, t, np.random.default_rng(0))
    assert points.dtype == np.float32 and points.shape[1] == 4 and len(points) > 10_000
    base = rig.lidar_to_base.apply(points[:, :3])
    world = pose.apply(base)
    errors = []
    for cam in rig.cameras:
        depth = render_camera_layers(cam, pose, scene, t, np.random.default_rng(1), shadows=False).depth
        uv, z = cam.project(base)
        ok = cam.in_image(uv, z)
        # Only points the camera can see: the LiDAR sits higher and sees over things the camera cannot.
        centre = (pose @ cam.cam_to_base).translation
        offset = world[ok] - centre
        dist = np.linalg.norm(offset, axis=1)
        free = cast(centre, offset / dist[:, None], scene, t).distance >= dist - 0.3
        ok[np.flatnonzero(ok)[~free]] = False
        errors.append(np.abs(_bilinear_inverse_depth(depth, uv[ok, 0], uv[ok, 1]) - z[ok]))
        # The nearest pixel agrees too where the depth changes slowly (close range).
        near = ok & (z < 8.0)
        px = depth[uv[near, 1].astype(int), uv[near, 0].astype(int)]
        assert np.median(np.abs(px - z[near])) < 0.1
    errors = np.concatenate(errors)
    assert len(errors) > 5_000
    assert np.median(errors) < 0.1
    assert (errors < 0.2).mean() > 0.9


def test_lidar_intensity_and_range(scene, rig):
    t = 0.5
    points = render_lidar(rig.lidar_to_base, scene.ego_pose_at(t), scene, t, np.random.default_rng(0))
    r = np.linalg.norm(points[:, :3], axis=1)
    assert r.max() <= 70.1 and r.min() >= 0.9
    assert points[:, 3].min() >= 0 and points[:, 3].max() <= 255 and points[:, 3].std() > 5
    # Spinning HDL-32E-like pattern: elevations between -30.67 and +10.67 degrees.
    elevation = np.degrees(np.arcsin(points[:, 2] / r))
    assert elevation.min() > -31.5 and elevation.max() < 11.5


def test_every_object_is_seen_by_the_lidar(scene, rig):
    rec = SceneRecording(scene, rig)
    seen = np.zeros(len(scene.objects), np.int64)
    sweeps = rec.timeline.sweeps_in(0, rec.timeline.cycle_ns(rec.num_frames))
    for j in sweeps:
        t = rec.scene_time(rec.sweep_stamp_ns(j))
        out = render_lidar_layers(rig.lidar_to_base, scene.ego_pose_at(t), scene, t, np.random.default_rng(j))
        hit = out.object_index[out.object_index >= 0]
        seen += np.bincount(hit, minlength=len(scene.objects))
    assert (seen > 0).all(), [o.label for o, n in zip(scene.objects, seen) if n == 0]


def test_num_lidar_pts_counts_points_in_boxes_moved_to_sweep_time(scene, rig):
    # A LiDAR phase off the camera cycle, so keyframe sweeps are not at the sample instants.
    rec = SceneRecording(scene, rig, timeline=SensorTimeline(lidar_phase_ns=21_000_000))
    total = 0
    for k in (0, 7, 13):
        sample = rec.sample(k)
        sweep = rec.render_sweep(sample.lidar_sweep_index)
        assert sweep.stamp_ns == sample.lidar_stamp_ns != sample.stamp_ns
        dt = (sweep.stamp_ns - sample.stamp_ns) / 1e9
        # Points into the sample's base frame; boxes moved along their (base-frame) velocity.
        sweep_pose = rec.ego_pose_at(sweep.stamp_ns)
        to_sample_base = sample.ego_pose.inverse() @ sweep_pose @ rig.lidar_to_base
        pts = to_sample_base.apply(sweep.points[:, :3])
        for box, n in zip(sample.boxes, sample.num_lidar_pts):
            moved = Box3D(
                box.center + np.array([*box.velocity * dt, 0.0]), box.size, box.yaw, box.label, box.velocity
            )
            assert int(moved.contains(pts).sum()) == n
        total += int(sample.num_lidar_pts.sum())
        assert len(sample.attributes) == len(sample.boxes)
    assert total > 0


def test_sizes_vary_per_instance():
    sizes: dict[str, list] = {}
    for seed in range(4):
        config = WorldConfig(duration_s=2.0, scenery=False, min_lidar_points=0)
        for o in generate_scene(np.random.default_rng(seed), config).objects:
            sizes.setdefault(o.label, []).append((o.size, mean_size(o.label, o.role == "moving")))
    ratios = []
    for label, pairs in sizes.items():
        s = np.array([p[0] for p in pairs])
        ratios.append(s / np.array([p[1] for p in pairs]))
        # No two instances of a class share a dimension, so apparent size does not give depth away.
        for k in range(3):
            assert len(np.unique(s[:, k])) == len(s), label
        assert np.allclose(mean_size(label)[:2], MEAN_SIZE[label][:2])
    ratios = np.concatenate(ratios)
    assert ratios.min() >= 0.8 - 1e-9 and ratios.max() <= 1.2 + 1e-9
    assert (ratios.std(0) > 0.07).all() and np.allclose(ratios.mean(0), 1.0, atol=0.05)
    assert len(sizes["car"]) >= 4


def test_velocities_are_consistent_with_motion(scene):
    t1, t2 = 0.3, 1.1
    b1, b2 = scene.boxes_at(t1), scene.boxes_at(t2)
    moving = 0
    for o, x, y in zip(scene.objects, b1, b2):
        assert x.instance_id == y.instance_id == o.instance_id
        assert np.allclose((y.center - x.center)[:2] / (t2 - t1), x.velocity)
        assert np.isclose(x.yaw, y.yaw) and np.allclose(x.size, y.size)
        if o.role == "moving":
            assert np.linalg.norm(x.velocity) > 0.5
            moving += 1
        elif o.label in ("barrier", "traffic_cone"):
            assert np.allclose(x.velocity, 0)
    assert moving > 0
    # In a sample the velocity is the world velocity rotated into the base frame.
    rec = SceneRecording(scene, nuscenes_like_rig(*SMALL))
    sample = rec.sample(4)
    world = {b.instance_id: b for b in scene.boxes_at(rec.scene_time(sample.stamp_ns))}
    rot = sample.ego_pose.rotation[:2, :2]
    for b in sample.boxes:
        assert np.allclose(rot @ b.velocity, world[b.instance_id].velocity)
        assert np.allclose(sample.ego_pose.apply(b.center[None])[0], world[b.instance_id].center)


def _bev_overlap(a: Box3D, b: Box3D) -> bool:
    """Do two boxes' footprints overlap? (grid points of one inside the other, both ways)."""
    for p, q in ((a, b), (b, a)):
        g = np.linspace(-0.5, 0.5, 7)
        local = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2) * p.size[:2]
        c, s = np.cos(p.yaw), np.sin(p.yaw)
        xy = local @ np.array([[c, s], [-s, c]]) + p.center[:2]
        pts = np.concatenate([xy, np.full((len(xy), 1), q.center[2])], 1)
        if q.contains(pts).any():
            return True
    return False


def test_objects_overlap_neither_each_other_nor_the_ego(scene):
    for t in np.linspace(0.0, scene.spec.duration_s, 5):
        boxes = scene.boxes_at(t)
        pose = scene.ego_pose_at(t)
        ego = Box3D(pose.apply(np.array([[1.4, 0.0, 0.8]]))[0], [4.9, 2.0, 1.6], pose.yaw, "car")
        for i, a in enumerate(boxes):
            assert not _bev_overlap(a, ego)
            for b in boxes[i + 1 :]:
                assert not _bev_overlap(a, b), (a.label, b.label, t)


def test_ray_caster_on_a_known_box(scene):
    # One car 10 m ahead of the origin, yawed 90 degrees: its side faces the rays.
    size = np.array([4.0, 2.0, 1.5])
    car = SceneObject(
        "car",
        "c0",
        size,
        np.array([10.0, 0.0, 0.75]),
        np.pi / 2,
        np.array([0.0, 1.0]),
        tuple(object_parts("car", size, np.random.default_rng(0), False)),
    )
    sc = Scene(scene.spec, [car], [])
    origins = np.array([[0.0, 0.0, 0.5], [0.0, 0.0, 2.0], [0.0, 0.0, 2.0], [0.0, 0.0, 0.5]])
    dirs = np.array([[1.0, 0.0, 0.0], [np.cos(0.5), 0.0, -np.sin(0.5)], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    hits = cast(origins, dirs, sc, t=0.0)
    assert hits.object_index.tolist()[:3] == [0, GROUND, SKY]
    assert np.isclose(hits.distance[0], 10.0 - 1.0 + 0.03, atol=1e-4)  # the side, inset 3 cm
    assert np.allclose(hits.normal[0], [-1.0, 0.0, 0.0], atol=1e-6)
    assert np.isclose(hits.distance[1], 2.0 / np.sin(0.5), atol=1e-4)
    assert np.isinf(hits.distance[2])
    # The car drives along +y: after 3 s it has left the ray.
    moved = cast(origins, dirs, sc, t=3.0)
    assert moved.object_index[3] == SKY


def test_camera_sees_objects_and_scenery(scene, rig):
    t = 0.5
    pose = scene.ego_pose_at(t)
    seen = np.concatenate(
        [
            render_camera_layers(c, pose, scene, t, np.random.default_rng(0)).object_index.ravel()
            for c in rig.cameras
        ]
    )
    assert {GROUND, SKY, SCENERY} <= set(np.unique(seen).tolist())
    assert (seen >= 0).any()


def test_shadow_rays_with_no_lit_pixels():
    # A camera facing a wall has no ground pixels to shadow-test: an empty batch of rays must work.
    from simdistill_ros.synth.raycast import occluded

    scene = generate_scene(np.random.default_rng(0))
    assert occluded(np.zeros((0, 3)), np.array([0.0, 0.0, 1.0]), scene, 0.0).shape == (0,)


def test_worker_processes_write_the_same_bytes_as_one(tmp_path):
    # every scene draws from its own generator and the tables list scenes in order, so rendering scenes in
    # parallel must change no byte of the world (only the summary's timing and worker count differ)
    from simdistill_ros.synth.export import synthesize

    def world_files(root):
        return {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()}

    args = dict(scenes=3, frames_per_scene=1, seed=11, image_size=(48, 96), val_fraction=0.34, progress=False)
    serial = synthesize(tmp_path / "serial", workers=1, **args)
    parallel = synthesize(tmp_path / "parallel", workers=2, **args)
    one, two = world_files(tmp_path / "serial"), world_files(tmp_path / "parallel")
    summaries = [json.loads(files.pop(Path("synth.json"))) for files in (one, two)]
    assert one.keys() == two.keys() and len(one) > 3 * 6
    assert [k for k in one if one[k] != two[k]] == []
    timing = ("seconds", "seconds_per_frame", "workers")
    same = [{k: v for k, v in summary.items() if k not in timing} for summary in summaries]
    assert same[0] == same[1]
    assert (serial["workers"], parallel["workers"]) == (1, 2) and serial["frames"] == parallel["frames"] == 3


def test_a_scene_that_fails_in_a_worker_fails_the_world_without_tables(tmp_path):
    from simdistill_ros.synth.export import synthesize

    with pytest.raises(Exception, match="nonsense"):
        synthesize(
            tmp_path / "w", 3, 1, seed=11, storage="nonsense", image_size=(48, 96), progress=False, workers=2
        )
    assert not (tmp_path / "w" / "v1.0-synth").exists()  # a dataset with tables is complete
