"""Finding people in frames, without downloaded weights.

* ``background`` (default, fixed camera): OpenCV's MOG2 background subtraction, primed with the
  median of frames sampled over the clip (so people are found from the first frame on), shadows
  dropped, the mask cleaned by morphology; each blob of person size and shape is one box. With
  ``detect_width`` set, a wider frame is shrunk by a whole factor for the subtraction alone (its
  foreground mask is scaled back, so the clean-up, the boxes and the pose are at full size): faster,
  at some cost in walk frames (measured in docs/video.md); off by default.
* ``hog`` (moving camera): OpenCV's HOG people detector (its default linear SVM ships inside
  OpenCV), on the frame upscaled so that 60-pixel people fit its 64 x 128 window, with
  non-maximum suppression.

Boxes are ``(x, y, w, h)`` in pixels. A box much wider than a walking person (``w / h`` above
``max_aspect``) is two or more walkers merged into one blob: it is returned as *merged* and never
gets a pose (a pose on it collapses the two people into one skeleton).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import require_cv2

DETECTORS = ("background", "hog")


@dataclass
class Detection:
    box: tuple[int, int, int, int]      # x, y, w, h
    score: float = 1.0
    merged: bool = False


@dataclass
class DetectorSettings:
    min_height: int = 40          # pixels: smaller blobs are noise or too small for a pose
    max_aspect: float = 0.8       # w / h above this: merged walkers
    min_aspect: float = 0.15      # w / h below this: a pole or an edge artefact
    min_fill: float = 0.2         # foreground pixels / box area
    detect_width: int = 0         # background subtraction on frames shrunk to at most this width (0: full size)


def shrink_factor(width: int, detect_width: int) -> int:
    """The whole factor a frame ``width`` pixels wide is shrunk by for detection (1: full size)."""
    if detect_width <= 0 or width <= detect_width:
        return 1
    return -(-width // detect_width)


class BackgroundDetector:
    """MOG2 background subtraction for a fixed camera (see the module documentation)."""

    name = "background"

    def __init__(self, background: np.ndarray | None = None, settings: DetectorSettings | None = None):
        cv2 = require_cv2()
        self.cv2 = cv2
        self.s = settings or DetectorSettings()
        self.sub = cv2.createBackgroundSubtractorMOG2(history=300, varThreshold=25, detectShadows=True)
        self.k: int | None = None         # the shrink factor, fixed by the first image seen
        self.open_k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
        self.close_k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 15))
        if background is not None:
            small = self._shrink(background)
            for _ in range(3):
                self.sub.apply(small, learningRate=1.0)

    def _shrink(self, image: np.ndarray) -> np.ndarray:
        if self.k is None:
            self.k = shrink_factor(image.shape[1], self.s.detect_width)
        if self.k == 1:
            return image
        h, w = image.shape[:2]
        return self.cv2.resize(image, (w // self.k, h // self.k), interpolation=self.cv2.INTER_AREA)

    def __call__(self, frame: np.ndarray) -> list[Detection]:
        cv2 = self.cv2
        mask = self.sub.apply(self._shrink(frame), learningRate=0.002)
        if self.k != 1:   # the foreground mask back at full size: the clean-up and the boxes as without shrinking
            mask = cv2.resize(mask, (frame.shape[1], frame.shape[0]), interpolation=cv2.INTER_NEAREST)
        mask = cv2.threshold(mask, 199, 255, cv2.THRESH_BINARY)[1]        # 127 = shadow, dropped
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, self.open_k)
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, self.close_k)
        n, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        out = []
        for x, y, w, h, area in stats[1:]:
            if h < self.s.min_height or area < self.s.min_fill * w * h:
                continue
            aspect = w / h
            if aspect < self.s.min_aspect:
                continue
            out.append(Detection((int(x), int(y), int(w), int(h)), float(area) / (w * h),
                                 merged=aspect > self.s.max_aspect))
        return out


class HogDetector:
    """OpenCV's HOG + linear SVM people detector (for moving cameras)."""

    name = "hog"

    def __init__(self, settings: DetectorSettings | None = None, upscale: float = 2.0):
        cv2 = require_cv2()
        self.cv2 = cv2
        self.s = settings or DetectorSettings()
        self.upscale = upscale
        self.hog = cv2.HOGDescriptor()
        self.hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())

    def __call__(self, frame: np.ndarray) -> list[Detection]:
        cv2 = self.cv2
        big = cv2.resize(frame, None, fx=self.upscale, fy=self.upscale, interpolation=cv2.INTER_LINEAR)
        rects, weights = self.hog.detectMultiScale(big, winStride=(8, 8), padding=(8, 8), scale=1.05)
        if len(rects) == 0:
            return []
        boxes = [(r / self.upscale).astype(int).tolist() for r in np.asarray(rects)]
        scores = np.asarray(weights, dtype=float).reshape(-1).tolist()
        keep = cv2.dnn.NMSBoxes(boxes, scores, 0.3, 0.4)
        out = []
        for i in np.asarray(keep).reshape(-1):
            x, y, w, h = boxes[int(i)]
            # HOG boxes are loose: trim the usual margin (about 10 % each side, 5 % top and bottom).
            x, y, w, h = x + w // 10, y + h // 20, w - w // 5, h - h // 10
            if h >= self.s.min_height:
                out.append(Detection((x, y, w, h), scores[int(i)]))
        return out


def median_background(frames: list[np.ndarray]) -> np.ndarray | None:
    """The per-pixel median of sampled frames: the empty scene wherever people keep moving."""
    if not frames:
        return None
    return np.median(np.stack(frames), axis=0).astype(np.uint8)


def make_detector(name: str, background: np.ndarray | None = None, detect_width: int | None = None):
    if name == "background":
        settings = DetectorSettings() if detect_width is None else DetectorSettings(detect_width=detect_width)
        return BackgroundDetector(background, settings)
    if name == "hog":
        return HogDetector()
    from ..errors import ConfigError

    raise ConfigError(f"unknown detector {name!r}; choose one of: {', '.join(DETECTORS)}")
