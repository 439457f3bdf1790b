"""One MediaPipe pose per person crop.

MediaPipe's legacy pose solution (``mediapipe==0.10.21``, ``model_complexity=1``: the only
setting whose weights ship inside the wheel, so nothing is downloaded) finds one person per
image, so each person box is cropped (with a margin, upscaled so the person is about
:data:`CROP_HEIGHT` pixels tall) and posed on its own, in static-image mode (no tracking state
shared between people). With ``tracking=True`` MediaPipe runs in its video mode: after the first
pose it skips its person detector and follows the previous landmarks, about twice as fast; skelreid
uses that for a frame holding exactly one person (see :func:`skelreid.video.extract.extract_video`)
and resets it whenever that is no longer so. A pose gives 33 landmarks: image coordinates (mapped back to the frame's
pixels) with a visibility each, and world coordinates in metres centred between the hips.

:class:`PosePool` poses the people of one frame side by side, one static estimator per thread
(MediaPipe releases Python's lock while its graph runs, so threads use several cores). A static pose
depends on its crop alone, so the result is the same with one thread or several.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from . import require_cv2, require_mediapipe

#: Height in pixels a crop is resized to before the pose (small people pose badly).
CROP_HEIGHT = 256
#: Margin added around a box before cropping, as a fraction of its height.
MARGIN = 0.15


@dataclass
class Pose:
    world: np.ndarray        # [33, 3] metres, origin between the hips
    image: np.ndarray        # [33, 2] pixels in the frame
    visibility: np.ndarray   # [33] in 0..1

    def visible_fraction(self, threshold: float = 0.5) -> float:
        return float((self.visibility >= threshold).mean())


class PoseEstimator:
    """``estimator(frame, box) -> Pose | None`` (see the module documentation)."""

    def __init__(self, min_detection_confidence: float = 0.5, tracking: bool = False):
        self.cv2 = require_cv2()
        mp_pose = require_mediapipe()
        self.tracking = tracking
        try:
            self.pose = mp_pose.Pose(static_image_mode=not tracking, model_complexity=1, smooth_landmarks=False,
                                     enable_segmentation=False,
                                     min_detection_confidence=min_detection_confidence)
        except Exception as exc:  # a broken install: name it in one line
            from ..errors import ConfigError

            raise ConfigError(f"MediaPipe's pose solution could not start ({type(exc).__name__}: {exc}); "
                              'reinstall it: pip install "skelreid[video]"') from None

    def close(self) -> None:
        self.pose.close()

    def reset(self) -> None:
        """Forget the tracked person (tracking mode): the next call detects afresh."""
        self.pose.reset()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __call__(self, frame: np.ndarray, box: tuple[int, int, int, int]) -> Pose | None:
        cv2 = self.cv2
        H, W = frame.shape[:2]
        x, y, w, h = box
        m = int(round(MARGIN * h))
        # A crop about as wide as it is tall: the pose detector expects some context around the body.
        cx = x + w / 2
        half = max(w / 2 + m, (h + 2 * m) * 0.35)
        x0, x1 = int(max(cx - half, 0)), int(min(cx + half, W))
        y0, y1 = int(max(y - m, 0)), int(min(y + h + m, H))
        if x1 - x0 < 8 or y1 - y0 < 8:
            return None
        crop = frame[y0:y1, x0:x1]
        scale = CROP_HEIGHT / crop.shape[0]
        crop = cv2.resize(crop, (max(int(round(crop.shape[1] * scale)), 8), CROP_HEIGHT),
                          interpolation=cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA)
        res = self.pose.process(cv2.cvtColor(crop, cv2.COLOR_BGR2RGB))
        if res.pose_landmarks is None or res.pose_world_landmarks is None:
            return None
        lm = res.pose_landmarks.landmark
        image = np.array([[p.x, p.y] for p in lm], np.float32)
        image[:, 0] = x0 + image[:, 0] * (x1 - x0)
        image[:, 1] = y0 + image[:, 1] * (y1 - y0)
        vis = np.array([p.visibility for p in lm], np.float32)
        world = np.array([[p.x, p.y, p.z] for p in res.pose_world_landmarks.landmark], np.float32)
        return Pose(world, image, vis)


def default_pose_threads() -> int:
    """Threads posing the people of a frame: one per core, at most 4."""
    return max(1, min(os.cpu_count() or 1, 4))


class PosePool:
    """``pool(frame, boxes) -> [Pose | None]``: static poses of a frame's people, ``threads`` at a time.

    Box ``i`` goes to estimator ``i % threads``; each estimator poses its boxes in order in its own
    thread. With one thread (or one box) everything runs in the caller's thread."""

    def __init__(self, threads: int | None = None):
        self.threads = default_pose_threads() if threads is None else int(threads)
        if self.threads < 1:
            from ..errors import ConfigError

            raise ConfigError(f"--pose-threads {threads}: at least 1")
        self.estimators = []
        try:
            for _ in range(self.threads):
                self.estimators.append(PoseEstimator())
        except BaseException:
            self.close()
            raise
        self.executor = ThreadPoolExecutor(self.threads, thread_name_prefix="pose") if self.threads > 1 else None

    def __call__(self, frame: np.ndarray, boxes) -> list:
        boxes = list(boxes)
        if self.executor is None or len(boxes) < 2:
            return [self.estimators[0](frame, b) for b in boxes]
        n = min(self.threads, len(boxes))

        def run(k: int) -> list:
            est = self.estimators[k]
            return [est(frame, b) for b in boxes[k::n]]

        parts = list(self.executor.map(run, range(n)))
        out = [None] * len(boxes)
        for k, part in enumerate(parts):
            out[k::n] = part
        return out

    def submit(self, fn, *args):
        """``fn(*args)`` in one of the pool's threads (in the caller's with one thread): a future."""
        if self.executor is not None:
            return self.executor.submit(fn, *args)
        from concurrent.futures import Future

        done = Future()
        try:
            done.set_result(fn(*args))
        except BaseException as exc:
            done.set_exception(exc)
        return done

    def close(self) -> None:
        if getattr(self, "executor", None) is not None:
            self.executor.shutdown(wait=True)
            self.executor = None
        for est in self.estimators:
            est.close()
        self.estimators = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
