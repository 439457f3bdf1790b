#!/usr/bin/env python
"""Are the inference API's features the pipeline's? (skelreid/inference.py promises: bit for bit.)

Trains a small run (synthetic walks, one encoder epoch: the weights only need to be some trained weights)
or takes a finished one (``--run``), then embeds every window of the run's data twice: the way the
pipeline's evaluation does (:func:`skelreid.encoders.contexts` over a whole split, the window feature of
``retrieval.feature``) and the way ``skelreid.load(run).encode`` does. The data holds more windows than
one encoder batch (:data:`skelreid.training.encoder.EMBED_BATCH`), so on CUDA the padded last batch is
exercised. Writes JSON: bit-for-bit equality and the largest differences, per split and for all windows.

    python benchmarks/feature_equality.py --device cuda --out feature_equality.json [--run RUN_DIR]

Exit status 1 when some features differ beyond float32 rounding (relative 1e-5, the documented tolerance
for other batchings), 0 otherwise (``bit_equal`` says whether they are identical).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import skelreid  # noqa: E402
from skelreid.config import build_config, from_dict  # noqa: E402
from skelreid.device import resolve_device  # noqa: E402
from skelreid.encoders import contexts, load_encoders  # noqa: E402
from skelreid.features import window_vectors  # noqa: E402
from skelreid.io import read_json  # noqa: E402

TOLERANCE = 1e-5


def small_run(folder: Path, device: str, persons: int, hidden: int) -> Path:
    from skelreid.pipeline import run

    cfg = build_config("synthetic", [{
        "data": {"protocol": "probe_gallery",
                 "synthetic": {"num_persons": persons, "walks_per_person": 4, "frames": [300, 400], "seed": 0,
                               "noise": 0.01}},
        "encoder": {"epochs": 1, "hidden": hidden, "proj_dim": hidden, "batch_size": 128},
        "device": device, "progress": False}])
    run(cfg, folder, stages=("encoder",))
    return folder


def compare(a: np.ndarray, b: np.ndarray) -> dict:
    diff = np.abs(a.astype(np.float64) - b.astype(np.float64))
    scale = np.maximum(np.abs(a.astype(np.float64)), 1e-12)
    return {"windows": int(len(a)), "bit_equal": bool(a.shape == b.shape and np.array_equal(a, b)),
            "max_abs_diff": float(diff.max()) if diff.size else 0.0,
            "max_rel_diff": float((diff / scale).max()) if diff.size else 0.0}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--run", type=Path, help="a finished run folder (default: train a small one)")
    ap.add_argument("--persons", type=int, default=12, help="synthetic persons of the small run")
    ap.add_argument("--hidden", type=int, default=256, help="encoder width of the small run")
    ap.add_argument("--embed-batch", type=int, help="encoder batch of both paths (default: EMBED_BATCH; the dry "
                                                     "run uses a small one to cover the padded batch quickly)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    if args.embed_batch:
        from skelreid.training import encoder

        encoder.EMBED_BATCH = int(args.embed_batch)
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = args.run or small_run(Path(tmp) / "run", args.device, args.persons, args.hidden)
        from skelreid.pipeline import prepare

        cfg = from_dict(read_json(run_dir / "config.json"))
        cfg.device, cfg.progress = args.device, False
        device = resolve_device(args.device)
        p = prepare(cfg, run_dir / "split.json")
        models = load_encoders(cfg, run_dir, device)
        model = skelreid.load(run_dir, device=args.device)
        from skelreid.training.encoder import EMBED_BATCH

        report: dict = {"device": str(device), "embed_batch": EMBED_BATCH, "run": str(args.run or "small synthetic"),
                        "splits": {}}
        for name, ws in {"all": p.windows, **p.splits}.items():
            pipeline = window_vectors(contexts(cfg, models, ws, device, training=False), cfg.retrieval.feature)
            api = model.encode(ws.data, progress=False)
            report["splits"][name] = compare(pipeline, api)
    rows = list(report["splits"].values())
    padded = any(r["windows"] > report["embed_batch"] and r["windows"] % report["embed_batch"] for r in rows)
    report.update(bit_equal=all(r["bit_equal"] for r in rows), max_rel_diff=max(r["max_rel_diff"] for r in rows),
                  tolerance=TOLERANCE, padded_last_batch=padded,
                  seconds=round(time.perf_counter() - t0, 1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, sort_keys=True))
    print(json.dumps({k: v for k, v in report.items() if k != "splits"}))
    return 0 if report["max_rel_diff"] <= TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main())
