"""The teacher target store: per frame, everything the student needs to learn without running the teacher.

Layout (see docs/teacher_replay.md)::

    STORE/store.json                  schema version, teacher hash + config (written once, never changed)
    STORE/index/<writer>.json         one index per writer (``shard-I-of-N`` or ``merged-...``): its shards
    STORE/index/<writer>.lock         held (flock) while that writer runs
    STORE/shards/<writer>-<seq>.safetensors

A shard holds the frames of one bag (at most ``frames_per_shard``), stacked along the first axis:
``camera_bev``/``lidar_bev``/``fused_bev`` (F, C, X, Y) fp16, ``head.<name>`` (F, C, X, Y) fp16,
the LiDAR returns that some camera sees (``depth_points`` (P, 3) base-frame x, y, z float32 with
``depth_offsets`` (F+1,); the student's depth targets are made from them at its own input size; absent in
stores replayed before depth supervision existed),
``intrinsics`` (F, N, 3, 3), ``cam_to_base`` (F, N, 4, 4), ``stamps_ns`` (F,), ``image_stamps_ns`` (F, N),
images either as encoded bytes (``image_bytes`` + ``image_offsets`` (F*N+1,)) or raw ``images``
(F, N, H, W, 3) uint8, and ragged boxes as concatenations with offsets (``det_*`` the teacher's decoded
boxes, ``gt_*`` ground truth).

Crash safety: a shard is written to a temporary name, fsynced and renamed; only then is the writer's index
rewritten (temporary file, fsync, rename). A process killed at any instant leaves at worst a shard that no
index names (removed by that writer's next run) and never an index naming a partial shard. Readers check
each shard's size when opening and its sha256 before first use. A writer re-checks the sha256 of every
shard when it starts: its own damaged shards are dropped from its index and their frames replayed again;
another writer's damaged shard is an error naming the shard, its writer and the frames to redo.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import safe_open
from safetensors.numpy import save_file

from simdistill_ros.errors import UserError

SCHEMA_VERSION = 1
STORE_FILE = "store.json"
INDEX_DIR = "index"
SHARD_DIR = "shards"
FEATURES = ("camera_bev", "lidar_bev", "fused_bev")


class StoreError(UserError):
    """A target store that cannot be used as asked (wrong teacher or schema, corrupt or missing shard)."""


# file helpers ----------------------------------------------------------------------------------------------
def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``path`` so that readers see the old or the new content, never a mix (tmp, fsync, rename)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a store is shared like any dataset
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _atomic_write_json(path: Path, obj: Any) -> None:
    _atomic_write_bytes(path, (json.dumps(obj, indent=1, sort_keys=True) + "\n").encode())


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def teacher_fingerprint(checkpoint_dir: str | os.PathLike) -> dict[str, Any]:
    """What identifies a teacher: sha256 over its weights and config, plus the config and metadata."""
    root = Path(checkpoint_dir)
    h = hashlib.sha256()
    for name in ("model.safetensors", "config.json"):
        h.update(name.encode())
        h.update(file_sha256(root / name).encode())
    config = json.loads((root / "config.json").read_text())
    meta = json.loads((root / "meta.json").read_text()) if (root / "meta.json").exists() else {}
    return {"hash": h.hexdigest(), "path": str(root.resolve()), "config": config, "meta": meta}


# one frame -------------------------------------------------------------------------------------------------
@dataclass
class FrameTargets:
    """One replayed frame. Arrays are numpy; BEV maps are on the teacher's working grid.

    images: encoded bytes per camera (``image_format`` names the codec) or decoded RGB (N, H, W, 3) uint8.
    intrinsics (N, 3, 3) / cam_to_base (N, 4, 4): the rig as in the bag (source image size).
    features: camera_bev / lidar_bev / fused_bev (C, X, Y) fp16; head: the CenterHead outputs (C, X, Y) fp16.
    det_*: the teacher's decoded boxes (M, 9), scores (M,), labels (M,) — the pseudo-labels.
    gt_*: ground truth (G, 9), (G,) when the source has it (``has_gt``), else empty.
    assumed: topic -> what the replay assumed for an input its message lacked (a LiDAR cloud without
    intensity: zeros), kept in the index's frame record; empty when nothing was.
    """

    key: str
    bag: str
    stamp_ns: int
    index: int
    cameras: list[str]
    images: list[bytes] | np.ndarray
    image_format: str
    image_stamps_ns: np.ndarray
    intrinsics: np.ndarray
    cam_to_base: np.ndarray
    features: dict[str, np.ndarray]
    head: dict[str, np.ndarray]
    det_boxes: np.ndarray
    det_scores: np.ndarray
    det_labels: np.ndarray
    has_gt: bool = False
    gt_boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 9), np.float32))
    gt_labels: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))
    sample_token: str = ""
    assumed: dict[str, str] = field(default_factory=dict)
    # the LiDAR returns inside some camera's view (P, 3) in the base frame: the depth supervision's source;
    # None where the store predates it
    depth_points: np.ndarray | None = None

    @property
    def encoded(self) -> bool:
        return not isinstance(self.images, np.ndarray)


def _ragged(parts: Sequence[np.ndarray], dtype: Any, tail: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    offsets = np.cumsum([0] + [len(p) for p in parts]).astype(np.int64)
    flat = np.concatenate([np.asarray(p, dtype).reshape(-1, *tail) for p in parts]) if parts else None
    if flat is None or len(flat) == 0:
        flat = np.zeros((0, *tail), dtype)
    return flat, offsets


def _pack(frames: list[FrameTargets]) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Stack a bag's frames into shard tensors (see the module docstring) and string metadata."""
    t: dict[str, np.ndarray] = {
        "stamps_ns": np.array([f.stamp_ns for f in frames], np.int64),
        "image_stamps_ns": np.stack([np.asarray(f.image_stamps_ns, np.int64) for f in frames]),
        "intrinsics": np.stack([f.intrinsics for f in frames]).astype(np.float32),
        "cam_to_base": np.stack([f.cam_to_base for f in frames]).astype(np.float32),
        "has_gt": np.array([f.has_gt for f in frames], np.uint8),
    }
    for name in FEATURES:
        t[name] = np.stack([f.features[name] for f in frames]).astype(np.float16)
    for name in frames[0].head:
        t[f"head.{name}"] = np.stack([f.head[name] for f in frames]).astype(np.float16)
    encoded = frames[0].encoded
    if any(f.encoded != encoded for f in frames):
        raise ValueError("a shard mixes encoded and raw images")
    if encoded:
        blobs = [np.frombuffer(b, np.uint8) for f in frames for b in f.images]
        t["image_bytes"], t["image_offsets"] = _ragged(blobs, np.uint8, ())
    else:
        t["images"] = np.stack([f.images for f in frames]).astype(np.uint8)
    t["det_boxes"], t["det_offsets"] = _ragged([f.det_boxes for f in frames], np.float32, (9,))
    t["det_scores"], _ = _ragged([f.det_scores for f in frames], np.float32, ())
    t["det_labels"], _ = _ragged([f.det_labels for f in frames], np.int64, ())
    t["gt_boxes"], t["gt_offsets"] = _ragged([f.gt_boxes for f in frames], np.float32, (9,))
    t["gt_labels"], _ = _ragged([f.gt_labels for f in frames], np.int64, ())
    with_depth = [f.depth_points is not None for f in frames]
    if any(with_depth) and not all(with_depth):
        raise ValueError("a shard mixes frames with and without depth points")
    if all(with_depth):
        t["depth_points"], t["depth_offsets"] = _ragged([f.depth_points for f in frames], np.float32, (3,))
    meta = {
        "schema_version": str(SCHEMA_VERSION),
        "keys": json.dumps([f.key for f in frames]),
        "image_format": frames[0].image_format,
        "encoded_images": str(int(encoded)),
    }
    return t, meta


