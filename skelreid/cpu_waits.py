"""How torch's CPU threads wait for each other: a short spin, then sleep.

PyTorch's CPU wheel runs its parallel kernels on GNU OpenMP (libgomp). Between two parallel
regions libgomp's threads busy-wait 300,000 spins before they sleep (its default when neither
``OMP_WAIT_POLICY`` nor ``GOMP_SPINCOUNT`` is set). On cores that nothing else uses, that makes
the next region start a little sooner. On cores that another process also uses, it is a cliff:
a thread that spins holds the core the other threads of its team need, every region waits for
the slowest thread, and each step gets many times slower. Measured on 2 cores
(``benchmarks/busy_cores.py``, ``docs/performance.md``): the encoder's training step at two
threads took 243 ms on idle cores, 1.8 s beside a process spinning a Python loop and 5.1 s
beside a one-thread torch training run.

skelreid therefore sets ``GOMP_SPINCOUNT`` to :data:`SPINCOUNT` when the package is imported,
before torch loads libgomp (libgomp reads its environment once, when it is loaded), unless the
user has chosen a wait policy (either variable set) or torch is already imported (then it is too
late for this process, and nothing is changed). With 3,000 spins the same step took 459 ms
beside the Python loop and 513 ms beside the training run (4 and 10 times faster), and 254 ms on
idle cores (5 % slower, within the spread of repeated runs). :func:`state` says what applies to
this process; every run records it.
"""
from __future__ import annotations

import os
import sys
from typing import MutableMapping

#: Spins of a waiting libgomp thread before it sleeps, skelreid's default.
SPINCOUNT = 3000
SPIN_ENV = "GOMP_SPINCOUNT"
POLICY_ENV = "OMP_WAIT_POLICY"

_state: dict = {}


def choose(environ: MutableMapping[str, str], torch_loaded: bool) -> dict:
    """Set :data:`SPIN_ENV` in ``environ`` where skelreid may, and say what applies.

    Returns ``{"GOMP_SPINCOUNT": value or None, "OMP_WAIT_POLICY": value or None,
    "set_by": "skelreid" | "user" | None, "torch_imported_first": bool}``. ``set_by`` is
    ``"user"`` when either variable was already set (it is left as it is) and ``None`` when
    torch was imported first and neither is set (libgomp's own default applies).
    """
    user = any(environ.get(k) not in (None, "") for k in (SPIN_ENV, POLICY_ENV))
    if user:
        set_by = "user"
    elif torch_loaded:
        set_by = None
    else:
        environ[SPIN_ENV] = str(SPINCOUNT)
        set_by = "skelreid"
    return {SPIN_ENV: environ.get(SPIN_ENV) or None, POLICY_ENV: environ.get(POLICY_ENV) or None,
            "set_by": set_by, "torch_imported_first": torch_loaded}


def apply() -> dict:
    """:func:`choose` on this process's environment, once (the package ``__init__`` calls it)."""
    if not _state:
        _state.update(choose(os.environ, "torch" in sys.modules))
    return dict(_state)


def state() -> dict:
    """What :func:`apply` found and did in this process (``{}`` before it ran)."""
    return dict(_state)
