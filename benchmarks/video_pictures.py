#!/usr/bin/env python
"""The pictures of docs/video.md: a contact sheet of tracks drawn over the street clip, and a 3D
view of one track's stride (its world landmarks, a few frames apart).

Usage::

    python benchmarks/video_pictures.py --walks runs/video/vtest_walks --out docs/video
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from skelreid.data.layouts import MEDIAPIPE_33_BONES  # noqa: E402


def stride_3d(walk: Path, out: Path, poses: int = 6) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    z = np.load(walk, allow_pickle=False)
    w = z["frames"]                               # [T, 33, 3] metres, y down
    fps = float(z["fps"])
    # One stride: about 1.1 s at walking cadence; poses spread over it, shifted along x for legibility.
    span = min(len(w) - 1, int(round(1.1 * fps)))
    picks = np.linspace(0, span, poses).round().astype(int)
    fig = plt.figure(figsize=(8, 3.2), dpi=100)
    ax = fig.add_subplot(111, projection="3d")
    cmap = plt.get_cmap("viridis")
    for k, t in enumerate(picks):
        p = w[t].copy()
        p[:, 0] += 0.6 * k
        c = cmap(k / max(poses - 1, 1))
        for a, b in MEDIAPIPE_33_BONES:
            ax.plot([p[a, 0], p[b, 0]], [p[a, 2], p[b, 2]], [-p[a, 1], -p[b, 1]], color=c, lw=1.6)
        ax.text(p[0, 0], p[0, 2], -p[0, 1] + 0.15, f"{int(z['frame_index'][t])}", fontsize=7, color=c)
    ax.set_xlabel("x (m, poses shifted 0.6 m apart)", fontsize=7)
    ax.set_ylabel("z (m)", fontsize=7)
    ax.set_zlabel("up (m)", fontsize=7)
    ax.tick_params(labelsize=6)
    ax.view_init(elev=12, azim=-75)
    ax.set_box_aspect((0.6 * poses + 0.5, 0.8, 1.9), zoom=1.25)
    ax.set_title(f"{z['person']}: world landmarks over one stride (frame numbers above the heads)", fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--walks", default="runs/video/vtest_walks")
    ap.add_argument("--sheet", default="runs/video/vtest_sheet.png", help="the contact sheet extract wrote")
    ap.add_argument("--track", help="walk file name stem to draw in 3D (default: the one crossing the view most)")
    ap.add_argument("--out", default="docs/video")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    walks = sorted(Path(args.walks).rglob("*.npz"))
    if args.track:
        walk = next(w for w in walks if w.stem == args.track)
    else:
        def travel(w):  # a walker crossing the view (side-on) shows the stride best
            b = np.load(w, allow_pickle=False)["box"]
            return abs(float(b[-1, 0] - b[0, 0])) / len(b) * min(len(b), 40)

        walk = max(walks, key=travel)
    print(stride_3d(walk, out / "stride_3d.png"))
    if Path(args.sheet).exists():
        from PIL import Image

        img = Image.open(args.sheet).convert("RGB")
        img = img.resize((900, round(img.height * 900 / img.width)), Image.LANCZOS)
        img.quantize(colors=256, method=Image.Quantize.MAXCOVERAGE, dither=Image.Dither.NONE).save(out / "tracks_sheet.png", optimize=True)
        print(out / "tracks_sheet.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
