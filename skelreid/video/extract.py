"""Video -> one 3D skeleton walk per tracked person, in the generic format.

Output (one ``.npz`` per walk, read by :func:`skelreid.data.readers.generic.read_generic`):

* ``frames`` ``[T, 33, 3]`` float32: MediaPipe's world landmarks in metres, origin between the
  hips (layout ``mediapipe_33``); with ``layout="casia_b_14"`` ``[T, 14, 3]`` mapped by
  :func:`skelreid.data.layouts.mediapipe_to_casia_b_14`, the 33 landmarks kept in ``world``.
* ``image`` ``[T, 33, 2]`` pixels, ``visibility`` ``[T, 33]``, ``frame_index`` ``[T]`` (the
  video's frame numbers, contiguous), ``box`` ``[T, 4]`` (x, y, w, h pixels), ``interpolated``
  ``[T]`` (frames of a short gap, filled linearly), ``fps``, ``video_size`` (width, height),
  ``track`` and the strings ``person``, ``walk``, ``layout``, ``source_video`` (and for a CASIA-B
  tree ``view``, ``condition``).

Where the walks go and whom they belong to depends on where the video lies under the input folder:

* ``<person>/<walk>.<ext>``: a labelled video; its longest track is written as
  ``OUT/<person>/<walk>.npz`` (person = the folder name); other people in it are left out.
* a CASIA-B tree, ``001/nm-01/090.avi`` or ``001-nm-01-090.avi`` (anywhere): person ``001``,
  walk ``nm-01_090``, condition ``nm``, view ``5`` (the angle / 18), as the CASIA-B reader names them.
* anything else (a single video, or videos directly in the folder): every track is its own
  unlabelled identity, ``OUT/<video>/t<NNN>.npz`` with person ``<video>_t<NNN>``.

Each video's walks are written atomically (a labelled video's one file; an unlabelled video's
folder is built aside and renamed into place), then a record ``OUT/.extract/<video>.json``
marks the video done: a rerun with the same settings skips it. An interrupted run leaves no
partial walk file.
"""
from __future__ import annotations

import hashlib
import json
import os
import queue
import re
import shutil
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..data.layouts import MEDIAPIPE_33_HIPS, mediapipe_to_casia_b_14
from ..data.records import Sequence, natural_key
from ..errors import ConfigError, DataError
from ..io import fsync_dir, read_json, save_npz, write_json
from . import VIDEO_SUFFIXES, require_cv2, require_mediapipe
from .detect import DETECTORS, DetectorSettings, make_detector, median_background
from .source import frames_in_range, iter_frames, open_video
from .track import Tracker, TrackSettings, segments

LAYOUTS_OUT = ("mediapipe_33", "casia_b_14")
RECORDS = ".extract"
_CASIA_NAME = re.compile(r"^(\d{3})-(nm|bg|cl)-(\d{2})-(\d{3})$")
_CASIA_COND = re.compile(r"^(nm|bg|cl)-(\d{2})$")


@dataclass
class ExtractSettings:
    detector: str = "background"
    detect_width: int = DetectorSettings.detect_width   # background subtraction at most this wide (0: full size)
    layout: str = "mediapipe_33"
    start: int = 0
    frames: int | None = None        # at most this many frames per video (None: all)
    min_frames: int = 26             # a walk needs this many frames (window 6 + 2 x clip 10)
    min_visible: float = 0.5         # a pose with fewer landmarks of visibility >= 0.5 is rejected
    max_gap: int = 5
    pose_weight: float = 0.5
    track_single: bool = True        # one person in the frame: MediaPipe's tracking mode (about twice as fast)
    followers: int = 2               # tracking-mode estimators taking a lone person's frames in turn

    def check(self) -> None:
        if self.detector not in DETECTORS:
            raise ConfigError(f"--detector {self.detector}: choose one of {', '.join(DETECTORS)}")
        if self.detect_width < 0:
            raise ConfigError(f"--detect-width {self.detect_width}: a width in pixels, or 0 for full size")
        if self.layout not in LAYOUTS_OUT:
            raise ConfigError(f"--layout {self.layout}: choose one of {', '.join(LAYOUTS_OUT)}")
        if self.start < 0 or (self.frames is not None and self.frames < 1) or self.min_frames < 1:
            raise ConfigError("--start must be >= 0, --frames and --min-frames >= 1")
        if self.followers not in (1, 2):
            raise ConfigError(f"--followers {self.followers}: 1 or 2")
        if not 0 <= self.min_visible <= 1:
            raise ConfigError(f"--min-visible {self.min_visible}: a fraction in 0..1")

    def fingerprint(self) -> str:
        d = asdict(self)
        if not d["detect_width"]:       # full size, as before the option existed: earlier records stay valid
            del d["detect_width"]
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class VideoEntry:
    path: Path
    rel: str                          # path below the input folder, without the suffix
    person: str | None = None         # None: every track is its own identity
    walk: str | None = None
    view: str | None = None
    condition: str | None = None

    @property
    def labelled(self) -> bool:
        return self.person is not None


