#!/usr/bin/env python
"""Speed of ``skelreid extract`` per stage, multi-person and single-person, on the real street clip.

1. **Multi-person**: the first ``--frames`` frames of ``vtest.avi`` (up to 7 walkers at once).
2. **Single-person**: the longest walk found in (1), cut out onto the street's empty scene at the
   video's full size (:mod:`skelreid.video.clips`): one walker on a fixed camera, the same pixels.

Each is a plain ``skelreid extract`` run; the stage split (read, detect, pose, track, write) comes
from the extraction record. Reading and detection run in a thread of their own, ahead of the pose,
so their busy times overlap the pose's and the stages add up to more than the wall time. The
multi-person run is repeated with ``--pose-threads 1`` (the people of a frame posed one after the
other) to show what posing them side by side gains, and the single-person run with ``--followers 1``
(one tracking-mode estimator sees every frame) to show what two followers in turn gain. Run it on an idle machine: the figures are
wall-clock times.

Usage::

    python benchmarks/video_speed.py [--video PATH] [--frames 200] [--out runs/video_speed]
                                     [--json docs/video_speed.json]
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from skelreid.cli import main  # noqa: E402
from skelreid.io import read_json, write_json  # noqa: E402


def _extract(video: Path, out: Path, *extra: str) -> dict:
    if out.exists():
        shutil.rmtree(out)
    assert main(["extract", str(video), "--out", str(out), "--no-progress", *extra]) == 0
    s = read_json(next((out / ".extract").rglob("*.json")))["summary"]
    frames = max(s["frames"], 1)
    return {"frames": s["frames"], "seconds": s["seconds"], "frames_per_second": s["frames_per_second"],
            "person_frames": s["person_frames"], "people_per_frame": round(s["person_frames"] / frames, 2),
            "tracks": s["tracks"], "walks": len(s["walks"]), "walk_frames": s["walk_frames"],
            "ms_per_frame": {k: round(1000 * v / frames, 2) for k, v in s["stage_seconds"].items()}}


def main_(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--video", default=str(REPO.parent / "shared" / "datasets" / "video" / "vtest.avi"))
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--out", default="runs/video_speed")
    ap.add_argument("--json", default="docs/video_speed.json")
    ap.add_argument("--note", default="", help="what else ran on the machine (recorded with the figures)")
    args = ap.parse_args(argv)
    from skelreid.video.clips import walker_clip, write_clip
    from skelreid.video.extract import _background
    from skelreid.video.source import iter_frames, open_video

    video, out = Path(args.video), Path(args.out)
    from skelreid.video.pose import default_pose_threads

    multi = _extract(video, out / "multi", "--frames", str(args.frames))
    multi_one = _extract(video, out / "multi_one_thread", "--frames", str(args.frames), "--pose-threads", "1")
    longest = max((out / "multi").rglob("*.npz"), key=lambda p: len(np.load(p)["frame_index"]))
    z = np.load(longest)
    cap, info = open_video(video)
    cap.release()
    last = int(z["frame_index"][-1]) + 1
    frames = dict(iter_frames(video, 0, last))
    scene = _background(video, 0, None, info.frames)
    clip = write_clip(out / "single_walker.avi",
                      walker_clip(frames, scene, z["frame_index"], z["box"], size=(info.width, info.height),
                                  empty=0), fps=info.fps)
    single = _extract(clip, out / "single")
    single_one = _extract(clip, out / "single_one_follower", "--followers", "1")
    from skelreid.machine import cpu_summary

    result = {"machine": {**cpu_summary(), "note": args.note, "pose_threads": default_pose_threads()},
              "video": {"path": video.name, "width": info.width, "height": info.height, "fps": info.fps},
              "multi_person": multi,
              "multi_person_one_pose_thread": multi_one,
              "single_person": {**single, "source": f"{longest.relative_to(out / 'multi')} of the multi-person "
                                                    "run, alone on the empty scene"},
              "single_person_one_follower": single_one}
    write_json(args.json, result)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main_())
