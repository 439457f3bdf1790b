"""Non-finite joint coordinates (NaN, inf) in a walk: refuse, drop frames, or interpolate.

The readers apply the run's ``data.nan_policy`` (``--nan-policy``) to every walk:

``error`` (the default)
    refuse the file, naming it and (for text formats) the line.
``drop-frames``
    drop every frame that has a non-finite coordinate in any joint; a walk with
    no finite frame left is an error.
``interpolate``
    fill each non-finite value by linear interpolation over time, separately per
    joint and axis, between the nearest finite frames; values before the first
    (after the last) finite frame take that frame's value. A joint axis that is
    never finite in the walk is an error.

:func:`drop_frames` and :func:`interpolate` are pure functions of a ``[T, J, D]``
array; :func:`apply_nan_policy` wraps them with the user-facing errors.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..errors import ConfigError, DataError

POLICIES: tuple[str, ...] = ("error", "drop-frames", "interpolate")
#: Coordinates are stored as float32: a finite number beyond this is refused as too large.
F32_MAX = float(np.finfo(np.float32).max)
HINT = "use --nan-policy drop-frames or --nan-policy interpolate to accept such walks"
_AXES = "xyz"


class NeverFinite(ValueError):
    """A joint axis has no finite value in the whole walk: nothing to interpolate from."""

    def __init__(self, joint: int, axis: int):
        super().__init__(f"joint {joint} axis {axis} is never finite")
        self.joint = joint
        self.axis = axis


def check_policy(policy: str) -> str:
    if policy not in POLICIES:
        raise ConfigError(f"option data.nan_policy={policy!r} is not valid; choose one of: {', '.join(POLICIES)}")
    return policy


def first_non_finite(frames: np.ndarray) -> tuple[int, int, int] | None:
    """``(frame, joint, axis)`` of the first non-finite value in C order, or ``None``."""
    bad = ~np.isfinite(frames)
    if not bad.any():
        return None
    t, j, d = np.unravel_index(int(np.argmax(bad)), frames.shape)
    return int(t), int(j), int(d)


def drop_frames(frames: np.ndarray) -> np.ndarray:
    """The frames of ``[T, J, D]`` whose every coordinate is finite (order kept)."""
    frames = np.asarray(frames)
    return frames[np.isfinite(frames).all(axis=(1, 2))]


def interpolate(frames: np.ndarray) -> np.ndarray:
    """``[T, J, D]`` with every non-finite value linearly interpolated over time per joint and axis.

    Edges take the nearest finite value. Raises :class:`NeverFinite` for a joint
    axis without any finite value. Finite values are returned unchanged.
    """
    frames = np.asarray(frames)
    out = np.array(frames, dtype=np.result_type(frames.dtype, np.float32), copy=True)
    finite = np.isfinite(out)
    if finite.all():
        return out
    t = np.arange(out.shape[0], dtype=np.float64)
    for j, d in zip(*np.nonzero(~finite.all(axis=0))):
        ok = finite[:, j, d]
        if not ok.any():
            raise NeverFinite(int(j), int(d))
        out[:, j, d] = np.interp(t, t[ok], out[ok, j, d].astype(np.float64))
    return out


def apply_nan_policy(frames: np.ndarray, policy: str, source: str | Path,
                     joint_names: Sequence[str] | None = None,
                     line_of: Callable[[int, int], int | None] | None = None) -> tuple[np.ndarray, dict]:
    """Apply ``policy`` to one walk's ``[T, J, D]`` frames; returns ``(frames, meta)``.

    ``meta`` counts what was changed (``nan_frames_dropped`` /
    ``nan_values_interpolated``; empty when the walk was all finite). Errors are
    :class:`~skelreid.errors.DataError` naming ``source`` (and the line, when
    ``line_of(frame, joint)`` gives one).
    """
    check_policy(policy)
    first = first_non_finite(frames)
    if first is None:
        return frames, {}

    def joint(j: int) -> str:
        return joint_names[j] if joint_names is not None and j < len(joint_names) else f"joint {j}"

    t, j, d = first
    if policy == "error":
        line = line_of(t, j) if line_of is not None else None
        where = "" if line is not None else f" in frame {t}"
        raise DataError(source, f"non-finite coordinate {float(frames[t, j, d])!r}{where} for {joint(j)} {_AXES[d]}; "
                        f"{HINT}", line=line)
    if policy == "drop-frames":
        kept = drop_frames(frames)
        info = {"nan_frames_dropped": int(len(frames) - len(kept))}
        if len(kept) == 0:  # an empty walk: left out (and counted) like any walk too short for a window
            info["empty_reason"] = (f"every one of its {len(frames)} frames has a non-finite coordinate: "
                                    "nothing is left after --nan-policy drop-frames")
        return kept, info
    try:
        filled = interpolate(frames)
    except NeverFinite as exc:
        raise DataError(source, f"{joint(exc.joint)} {_AXES[exc.axis]} is never finite in this walk: "
                        "--nan-policy interpolate has nothing to interpolate from; "
                        "use --nan-policy drop-frames or fix the file") from None
    return filled, {"nan_values_interpolated": int((~np.isfinite(frames)).sum())}
