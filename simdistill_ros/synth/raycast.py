"""The one ray caster behind both the cameras and the LiDAR.

Rays are grouped in chunks of consecutive rays. All chunks are first culled at once against every
actor's bounding sphere with a conservative cone test (all rays of a chunk lie in a cone from a small ball
of origins); then, chunk by chunk, rays are tested against the surviving spheres (as matrix products),
the (ray, actor) pairs that pass against the actor's bounding box in its own frame (a slab test), and only
rays entering that box against its parts. Rays from one sensor, ordered so that neighbours share a chunk,
therefore touch only the few actors in their direction. The ground is the plane z = 0 of the world frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simdistill_ros.synth.materials import part_surface
from simdistill_ros.synth.scene import PackedGeometry, Scene

GROUND = -1
SKY = -2  # no hit (also rays beyond max_distance)
SCENERY = -3  # buildings, trees, street lights: not annotated


@dataclass
class Hits:
    """What R rays hit. ``object_index`` >= 0 indexes ``scene.objects``; see GROUND, SKY, SCENERY."""

    distance: np.ndarray  # (R,) float32, along the (unit) ray; inf where nothing was hit
    object_index: np.ndarray  # (R,) int32
    normal: np.ndarray  # (R, 3) float32, world frame, facing the ray origin side
    albedo: np.ndarray  # (R, 3) float32 RGB in [0, 1]
    reflectivity: np.ndarray  # (R,) float32 in [0, 1]

    @property
    def hit(self) -> np.ndarray:
        return self.object_index != SKY


@dataclass
class _Trace:
    distance: np.ndarray  # (R,) float64, inf where no actor was hit
    part: np.ndarray  # (R,) int64, -1 where no actor was hit
    axis: np.ndarray  # (R,) int8: face normal axis in the actor frame
    sign: np.ndarray  # (R,) int8: +-1


def _chunk_candidates(
    origins: np.ndarray,
    dirs: np.ndarray,
    starts: np.ndarray,
    centers: np.ndarray,
    radius: np.ndarray,
    max_distance: float,
    common_origin: bool,
    common_dir: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(chunk, actor) index pairs where some ray of the chunk may reach the actor's bounding sphere, and
    each chunk's mean origin (chunks, 3) and origin spread (chunks,).

    Conservative: all rays of a chunk leave a ball (mean origin, spread) inside a cone (mean direction,
    half-angle alpha); a sphere grown by the spread is then reachable only if its angular radius seen from
    the mean origin overlaps the cone.
    """
    counts = np.diff(np.append(starts, len(origins)))
    chunk_of_ray = np.repeat(np.arange(len(starts)), counts)
    if common_origin:
        o_mean = np.broadcast_to(origins[0], (len(starts), 3))
        spread = np.zeros(len(starts))
    else:
        o_mean = np.add.reduceat(origins, starts, axis=0) / counts[:, None]
        off = origins - o_mean[chunk_of_ray]
        spread = np.sqrt(np.maximum.reduceat(np.einsum("rk,rk->r", off, off), starts))
    if common_dir:
        m = np.broadcast_to(dirs[0], (len(starts), 3))
        alpha = np.zeros(len(starts))
        usable = np.ones(len(starts), bool)
    else:
        m = np.add.reduceat(dirs, starts, axis=0)
        norm = np.linalg.norm(m, axis=1)
        usable = norm > 1e-9  # directions that cancel out leave no usable cone
        m = m / np.maximum(norm, 1e-12)[:, None]
        cos_min = np.minimum.reduceat(np.einsum("rk,rk->r", dirs, m[chunk_of_ray]), starts)
        alpha = np.arccos(np.clip(cos_min, -1.0, 1.0))
    w = centers[None, :, :] - o_mean[:, None, :]  # (chunks, actors, 3)
    dist = np.linalg.norm(w, axis=2)
    reach = radius[None, :] + spread[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        gamma = np.arccos(np.clip(np.einsum("cak,ck->ca", w, m) / dist, -1.0, 1.0))
        beta = np.arcsin(np.clip(reach / dist, 0.0, 1.0))
    cand = (gamma <= alpha[:, None] + beta + 1e-6) | (dist <= reach) | ~usable[:, None]
    cand &= dist - reach <= max_distance
    chunk, actor = np.nonzero(cand)
    return chunk, actor, np.asarray(o_mean), spread


def _slab(
    lo: np.ndarray, hi: np.ndarray, o: tuple[np.ndarray, ...], d: tuple[np.ndarray, ...]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Ray/axis-aligned-box slab test: entry and exit distances, the entry face's axis and outward sign."""
    tn = np.full(len(lo), -np.inf, np.float32)
    tf = np.full(len(lo), np.inf, np.float32)
    axis = np.zeros(len(lo), np.int8)
    sign = np.zeros(len(lo), np.int8)
    for k in range(3):
        dk = d[k]
        dk = np.where(np.abs(dk) < 1e-12, np.float32(1e-12), dk)
        inv = np.float32(1.0) / dk
        t1 = (lo[:, k] - o[k]) * inv
        t2 = (hi[:, k] - o[k]) * inv
        near = np.minimum(t1, t2)
        later = near > tn
        tn = np.where(later, near, tn)
        axis[later] = k
        sign[later] = np.where(dk[later] > 0, -1, 1)
        tf = np.minimum(tf, np.maximum(t1, t2))
    return tn, tf, axis, sign


def _trace_actors(
    origins: np.ndarray,
    dirs: np.ndarray,
    geom: PackedGeometry,
    t: float,
    max_distance: float,
    chunk_size: int,
    any_hit: bool = False,
) -> _Trace:
    """Nearest actor hit of each ray. ``origins`` (3,) or ``dirs`` (3,) are shared by all rays."""
    common_origin, common_dir = origins.ndim == 1, dirs.ndim == 1
    # A shared (3,) vector broadcasts to the other's row count, which may be zero (nothing to trace).
    n = len(origins) if not common_origin else (len(dirs) if not common_dir else 1)
    origins = np.broadcast_to(origins, (n, 3))
    dirs = np.broadcast_to(dirs, (n, 3))
    best_t = np.full(n, np.inf)
    best_part = np.full(n, -1, np.int64)
    best_axis = np.zeros(n, np.int8)
    best_sign = np.ones(n, np.int8)
    if len(geom.radius) == 0 or n == 0:
        return _Trace(best_t, best_part, best_axis, best_sign)
    centers = geom.centers_at(t)
    actor_lo = geom.actor_lo.astype(np.float32)
    actor_hi = geom.actor_hi.astype(np.float32)
    part_lo = geom.part_lo.astype(np.float32)
    part_hi = geom.part_hi.astype(np.float32)
    single = geom.part_count == 1
    starts = np.arange(0, n, chunk_size)
    cand_chunk, cand_actor, chunk_origin, chunk_spread = _chunk_candidates(
        origins, dirs, starts, centers, geom.radius, max_distance, common_origin, common_dir
    )
    bounds = np.searchsorted(cand_chunk, np.arange(len(starts) + 1))
    for k in np.unique(cand_chunk):  # chunks with candidates only
        start = int(starts[k])
        sl = slice(start, min(n, start + chunk_size))
        o, d = origins[sl], dirs[sl]
        actors = cand_actor[bounds[k] : bounds[k + 1]]
        o_mean, spread = chunk_origin[k], chunk_spread[k]
        # Ray-sphere test, ray by ray, as matrix products relative to the chunk's mean origin (keeps the
        # squares small): |w|^2 - (w.d)^2 <= r^2 with w = c - o.
        cc = centers[actors] - o_mean
        # einsum rather than @: BLAS threads cost more than they bring on these thin products.
        tca = np.einsum("ck,ak->ca", d, cc)
        ww = (cc * cc).sum(1)[None]
        if spread > 0:
            oc = o - o_mean
            tca = tca - np.einsum("ck,ck->c", oc, d)[:, None]
            ww = ww - 2.0 * np.einsum("ck,ak->ca", oc, cc) + np.einsum("ck,ck->c", oc, oc)[:, None]
        r = geom.radius[actors][None]
        ri, ai = np.nonzero((ww - tca * tca <= r * r) & (tca >= -r))
        if len(ri) == 0:
            continue
        act = actors[ai]
        # The ray in each actor's frame (actors only rotate about z), one float32 component at a time.
        c, s = geom.cos_yaw[act], geom.sin_yaw[act]
        ctr = centers[act]
        rx, ry, rz = o[ri, 0] - ctr[:, 0], o[ri, 1] - ctr[:, 1], o[ri, 2] - ctr[:, 2]
        dx, dy, dz = d[ri, 0], d[ri, 1], d[ri, 2]
        f32 = np.float32
        lo_o = ((c * rx + s * ry).astype(f32), (-s * rx + c * ry).astype(f32), rz.astype(f32))
        lo_d = ((c * dx + s * dy).astype(f32), (-s * dx + c * dy).astype(f32), dz.astype(f32))
        # The actor's bounding box first; only rays entering it are tested against its parts.
        tn, tf, axis, sign = _slab(actor_lo[act], actor_hi[act], lo_o, lo_d)
        inside = (tf >= tn) & (tn <= max_distance) & (tf > 1e-6)
        one = inside & single[act]
        pair = np.flatnonzero(one)
        part = geom.part_start[act[pair]]
        many = np.flatnonzero(inside & ~one)
        if len(many):
            cnt = geom.part_count[act[many]]
            rep = np.repeat(many, cnt)
            first = np.cumsum(cnt) - cnt
            sub = np.arange(len(rep)) - np.repeat(first, cnt)
            p_many = geom.part_start[act[rep]] + sub
            p_tn, p_tf, p_axis, p_sign = _slab(
                part_lo[p_many], part_hi[p_many], tuple(v[rep] for v in lo_o), tuple(v[rep] for v in lo_d)
            )
            pair = np.concatenate([pair, rep])
            part = np.concatenate([part, p_many])
            tn = np.concatenate([tn[one], p_tn])
            tf = np.concatenate([tf[one], p_tf])
            axis = np.concatenate([axis[one], p_axis])
            sign = np.concatenate([sign[one], p_sign])
        else:
            tn, tf, axis, sign = tn[one], tf[one], axis[one], sign[one]
        ok = (tf >= tn) & (tn > 1e-6) & (tn <= max_distance)
        if not ok.any():
            continue
        sel = np.flatnonzero(ok)
        ray_s = ri[pair[sel]] + start
        if any_hit:
            best_t[ray_s] = 0.0
            continue
        order = np.lexsort((tn[sel], ray_s))
        ray_o = ray_s[order]
        keep = np.ones(len(order), bool)
        keep[1:] = ray_o[1:] != ray_o[:-1]
        sel = sel[order[keep]]
        rays = ray_o[keep]
        best_t[rays] = tn[sel]
        best_part[rays] = part[sel]
        best_axis[rays] = axis[sel]
        best_sign[rays] = sign[sel]
    return _Trace(best_t, best_part, best_axis, best_sign)


def occluded(
    origins: np.ndarray,
    dirs: np.ndarray,
    scene: Scene,
    t: float,
    max_distance: float = np.inf,
    chunk_size: int = 4096,
) -> np.ndarray:
    """(R,) bool: whether each ray hits any object or scenery (not the ground) within ``max_distance``.

    ``origins`` or ``dirs`` may be a single (3,) vector shared by all rays (e.g. the sun direction for
    shadow rays), which makes culling cheaper.
    """
    origins = np.asarray(origins, np.float64)
    dirs = np.asarray(dirs, np.float64)
    tr = _trace_actors(origins, dirs, scene.geometry, t, max_distance, chunk_size, any_hit=True)
    return np.isfinite(tr.distance)


def cast(
    origins: np.ndarray,
    dirs: np.ndarray,
    scene: Scene,
    t: float,
    max_distance: float = np.inf,
    pixel_angle: float | np.ndarray | None = None,
    chunk_size: int = 4096,
) -> Hits:
    """Cast R rays (``origins`` (R, 3), unit ``dirs`` (R, 3), world frame) into ``scene`` at time ``t``.

    ``origins`` may be a single (3,) point shared by all rays (a camera or LiDAR centre).
    ``pixel_angle`` (radians per pixel, for camera rays) lets textures average away detail smaller than
    a pixel; leave it None for LiDAR beams. Keep neighbouring rays next to each other: chunks of
    ``chunk_size`` consecutive rays are culled together.
    """
    dirs = np.asarray(dirs, np.float64)
    n = len(dirs)
    geom = scene.geometry
    tr = _trace_actors(np.asarray(origins, np.float64), dirs, geom, t, max_distance, chunk_size)
    origins = np.broadcast_to(np.asarray(origins, np.float64), (n, 3))

    with np.errstate(divide="ignore", invalid="ignore"):
        t_ground = np.where((dirs[:, 2] < -1e-9) & (origins[:, 2] > 0), -origins[:, 2] / dirs[:, 2], np.inf)
    t_ground[t_ground > max_distance] = np.inf
    on_ground = t_ground < tr.distance
    on_actor = np.isfinite(tr.distance) & ~on_ground

    distance = np.where(on_ground, t_ground, tr.distance)
    object_index = np.full(n, SKY, np.int32)
    normal = np.zeros((n, 3), np.float32)
    albedo = np.zeros((n, 3), np.float32)
    refl = np.zeros(n, np.float32)

    if on_ground.any():
        g = np.flatnonzero(on_ground)
        p = origins[g] + dirs[g] * t_ground[g, None]
        footprint = None
        if pixel_angle is not None:
            pa = np.broadcast_to(np.asarray(pixel_angle, np.float64), (n,))[g]
            # A pixel's footprint stretches as the ray grazes the ground.
            footprint = t_ground[g] * pa / np.maximum(-dirs[g, 2], 0.02)
        albedo[g], refl[g] = scene.road.surface(p[:, 0], p[:, 1], footprint)
        normal[g] = (0.0, 0.0, 1.0)
        object_index[g] = GROUND

    if on_actor.any():
        a = np.flatnonzero(on_actor)
        part = tr.part[a]
        actor = geom.part_actor[part]
        centers = geom.centers_at(t)[actor]
        c, s = geom.cos_yaw[actor], geom.sin_yaw[actor]
        rel = origins[a] + dirs[a] * tr.distance[a, None] - centers
        local = np.stack([c * rel[:, 0] + s * rel[:, 1], -s * rel[:, 0] + c * rel[:, 1], rel[:, 2]], 1)
        lo, hi = geom.part_lo[part], geom.part_hi[part]
        axis, sign = tr.axis[a].astype(np.int64), tr.sign[a]
        n_local = np.zeros((len(a), 3))
        n_local[np.arange(len(a)), axis] = sign
        normal[a] = np.stack(
            [c * n_local[:, 0] - s * n_local[:, 1], s * n_local[:, 0] + c * n_local[:, 1], n_local[:, 2]], 1
        )
        albedo[a], refl[a] = part_surface(
            np.clip(local - lo, 0.0, None).astype(np.float32),
            (hi - lo).astype(np.float32),
            axis,
            sign,
            part,
            geom.materials,
        )
        object_index[a] = np.where(actor < geom.num_objects, actor, SCENERY)

    return Hits(distance.astype(np.float32), object_index, normal, albedo, refl)
