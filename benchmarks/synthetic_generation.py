#!/usr/bin/env python
"""Benchmark: generate the synthetic walkers (20 persons x 5 walks x 200 frames), best of 5.

Usage: ``python benchmarks/synthetic_generation.py`` (prints seconds; 0.07 s measured on the 2-core
development machine, idle, see docs/performance.md).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from skelreid.data.synthetic import generate_dataset  # noqa: E402


def main() -> None:
    generate_dataset(2, 1)  # warm-up
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        generate_dataset(num_persons=20, walks_per_person=5, frames=(200, 200))
        best = min(best, time.perf_counter() - t0)
    print(f"synthetic walkers, 20 x 5 x 200 frames: {best:.3f} s (best of 5)")


if __name__ == "__main__":
    main()
