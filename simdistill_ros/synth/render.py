"""Camera and LiDAR sensor models on top of the shared ray caster.

Cameras: Lambertian shading under a sun plus sky ambient, cast shadows, sky gradient with sun glow and
clouds, distance haze, vignetting, exposure/white-balance jitter and Gaussian pixel noise. Depth maps are
the optical z of the first hit (inf for sky).
LiDAR: a spinning multi-beam scanner treated as instantaneous at its stamp; Gaussian range noise, random
dropout, intensity from surface reflectivity and incidence angle, no returns from the sky.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from simdistill_ros.geometry import PinholeCamera, Transform
from simdistill_ros.synth.noise import fractal_noise
from simdistill_ros.synth.raycast import SKY, cast, occluded
from simdistill_ros.synth.scene import Scene

SUN_COLOR = np.array([1.0, 0.96, 0.88], np.float32)
HAZE_DISTANCE = 700.0  # metres; aerial perspective towards the horizon colour
SHADOW_REACH = 60.0  # metres; casters farther than this along the sun ray are ignored
SHADOW_RANGE = 50.0  # metres from the camera; farther surfaces are drawn without shadows

# Velodyne HDL-32E (nuScenes' LIDAR_TOP): 32 beams from -30.67 to +10.67 degrees, ~1085 firings per turn.
HDL32_ELEVATION_DEG = (-30.67, 10.67)
HDL32_AZIMUTH_STEP_DEG = 360.0 / 1085


def rotate(vectors: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """``vectors @ rotation.T`` for (N, 3) arrays, without BLAS: OpenBLAS threads on these thin products
    cost more CPU than they save, especially on a busy machine."""
    return np.einsum("nk,jk->nj", vectors, rotation)


@dataclass
class CameraRender:
    rgb: np.ndarray  # (H, W, 3) uint8
    depth: np.ndarray  # (H, W) float32, optical z, inf for sky
    object_index: np.ndarray  # (H, W) int32, as raycast.Hits.object_index


@dataclass
class LidarRender:
    points: np.ndarray  # (N, 4) float32 x, y, z, intensity in the LiDAR frame
    object_index: np.ndarray  # (N,) int32, what each return hit


def _morton_order(height: int, width: int) -> np.ndarray:
    """Pixel indices (row-major) sorted along a Z-order curve, so consecutive rays form compact tiles."""
    rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")

    def spread(v: np.ndarray) -> np.ndarray:
        v = v.astype(np.uint64)
        out = np.zeros_like(v)
        for bit in range(16):
            out |= ((v >> np.uint64(bit)) & np.uint64(1)) << np.uint64(2 * bit)
        return out

    code = spread(rows.ravel()) | (spread(cols.ravel()) << np.uint64(1))
    return np.argsort(code, kind="stable")


@lru_cache(maxsize=16)
def _camera_rays(width: int, height: int, k: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(order (HW,), unit ray directions in the optical frame (HW, 3) in that order, their z (HW,))."""
    kinv = np.linalg.inv(np.array(k).reshape(3, 3))
    order = _morton_order(height, width)
    v, u = np.divmod(order, width)
    pix = np.stack([u + 0.5, v + 0.5, np.ones_like(u, dtype=np.float64)], 1)  # pixel centres
    rays = pix @ kinv.T
    rays /= np.linalg.norm(rays, axis=1, keepdims=True)
    return order, rays, rays[:, 2].copy()


@lru_cache(maxsize=16)
def _vignette(height: int, width: int) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width]
    r2 = ((xx + 0.5 - width / 2) / (width / 2)) ** 2 + ((yy + 0.5 - height / 2) / (height / 2)) ** 2
    return (1.0 - 0.12 * r2).astype(np.float32)


