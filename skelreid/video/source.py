"""Reading videos: one clear line for an unreadable, empty or undecodable file."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import DataError
from . import require_cv2


@dataclass
class VideoInfo:
    path: Path
    width: int
    height: int
    fps: float
    frames: int        # as the container says (0 when unknown)
    fourcc: str


def open_video(path: str | Path):
    """An opened ``cv2.VideoCapture`` and its :class:`VideoInfo`; a :class:`DataError` naming the
    file when it is missing, not a video, in a codec OpenCV cannot decode, or has no frame."""
    cv2 = require_cv2()
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "video file not found")
    if path.stat().st_size == 0:
        raise DataError(path, "empty file (0 bytes), not a video")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise DataError(path, "cannot open as a video (not a video file, or a container/codec that OpenCV's "
                              "FFmpeg cannot read)")
    code = int(cap.get(cv2.CAP_PROP_FOURCC))
    fourcc = "".join(chr((code >> (8 * i)) & 0xFF) for i in range(4)).strip("\0 ") if code else "?"
    ok, frame = cap.read()
    if not ok or frame is None:
        cap.release()
        raise DataError(path, f"no frame could be decoded (codec {fourcc!r} unknown to OpenCV, or the video "
                              "is empty or damaged)")
    cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    if not np.isfinite(fps) or fps <= 0 or fps > 1000:
        fps = 25.0
    info = VideoInfo(path, int(frame.shape[1]), int(frame.shape[0]), fps,
                     max(int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0), 0), fourcc)
    return cap, info


def iter_frames(path: str | Path, start: int = 0, count: int | None = None,
                step: int = 1) -> Iterator[tuple[int, np.ndarray]]:
    """``(index, BGR frame)`` from frame ``start``, at most ``count`` frames, every ``step``-th
    decoded (the others only grabbed). Frames are read sequentially (no seeking: exact indices)."""
    cap, _ = open_video(path)
    try:
        i = 0
        end = None if count is None else start + count
        while end is None or i < end:
            if i < start or (i - start) % step:
                if not cap.grab():
                    break
            else:
                ok, frame = cap.read()
                if not ok or frame is None:
                    break
                yield i, frame
            i += 1
    finally:
        cap.release()


def frames_in_range(info: VideoInfo, start: int, count: int | None) -> int:
    """How many frames a pass over ``[start, start + count)`` will see (for progress bars; 0 = unknown)."""
    if info.frames <= 0:
        return count or 0
    left = max(info.frames - start, 0)
    return left if count is None else min(left, count)