# writing ---------------------------------------------------------------------------------------------------
def _check_store_header(root: Path, header: dict[str, Any], teacher_hash: str | None) -> None:
    version = header.get("schema_version")
    if version != SCHEMA_VERSION:
        raise StoreError(
            f"{root}: target store schema version {version} is not the supported version {SCHEMA_VERSION}; "
            "replay the bags again into a new store"
        )
    theirs = header.get("teacher", {}).get("hash")
    if teacher_hash is not None and theirs != teacher_hash:
        raise StoreError(
            f"{root}: this store holds targets of another teacher (hash {str(theirs)[:12]}, "
            f"{header.get('teacher', {}).get('path', '?')}); this teacher's hash is {teacher_hash[:12]}. "
            "Use a new --out directory (or the store's teacher)."
        )


def read_header(root: str | os.PathLike) -> dict[str, Any]:
    path = Path(root) / STORE_FILE
    if not path.is_file():
        raise StoreError(f"{root}: not a target store (no {STORE_FILE}); make one with `simdistill replay`")
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise StoreError(f"{path}: unreadable ({err})") from None


def _init_store(root: Path, teacher: dict[str, Any]) -> dict[str, Any]:
    """Create ``store.json`` once (first writer wins, by hard link), or check that it matches."""
    for sub in (INDEX_DIR, SHARD_DIR):
        (root / sub).mkdir(parents=True, exist_ok=True)
    path = root / STORE_FILE
    if not path.exists():
        header = {"schema_version": SCHEMA_VERSION, "teacher": teacher, "created_unix": time.time()}
        fd, tmp = tempfile.mkstemp(prefix=".store.", suffix=".tmp", dir=root)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(header, f, indent=1, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o644)
            try:
                os.link(tmp, path)  # atomic and exclusive: two shards starting together agree on one header
            except FileExistsError:
                pass
            _fsync_dir(root)
        finally:
            os.unlink(tmp)
    header = read_header(root)
    _check_store_header(root, header, teacher["hash"])
    return header


