#!/usr/bin/env python
"""Benchmark: the encoder monitor's Rank-1 and cost against the windows it embeds per walk.

For a finished (or partly finished) run folder with milestones, loads the
encoders of every milestone (``encoders/epoch_<E>/``, and the final
``encoders/``) and scores the between-milestone monitor
(:class:`skelreid.training.monitor.WalkMonitor`, the same one ``--monitor-every``
uses) with each ``--windows`` count, timing each scoring (best of
``--repeats``; wall time of embedding + matching). Nothing is trained and the
run folder is only read.

Usage::

    python benchmarks/monitor_windows.py runs/kgbd_convergence_legacy --windows 8,16,32 \\
        --threads 2 --out docs/results/kgbd_monitor_windows.csv

The CSV has one row per (encoder epoch, windows): monitor Rank-1, the number of
windows embedded, and seconds.
"""
from __future__ import annotations

import argparse
import csv
import io
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from skelreid.config import from_dict  # noqa: E402
from skelreid.errors import SkelreidError  # noqa: E402
from skelreid.io import read_json, write_text  # noqa: E402
from skelreid.pipeline import encoder_specs, load_encoders, milestone_encoder_dir, prepare  # noqa: E402
from skelreid.training.monitor import WalkMonitor  # noqa: E402


def encoder_folders(run_dir: Path, cfg) -> list[tuple[int, Path]]:
    """(epoch, folder) of every milestone whose encoders exist, the final encoders last."""
    tag = encoder_specs(cfg)[0].tag
    found = [(e, milestone_encoder_dir(run_dir, e)) for e in cfg.milestones[:-1]]
    found.append((cfg.encoder.epochs, run_dir / "encoders"))
    return [(e, d) for e, d in found if (d / f"{tag}.json").exists()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--windows", default="8,16,32", help="comma-separated windows per walk (default 8,16,32)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    ap.add_argument("--repeats", type=int, default=2, help="timed scorings per point; the best is kept")
    ap.add_argument("--epochs", default=None, help="only these encoder epochs, comma-separated (default: all kept)")
    ap.add_argument("--out", type=Path, default=None, help="also write the rows as CSV")
    args = ap.parse_args(argv)
    try:
        counts = [int(w) for w in args.windows.split(",") if w.strip()]
        only = None if args.epochs is None else {int(e) for e in args.epochs.split(",") if e.strip()}
        if not counts or min(counts) < 1 or (only is not None and not only):
            raise ValueError
    except ValueError:
        print(f"monitor_windows: --windows {args.windows!r} / --epochs {args.epochs!r}: give positive integers, "
              "e.g. 8,16,32", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        cfg = from_dict(read_json(args.run_dir / "config.json"))
        p = prepare(cfg, args.run_dir / "split.json")
        folders = [(e, d) for e, d in encoder_folders(args.run_dir, cfg) if only is None or e in only]
        if not folders:
            raise SkelreidError(f"{args.run_dir}: no kept encoders of the epochs asked for yet")
    except SkelreidError as e:
        print(f"monitor_windows: {e}", file=sys.stderr)
        return 2
    device = torch.device("cpu")
    train = p.windows.subset(p.manifest["splits"]["train"])
    monitors = {w: WalkMonitor.build(train, p.splits.get("val"), per_walk=w, feature=cfg.retrieval.feature)
                for w in counts}
    rows = []
    for epoch, folder in folders:
        models = load_encoders(cfg, args.run_dir, device, folder=folder)
        model = models[encoder_specs(cfg)[0].tag]
        for w, mon in monitors.items():
            best, r1 = float("inf"), float("nan")
            for _ in range(max(1, args.repeats)):
                t0 = time.perf_counter()
                r1 = mon.rank1(model, device)
                best = min(best, time.perf_counter() - t0)
            rows.append({"encoder_epoch": epoch, "windows_per_walk": w, "windows": len(mon.windows),
                         "monitor_rank1": round(r1, 6), "seconds": round(best, 2), "rule": mon.rule})
            print(f"epoch {epoch:>4}  {w:>3} windows/walk ({len(mon.windows):>6} windows)  "
                  f"Rank-1 {100 * r1:5.1f}  {best:6.2f} s", flush=True)
    if args.out:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        write_text(args.out, buf.getvalue())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
