"""Issue 19: rescore trained probe/gallery encoders under both units and both window features.

    PYTHONPATH=. python benchmarks/pg_units_kgbd.py RUN_DIR --epochs 1,2,3 --features ap,sc --out scores.json

RUN_DIR is a probe/gallery run folder (``skelreid train-encoder ... --protocol probe_gallery
[--milestones ...]``). For every encoder epoch asked for (a milestone's ``encoders/epoch_<E>/``, or the
final ``encoders/``), the probe and gallery windows are embedded once and scored per subsequence
(each window, the literature's protocol) and per walk (mean of windows) with each window feature.
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from skelreid.config import from_dict
from skelreid.evaluation.units import score_unit, walk_means
from skelreid.features import window_vectors
from skelreid.io import read_json
from skelreid.pipeline import apply_cpu_settings, contexts, load_encoders, milestone_encoder_dir, prepare


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run_dir")
    ap.add_argument("--epochs", required=True, help="encoder epochs, e.g. 1,2,3 (the last = the final encoders)")
    ap.add_argument("--features", default="ap,sc")
    ap.add_argument("--units", default="sequence,walk")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    run_dir = Path(a.run_dir)
    cfg = from_dict(read_json(run_dir / "config.json"))
    cfg.progress = False
    apply_cpu_settings(cfg)
    p = prepare(cfg, run_dir / "split.json")
    device = torch.device("cpu")
    out = {"run_dir": str(run_dir), "split_seed": cfg.data.split_seed, "seed": cfg.seed,
           "encoder_epochs": cfg.encoder.epochs, "threads": torch.get_num_threads(), "machine": platform.node(),
           "processor": platform.processor(), "rows": []}
    probe, gallery = p.splits["probe"], p.splits["gallery"]
    for epoch in [int(e) for e in a.epochs.split(",")]:
        folder = run_dir / "encoders" if epoch == cfg.encoder.epochs else milestone_encoder_dir(run_dir, epoch)
        models = load_encoders(cfg, run_dir, device, folder=folder)
        t0 = time.perf_counter()
        ctx = {n: contexts(cfg, models, p.splits[n], device, training=False) for n in ("probe", "gallery")}
        embed_s = time.perf_counter() - t0
        for feat in a.features.split(","):
            q, g = window_vectors(ctx["probe"], feat), window_vectors(ctx["gallery"], feat)
            for unit in a.units.split(","):
                t1 = time.perf_counter()
                if unit == "sequence":
                    r = score_unit(q, probe.label, g, gallery.label, probe.walk, gallery.walk)
                else:
                    qm, qw = walk_means(q, probe.walk)
                    gm, gw = walk_means(g, gallery.walk)
                    r = score_unit(qm, probe.walk_person[qw], gm, gallery.walk_person[gw], qw, gw)
                r.pop("cmc")
                row = {"epoch": epoch, "feature": feat, "unit": unit, **r, "score_s": time.perf_counter() - t1,
                       "embed_s": embed_s}
                out["rows"].append(row)
                print(json.dumps(row), flush=True)
                Path(a.out).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