class TargetStoreWriter:
    """Appends frames to a store as one writer (``writer_id``, e.g. ``shard-0-of-2``).

    Frames already in the store (any writer's index) are reported by :meth:`has`, so a re-run skips them.
    Call :meth:`add` per frame and :meth:`flush` at the end of each bag; :meth:`close` when done. One process
    per writer id at a time (enforced with a lock file).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        teacher: dict[str, Any],
        writer_id: str = "shard-0-of-1",
        frames_per_shard: int = 16,
    ) -> None:
        self.root = Path(root)
        self.header = _init_store(self.root, teacher)
        self.writer_id = writer_id
        self.frames_per_shard = max(1, int(frames_per_shard))
        self._lock = open(self.root / INDEX_DIR / f"{writer_id}.lock", "w")  # noqa: SIM115 - held until close
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise StoreError(
                f"{self.root}: another process is writing as {writer_id} (lock {self._lock.name})"
            ) from None
        self.index_path = self.root / INDEX_DIR / f"{writer_id}.json"
        try:
            self.index = self._load_own_index()
            self._remove_orphans()
            self.redone = self._check_shards()  # (shard, frames) of own shards found damaged and dropped
            self.known = set(union_index(self.root)[0])
        except BaseException:
            self._unlock()
            raise
        self._pending: list[FrameTargets] = []
        self.bytes_written = 0
        self.frames_written = 0

    def _load_own_index(self) -> dict[str, Any]:
        if self.index_path.exists():
            index = read_index(self.index_path)
            _check_store_header(self.root, index, self.header["teacher"]["hash"])
            return index
        return {
            "schema_version": SCHEMA_VERSION,
            "teacher": {"hash": self.header["teacher"]["hash"]},
            "writer": self.writer_id,
            "shards": [],
            "next_seq": 0,
        }

    def _remove_orphans(self) -> None:
        """Shards of this writer that its index does not name were cut short by a kill: delete them."""
        named = {s["file"] for s in self.index["shards"]}
        for p in (self.root / SHARD_DIR).glob(f"{self.writer_id}-*"):
            if p.name not in named:
                p.unlink()
        for p in (self.root / SHARD_DIR).glob(f".{self.writer_id}-*"):  # temporary files
            p.unlink()

    def _check_shards(self) -> list[tuple[str, int]]:
        """sha256 of every shard in the store against its index, so frames are never skipped because of a
        damaged shard. Own damaged shards are dropped (their frames are then replayed again); another
        writer's raise StoreError naming the frames to redo."""
        own = {s["file"] for s in self.index["shards"]}
        dropped = []
        for name, shard in union_index(self.root)[1].items():
            problem = shard_problem(self.root, shard)
            if problem is None:
                continue
            if name in own:
                dropped.append((name, len(shard["frames"])))
                continue
            keys = [f["key"] for f in shard["frames"]]
            raise StoreError(
                f"{self.root / SHARD_DIR / name}: {problem}; it holds {len(keys)} frames of writer "
                f"{shard.get('writer', name.rsplit('-', 1)[0])!r} (e.g. {', '.join(keys[:3])}): re-run that "
                "writer (its --shard I/N) to drop the shard and replay those frames again"
            )
        if dropped:
            names = {n for n, _ in dropped}
            self.index["shards"] = [s for s in self.index["shards"] if s["file"] not in names]
            _atomic_write_json(self.index_path, self.index)
            for n in names:
                (self.root / SHARD_DIR / n).unlink(missing_ok=True)
        return dropped

    def has(self, key: str) -> bool:
        return key in self.known

    def add(self, frame: FrameTargets) -> None:
        if frame.key in self.known:
            raise ValueError(f"frame {frame.key} is already stored")
        if self._pending and (self._pending[0].bag != frame.bag or self._pending[0].encoded != frame.encoded):
            self.flush()
        self._pending.append(frame)
        self.known.add(frame.key)
        if len(self._pending) >= self.frames_per_shard:
            self.flush()

    def flush(self) -> None:
        """Write the pending frames as one shard, then publish it in the index (both atomically)."""
        if not self._pending:
            return
        frames, self._pending = self._pending, []
        tensors, meta = _pack(frames)
        seq = int(self.index["next_seq"])
        name = f"{self.writer_id}-{seq:06d}.safetensors"
        final = self.root / SHARD_DIR / name
        tmp = self.root / SHARD_DIR / f".{name}.tmp"
        save_file(tensors, str(tmp), metadata=meta)
        os.chmod(tmp, 0o644)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, final)
        _fsync_dir(final.parent)
        record = {
            "file": name,
            "writer": self.writer_id,
            "bytes": final.stat().st_size,
            "sha256": file_sha256(final),
            "bag": frames[0].bag,
            "frames": [_frame_record(f) for f in frames],
        }
        self.index["shards"].append(record)
        self.index["next_seq"] = seq + 1
        _atomic_write_json(self.index_path, self.index)
        self.bytes_written += record["bytes"]
        self.frames_written += len(frames)

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._unlock()

    def _unlock(self) -> None:
        if not self._lock.closed:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()

    def __enter__(self) -> TargetStoreWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _frame_record(f: FrameTargets) -> dict[str, Any]:
    assumed = {"assumed": dict(f.assumed)} if f.assumed else {}  # absent when nothing was: older indexes
    return assumed | {
        "key": f.key,
        "bag": f.bag,
        "stamp_ns": int(f.stamp_ns),
        "index": int(f.index),
        "cameras": list(f.cameras),
        "has_gt": bool(f.has_gt),
        "sample_token": f.sample_token,
        "num_det": len(f.det_boxes),
        "num_gt": len(f.gt_boxes),
        "num_depth_points": -1 if f.depth_points is None else len(f.depth_points),
    }


