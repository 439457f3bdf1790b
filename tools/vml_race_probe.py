"""Fork many children that each embed the same windows twice; print how many saw two different results.

Run as ``python tools/vml_race_probe.py CHILDREN`` (by tests/test_determinism.py). The parent imports
torch and skelreid but computes nothing, so every child makes the process's first parallel VML call
itself, as a fresh ``skelreid`` process does (``SKELREID_NO_VML_WARMUP=1`` in the environment turns
skelreid's warm-up off, to measure the race it removes). Prints one JSON line.
"""
from __future__ import annotations

import json
import os
import sys

import numpy as np
import torch  # noqa: F401  (imported before the fork; nothing computed yet)

from skelreid.models.seq2seq import GaitSeq2Seq
from skelreid.training.encoder import embed_windows

WINDOWS = 500


def child() -> int:
    torch.manual_seed(0)
    model = GaitSeq2Seq(num_axes=3, num_joints=20, length=6, hidden=64, layers=2, contrastive=False).eval()
    x = (0.3 * np.random.default_rng(0).standard_normal((WINDOWS, 6, 20, 3))).astype(np.float32)
    first = embed_windows(model, x, torch.device("cpu"))   # the process's first parallel tanh
    later = embed_windows(model, x, torch.device("cpu"))
    return 0 if np.array_equal(first, later) else 1


def main(children: int) -> None:
    mismatches, failed = 0, 0
    for _ in range(children):
        pid = os.fork()
        if pid == 0:
            code = 2
            try:
                code = child()
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        mismatches += code == 1
        failed += code not in (0, 1)
    print(json.dumps({"children": children, "mismatches": mismatches, "failed": failed,
                      "warm_up": os.environ.get("SKELREID_NO_VML_WARMUP") != "1", "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main(int(sys.argv[1]))