@dataclass
class FrameItem:
    track: int
    box: tuple[int, int, int, int]
    image: np.ndarray | None          # [33, 2] landmarks when posed


@dataclass
class VideoResult:
    entry: VideoEntry
    info: dict
    frames: int = 0                   # frames processed
    seconds: float = 0.0
    detections: int = 0
    counts: dict = field(default_factory=dict)
    tracks: int = 0
    walks: list[dict] = field(default_factory=list)   # the arrays of each walk (see the module doc)
    items: dict = field(default_factory=dict)         # frame -> [FrameItem]
    merged: dict = field(default_factory=dict)        # frame -> [box]
    dropped_other: int = 0            # tracks of other people in a labelled video
    stage_seconds: dict = field(default_factory=dict)  # read, detect, pose, track (and write, once written)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> dict:
        return {"video": str(self.entry.path), "frames": self.frames, "seconds": round(self.seconds, 3),
                "frames_per_second": round(self.fps, 3), "person_frames": self.detections,
                "person_frames_per_second": round(self.detections / self.seconds, 3) if self.seconds else 0.0,
                "tracks": self.tracks, "walks": [str(w["walk"]) for w in self.walks],
                "walk_frames": [int(len(w["frames"])) for w in self.walks], **self.counts,
                "stage_seconds": {k: round(v, 3) for k, v in self.stage_seconds.items()},
                "other_people_left_out": self.dropped_other, "video_info": self.info}