# reading ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FrameRef:
    """Where a frame lives: shard file (relative to STORE/shards) and its row in that shard."""

    key: str
    shard: str
    row: int
    record: dict


def read_index(path: Path) -> dict[str, Any]:
    """One writer's index; StoreError saying what to do when it is unreadable."""
    try:
        index = json.loads(path.read_text())
        if not isinstance(index, dict) or not isinstance(index.get("shards", []), list):
            raise ValueError("not an index object")
        for shard in index.get("shards", []):
            if not {"file", "bytes", "sha256", "frames"} <= set(shard):
                raise ValueError(f"shard record without file/bytes/sha256/frames: {str(shard)[:80]}")
    except (OSError, UnicodeDecodeError, ValueError, TypeError) as err:  # JSONDecodeError is a ValueError
        raise StoreError(
            f"{path}: unreadable index ({err}); move it out of {path.parent} and re-run that writer "
            f"({path.stem}): its shards are then removed and their frames replayed again"
        ) from None
    return index


def shard_problem(root: Path, shard: dict[str, Any]) -> str | None:
    """Why a shard file does not match its index record (missing, size, sha256), or None."""
    path = root / SHARD_DIR / shard["file"]
    if not path.is_file():
        return "shard named by the index is missing"
    if path.stat().st_size != shard["bytes"]:
        size = path.stat().st_size
        return f"shard is {size} bytes, the index says {shard['bytes']} (truncated or replaced)"
    if file_sha256(path) != shard["sha256"]:
        return "sha256 differs from the index (corrupt shard)"
    return None


def union_index(root: Path) -> tuple[dict[str, FrameRef], dict[str, dict], int]:
    """All frames named by any index of the store: ({key: ref}, {shard file: shard record}, duplicates).

    A key in several indexes (the same bag replayed into two merged stores) is taken from the first index in
    name order; the others are counted as duplicates and ignored.
    """
    frames: dict[str, FrameRef] = {}
    shards: dict[str, dict] = {}
    duplicates = 0
    for path in sorted((root / INDEX_DIR).glob("*.json")):
        index = read_index(path)
        for shard in index.get("shards", []):
            shards[shard["file"]] = shard
            for row, rec in enumerate(shard["frames"]):
                if rec["key"] in frames:
                    duplicates += 1
                    continue
                frames[rec["key"]] = FrameRef(rec["key"], shard["file"], row, rec)
    return frames, shards, duplicates