def _sky(dirs: np.ndarray, scene: Scene) -> np.ndarray:
    spec = scene.spec
    sun = np.asarray(spec.sun_direction)
    up = np.clip(dirs[:, 2], 0.0, 1.0)
    t = np.sqrt(up)[:, None]
    color = np.asarray(spec.sky_horizon) * (1 - t) + np.asarray(spec.sky_zenith) * t
    # Clouds on a plane high above, fading towards the horizon where they would alias.
    with np.errstate(divide="ignore", invalid="ignore"):
        h = 1.0 / np.maximum(up, 0.03)
    cloud = fractal_noise(
        dirs[:, 0] * h * 3.0, dirs[:, 1] * h * 3.0, spec.noise_seed % 10007, (4.0, 1.5, 0.5)
    )
    cover = np.clip((cloud + 0.12) * 3.0, 0.0, 1.0) * np.clip(up * 6.0, 0.0, 1.0)
    color = color * (1 - 0.7 * cover[:, None]) + 0.92 * 0.7 * cover[:, None]
    cos_sun = np.clip(np.einsum("nk,k->n", dirs, sun), 0.0, 1.0)
    glow = 0.35 * cos_sun**64 + 0.12 * cos_sun**6
    return (color + glow[:, None] * SUN_COLOR).astype(np.float32)


def render_camera_layers(
    camera: PinholeCamera,
    ego_pose: Transform,
    scene: Scene,
    t: float,
    rng: np.random.Generator,
    shadows: bool = True,
    noise_sigma: float = 2.0,
) -> CameraRender:
    """Render one camera at scene time ``t`` with the ego at ``ego_pose`` (base_link in map)."""
    h, w = camera.height, camera.width
    order, rays_cam, rays_z = _camera_rays(w, h, tuple(camera.intrinsics.ravel().tolist()))
    cam_to_world = ego_pose @ camera.cam_to_base
    dirs = rotate(rays_cam, cam_to_world.rotation)
    origin = cam_to_world.translation
    pixel_angle = 1.0 / float(camera.intrinsics[0, 0])
    hits = cast(origin, dirs, scene, t, pixel_angle=pixel_angle, chunk_size=2048)
    spec = scene.spec
    sun = np.asarray(spec.sun_direction)

    surface = hits.hit
    color = np.zeros((len(dirs), 3), np.float32)
    if surface.any():
        idx = np.flatnonzero(surface)
        n = hits.normal[idx].astype(np.float64)
        ndl = np.clip(np.einsum("nk,k->n", n, sun), 0.0, None)
        if shadows:
            # Shadow rays towards the sun from lit surfaces near enough for shadows to show.
            lit = np.flatnonzero((ndl > 0) & (hits.distance[idx] < SHADOW_RANGE))
            p = origin + dirs[idx[lit]] * hits.distance[idx[lit], None] + n[lit] * 0.02
            shade = occluded(p, sun, scene, t, SHADOW_REACH, chunk_size=2048)
            ndl[lit[shade]] = 0.0
        sky_light = (
            spec.ambient
            * (0.75 + 0.25 * n[:, 2])[:, None]
            * (0.6 + 0.4 * np.asarray(spec.sky_horizon) / max(np.mean(spec.sky_horizon), 1e-3))
        )
        light = sky_light + spec.sun_intensity * ndl[:, None] * SUN_COLOR
        c = hits.albedo[idx] * light
        haze = 1.0 - np.exp(-hits.distance[idx] / HAZE_DISTANCE)
        color[idx] = c * (1 - haze[:, None]) + np.asarray(spec.sky_horizon) * haze[:, None]
    if (~surface).any():
        color[~surface] = _sky(dirs[~surface], scene)

    # Back to raster order.
    img = np.empty((h * w, 3), np.float32)
    img[order] = color
    img = img.reshape(h, w, 3)
    depth = np.empty(h * w, np.float32)
    depth[order] = np.where(surface, hits.distance * rays_z, np.inf)
    obj = np.empty(h * w, np.int32)
    obj[order] = hits.object_index

    # Camera response: exposure and white-balance jitter, vignetting, a soft shoulder, sensor noise.
    gain = (rng.normal(1.0, 0.04) * rng.normal(1.0, 0.015, 3)).astype(np.float32)
    img *= _vignette(h, w)[..., None] * gain
    img = img * np.float32(1.15 * 255.0) / (np.float32(1.0) + np.float32(0.15) * img)
    img += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(noise_sigma)
    rgb = np.clip(img + np.float32(0.5), 0, 255).astype(np.uint8)
    return CameraRender(rgb, depth.reshape(h, w), obj.reshape(h, w))


