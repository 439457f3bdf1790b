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


#: Joints whose mean is a walk's centre under ``normalise: body``: the hip centre of each named
#: layout (the mean of the two hips where there is no hip-centre joint). Unnamed layouts use the
#: mean of all joints.
BODY_CENTRE = {"kinect_v1": (0,), "kinect_v2": (0,), "casia_b_14": (8, 11), "coco_17": (11, 12)}

NORMALISATIONS = ("none", "root", "body", "body_walk")


def centre_on_hips(frames: np.ndarray, layout: str) -> np.ndarray:
    """Every frame minus its hip centre (:data:`BODY_CENTRE`; the mean of all joints for unnamed layouts)."""
    frames = np.asarray(frames, dtype=np.float64)
    idx = list(BODY_CENTRE.get(layout) or range(frames.shape[1]))
    return frames - frames[:, idx].mean(axis=1, keepdims=True)


def body_size(frames: np.ndarray, layout: str) -> float:
    """A walk's body size: the median over frames of the RMS distance of the joints from the hip centre
    (in the data's own unit: metres, millimetres, pixels). NaN for a walk without frames."""
    if len(frames) == 0:
        return float("nan")
    centred = centre_on_hips(frames, layout)
    return float(np.median(np.sqrt((centred ** 2).sum(axis=2).mean(axis=1))))


def dataset_body_scale(sequences: list[Sequence], clip: int = 0) -> float:
    """The median body size of ``sequences`` (each clipped as for windowing): one scale for a dataset."""
    sizes = [body_size(clip_ends(s.frames, clip), s.layout) for s in sequences]
    sizes = [v for v in sizes if np.isfinite(v) and v > 0]
    if not sizes:
        raise ConfigError("data.normalise=body: no walk has a measurable body size (every joint at one point)")
    return float(np.median(sizes))


def body_normalise(frames: np.ndarray, layout: str, scale: float | None = None) -> np.ndarray:
    """Hip-centred per frame, divided by ``scale`` (``None``: this walk's own :func:`body_size`).

    With one scale for the whole dataset (``normalise: body``) any recording, 2D pixels or 3D metres,
    comes out with values of order one and people keep their relative sizes, a cue of identity; with
    each walk's own scale (``normalise: body_walk``) size is removed too, which suits 2D video whose
    subjects stand at different distances from the camera."""
    centred = centre_on_hips(frames, layout)
    size = body_size(frames, layout) if scale is None else float(scale)
    return (centred / size if size > 0 and np.isfinite(size) else centred).astype(np.float32)


def normalise_walk(frames: np.ndarray, how: str, layout: str, root: int = 0, scale: float | None = None
                   ) -> np.ndarray:
    """One walk's frames under a ``data.normalise`` mode (see :func:`make_windows`)."""
    if how == "root":
        return root_relative(frames, root)
    if how == "body":
        if scale is None:
            raise ConfigError("data.normalise=body needs the dataset's body scale (see dataset_body_scale)")
        return body_normalise(frames, layout, scale)
    if how == "body_walk":
        return body_normalise(frames, layout, None)
    return frames


def describe_normalisation(how: str, scale: float | None = None) -> str:
    """One line for the reports."""
    unit = f" ({scale:.4g} in the data's unit, from the encoders' training walks)" if scale else ""
    return {"none": "raw coordinates (no normalisation, the reference's choice for Kinect data)",
            "root": "joint-0-relative coordinates per frame (the reference's choice for CASIA-B)",
            "body": "centred on the hip centre per frame and divided by the dataset's median body size"
                    f"{unit}",
            "body_walk": "centred on the hip centre per frame and divided by each walk's own body size "
                         "(median RMS joint distance from the centre)"}.get(how, how)


def too_short(seq: Sequence, length: int, clip: int) -> bool:
    """Fewer than one window of ``length`` frames once ``clip`` are dropped at each end."""
    return seq.num_frames - 2 * clip < length


def short_walk_error(seq: Sequence, length: int, clip: int) -> DataError:
    reason = f" ({seq.meta['empty_reason']})" if seq.meta.get("empty_reason") else ""
    return DataError(seq.source or seq.walk_id,
                     f"walk {seq.walk_id} has {seq.num_frames} frames{reason}: fewer than one window of {length} "
                     f"after dropping {clip} at each end (--short-walks skip leaves such walks out)")


def make_windows(
    sequences: list[Sequence],
    length: int,
    clip: int = 10,
    normalise: str = "none",
    root: int = 0,
    scale: float | None = None,
) -> WindowSet:
    """Window every walk; persons are labelled by their rank in sorted order.

    ``normalise`` is ``"none"`` (the reference default for Kinect data), ``"root"``
    (joint-``root``-relative, the CASIA-B default), ``"body"`` (hip-centred and
    divided by the dataset's body ``scale``, the default of the generic format) or
    ``"body_walk"`` (each walk by its own size): see :func:`body_normalise`. With
    ``"body"`` and no ``scale``, the scale of these ``sequences`` is used.
    A walk too short for one window is an error here:
    :func:`skelreid.data.filtering.exclude_unusable` leaves such walks out first.
    """
    from .records import natural_key

    if normalise not in NORMALISATIONS:
        raise ConfigError(f"unknown normalisation {normalise!r}; valid: {', '.join(NORMALISATIONS)}")
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
    if normalise == "body" and scale is None:
        scale = dataset_body_scale(sequences, clip)
    chunks, labels, walks, positions, walk_ids = [], [], [], [], []
    for s in ordered:
        if too_short(s, length, clip):
            raise short_walk_error(s, length, clip)
        frames = normalise_walk(clip_ends(s.frames, clip), normalise, s.layout, root, scale)
        win = cut_windows(frames, length)
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