class TargetStore:
    """Read-only view of a store: ``len(store)``, ``store[i]`` -> :class:`FrameTargets`, ``store.keys``.

    ``teacher_hash``: refuse a store made by another teacher. ``verify``: "lazy" (default) checks each
    shard's sha256 the first time it is read in this process, "full" checks all of them now, "size" only
    the sizes (always checked). Frames are ordered by bag, then stamp.
    """

    def __init__(
        self, root: str | os.PathLike, teacher_hash: str | None = None, verify: str = "lazy"
    ) -> None:
        self.root = Path(root)
        self.header = read_header(self.root)
        _check_store_header(self.root, self.header, teacher_hash)
        frames, self.shards, self.duplicates = union_index(self.root)
        self.refs = sorted(frames.values(), key=lambda r: (r.record["bag"], r.record["stamp_ns"], r.key))
        self.keys = [r.key for r in self.refs]
        self._by_key = {r.key: i for i, r in enumerate(self.refs)}
        self.verify = verify
        self._verified: set[str] = set()
        self._open: dict[str, Any] = {}
        self._pid = os.getpid()
        for name, shard in self.shards.items():
            path = self.root / SHARD_DIR / name
            if not path.is_file():
                raise StoreError(f"{path}: shard named by the index is missing")
            if path.stat().st_size != shard["bytes"]:
                raise StoreError(
                    f"{path}: shard is {path.stat().st_size} bytes, the index says {shard['bytes']} "
                    "(truncated or replaced)"
                )
        if verify == "full":
            for name in self.shards:
                self._verify(name)

    @property
    def teacher(self) -> dict[str, Any]:
        return self.header["teacher"]

    @property
    def total_bytes(self) -> int:
        return sum(s["bytes"] for s in self.shards.values())

    def __len__(self) -> int:
        return len(self.refs)

    def position(self, key: str) -> int:
        return self._by_key[key]

    def _verify(self, name: str) -> None:
        if name in self._verified:
            return
        digest = file_sha256(self.root / SHARD_DIR / name)
        if digest != self.shards[name]["sha256"]:
            raise StoreError(f"{self.root / SHARD_DIR / name}: sha256 differs from the index (corrupt shard)")
        self._verified.add(name)

    def _shard(self, name: str) -> Any:
        if self._pid != os.getpid():  # a forked DataLoader worker opens its own handles
            self._open, self._pid = {}, os.getpid()
        if name not in self._open:
            if self.verify in ("lazy", "full"):
                self._verify(name)
            self._open[name] = safe_open(str(self.root / SHARD_DIR / name), "np")
        return self._open[name]

    def __getitem__(self, i: int) -> FrameTargets:
        ref = self.refs[i]
        f = self._shard(ref.shard)
        r = ref.row
        rec = ref.record
        n_cams = len(rec["cameras"])

        def row(name: str) -> np.ndarray:
            return f.get_slice(name)[r]

        def ragged(name: str, offsets: str) -> np.ndarray:
            off = f.get_slice(offsets)[r : r + 2]
            return _rows(f.get_slice(name), int(off[0]), int(off[1]))

        meta = f.metadata()
        if meta.get("encoded_images") == "1":
            off = f.get_slice("image_offsets")[r * n_cams : (r + 1) * n_cams + 1]
            blob = _rows(f.get_slice("image_bytes"), int(off[0]), int(off[-1]))
            rel = off - off[0]
            images: list[bytes] | np.ndarray = [
                blob[int(rel[c]) : int(rel[c + 1])].tobytes() for c in range(n_cams)
            ]
        else:
            images = row("images")
        head_names = [k[5:] for k in f.keys() if k.startswith("head.")]
        return FrameTargets(
            key=ref.key,
            bag=rec["bag"],
            stamp_ns=rec["stamp_ns"],
            index=rec["index"],
            cameras=list(rec["cameras"]),
            images=images,
            image_format=meta.get("image_format", ""),
            image_stamps_ns=row("image_stamps_ns"),
            intrinsics=row("intrinsics"),
            cam_to_base=row("cam_to_base"),
            features={name: row(name) for name in FEATURES},
            head={name: row(f"head.{name}") for name in head_names},
            det_boxes=ragged("det_boxes", "det_offsets"),
            det_scores=ragged("det_scores", "det_offsets"),
            det_labels=ragged("det_labels", "det_offsets"),
            has_gt=bool(rec["has_gt"]),
            gt_boxes=ragged("gt_boxes", "gt_offsets"),
            gt_labels=ragged("gt_labels", "gt_offsets"),
            sample_token=rec.get("sample_token", ""),
            assumed=dict(rec.get("assumed", {})),
            depth_points=ragged("depth_points", "depth_offsets") if "depth_offsets" in f.keys() else None,
        )

    def frames_with_depth_points(self) -> int:
        """How many frames carry the LiDAR returns that depth supervision needs."""
        return sum(1 for r in self.refs if r.record.get("num_depth_points", -1) >= 0)

    def summary(self) -> dict[str, Any]:
        n = len(self)
        return {
            "frames": n,
            "shards": len(self.shards),
            "bytes": self.total_bytes,
            "bytes_per_frame": round(self.total_bytes / n) if n else 0,
            "frames_with_gt": sum(1 for r in self.refs if r.record["has_gt"]),
            "frames_with_assumptions": sum(1 for r in self.refs if r.record.get("assumed")),
            "frames_with_depth_points": self.frames_with_depth_points(),
            "duplicates_ignored": self.duplicates,
            "teacher_hash": self.teacher["hash"][:12],
        }


