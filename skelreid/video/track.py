"""Associating people across frames into tracks.

Each frame's person detections are matched to the open tracks by optimal assignment
(:func:`scipy.optimize.linear_sum_assignment`, not greedy first-come) on a cost that adds

* box overlap: ``1 - IoU`` between the detection and the track's box predicted by its velocity, and
* pose distance (``pose_weight`` times): the mean distance between the two poses' image landmarks,
  each centred on its hips and divided by its box height (how the body is held, not where it is),

with a gate: a pair that neither overlaps (IoU below ``min_iou``) nor lies within half a body
height is never matched. A detection left over starts a track; a track unmatched for more than
``max_gap`` frames is closed. Merged boxes (two walkers in one blob) take part in no track.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..data.layouts import MEDIAPIPE_33_HIPS
from .detect import Detection
from .pose import Pose

INFEASIBLE = 1e6


@dataclass
class TrackSettings:
    max_gap: int = 5          # frames a track may go unmatched (gaps in a walk up to this are interpolated)
    min_iou: float = 0.1
    pose_weight: float = 0.5
    max_cost: float = 1.6


@dataclass
class Observation:
    frame: int
    box: tuple[int, int, int, int]
    pose: Pose | None


@dataclass
class Track:
    id: int
    obs: list[Observation] = field(default_factory=list)
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))

    @property
    def last(self) -> Observation:
        return self.obs[-1]

    def predicted_box(self, frame: int) -> np.ndarray:
        x, y, w, h = self.last.box
        dx, dy = self.velocity * (frame - self.last.frame)
        return np.array([x + dx, y + dy, w, h], float)

    def last_pose(self) -> Pose | None:
        for o in reversed(self.obs[-5:]):
            if o.pose is not None:
                return o.pose
        return None

    def add(self, o: Observation) -> None:
        if self.obs:
            prev = self.last
            dt = max(o.frame - prev.frame, 1)
            step = (_centre(o.box) - _centre(prev.box)) / dt
            self.velocity = step if len(self.obs) == 1 else 0.6 * step + 0.4 * self.velocity
        self.obs.append(o)

    @property
    def posed_frames(self) -> int:
        return sum(o.pose is not None for o in self.obs)


def _centre(box) -> np.ndarray:
    x, y, w, h = box
    return np.array([x + w / 2, y + h / 2], float)


def iou(a, b) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = ix * iy
    union = aw * ah + bw * bh - inter
    return float(inter / union) if union > 0 else 0.0


def pose_distance(a: Pose, b: Pose, ha: float, hb: float) -> float:
    """Mean landmark distance of two poses, each hip-centred and divided by its box height (0..1)."""
    l, r = MEDIAPIPE_33_HIPS
    pa = (a.image - (a.image[l] + a.image[r]) / 2) / max(ha, 1.0)
    pb = (b.image - (b.image[l] + b.image[r]) / 2) / max(hb, 1.0)
    both = (a.visibility >= 0.5) & (b.visibility >= 0.5)
    if both.sum() < 4:
        return 0.5
    return float(min(np.linalg.norm(pa[both] - pb[both], axis=1).mean(), 1.0))


class Tracker:
    """Feed :meth:`step` every frame's detections and poses, in frame order; :attr:`tracks` then
    holds every track (closed and open), in order of creation."""

    def __init__(self, settings: TrackSettings | None = None):
        self.s = settings or TrackSettings()
        self.tracks: list[Track] = []
        self.open: list[Track] = []

    def cost_matrix(self, frame: int, detections: list[Detection], poses: list[Pose | None]) -> np.ndarray:
        cost = np.full((len(self.open), len(detections)), INFEASIBLE)
        for i, t in enumerate(self.open):
            pred = t.predicted_box(frame)
            tpose = t.last_pose()
            for j, (d, p) in enumerate(zip(detections, poses)):
                ov = iou(pred, d.box)
                near = np.linalg.norm(_centre(pred) - _centre(d.box)) / max(pred[3], 1.0)
                if ov < self.s.min_iou and near > 0.5:
                    continue
                c = 1.0 - ov
                if p is not None and tpose is not None:
                    c += self.s.pose_weight * pose_distance(tpose, p, t.last.box[3], d.box[3])
                if c <= self.s.max_cost:
                    cost[i, j] = c
        return cost

    def step(self, frame: int, detections: list[Detection], poses: list[Pose | None]) -> list[int]:
        """Associate one frame; returns the track id given to each detection."""
        from scipy.optimize import linear_sum_assignment

        self.open = [t for t in self.open if frame - t.last.frame <= self.s.max_gap + 1]
        ids = [-1] * len(detections)
        if self.open and detections:
            cost = self.cost_matrix(frame, detections, poses)
            rows, cols = linear_sum_assignment(cost)
            for i, j in zip(rows, cols):
                if cost[i, j] < INFEASIBLE:
                    self.open[i].add(Observation(frame, detections[j].box, poses[j]))
                    ids[j] = self.open[i].id
        for j, d in enumerate(detections):
            if ids[j] < 0:
                t = Track(len(self.tracks) + 1)
                t.add(Observation(frame, d.box, poses[j]))
                self.tracks.append(t)
                self.open.append(t)
                ids[j] = t.id
        return ids


def segments(track: Track, max_gap: int) -> list[list[Observation]]:
    """The track's posed observations cut where more than ``max_gap`` frames in a row have no pose."""
    out: list[list[Observation]] = []
    cur: list[Observation] = []
    for o in track.obs:
        if o.pose is None:
            continue
        if cur and o.frame - cur[-1].frame > max_gap + 1:
            out.append(cur)
            cur = []
        cur.append(o)
    if cur:
        out.append(cur)
    return out
