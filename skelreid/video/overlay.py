"""Drawing tracks over the video: an ``.mp4`` overlay and a PNG contact sheet of sampled frames.

Each person gets a colour from its track id, its box, a label (``t<id>`` or, from ``identify
--video``, the identity or ``unknown``) and its 33-landmark skeleton when posed in that frame;
merged boxes (walkers overlapping in one blob, never posed) are drawn grey and dashed-free thin.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from ..data.layouts import MEDIAPIPE_33_BONES
from ..errors import ConfigError
from ..io import write_bytes
from . import require_cv2
from .source import iter_frames


def colour(track: int) -> tuple[int, int, int]:
    """A stable, distinct BGR colour per track id (golden-ratio hues)."""
    import colorsys

    r, g, b = colorsys.hsv_to_rgb((track * 0.618033988749895) % 1.0, 0.85, 1.0)
    return int(b * 255), int(g * 255), int(r * 255)


def draw(frame: np.ndarray, items, merged=(), labels: dict | None = None, frame_index: int | None = None):
    """Draw one frame's tracks in place (and return it)."""
    cv2 = require_cv2()
    for box in merged:
        x, y, w, h = map(int, box)
        cv2.rectangle(frame, (x, y), (x + w, y + h), (150, 150, 150), 1)
        cv2.putText(frame, "merged", (x, max(y - 4, 10)), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (150, 150, 150), 1,
                    cv2.LINE_AA)
    for it in items:
        c = colour(it.track)
        x, y, w, h = map(int, it.box)
        cv2.rectangle(frame, (x, y), (x + w, y + h), c, 2)
        if it.image is not None:
            pts = np.round(it.image).astype(int)
            for a, b in MEDIAPIPE_33_BONES:
                cv2.line(frame, tuple(pts[a]), tuple(pts[b]), c, 2, cv2.LINE_AA)
            for p in pts[11:]:
                cv2.circle(frame, tuple(p), 2, (255, 255, 255), -1, cv2.LINE_AA)
        text = (labels or {}).get(it.track, f"t{it.track}")
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
        ty = max(y - 4, th + 2)
        cv2.rectangle(frame, (x, ty - th - 3), (x + tw + 4, ty + 2), c, -1)
        cv2.putText(frame, text, (x + 2, ty), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    if frame_index is not None:
        cv2.putText(frame, f"frame {frame_index}", (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2,
                    cv2.LINE_AA)
    return frame


def _frame_range(res) -> tuple[int, int]:
    keys = sorted(res.items)
    if not keys:
        return 0, 0
    return keys[0], keys[-1] - keys[0] + 1


def write_overlay(res, path: str | Path, labels: dict | None = None) -> Path:
    """The processed frames of ``res`` (a :class:`~skelreid.video.extract.VideoResult`) with their
    tracks drawn, as an MPEG-4 video at the source's frame rate, written atomically."""
    cv2 = require_cv2()
    path = Path(path)
    if path.suffix.lower() not in (".mp4", ".avi"):
        raise ConfigError(f"--overlay {path}: the overlay is a video; name it .mp4 (or .avi)")
    start, count = _frame_range(res)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    fourcc = cv2.VideoWriter_fourcc(*("mp4v" if path.suffix.lower() == ".mp4" else "MJPG"))
    from ..io import _FILE_MODE

    os.chmod(tmp, _FILE_MODE)
    writer = cv2.VideoWriter(tmp, fourcc, float(res.info["fps"]), (res.info["width"], res.info["height"]))
    try:
        if not writer.isOpened():
            raise ConfigError(f"--overlay {path}: OpenCV cannot write this video format here")
        for fi, frame in iter_frames(res.entry.path, start, count):
            writer.write(draw(frame, res.items.get(fi, ()), res.merged.get(fi, ()), labels, fi))
        writer.release()
        os.replace(tmp, path)
    except BaseException:
        writer.release()
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def contact_sheet(res, path: str | Path, labels: dict | None = None, n: int = 6, columns: int = 3,
                  width: int = 1200) -> Path:
    """A PNG grid of ``n`` frames sampled evenly over the processed range, tracks drawn."""
    cv2 = require_cv2()
    path = Path(path)
    start, count = _frame_range(res)
    if count == 0:
        raise ConfigError(f"{path}: no processed frame to draw")
    # Sample among frames where someone was found, evenly.
    busy = [f for f in sorted(res.items) if res.items[f]] or sorted(res.items)
    picks = sorted({busy[int(round(i * (len(busy) - 1) / max(n - 1, 1)))] for i in range(n)})
    tiles = {}
    for fi, frame in iter_frames(res.entry.path, picks[0], picks[-1] - picks[0] + 1):
        if fi in picks:
            tiles[fi] = draw(frame, res.items.get(fi, ()), res.merged.get(fi, ()), labels, fi)
    imgs = [tiles[f] for f in picks if f in tiles]
    tw = width // columns
    th = int(round(imgs[0].shape[0] * tw / imgs[0].shape[1]))
    imgs = [cv2.resize(im, (tw, th), interpolation=cv2.INTER_AREA) for im in imgs]
    while len(imgs) % columns:
        imgs.append(np.zeros_like(imgs[0]))
    grid = np.vstack([np.hstack(imgs[r: r + columns]) for r in range(0, len(imgs), columns)])
    ok, buf = cv2.imencode(".png", grid, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    if not ok:
        raise ConfigError(f"{path}: could not encode the PNG")
    write_bytes(path, buf.tobytes())
    return path
