"""From walks to fixed-length windows.

The reference preprocessing drops ``clip`` frames at each end of a walk, then
cuts the walk into consecutive, non-overlapping windows of ``length`` frames.
Windows keep walk order: the contrastive loss takes batch neighbours as
positives and the prediction task pairs each window with the next one of the
same walk, so both depend on it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError, DataError
from .records import Sequence


@dataclass
class WindowSet:
    """Windows of many walks, in walk order.

    ``data`` is ``[N, f, J, D]`` float32. ``label[i]`` indexes ``persons``,
    ``walk[i]`` indexes ``walks`` (walk ids) and ``position[i]`` is the window's
    index within its walk. ``walk_person[w]`` is the label of walk ``w``.
    """

    data: np.ndarray
    label: np.ndarray
    walk: np.ndarray
    position: np.ndarray
    persons: list[str]
    walks: list[str]
    layout: str = "generic"

    def __post_init__(self) -> None:
        n = len(self.data)
        for name in ("label", "walk", "position"):
            arr = np.asarray(getattr(self, name), dtype=np.int64)
            if arr.shape != (n,):
                raise ValueError(f"WindowSet.{name} must have shape ({n},), got {arr.shape}")
            setattr(self, name, arr)

    def __len__(self) -> int:
        return len(self.data)

    @property
    def length(self) -> int:
        return int(self.data.shape[1])

    @property
    def num_joints(self) -> int:
        return int(self.data.shape[2])

    @property
    def dims(self) -> int:
        return int(self.data.shape[3])

    @property
    def walk_person(self) -> np.ndarray:
        out = np.full(len(self.walks), -1, dtype=np.int64)
        out[self.walk] = self.label
        return out

    def subset(self, walk_ids: list[str] | set[str]) -> "WindowSet":
        """The windows of the named walks (kept in this set's order).

        Person indices are kept, so labels stay comparable across subsets.
        """
        wanted = set(walk_ids)
        unknown = wanted - set(self.walks)
        if unknown:
            raise ConfigError(f"split names walks that the data does not have: {sorted(unknown)[:5]}")
        keep_walk = np.array([w in wanted for w in self.walks], dtype=bool)
        mask = keep_walk[self.walk] if len(self.walks) else np.zeros(len(self), bool)
        return WindowSet(self.data[mask], self.label[mask], self.walk[mask], self.position[mask],
                         list(self.persons), list(self.walks), self.layout)

    def take(self, index: np.ndarray) -> "WindowSet":
        """The windows at ``index`` (repeats allowed), with the same persons and walks lists."""
        index = np.asarray(index, dtype=np.int64)
        return WindowSet(self.data[index], self.label[index], self.walk[index], self.position[index],
                         list(self.persons), list(self.walks), self.layout)

    def next_in_walk(self) -> np.ndarray:
        """Index of the next window of the same walk; the last window maps to itself."""
        idx = np.arange(len(self))
        nxt = np.minimum(idx + 1, len(self) - 1)
        same = (self.walk[nxt] == self.walk) & (self.position[nxt] == self.position + 1)
        return np.where(same, nxt, idx)


def clip_ends(frames: np.ndarray, clip: int) -> np.ndarray:
    """Drop ``clip`` frames at each end."""
    if clip < 0:
        raise ConfigError(f"clip must be >= 0, got {clip}")
    return frames[clip: len(frames) - clip] if clip else frames


def cut_windows(frames: np.ndarray, length: int) -> np.ndarray:
    """Consecutive non-overlapping windows ``[n, length, J, D]``; the remainder is dropped."""
    if length < 2:
        raise ConfigError(f"window length must be >= 2, got {length}")
    n = len(frames) // length
    return frames[: n * length].reshape(n, length, *frames.shape[1:])


def root_relative(frames: np.ndarray, root: int = 0) -> np.ndarray:
    """Subtract joint ``root``'s coordinates from every joint, per frame."""
    return frames - frames[..., root: root + 1, :]


def make_windows(
    sequences: list[Sequence],
    length: int,
    clip: int = 10,
    normalise: str = "none",
    root: int = 0,
) -> WindowSet:
    """Window every walk; persons are labelled by their rank in sorted order.

    ``normalise`` is ``"none"`` (the reference default for Kinect data) or
    ``"root"`` (joint-``root``-relative, the CASIA-B default).
    """
    from .records import natural_key

    if normalise not in ("none", "root"):
        raise ConfigError(f"unknown normalisation {normalise!r}; valid: none, root")
    if not sequences:
        raise ConfigError("no walks to window")
    shapes = {s.frames.shape[1:] for s in sequences}
    if len(shapes) > 1:
        raise DataError(sequences[0].source or "dataset", f"walks have different joint layouts: {sorted(shapes)}")
    persons = sorted({s.person for s in sequences}, key=natural_key)
    pindex = {p: i for i, p in enumerate(persons)}
    ordered = sorted(sequences, key=lambda s: (natural_key(s.person), natural_key(s.walk)))
    longest = max(s.num_frames for s in sequences)
    if longest - 2 * clip < length:
        raise ConfigError(
            f"window length {length} with clip {clip} leaves no window: the longest walk has {longest} frames"
        )
    chunks, labels, walks, positions, walk_ids = [], [], [], [], []
    for s in ordered:
        frames = clip_ends(s.frames, clip)
        if normalise == "root":
            frames = root_relative(frames, root)
        win = cut_windows(frames, length)
        if len(win) == 0:
            raise DataError(s.source or s.walk_id,
                            f"walk {s.walk_id} has {s.num_frames} frames: fewer than one window of {length} "
                            f"after dropping {clip} at each end")
        w = len(walk_ids)
        walk_ids.append(s.walk_id)
        chunks.append(win)
        labels.append(np.full(len(win), pindex[s.person]))
        walks.append(np.full(len(win), w))
        positions.append(np.arange(len(win)))
    data = np.concatenate(chunks).astype(np.float32, copy=False)
    layout = sequences[0].layout
    return WindowSet(data, np.concatenate(labels), np.concatenate(walks), np.concatenate(positions),
                     persons, walk_ids, layout)
