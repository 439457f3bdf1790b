"""One tracked walker cut out of a street video onto its empty scene, as a short clip of its own.

CASIA-B films one person walking past a fixed camera, the scene empty before and after. From a
street video and one walk that ``skelreid extract`` wrote (its ``frame_index`` and ``box``), this
module makes such a clip: each frame of the walk is the empty scene (the per-pixel median of the
video) with only the walker's box (plus a margin) pasted in from the real frame, cropped to a fixed
window around the walker's path, with ``empty`` frames of the empty scene before and after. Tests
and ``benchmarks/video_speed.py`` use it to build real single-walker clips and CASIA-B-layout trees
from ``vtest.avi``; a user can use it the same way to check extraction on their own footage.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from . import require_cv2

#: The margin around a walker's box that is pasted in (fractions of its width and height).
MARGIN = (0.15, 0.1)


def crop_window(boxes: np.ndarray, scene_size: tuple[int, int], size: tuple[int, int]) -> tuple[int, int]:
    """Top-left corner of a ``size`` (width, height) window centred on the mean of the boxes'
    centres, kept inside a scene of ``scene_size`` (width, height)."""
    (W, H), (w, h) = scene_size, size
    if w > W or h > H:
        raise ValueError(f"a {w} x {h} window does not fit in a {W} x {H} scene")
    cx = float(np.mean(boxes[:, 0] + boxes[:, 2] / 2))
    cy = float(np.mean(boxes[:, 1] + boxes[:, 3] / 2))
    return int(np.clip(cx - w / 2, 0, W - w)), int(np.clip(cy - h / 2, 0, H - h))


def paste_walker(scene: np.ndarray, frame: np.ndarray, box) -> np.ndarray:
    """The empty ``scene`` with ``frame``'s pixels inside ``box`` (x, y, w, h) and its margin."""
    H, W = scene.shape[:2]
    x, y, w, h = (float(v) for v in box)
    a, b = int(max(x - MARGIN[0] * w, 0)), int(max(y - MARGIN[1] * h, 0))
    c, d = int(min(x + (1 + MARGIN[0]) * w, W)), int(min(y + (1 + MARGIN[1]) * h, H))
    out = scene.copy()
    out[b:d, a:c] = frame[b:d, a:c]
    return out


def walker_clip(frames: dict[int, np.ndarray], scene: np.ndarray, frame_index: np.ndarray, boxes: np.ndarray,
                size: tuple[int, int] = (320, 240), empty: int = 8, mirror: bool = False) -> list[np.ndarray]:
    """The clip's frames (BGR): ``empty`` empty-scene frames, the walker alone on frames
    ``frame_index`` (``frames[i]`` is the video's frame ``i``, ``boxes[k]`` the walker's box on
    ``frame_index[k]``), ``empty`` empty frames again; cropped to ``size`` around the walker's path,
    mirrored left-right if asked (a second "view" of the same walk)."""
    if len(frame_index) != len(boxes) or not len(boxes):
        raise ValueError("frame_index and boxes must be non-empty and of one length")
    H, W = scene.shape[:2]
    x0, y0 = crop_window(np.asarray(boxes, np.float64), (W, H), size)
    crop = (slice(y0, y0 + size[1]), slice(x0, x0 + size[0]))
    body = [paste_walker(scene, frames[int(i)], b)[crop] for i, b in zip(frame_index, boxes)]
    clip = [scene[crop]] * empty + body + [scene[crop]] * empty
    if mirror:
        clip = [f[:, ::-1] for f in clip]
    return [np.ascontiguousarray(f) for f in clip]


def write_clip(path: str | Path, frames: list[np.ndarray], fps: float = 10.0) -> Path:
    """Write BGR frames as a Motion-JPEG ``.avi`` (readable by OpenCV everywhere, no codec to install)."""
    cv2 = require_cv2()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), float(fps), (w, h))
    if not writer.isOpened():
        raise OSError(f"{path}: OpenCV cannot write a Motion-JPEG video here")
    try:
        for f in frames:
            writer.write(f)
    finally:
        writer.release()
    return path
