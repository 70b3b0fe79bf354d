"""A small ROS-free transform tree: what tf2's buffer does for reading bags.

Every frame has at most one parent. Static edges hold for all times; dynamic edges keep a time-sorted
history and are interpolated (linear translation, slerp rotation) between the two samples bracketing the
query time. ``lookup(target, source, stamp_ns)`` returns the transform that maps points in ``source`` into
``target`` (the same convention as tf2's ``lookupTransform(target, source, time)``).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

import numpy as np

from simdistill_ros.geometry import Transform

DEFAULT_CACHE_NS = 10_000_000_000  # tf2's default buffer length


class ExtrapolationError(LookupError):
    """The requested time lies outside the history of a dynamic transform."""


def slerp(q0: np.ndarray, q1: np.ndarray, a: float) -> np.ndarray:
    """Spherical interpolation of unit quaternions (w, x, y, z), ``a`` in [0, 1], shortest arc."""
    q0 = np.asarray(q0, dtype=np.float64)
    q1 = np.asarray(q1, dtype=np.float64)
    d = float(np.dot(q0, q1))
    if d < 0.0:  # q and -q are the same rotation: take the short way round
        q1, d = -q1, -d
    if d > 0.9995:  # nearly parallel: lerp is exact enough and avoids dividing by sin(~0)
        q = q0 + a * (q1 - q0)
        return q / np.linalg.norm(q)
    theta = np.arccos(min(d, 1.0))
    s = np.sin(theta)
    return (np.sin((1 - a) * theta) * q0 + np.sin(a * theta) * q1) / s


def interpolate(t0: Transform, t1: Transform, a: float) -> Transform:
    """The transform a fraction ``a`` of the way from ``t0`` to ``t1``."""
    q = slerp(t0.quat_wxyz, t1.quat_wxyz, a)
    return Transform.from_quat(t0.translation + a * (t1.translation - t0.translation), q)


@dataclass
class _Edge:
    parent: str
    static: Transform | None = None
    stamps: list[int] = field(default_factory=list)
    transforms: list[Transform] = field(default_factory=list)


class TransformTree:
    """Static and time-stamped transforms between named frames.

    ``cache_ns`` bounds the history kept per dynamic edge (older samples are pruned as newer arrive), so
    streaming a long bag holds constant memory. Frame names are matched exactly first, then
    case-insensitively when that is unambiguous (converters disagree on ``CAM_FRONT`` vs ``cam_front``).
    """

    def __init__(self, cache_ns: int = DEFAULT_CACHE_NS) -> None:
        self.cache_ns = int(cache_ns)
        self._edges: dict[str, _Edge] = {}  # child -> edge to its parent
        self._frames: set[str] = set()
        # Lookups whose every edge is static, composed once (a camera rig's extrinsics: the same every
        # frame); forgotten whenever an edge is added, replaced or turns dynamic.
        self._static_lookups: dict[tuple[str, str], Transform] = {}

    # building ------------------------------------------------------------------------------------------
    def _edge(self, parent: str, child: str) -> _Edge:
        if not parent or not child:
            raise ValueError(f"transform needs parent and child frame names, got {parent!r} -> {child!r}")
        if parent == child:
            raise ValueError(f"transform from frame {child!r} to itself")
        edge = self._edges.get(child)
        if edge is None or edge.parent != parent:
            # Re-parenting replaces the old edge, as the latest tf publisher wins in tf2.
            edge = _Edge(parent)
            self._edges[child] = edge
            self._static_lookups.clear()
        self._frames.update((parent, child))
        return edge

    def add_static(self, parent: str, child: str, transform: Transform) -> None:
        """``transform`` maps ``child`` into ``parent`` at all times."""
        edge = self._edge(parent, child)
        edge.static = transform
        self._static_lookups.clear()
        edge.stamps.clear()
        edge.transforms.clear()

    def add(self, parent: str, child: str, transform: Transform, stamp_ns: int) -> None:
        """A dynamic sample: ``transform`` maps ``child`` into ``parent`` at ``stamp_ns``."""
        edge = self._edge(parent, child)
        if edge.static is not None:
            self._static_lookups.clear()
        edge.static = None
        stamp_ns = int(stamp_ns)
        i = bisect.bisect_left(edge.stamps, stamp_ns)
        if i < len(edge.stamps) and edge.stamps[i] == stamp_ns:
            edge.transforms[i] = transform  # a repeated stamp replaces the sample
        else:
            edge.stamps.insert(i, stamp_ns)
            edge.transforms.insert(i, transform)
        cut = bisect.bisect_left(edge.stamps, edge.stamps[-1] - self.cache_ns)
        if cut > 0:
            del edge.stamps[:cut]
            del edge.transforms[:cut]

    def clear(self) -> None:
        """Forget the history of every dynamic edge and keep the static ones, as tf2's buffer does when
        time jumps back (samples of two timelines would otherwise be interpolated together)."""
        for edge in self._edges.values():
            edge.stamps.clear()
            edge.transforms.clear()

    # queries -------------------------------------------------------------------------------------------
    @property
    def frames(self) -> list[str]:
        return sorted(self._frames)

    def has_frame(self, frame: str) -> bool:
        try:
            self._resolve(frame)
        except LookupError:
            return False
        return True

    def _resolve(self, frame: str) -> str:
        if frame in self._frames:
            return frame
        matches = [f for f in self._frames if f.lower() == frame.lower()]
        if len(matches) == 1:
            return matches[0]
        known = ", ".join(self.frames) or "none"
        raise LookupError(f"unknown frame {frame!r}; the transform tree knows: {known}")

    def _chain(self, frame: str) -> list[str]:
        """``frame`` and its ancestors up to the root."""
        chain = [frame]
        while frame in self._edges:
            frame = self._edges[frame].parent
            if frame in chain:
                raise LookupError(f"transform tree has a loop through {frame!r}")
            chain.append(frame)
        return chain

    def _edge_at(self, child: str, stamp_ns: int | None, tolerance_ns: int) -> Transform:
        edge = self._edges[child]
        if edge.static is not None:
            return edge.static
        stamps = edge.stamps
        if not stamps:  # cleared by a time jump, no sample since
            raise ExtrapolationError(f"no transform {edge.parent!r} -> {child!r} since time jumped back")
        if stamp_ns is None:  # latest, like tf2's Time(0)
            return edge.transforms[-1]
        i = bisect.bisect_left(stamps, stamp_ns)
        if i < len(stamps) and stamps[i] == stamp_ns:
            return edge.transforms[i]
        if i == 0 or i == len(stamps):
            j = 0 if i == 0 else len(stamps) - 1
            if abs(stamps[j] - stamp_ns) <= tolerance_ns:
                return edge.transforms[j]
            raise ExtrapolationError(
                f"no transform {edge.parent!r} -> {child!r} at {stamp_ns} ns: history covers "
                f"[{stamps[0]}, {stamps[-1]}] ns ({len(stamps)} samples)"
            )
        a = (stamp_ns - stamps[i - 1]) / (stamps[i] - stamps[i - 1])
        return interpolate(edge.transforms[i - 1], edge.transforms[i], a)

    def lookup(
        self, target: str, source: str, stamp_ns: int | None = None, tolerance_ns: int = 0
    ) -> Transform:
        """The transform mapping ``source``-frame points into ``target`` at ``stamp_ns`` (None: latest).

        Dynamic edges are interpolated; a time outside an edge's history by at most ``tolerance_ns`` uses
        the nearest sample, further raises :class:`ExtrapolationError`. Unknown or unconnected frames
        raise ``LookupError`` naming them and the known frames.
        """
        target, source = self._resolve(target), self._resolve(source)
        if target == source:
            return Transform()
        known = self._static_lookups.get((target, source))
        if known is not None:
            return known
        up_s, up_t = self._chain(source), self._chain(target)
        common = next((f for f in up_s if f in up_t), None)
        if common is None:
            raise LookupError(
                f"frames {source!r} and {target!r} are not connected (roots {up_s[-1]!r} and {up_t[-1]!r}); "
                f"known frames: {', '.join(self.frames)}"
            )
        to_common_s = Transform()  # source -> common
        for child in up_s[: up_s.index(common)]:
            to_common_s = self._edge_at(child, stamp_ns, tolerance_ns) @ to_common_s
        to_common_t = Transform()  # target -> common
        for child in up_t[: up_t.index(common)]:
            to_common_t = self._edge_at(child, stamp_ns, tolerance_ns) @ to_common_t
        out = to_common_t.inverse() @ to_common_s
        path = up_s[: up_s.index(common)] + up_t[: up_t.index(common)]
        if all(self._edges[child].static is not None for child in path):
            self._static_lookups[(target, source)] = out
        return out
