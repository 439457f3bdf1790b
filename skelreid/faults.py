"""Named kill points for fault-injection tests (a test-only hook; a no-op unless asked for).

``SKELREID_KILL_AT=NAME:K`` in the environment makes the process SIGKILL itself
the K-th time it reaches the point ``NAME`` (several as ``NAME:K,NAME2:K2``; the
first reached wins). Points:

``encoder.step``     after an encoder optimizer step
``rn.step``          after a recognition-network optimizer step
``resume.save``      after a resume checkpoint is completely written (any stage)
``features.batch``   after one batch of context vectors (feature extraction)
``milestone.done``   after a milestone's row is written
``report.file``      after one report file (``results.json``, ``results.md``, a plot) is written

Unlike a timer, a kill point lands at the same step of the computation on
every run, whatever the machine's load (``tests/test_fault_injection.py``).
"""
from __future__ import annotations

import os
import signal

ENV = "SKELREID_KILL_AT"
POINTS = ("encoder.step", "rn.step", "resume.save", "features.batch", "milestone.done", "report.file")


def _parse(text: str) -> dict[str, int]:
    plan: dict[str, int] = {}
    for item in filter(None, (t.strip() for t in text.split(","))):
        name, _, k = item.partition(":")
        if name not in POINTS or not k.isdigit() or int(k) < 1:
            raise ValueError(f"{ENV}={text!r}: expected NAME:K with NAME one of {', '.join(POINTS)} and K >= 1")
        plan[name] = int(k)
    return plan


_PLAN = _parse(os.environ.get(ENV, ""))
_SEEN: dict[str, int] = {}


def point(name: str) -> None:
    """Count one pass through kill point ``name``; SIGKILL this process on the planned pass."""
    if not _PLAN or name not in _PLAN:
        return
    _SEEN[name] = _SEEN.get(name, 0) + 1
    if _SEEN[name] == _PLAN[name]:
        os.kill(os.getpid(), signal.SIGKILL)
