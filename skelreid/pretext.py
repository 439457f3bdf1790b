"""Pretext tasks: what the encoder sees and what the decoder must reconstruct.

Each task maps a window set (walk-ordered windows ``[N, f, J, D]``) to
``(inputs, targets)`` of the same shape. The registry lists the valid names.

- ``rev_rec``: reconstruct the window in reverse time order (the default).
- ``prediction``: reconstruct the next window of the same walk; the last window
  of a walk targets itself (windows never pair across walks).
- ``sorting``: restore the original order from frame-shuffled input; one random
  permutation per window, drawn once from the seed.
- ``rev_rec_plus``: not a single task; it trains ``rev_rec`` (LA), ``prediction``
  (BA) and ``sorting`` (BA) models and concatenates their features (see
  :data:`PLUS_MEMBERS`).

With ``--attention LA`` every task trains towards the same anti-diagonal attention target
(:func:`skelreid.training.encoder.attention_target`), as the reference does (spec §2.4),
although only ``rev_rec``'s targets are reversed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .data.windows import WindowSet
from .registry import Registry


@dataclass(frozen=True)
class PretextTask:
    name: str
    make: Callable[[WindowSet, int], tuple[np.ndarray, np.ndarray]]


TASKS: Registry[PretextTask] = Registry("pretext task")


def _rev_rec(ws: WindowSet, seed: int) -> tuple[np.ndarray, np.ndarray]:
    return ws.data, np.ascontiguousarray(ws.data[:, ::-1])


def _prediction(ws: WindowSet, seed: int) -> tuple[np.ndarray, np.ndarray]:
    return ws.data, ws.data[ws.next_in_walk()]


def _sorting(ws: WindowSet, seed: int) -> tuple[np.ndarray, np.ndarray]:
    return shuffle_frames(ws.data, seed), ws.data


def shuffle_frames(data: np.ndarray, seed: int) -> np.ndarray:
    """Each window's frames in its own random order (drawn once from ``seed``)."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x5027]))
    perms = np.argsort(rng.random((len(data), data.shape[1])), axis=1)
    return np.take_along_axis(data, perms[:, :, None, None], axis=1)


_TASKS = (PretextTask("rev_rec", _rev_rec), PretextTask("prediction", _prediction), PretextTask("sorting", _sorting))
for _task in _TASKS:
    TASKS.add(_task.name, _task)

#: Models trained by ``rev_rec_plus``: (task, attention), features concatenated in this order.
PLUS_MEMBERS: tuple[tuple[str, str], ...] = (("rev_rec", "LA"), ("prediction", "BA"), ("sorting", "BA"))
#: The ``--model`` choices: every pretext task (in the order above), then their combination.
MODELS: tuple[str, ...] = (*(t.name for t in _TASKS), "rev_rec_plus")


def members(model: str, attention: str) -> list[tuple[str, str]]:
    """The (task, attention) encoder sets a ``--model`` choice trains."""
    if model == "rev_rec_plus":
        return list(PLUS_MEMBERS)
    TASKS.get(model)  # raises with the valid names
    return [(model, attention)]
