#!/usr/bin/env python
"""Benchmark: parse the full real KGBD dataset with skelreid's reader.

Unpacks the archive into a temporary folder, then times three reads:

1. cold: parse every file, no cache;
2. cold + cache write: parse every file and write the ``.npz`` parse cache;
3. cached: the same call again, answered from the cache.

Usage::

    python benchmarks/parse_kgbd.py [--archive PATH] [--workers N] [--json OUT]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from skelreid.data.archive import extract_archive  # noqa: E402
from skelreid.data.readers.kgbd import find_kgbd_files, read_kgbd  # noqa: E402
from skelreid.errors import SkelreidError  # noqa: E402
from skelreid.io import write_json  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--archive", type=Path,
        default=REPO.parent / "shared" / "datasets" / "kgbd" / "KinectGait.tar.xz",
        help="KGBD archive (default: ../shared/datasets/kgbd/KinectGait.tar.xz from the repository root)",
    )
    parser.add_argument("--workers", type=int, default=None, help="parser processes (default: all CPUs)")
    parser.add_argument("--json", type=Path, default=None, metavar="OUT", help="also write the results as JSON")
    args = parser.parse_args(argv)

    try:
        with tempfile.TemporaryDirectory(prefix="skelreid-bench-") as tmp:
            tmp = Path(tmp)
            t0 = time.perf_counter()
            extract_archive(args.archive, tmp / "kgbd")
            unpack_s = time.perf_counter() - t0
            data = tmp / "kgbd" / "Data"
            _, files = find_kgbd_files(data)
            total_mb = sum(f.stat().st_size for _, _, f in files) / 1e6
            cache = tmp / "cache"

            runs = []
            for name, kwargs in (
                ("cold", {}),
                ("cold+cache write", {"cache_dir": cache}),
                ("cached", {"cache_dir": cache}),
            ):
                t0 = time.perf_counter()
                seqs = read_kgbd(data, workers=args.workers, **kwargs)
                seconds = time.perf_counter() - t0
                runs.append({
                    "run": name,
                    "persons": len({s.person for s in seqs}),
                    "walks": len(seqs),
                    "frames": sum(s.num_frames for s in seqs),
                    "seconds": round(seconds, 3),
                    "mb_per_s": round(total_mb / seconds, 1),
                })
                del seqs
    except SkelreidError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    workers = args.workers or os.cpu_count()
    print(f"KGBD: {len(files)} files, {total_mb:.1f} MB of text; unpack {unpack_s:.1f} s; "
          f"workers {workers} (cpus {os.cpu_count()})")
    header = f"{'run':<18} {'persons':>7} {'walks':>6} {'frames':>8} {'seconds':>8} {'MB/s':>8}"
    print(header)
    print("-" * len(header))
    for r in runs:
        print(f"{r['run']:<18} {r['persons']:>7} {r['walks']:>6} {r['frames']:>8} "
              f"{r['seconds']:>8.2f} {r['mb_per_s']:>8.1f}")
    if args.json is not None:
        write_json(args.json, {
            "archive": str(args.archive),
            "files": len(files),
            "megabytes": round(total_mb, 1),
            "unpack_seconds": round(unpack_s, 2),
            "workers": workers,
            "cpus": os.cpu_count(),
            "runs": runs,
        })
    return 0


if __name__ == "__main__":
    sys.exit(main())