# ---------------------------------------------------------------------- finding videos
def _entry(path: Path, root: Path | None) -> VideoEntry:
    rel_path = path.relative_to(root) if root is not None else Path(path.name)
    rel = rel_path.with_suffix("").as_posix()
    m = _CASIA_NAME.match(path.stem)
    parts = rel_path.parts
    if m is None and len(parts) >= 3 and parts[-3].isdigit() and _CASIA_COND.match(parts[-2]) \
            and re.fullmatch(r"\d{3}", path.stem):
        c = _CASIA_COND.match(parts[-2])
        m = (None, parts[-3], c.group(1), c.group(2), path.stem)
        subject, cond, seq, angle = m[1], m[2], m[3], m[4]
    elif m is not None:
        subject, cond, seq, angle = m.groups()
    if m is not None:
        a = int(angle)
        return VideoEntry(path, rel, person=subject, walk=f"{cond}-{seq}_{a:03d}",
                          view=str(a // 18) if a % 18 == 0 else str(a), condition=cond)
    if len(parts) == 2:
        return VideoEntry(path, rel, person=parts[0], walk=path.stem)
    return VideoEntry(path, rel)


def find_videos(source: str | Path) -> list[VideoEntry]:
    """The videos of a file or folder (recursively, natural order); a :class:`DataError` naming the
    path when it is missing or holds no video."""
    source = Path(source)
    if source.is_file():
        return [_entry(source, None)]
    if not source.is_dir():
        raise DataError(source, "video file or folder not found")
    files = sorted((p for p in source.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES
                    and not any(part.startswith(".") for part in p.relative_to(source).parts)),
                   key=lambda p: natural_key(p.relative_to(source).as_posix()))
    if not files:
        raise DataError(source, f"no video files found (looked for {', '.join(VIDEO_SUFFIXES)})")
    return [_entry(p, source) for p in files]


# ---------------------------------------------------------------------- one video
def _background(path: Path, start: int, count: int | None, total: int, samples: int = 25) -> np.ndarray | None:
    n = frames_in_range_count(total, start, count)
    step = max(n // samples, 1) if n else 10
    frames = [f for _, f in iter_frames(path, start, n if n else samples * step, step)]
    return median_background(frames[:samples])


def frames_in_range_count(total: int, start: int, count: int | None) -> int:
    if total <= 0:
        return count or 0
    left = max(total - start, 0)
    return left if count is None else min(left, count)


def _pose_ok(pose, box, min_visible: float) -> str | None:
    """Why a pose is rejected (``None``: kept)."""
    if pose is None:
        return "no_pose"
    if pose.visible_fraction() < min_visible:
        return "mostly_invisible"
    x, y, w, h = box
    l, r = MEDIAPIPE_33_HIPS
    hx, hy = (pose.image[l] + pose.image[r]) / 2
    if not (x - 0.15 * w <= hx <= x + 1.15 * w and y <= hy <= y + h):
        return "off_box"            # a neighbour in the crop's margin was posed instead
    return None


def _interp(frames_idx: np.ndarray, values: np.ndarray, full: np.ndarray) -> np.ndarray:
    flat = values.reshape(len(values), -1)
    out = np.empty((len(full), flat.shape[1]), np.float32)
    for k in range(flat.shape[1]):
        out[:, k] = np.interp(full, frames_idx, flat[:, k])
    return out.reshape((len(full),) + values.shape[1:])


def _walk_arrays(seg, layout: str) -> dict:
    idx = np.array([o.frame for o in seg])
    full = np.arange(idx[0], idx[-1] + 1)
    world = _interp(idx, np.stack([o.pose.world for o in seg]), full)
    image = _interp(idx, np.stack([o.pose.image for o in seg]), full)
    vis = _interp(idx, np.stack([o.pose.visibility for o in seg]), full)
    box = _interp(idx, np.array([o.box for o in seg], np.float32), full)
    arrays = {"frames": world, "image": image, "visibility": vis, "frame_index": full.astype(np.int64),
              "box": box, "interpolated": ~np.isin(full, idx)}
    if layout == "casia_b_14":
        arrays["world"] = world
        arrays["frames"] = mediapipe_to_casia_b_14(world)
    return arrays


_END = object()


def _read_and_detect(path: Path, start: int, count: int | None, detector, stage: dict, depth: int = 4):
    """``(index, frame, detections)`` in the video's order. Decoding and detection run in a thread of
    their own, up to ``depth`` frames ahead of the caller (OpenCV releases Python's lock), so they
    overlap the pose; their busy time is added to ``stage["read"]`` and ``stage["detect"]``."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        clock = time.perf_counter
        try:
            t = clock()
            for fi, frame in iter_frames(path, start, count):
                t1 = clock()
                dets = detector(frame)
                stage["read"] += t1 - t
                stage["detect"] += clock() - t1
                if not put((fi, frame, dets)):
                    return
                t = clock()
        except BaseException as exc:   # handed to the caller, raised there
            put(exc)
        finally:
            put(_END)

    thread = threading.Thread(target=work, name="read-detect", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


def _posed_frames(frames, pool, followers: list, stage: dict):
    """``(index, people, merged boxes, raw poses)`` for each ``(index, frame, detections)``, in order.

    A frame with several people (or none) goes to the pool of static estimators. A frame holding
    exactly one person goes to a *follower*, an estimator in MediaPipe's tracking mode; with two
    followers, the frames of a lone person alternate between them (the run's even frames to one, odd
    to the other) and two such frames in a row are posed at the same time, one in a thread of the
    pool (one after the other when the pool has one thread). Which follower poses a frame depends
    only on how many frames the lone run has had, so the result depends neither on timing nor on
    the number of pose threads. The followers are reset whenever a frame does not hold exactly one
    person (and at every video, being made per video). Pose time is added to ``stage["pose"]``."""
    clock = time.perf_counter
    run = 0                      # frames of the current lone-person run
    it = iter(frames)
    held = None

    def split(item):
        fi, frame, dets = item
        return fi, frame, [d for d in dets if not d.merged], [d.box for d in dets if d.merged]

    while True:
        item, held = (held if held is not None else next(it, None)), None
        if item is None:
            return
        fi, frame, people, merged = split(item)
        if not followers or len(people) != 1:
            if run:
                for f in followers:
                    f.reset()
            run = 0
            t = clock()
            raw = pool(frame, [d.box for d in people])
            stage["pose"] += clock() - t
            yield fi, people, merged, raw
            continue
        if len(followers) > 1:
            nxt = next(it, None)
            if nxt is not None:
                nfi, nframe, npeople, nmerged = split(nxt)
                if len(npeople) == 1:
                    t = clock()
                    later = pool.submit(followers[(run + 1) % 2], nframe, npeople[0].box)
                    first = followers[run % 2](frame, people[0].box)
                    second = later.result()
                    stage["pose"] += clock() - t
                    run += 2
                    yield fi, people, merged, [first]
                    yield nfi, npeople, nmerged, [second]
                    continue
                held = nxt
        t = clock()
        raw = [followers[run % len(followers)](frame, people[0].box)]
        stage["pose"] += clock() - t
        run += 1
        yield fi, people, merged, raw


def extract_video(entry: VideoEntry, settings: ExtractSettings, progress: bool = True,
                  pool=None, pose_threads: int | None = None) -> VideoResult:
    """Detect, pose and track the people of one video; the walks are in the result (nothing is written).

    ``pool``: a :class:`~skelreid.video.pose.PosePool` to reuse across videos (otherwise one of
    ``pose_threads`` threads is made for this video). Reading and detection run a few frames ahead in
    a thread of their own; the result does not depend on either (see :class:`PosePool`)."""
    from tqdm.auto import tqdm

    from .pose import PoseEstimator, PosePool

    require_mediapipe()
    cap, info = open_video(entry.path)
    cap.release()
    s = settings
    res = VideoResult(entry, {"width": info.width, "height": info.height, "fps": info.fps,
                              "frames": info.frames, "codec": info.fourcc})
    t0 = time.perf_counter()
    background = _background(entry.path, s.start, s.frames, info.frames) if s.detector == "background" else None
    detector = make_detector(s.detector, background, detect_width=s.detect_width)
    tracker = Tracker(TrackSettings(max_gap=s.max_gap, pose_weight=s.pose_weight))
    own = pool is None
    counts = {"merged_boxes": 0, "no_pose": 0, "mostly_invisible": 0, "off_box": 0}
    total = frames_in_range(info, s.start, s.frames)
    clock = time.perf_counter
    stage = dict.fromkeys(("read", "detect", "pose", "track"), 0.0)
    stage["read"] = clock() - t0      # the background model's sampled frames
    followers = []
    reader = None
    try:
        pool = pool or PosePool(pose_threads)
        # One person in the frame, frame after frame (a CASIA-B clip, a quiet street): MediaPipe's
        # tracking mode follows that person's crop instead of detecting afresh (see _posed_frames).
        if s.track_single:
            followers = [PoseEstimator(tracking=True) for _ in range(s.followers)]
        reader = _read_and_detect(entry.path, s.start, s.frames, detector, stage)
        with tqdm(total=total or None, unit="frame", desc=entry.path.name[:30], leave=False,
                  dynamic_ncols=True, disable=not progress) as bar:
            for fi, people, merged, raw in _posed_frames(reader, pool, followers, stage):
                t2 = clock()
                counts["merged_boxes"] += len(merged)
                poses = []
                for d, p in zip(people, raw):
                    why = _pose_ok(p, d.box, s.min_visible)
                    if why:
                        counts[why] += 1
                        p = None
                    poses.append(p)
                ids = tracker.step(fi, people, poses)
                stage["track"] += clock() - t2
                res.items[fi] = [FrameItem(t, d.box, None if p is None else p.image)
                                 for t, d, p in zip(ids, people, poses)]
                if merged:
                    res.merged[fi] = merged
                res.detections += len(people)
                res.frames += 1
                bar.update(1)
                bar.set_postfix(people=len(people), tracks=len(tracker.tracks), refresh=False)
    finally:
        if reader is not None:
            reader.close()     # stops and joins the reading thread, also when posing failed
        if own and pool is not None:
            pool.close()
        for f in followers:
            f.close()
    res.counts = counts
    res.tracks = len(tracker.tracks)
    t4 = clock()
    walks = []
    for tr in tracker.tracks:
        segs = [g for g in segments(tr, s.max_gap) if g[-1].frame - g[0].frame + 1 >= s.min_frames]
        for k, g in enumerate(segs):
            name = f"t{tr.id:03d}" + (chr(ord("a") + k) if len(segs) > 1 else "")
            walks.append((name, tr.id, _walk_arrays(g, s.layout)))
    stage["track"] += clock() - t4    # cutting tracks into walks
    res.seconds = clock() - t0
    res.stage_seconds = stage
    if entry.labelled and walks:
        walks.sort(key=lambda w: -len(w[2]["frames"]))
        res.dropped_other = len(walks) - 1
        walks = walks[:1]
    for name, tid, arrays in walks:
        res.walks.append(label_walk(arrays, entry, s.layout, name, tid, info.fps, (info.width, info.height)))
    return res


def label_walk(arrays: dict, entry: VideoEntry, layout: str, name: str, track: int, fps: float,
               size: tuple[int, int]) -> dict:
    """A track's arrays with the strings and numbers that name it (see the module documentation)."""
    if entry.labelled:
        person, walk = entry.person, entry.walk
    else:
        person, walk = f"{entry.rel.replace('/', '_')}_{name}", name
    arrays.update(person=np.array(person), walk=np.array(walk), layout=np.array(layout),
                  source_video=np.array(str(entry.path)), fps=np.array(fps, np.float64),
                  video_size=np.array(size, np.int64), track=np.array(track, np.int64))
    if entry.view is not None:
        arrays["view"] = np.array(entry.view)
    if entry.condition is not None:
        arrays["condition"] = np.array(entry.condition)
    return arrays


def walk_sequences(res: VideoResult) -> list[Sequence]:
    """The walks of a result as :class:`~skelreid.data.records.Sequence` (what ``identify --video`` embeds)."""
    out = []
    for a in res.walks:
        out.append(Sequence(person=str(a["person"]), walk=str(a["walk"]), frames=a["frames"],
                            layout=str(a["layout"]), view=str(a["view"]) if "view" in a else None,
                            condition=str(a["condition"]) if "condition" in a else None,
                            source=f"{res.entry.path}#track{int(a['track'])}",
                            meta={"track": int(a["track"]), "first_frame": int(a["frame_index"][0])}))
    return out


# ---------------------------------------------------------------------- writing
def _record_path(out: Path, entry: VideoEntry) -> Path:
    return out / RECORDS / f"{entry.rel}.json"


def _source_stamp(path: Path) -> dict:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def is_done(out: Path, entry: VideoEntry, settings: ExtractSettings) -> bool:
    rec = _record_path(out, entry)
    if not rec.is_file():
        return False
    try:
        d = read_json(rec)
    except DataError:
        return False
    return d.get("settings") == settings.fingerprint() and d.get("source") == _source_stamp(entry.path)


def write_walks(out: Path, res: VideoResult, settings: ExtractSettings) -> list[Path]:
    """Write a video's walks atomically, then its done record; nothing for a video without walks."""
    entry = res.entry
    if not res.walks:
        return []
    paths = []
    if entry.labelled:
        path = out / entry.person / f"{entry.walk}.npz"
        save_npz(path, **res.walks[0])
        paths.append(path)
    else:
        target = out / entry.rel
        target.parent.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".staging", dir=target.parent))
        try:
            for a in res.walks:
                save_npz(stage / f"{a['walk']}.npz", **a)
            old = None
            if target.exists():
                old = target.with_name(f".{target.name}.{os.getpid()}.old")
                os.replace(target, old)
            os.replace(stage, target)
            fsync_dir(target.parent)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise
        paths = [target / f"{a['walk']}.npz" for a in res.walks]
    write_json(_record_path(out, entry), {"format": "skelreid-extract/1", "settings": settings.fingerprint(),
                                          "settings_values": asdict(settings),
                                          "source": _source_stamp(entry.path), "summary": res.summary(),
                                          "files": [str(p.relative_to(out)) for p in paths]})
    return paths


STAGES = ("read", "detect", "pose", "track", "write")


def format_stages(seconds: dict, frames: int) -> str:
    """One line: where the time went, per stage, in milliseconds per frame and share of the total.
    Reading and detection run in their own thread, so their time overlaps the pose's: the stages
    add up to more than the wall time."""
    total = sum(seconds.get(k, 0.0) for k in STAGES) or 1.0
    parts = [f"{k} {1000 * seconds[k] / max(frames, 1):.1f} ms ({100 * seconds[k] / total:.0f}%)"
             for k in STAGES if k in seconds]
    return "time per frame: " + ", ".join(parts)


def _add_write_time(out: Path, entry: VideoEntry, seconds: float) -> None:
    rec = _record_path(out, entry)
    d = read_json(rec)
    d["summary"].setdefault("stage_seconds", {})["write"] = round(seconds, 3)
    write_json(rec, d)


def remove_stale_staging(out: Path) -> int:
    """Staging folders left by a killed run (never read: their names start with a dot)."""
    n = 0
    if out.is_dir():
        for p in out.rglob(".*.staging"):
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
                n += 1
    return n


def extract(source: str | Path, out: str | Path, settings: ExtractSettings | None = None, progress: bool = True,
            log: Callable[[str], None] = print, on_result: Callable[[VideoResult], None] | None = None,
            pose_threads: int | None = None) -> dict:
    """``skelreid extract``: every video of ``source`` to walks under ``out``; returns a summary dict.
    ``pose_threads``: threads posing a frame's people (default: one per core, at most 4); the walks
    written do not depend on it."""
    settings = settings or ExtractSettings()
    settings.check()
    require_cv2()
    require_mediapipe()
    entries = find_videos(source)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: exists and is not a folder")
    remove_stale_staging(out)
    from .pose import PosePool

    summary = {"videos": len(entries), "done_before": 0, "without_walks": 0, "walks": 0, "frames": 0,
               "seconds": 0.0, "person_frames": 0, "stage_seconds": {}, "per_video": []}
    with PosePool(pose_threads) as pool:
        for e in entries:
            if is_done(out, e, settings):
                summary["done_before"] += 1
                log(f"{e.path}: already extracted (same settings), skipped")
                continue
            res = extract_video(e, settings, progress=progress, pool=pool)
            t0 = time.perf_counter()
            paths = write_walks(out, res, settings)
            res.stage_seconds["write"] = time.perf_counter() - t0
            if paths:   # the record written with the walks gets the writing time too
                _add_write_time(out, e, res.stage_seconds["write"])
            summary["frames"] += res.frames
            summary["seconds"] += res.seconds
            summary["person_frames"] += res.detections
            for k, v in res.stage_seconds.items():
                summary["stage_seconds"][k] = summary["stage_seconds"].get(k, 0.0) + v
            summary["per_video"].append(res.summary())
            summary["walks"] += len(paths)
            if on_result is not None:
                on_result(res)
            if not paths:
                summary["without_walks"] += 1
                why = ("no person found" if res.detections == 0 else
                       f"{res.tracks} track(s), none with {settings.min_frames} posed frames in a row")
                log(f"{e.path}: {why} in {res.frames} frame(s); nothing written")
            else:
                log(f"{e.path}: {res.frames} frames at {res.fps:.1f} frames/s, {res.detections} person-frames, "
                    f"{res.tracks} track(s) -> {len(paths)} walk(s)"
                    + (f" ({res.dropped_other} other people left out)" if res.dropped_other else ""))
    return summary