def render_camera(
    camera: PinholeCamera, ego_pose: Transform, scene: Scene, t: float, rng: np.random.Generator, **kwargs
) -> tuple[np.ndarray, np.ndarray]:
    """(rgb (H, W, 3) uint8, depth (H, W) float32 optical z with inf for sky); see render_camera_layers."""
    out = render_camera_layers(camera, ego_pose, scene, t, rng, **kwargs)
    return out.rgb, out.depth


def lidar_directions(
    beams: int = 32,
    elevation_deg: tuple[float, float] = HDL32_ELEVATION_DEG,
    azimuth_step_deg: float = HDL32_AZIMUTH_STEP_DEG,
) -> np.ndarray:
    """Unit beam directions (n_azimuth * beams, 3) in the LiDAR frame, azimuth-major (one firing after the
    other), so consecutive rays form narrow sectors for the caster's culling."""
    elevation = np.deg2rad(np.linspace(elevation_deg[0], elevation_deg[1], beams))
    azimuth = np.deg2rad(np.arange(0.0, 360.0, azimuth_step_deg))
    ce, se = np.cos(elevation), np.sin(elevation)
    ca, sa = np.cos(azimuth)[:, None], np.sin(azimuth)[:, None]
    return np.stack([ca * ce, sa * ce, np.broadcast_to(se, (len(azimuth), beams))], -1).reshape(-1, 3)


def render_lidar_layers(
    lidar_to_base: Transform,
    ego_pose: Transform,
    scene: Scene,
    t: float,
    rng: np.random.Generator,
    beams: int = 32,
    elevation_deg: tuple[float, float] = HDL32_ELEVATION_DEG,
    azimuth_step_deg: float = HDL32_AZIMUTH_STEP_DEG,
    max_range: float = 70.0,
    min_range: float = 1.0,
    range_noise: float = 0.02,
    dropout: float = 0.07,
) -> LidarRender:
    """One sweep at scene time ``t`` (instantaneous), points in the LiDAR frame."""
    dirs_lidar = lidar_directions(beams, elevation_deg, azimuth_step_deg)
    keep = rng.random(len(dirs_lidar)) >= dropout
    dirs_lidar = dirs_lidar[keep]
    lidar_to_world = ego_pose @ lidar_to_base
    dirs = rotate(dirs_lidar, lidar_to_world.rotation)
    hits = cast(lidar_to_world.translation, dirs, scene, t, max_distance=max_range, chunk_size=2048)
    valid = (hits.object_index != SKY) & (hits.distance >= min_range)
    rng_noise = rng.normal(0.0, range_noise, len(dirs))
    r = (hits.distance + rng_noise)[valid]
    cos_inc = np.abs((hits.normal[valid] * dirs[valid]).sum(1))
    intensity = 255.0 * hits.reflectivity[valid] * (0.15 + 0.85 * cos_inc)
    intensity = np.clip(intensity + rng.normal(0.0, 1.5, len(intensity)), 0.0, 255.0)
    points = np.concatenate([dirs_lidar[valid] * r[:, None], intensity[:, None]], 1).astype(np.float32)
    return LidarRender(points, hits.object_index[valid])


def render_lidar(
    lidar_to_base: Transform, ego_pose: Transform, scene: Scene, t: float, rng: np.random.Generator, **kwargs
) -> np.ndarray:
    """(N, 4) float32 points (x, y, z, intensity 0-255) in the LiDAR frame; see render_lidar_layers."""
    return render_lidar_layers(lidar_to_base, ego_pose, scene, t, rng, **kwargs).points
