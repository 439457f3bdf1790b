"""The in-memory record every reader produces: one walk (sequence) of one person."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Sequence:
    """One continuous recording of one person.

    ``frames`` is ``[T, J, D]`` float32 (T frames, J joints, D = 2 or 3 dims).
    ``walk`` identifies the recording within the person; ``walk_id`` is unique
    within a dataset and is what split manifests list.
    """

    person: str
    walk: str
    frames: np.ndarray
    layout: str
    view: str | None = None
    condition: str | None = None
    source: str = ""
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.frames = np.ascontiguousarray(self.frames, dtype=np.float32)
        if self.frames.ndim != 3 or self.frames.shape[2] not in (2, 3):
            raise ValueError(
                f"{self.source or self.walk_id}: frames must be [T, J, 2|3], got {self.frames.shape}"
            )

    @property
    def walk_id(self) -> str:
        return f"{self.person}/{self.walk}"

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def num_joints(self) -> int:
        return int(self.frames.shape[1])

    @property
    def dims(self) -> int:
        return int(self.frames.shape[2])


def walks_by_person(sequences: list[Sequence]) -> dict[str, list[str]]:
    """``{person: [walk_id, ...]}`` with persons and walks in sorted order."""
    out: dict[str, list[str]] = {}
    for s in sequences:
        out.setdefault(s.person, []).append(s.walk_id)
    return {p: sorted(out[p], key=_natural_key) for p in sorted(out, key=_natural_key)}


def _natural_key(text: str) -> list:
    import re

    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


natural_key = _natural_key
