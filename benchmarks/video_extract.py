#!/usr/bin/env python
"""Benchmark and end-to-end check of ``skelreid extract`` on the real street clip.

1. Speed: ``skelreid extract`` over ``vtest.avi`` (or ``--frames N`` of it), background
   detector, one pose per person crop; frames/s and person-frames/s from the extraction record,
   plus the pose alone: milliseconds per person crop.
2. Re-identification: every track of at least ``2 x (length + 2 x clip)`` frames is cut into a
   first and a second half (each its own walk of the same person). Encoders are trained
   self-supervised (CAGE, no labels) on the thirds of the same tracks, the first halves are
   enrolled, the second halves identified; Rank-1 against chance (1 / enrolled persons).

Usage::

    python benchmarks/video_extract.py [--video PATH] [--frames N] [--epochs E] [--out runs/video]
                                       [--json docs/video_results.json]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from skelreid.cli import main  # noqa: E402
from skelreid.io import read_json, write_json  # noqa: E402

LENGTH, CLIP = 6, 2


def _cut(src: Path, parts: int, folder: Path, names: str) -> int:
    """Cut every walk under ``src`` long enough into ``parts`` equal pieces, written per person."""
    n = 0
    need = parts * (LENGTH + 2 * CLIP)
    for f in sorted(src.rglob("*.npz")):
        z = np.load(f, allow_pickle=False)
        frames = z["frames"]
        if len(frames) < need:
            continue
        person = str(z["person"])
        for k, piece in enumerate(np.array_split(frames, parts)):
            (folder / names[k] / person).mkdir(parents=True, exist_ok=True)
            np.savez(folder / names[k] / person / f"{names[k]}.npz", frames=piece, layout=str(z["layout"]))
        n += 1
    return n


def pose_ms_per_crop(video: Path, walks: Path, samples: int = 40) -> float:
    """The pose alone: time MediaPipe on ``samples`` person crops taken from the extracted boxes."""
    from skelreid.video.pose import PoseEstimator
    from skelreid.video.source import iter_frames

    boxes = {}
    for f in sorted(walks.rglob("*.npz")):
        z = np.load(f, allow_pickle=False)
        for fi, b in zip(z["frame_index"], z["box"]):
            boxes.setdefault(int(fi), []).append(tuple(int(v) for v in b))
    crops = []
    for fi, frame in iter_frames(video, 0, max(boxes) + 1 if boxes else 0):
        for b in boxes.get(fi, ()):
            crops.append((frame, b))
        if len(crops) >= samples:
            break
    with PoseEstimator() as est:
        est(*crops[0])  # warm-up
        t0 = time.perf_counter()
        for frame, b in crops:
            est(frame, b)
        return 1000 * (time.perf_counter() - t0) / len(crops)


def main_(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--video", default=str(REPO.parent / "shared" / "datasets" / "video" / "vtest.avi"))
    ap.add_argument("--frames", type=int)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--out", default="runs/video")
    ap.add_argument("--json", default="docs/video_results.json")
    args = ap.parse_args(argv)
    out, video = Path(args.out), Path(args.video)
    walks = out / "vtest_walks"
    cmd = ["extract", str(video), "--out", str(walks), "--no-progress", "--overlay", str(out / "vtest_overlay.mp4"),
           "--sheet", str(out / "vtest_sheet.png")]
    if args.frames:
        cmd += ["--frames", str(args.frames)]
    assert main(cmd) == 0
    record = read_json(next((walks / ".extract").glob("*.json")))
    s = record["summary"]
    result = {"machine": {"cpus": os.cpu_count(), "note": "2 cores shared with a long skelreid training run"},
              "extract": {k: s[k] for k in ("frames", "seconds", "frames_per_second", "person_frames",
                                           "person_frames_per_second", "tracks", "merged_boxes", "no_pose",
                                           "mostly_invisible", "off_box")},
              "walks": len(s["walks"]), "walk_frames": s["walk_frames"]}
    result["extract"]["people_per_frame"] = round(s["person_frames"] / max(s["frames"], 1), 2)
    result["pose_ms_per_crop"] = round(pose_ms_per_crop(video, walks), 1)

    e2e = out / "e2e"
    n3 = _cut(walks, 3, e2e / "thirds_tmp", "abc")
    # The thirds of each track as one person's three walks (the encoders' training data, no labels used).
    train = e2e / "train"
    for k in "abc":
        for p in sorted((e2e / "thirds_tmp" / k).iterdir()):
            (train / p.name).mkdir(parents=True, exist_ok=True)
            os.replace(p / f"{k}.npz", train / p.name / f"{k}.npz")
    n2 = _cut(walks, 2, e2e, "gp")
    run = e2e / "run"
    common = ["--set", f"data.clip={CLIP}", "--set", f"data.length={LENGTH}", "--no-progress"]
    t0 = time.perf_counter()
    assert main(["train-encoder", "--dataset", "generic", "--root", str(train), "--epochs", str(args.epochs),
                 "--out", str(run), *common[:-1], "--no-progress"]) == 0
    train_s = time.perf_counter() - t0
    gallery = e2e / "gallery.npz"
    if gallery.exists():
        gallery.unlink()
    assert main(["enrol", str(run), "--dataset", "generic", "--root", str(e2e / "g"), "--gallery", str(gallery),
                 "--no-progress"]) == 0
    ranks = e2e / "ranks.csv"
    assert main(["identify", str(run), "--dataset", "generic", "--root", str(e2e / "p"), "--gallery",
                 str(gallery), "--top-k", "5", "--out", str(ranks), "--no-progress"]) == 0
    import csv

    rows = list(csv.DictReader(open(ranks)))
    probes = {}
    for r in rows:
        probes.setdefault(r["probe"], (r["person"], []))[1].append(r["identity"])
    hits1 = sum(person == ids[0] for person, ids in probes.values())
    hits5 = sum(person in ids[:5] for person, ids in probes.values())
    n = max(len(probes), 1)
    result["reid"] = {"tracks_halved": n2, "tracks_in_thirds_for_training": n3, "encoder_epochs": args.epochs,
                      "train_seconds": round(train_s, 1), "probes": len(probes), "gallery_persons": n2,
                      "rank1": round(hits1 / n, 4), "rank5": round(hits5 / n, 4),
                      "chance_rank1": round(1 / max(n2, 1), 4), "chance_rank5": round(min(5 / max(n2, 1), 1), 4)}
    write_json(args.json, result)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main_())