_DTYPES = {"F16": np.float16, "F32": np.float32, "F64": np.float64, "I64": np.int64, "U8": np.uint8}


def _rows(tensor_slice: Any, start: int, stop: int) -> np.ndarray:
    """Rows [start, stop) of a safetensors slice; safetensors refuses empty slices of empty tensors."""
    if stop <= start:
        return np.zeros((0, *tensor_slice.get_shape()[1:]), _DTYPES[tensor_slice.get_dtype()])
    return tensor_slice[start:stop]


# merging ---------------------------------------------------------------------------------------------------
def merge_stores(out: str | os.PathLike, sources: Iterable[str | os.PathLike]) -> dict[str, Any]:
    """Copy (hard-link when possible) the shards of ``sources`` into ``out`` with one index per source.

    All stores must share schema and teacher. Shards whose frames are all in ``out`` already are skipped;
    re-running a merge is a no-op. Returns {"shards_added", "frames_added", "frames"}.
    """
    sources = [Path(s) for s in sources]
    if not sources:
        raise StoreError("merge needs at least one source store")
    first = read_header(sources[0])
    _check_store_header(sources[0], first, None)
    out = Path(out)
    _init_store(out, first["teacher"])
    added_shards = added_frames = 0
    for src in sources:
        if src.resolve() == out.resolve():
            continue
        header = read_header(src)
        _check_store_header(src, header, first["teacher"]["hash"])
        TargetStore(src, first["teacher"]["hash"], verify="full")  # never merge a corrupt store
        known = set(union_index(out)[0])
        tag = hashlib.sha256(str(src.resolve()).encode()).hexdigest()[:8]
        for index_path in sorted((src / INDEX_DIR).glob("*.json")):
            index = read_index(index_path)
            writer = f"merged-{tag}-{index_path.stem}"
            target_index = out / INDEX_DIR / f"{writer}.json"
            merged = (
                read_index(target_index)
                if target_index.exists()
                else {
                    "schema_version": SCHEMA_VERSION,
                    "teacher": {"hash": first["teacher"]["hash"]},
                    "writer": writer,
                    "shards": [],
                    "next_seq": 0,
                }
            )
            have = {s["source_file"] for s in merged["shards"] if "source_file" in s}
            for shard in index["shards"]:
                if shard["file"] in have or all(f["key"] in known for f in shard["frames"]):
                    continue
                name = f"{writer}-{shard['file']}"
                dst = out / SHARD_DIR / name
                tmp = out / SHARD_DIR / f".{name}.tmp"
                try:
                    os.link(src / SHARD_DIR / shard["file"], tmp)
                except OSError:
                    shutil.copyfile(src / SHARD_DIR / shard["file"], tmp)
                os.replace(tmp, dst)
                merged["shards"].append(dict(shard, file=name, source_file=shard["file"]))
                known.update(f["key"] for f in shard["frames"])
                added_shards += 1
                added_frames += len(shard["frames"])
            if merged["shards"]:
                _fsync_dir(out / SHARD_DIR)
                _atomic_write_json(target_index, merged)
    return {"shards_added": added_shards, "frames_added": added_frames, "frames": len(union_index(out)[0])}
