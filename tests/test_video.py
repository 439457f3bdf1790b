"""From video to walks: ``skelreid extract`` and ``identify --video`` (issue 20).

The real-clip tests read the first 30 frames of ``../shared/datasets/video/vtest.avi`` (a fixed
street camera, up to 7 walkers): one extraction per module, shared. The layout mapping, folder
labelling, tracker and error cases need no pose model (and the missing-extra error none of the
extra at all).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from skelreid.cli import main
from skelreid.data.layouts import (CASIA_B_14, LAYOUTS, MEDIAPIPE_33, MEDIAPIPE_33_BONES, MEDIAPIPE_33_HIPS,
                                   mediapipe_to_casia_b_14)

pytestmark = pytest.mark.slow   # end-to-end: `make test-fast` (pytest -m "not slow") leaves it out

REPO = Path(__file__).resolve().parents[1]
VTEST = REPO.parent / "shared" / "datasets" / "video" / "vtest.avi"
FRAMES = 30
MIN_FRAMES = 10


def _has_video_extra() -> bool:
    try:
        import cv2  # noqa: F401
        from mediapipe.python.solutions import pose  # noqa: F401
    except ImportError:
        return False
    return True


needs_video = pytest.mark.skipif(not _has_video_extra(), reason='needs pip install "skelreid[video]" (make setup)')
needs_vtest = pytest.mark.skipif(not VTEST.exists(), reason=f"real clip missing: {VTEST}")


def _cli(capsys, *argv) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def _error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith("skelreid: error:")]
    assert len(lines) == 1, err
    return lines[0]


# ---------------------------------------------------------------------- layout
def test_mediapipe_layout_is_registered_with_bones_and_hips():
    layout = LAYOUTS.get("mediapipe_33")
    assert layout is MEDIAPIPE_33 and layout.num_joints == 33 and layout.dims == 3
    assert layout.joints[0] == "Nose" and layout.joints[23] == "LHip" and layout.joints[24] == "RHip"
    assert MEDIAPIPE_33_HIPS == (layout.index("LHip"), layout.index("RHip"))
    assert all(0 <= a < 33 and 0 <= b < 33 and a != b for a, b in MEDIAPIPE_33_BONES)


def test_mapping_to_casia_b_14():
    rng = np.random.default_rng(0)
    mp = rng.normal(size=(5, 33, 3)).astype(np.float32)
    cb = mediapipe_to_casia_b_14(mp)
    assert cb.shape == (5, 14, 3) and cb.dtype == np.float32
    j = MEDIAPIPE_33.index
    c = CASIA_B_14.index
    np.testing.assert_array_equal(cb[:, c("Head")], mp[:, j("Nose")])
    np.testing.assert_allclose(cb[:, c("Neck")], (mp[:, j("LShoulder")] + mp[:, j("RShoulder")]) / 2, rtol=1e-6)
    for name in ("Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle"):
        for side in "LR":
            np.testing.assert_array_equal(cb[:, c(side + name)], mp[:, j(side + name)])
    with pytest.raises(ValueError):
        mediapipe_to_casia_b_14(np.zeros((2, 20, 3)))


# ---------------------------------------------------------------------- folders and labels
def test_folder_layouts_give_labels(tmp_path):
    from skelreid.video.extract import find_videos

    for rel in ("alice/walk1.avi", "001/nm-01/090.avi", "casia/002-bg-02-018.mp4", "street.mp4",
                "cams/a/b/clip.avi", "alice/notes.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    got = {e.rel: e for e in find_videos(tmp_path)}
    assert sorted(got) == ["001/nm-01/090", "alice/walk1", "cams/a/b/clip", "casia/002-bg-02-018", "street"]
    assert (got["alice/walk1"].person, got["alice/walk1"].walk) == ("alice", "walk1")
    e = got["001/nm-01/090"]
    assert (e.person, e.walk, e.condition, e.view) == ("001", "nm-01_090", "nm", "5")
    e = got["casia/002-bg-02-018"]
    assert (e.person, e.walk, e.condition, e.view) == ("002", "bg-02_018", "bg", "1")
    assert not got["street"].labelled and not got["cams/a/b/clip"].labelled


# ---------------------------------------------------------------------- tracker
def _pose_at(x: float, y: float, h: float = 100.0):
    from skelreid.video.pose import Pose

    image = np.zeros((33, 2), np.float32)
    image[:, 0], image[:, 1] = x, y + np.linspace(0, h, 33)
    return Pose(np.zeros((33, 3), np.float32), image, np.ones(33, np.float32))


def test_tracker_assignment_is_optimal_not_first_come():
    from skelreid.video.detect import Detection
    from skelreid.video.track import Tracker, TrackSettings

    tr = Tracker(TrackSettings(pose_weight=0.0))
    a, b = Detection((100, 100, 40, 100)), Detection((150, 100, 40, 100))
    assert tr.step(0, [a, b], [None, None]) == [1, 2]
    # Frame 1: detection d1 overlaps track 1 a little, d2 overlaps track 1 more but is track 2's.
    # First-come greedy would give d2 to track 1 and start a new track for d1.
    d1, d2 = Detection((114, 100, 40, 100)), Detection((136, 100, 40, 100))
    assert tr.step(1, [d1, d2], [None, None]) == [1, 2]
    assert len(tr.tracks) == 2


def test_tracker_follows_walkers_through_a_gap_and_cuts_long_ones():
    from skelreid.video.detect import Detection
    from skelreid.video.extract import _walk_arrays
    from skelreid.video.track import Tracker, TrackSettings, segments

    tr = Tracker(TrackSettings(max_gap=3))
    for f in range(40):
        dets, poses = [], []
        if not 10 <= f < 12 and not 20 <= f < 30:   # 2 frames unseen (bridged), then 10 (cut)
            x = 10 + 5 * f
            dets.append(Detection((x, 50, 40, 100)))
            poses.append(_pose_at(x + 20, 50))
        tr.step(f, dets, poses)
    firsts = [t.obs[0].frame for t in tr.tracks]
    assert firsts == [0, 30]
    segs = segments(tr.tracks[0], 3)
    assert [(s[0].frame, s[-1].frame) for s in segs] == [(0, 19)]
    a = _walk_arrays(segs[0], "mediapipe_33")
    np.testing.assert_array_equal(a["frame_index"], np.arange(20))
    assert a["interpolated"].tolist() == [10 <= f < 12 for f in range(20)]
    np.testing.assert_allclose(a["image"][10, 0, 0], 10 + 5 * 10 + 20)   # linear in the gap
    assert a["frames"].shape == (20, 33, 3)
    assert _walk_arrays(segs[0], "casia_b_14")["frames"].shape == (20, 14, 3)


# ---------------------------------------------------------------------- errors
def test_missing_extra_is_one_line_naming_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)
    (tmp_path / "v.avi").write_bytes(b"x")
    rc, _, err = _cli(capsys, "extract", tmp_path / "v.avi", "--out", tmp_path / "w")
    assert rc == 2 and 'pip install "skelreid[video]"' in _error_line(err)


def test_missing_mediapipe_is_one_line_naming_it(tmp_path, capsys, monkeypatch):
    pytest.importorskip("cv2")
    monkeypatch.setitem(sys.modules, "mediapipe.python.solutions", None)
    monkeypatch.setitem(sys.modules, "mediapipe.python.solutions.pose", None)
    (tmp_path / "v.avi").write_bytes(b"x")
    rc, _, err = _cli(capsys, "extract", tmp_path / "v.avi", "--out", tmp_path / "w")
    assert rc == 2 and 'skelreid[video]' in _error_line(err) and "MediaPipe" in err


@needs_video
@pytest.mark.parametrize("content, says", [
    (b"", "empty file"),
    (b"this is not a video at all\n" * 50, "video"),
    (b"RIFF\x00\x10\x00\x00AVI LIST" + bytes(4000), "video"),
])
def test_unreadable_videos_name_the_file(tmp_path, capsys, content, says):
    bad = tmp_path / "bad.avi"
    bad.write_bytes(content)
    rc, _, err = _cli(capsys, "extract", bad, "--out", tmp_path / "w", "--no-progress")
    line = _error_line(err)
    assert rc == 2 and str(bad) in line and says in line
    assert not (tmp_path / "w").exists() or not list((tmp_path / "w").rglob("*.npz"))


@needs_video
@pytest.mark.parametrize("option, name", [("--overlay", "tracks.png"), ("--sheet", "sheet.mp4")])
def test_picture_names_of_the_wrong_kind_are_refused_first(tmp_path, capsys, option, name):
    video = _write_video(tmp_path / "v.avi", [np.zeros((64, 64, 3), np.uint8)] * 2)
    rc, _, err = _cli(capsys, "extract", video, "--out", tmp_path / "w", option, tmp_path / name)
    assert rc == 2 and option in _error_line(err) and not (tmp_path / "w").exists()


@needs_video
def test_missing_path_and_folder_without_videos(tmp_path, capsys):
    rc, _, err = _cli(capsys, "extract", tmp_path / "nope.avi", "--out", tmp_path / "w")
    assert rc == 2 and "nope.avi" in _error_line(err) and "not found" in err
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "readme.txt").write_text("hi")
    rc, _, err = _cli(capsys, "extract", tmp_path / "docs", "--out", tmp_path / "w")
    assert rc == 2 and str(tmp_path / "docs") in _error_line(err) and "no video files" in err


def _write_video(path: Path, frames: list[np.ndarray], fps: float = 10.0) -> Path:
    import cv2

    h, w = frames[0].shape[:2]
    wr = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    for f in frames:
        wr.write(f)
    wr.release()
    return path


@needs_video
def test_video_without_people_writes_nothing_and_says_so(tmp_path, capsys):
    still = np.full((120, 160, 3), 90, np.uint8)
    still[40:80, 60:100] = 200          # a fixed object, never moving
    video = _write_video(tmp_path / "empty_street.avi", [still] * 20)
    rc, out, err = _cli(capsys, "extract", video, "--out", tmp_path / "w", "--no-progress")
    assert rc == 0
    assert "no person found in 20 frame(s); nothing written" in err and "0 walk(s)" in out
    assert not (tmp_path / "w").exists() or not [p for p in (tmp_path / "w").rglob("*") if p.is_file()]


def test_interrupted_write_leaves_no_walk_file(tmp_path, monkeypatch):
    from skelreid.video import extract as ex

    entry = ex.VideoEntry(tmp_path / "clip.avi", "clip")
    entry.path.write_bytes(b"x")
    walk = {"frames": np.zeros((12, 33, 3), np.float32), "walk": np.array("t001"), "track": np.array(1)}
    res = ex.VideoResult(entry, {}, walks=[dict(walk), dict(walk, walk=np.array("t002"))])
    calls = []
    real = ex.save_npz

    def dying(path, **arrays):
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt
        real(path, **arrays)

    monkeypatch.setattr(ex, "save_npz", dying)
    with pytest.raises(KeyboardInterrupt):
        ex.write_walks(tmp_path / "out", res, ex.ExtractSettings())
    left = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    assert left == [] and not ex.is_done(tmp_path / "out", entry, ex.ExtractSettings())
    monkeypatch.setattr(ex, "save_npz", real)
    paths = ex.write_walks(tmp_path / "out", res, ex.ExtractSettings())
    assert [p.name for p in paths] == ["t001.npz", "t002.npz"]
    assert ex.is_done(tmp_path / "out", entry, ex.ExtractSettings())
    assert not ex.is_done(tmp_path / "out", entry, ex.ExtractSettings(min_frames=99))


def test_casia_b_tree_walks_read_as_the_presets_expect(tmp_path):
    """A CASIA-B video's walk: 14 joints, person/condition/view as the CASIA-B reader names them, read
    by the generic reader (``train --dataset casia_b_cve --set data.dataset=generic --root WALKS``)."""
    from skelreid.data.readers.generic import read_generic
    from skelreid.video import extract as ex
    from skelreid.video.track import Observation

    (tmp_path / "videos" / "001" / "nm-01").mkdir(parents=True)
    (tmp_path / "videos" / "001" / "nm-01" / "090.avi").write_bytes(b"x")
    entry = ex.find_videos(tmp_path / "videos")[0]
    seg = [Observation(f, (10, 10, 40, 100), _pose_at(30, 10)) for f in range(12)]
    arrays = ex.label_walk(ex._walk_arrays(seg, "casia_b_14"), entry, "casia_b_14", "t001", 1, 25.0, (320, 240))
    res = ex.VideoResult(entry, {}, walks=[arrays])
    settings = ex.ExtractSettings(layout="casia_b_14")
    assert [p.relative_to(tmp_path) for p in ex.write_walks(tmp_path / "walks", res, settings)] == \
        [Path("walks/001/nm-01_090.npz")]
    (s,) = read_generic(tmp_path / "walks")
    assert (s.person, s.walk, s.condition, s.view, s.layout) == ("001", "nm-01_090", "nm", "5", "casia_b_14")
    assert s.frames.shape == (12, 14, 3)
    assert np.load(s.source)["world"].shape == (12, 33, 3)


# ---------------------------------------------------------------------- the real clip
@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    if not (_has_video_extra() and VTEST.exists()):
        pytest.skip("needs the video extra and the real clip")
    base = tmp_path_factory.mktemp("video")
    out = base / "walks"
    argv = ["extract", str(VTEST), "--out", str(out), "--frames", str(FRAMES), "--min-frames", str(MIN_FRAMES),
            "--sheet", str(base / "sheet.png"), "--pose-threads", "2", "--no-progress"]
    assert main(argv) == 0
    return base, out, argv


@needs_video
@needs_vtest
def test_extract_real_clip_to_generic_walks(extracted):
    from skelreid.data.readers.generic import read_generic

    base, out, _ = extracted
    seqs = read_generic(out)
    assert len(seqs) >= 2
    assert len({s.person for s in seqs}) == len(seqs)            # one identity per track
    for s in seqs:
        assert s.layout == "mediapipe_33" and s.frames.shape[1:] == (33, 3) and len(s.frames) >= MIN_FRAMES
        assert s.person == f"vtest_{s.walk}"
        z = np.load(s.source, allow_pickle=False)
        t = len(s.frames)
        assert z["image"].shape == (t, 33, 2) and z["visibility"].shape == (t, 33) and z["box"].shape == (t, 4)
        np.testing.assert_array_equal(np.diff(z["frame_index"]), 1)
        assert 0 <= z["frame_index"][0] and z["frame_index"][-1] < FRAMES
        assert float(z["fps"]) == 10.0 and str(z["source_video"]) == str(VTEST)
        assert z["video_size"].tolist() == [768, 576]
        # World landmarks: metres, origin between the hips, a body a metre or two tall.
        hips = s.frames[:, list(MEDIAPIPE_33_HIPS)].mean(axis=1)
        assert np.abs(hips).max() < 0.05
        height = s.frames[:, 27:29, 1].mean(axis=1) - s.frames[:, 0, 1]   # ankles below the nose (y down)
        assert 0.8 < float(np.median(height)) < 2.2
        # Image landmarks lie on the person: the hip centre inside the box.
        x, y, w, h = z["box"].T
        hx = z["image"][:, list(MEDIAPIPE_33_HIPS), 0].mean(axis=1)
        assert (np.abs(hx - (x + w / 2)) < w).mean() > 0.9
    png = (base / "sheet.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


@needs_video
@needs_vtest
def test_both_detectors_find_the_same_walkers_on_a_real_frame():
    from skelreid.video.detect import make_detector
    from skelreid.video.extract import _background
    from skelreid.video.source import iter_frames
    from skelreid.video.track import iou

    frame = next(f for _, f in iter_frames(VTEST, 0, 1))
    bg = make_detector("background", _background(VTEST, 0, 60, 795))(frame)
    hog = make_detector("hog")(frame)
    people = [d for d in bg if not d.merged]
    assert len(people) >= 3 and all(d.box[3] > d.box[2] for d in people)
    assert sum(any(iou(h.box, d.box) > 0.3 for d in people) for h in hog) >= 2


@needs_video
@needs_vtest
def test_shrunk_background_subtraction_finds_the_full_size_boxes():
    """--detect-width 400 on the 768-pixel street clip: the subtraction runs at half size, and over the
    first 30 frames every full-size person box is found again (measured: 95 of 95 at IoU > 0.5; 846 of
    935 over 200 frames, docs/video.md)."""
    from skelreid.video.detect import make_detector, shrink_factor
    from skelreid.video.extract import _background
    from skelreid.video.source import iter_frames
    from skelreid.video.track import iou

    assert [shrink_factor(w, 400) for w in (320, 400, 401, 768, 1920)] == [1, 1, 2, 2, 5]
    assert shrink_factor(1920, 0) == 1
    bg = _background(VTEST, 0, 60, 795)
    full, shrunk = make_detector("background", bg), make_detector("background", bg, detect_width=400)
    assert (full.k, shrunk.k) == (1, 2)
    found = total = 0
    for _, frame in iter_frames(VTEST, 0, FRAMES):
        a = [d for d in full(frame) if not d.merged]
        b = [d for d in shrunk(frame) if not d.merged]
        total += len(a)
        found += sum(any(iou(x.box, y.box) > 0.5 for y in b) for x in a)
    assert total >= 60 and found >= 0.9 * total, (found, total)


def test_full_size_detection_keeps_the_records_of_earlier_extractions():
    # the fingerprint of the settings decides whether a video is "already done": full-size detection
    # (the default) fingerprints as it did before --detect-width existed; a shrunk one differs
    from skelreid.video.extract import ExtractSettings

    assert ExtractSettings().fingerprint() == "00288779c387d998"
    assert ExtractSettings(frames=30, min_frames=10).fingerprint() == "e23d9629d5b57440"
    assert ExtractSettings(detect_width=400).fingerprint() != ExtractSettings().fingerprint()


def test_negative_detect_width_is_one_line(tmp_path, capsys):
    rc, _, err = _cli(capsys, "extract", tmp_path, "--out", tmp_path / "o", "--detect-width", "-1", "--no-progress")
    assert rc == 2 and "--detect-width -1" in _error_line(err)
    assert not (tmp_path / "o").exists()


@needs_video
@needs_vtest
def test_rerun_skips_done_video(extracted, capsys):
    _, out, argv = extracted
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.npz")}
    rc, stdout, err = _cli(capsys, *argv[:-3], "--no-progress")
    assert rc == 0 and "already extracted" in err and "1 already done" in stdout
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.npz")} == before


def _synthetic_33(folder: Path, persons: int = 4, walks: int = 3, frames: int = 40) -> Path:
    """Smooth 33-landmark walks, a gait of its own per person (for a tiny model to train on)."""
    rng = np.random.default_rng(0)
    t = np.arange(frames)[:, None, None] / 10.0
    for p in range(persons):
        base, amp, freq = rng.normal(size=(33, 3)) * 0.3, rng.uniform(0.05, 0.2, (33, 3)), 1 + 0.3 * p
        for w in range(walks):
            f = base + amp * np.sin(2 * np.pi * freq * t + w) + rng.normal(scale=0.01, size=(frames, 33, 3))
            (folder / f"p{p}").mkdir(parents=True, exist_ok=True)
            np.savez(folder / f"p{p}" / f"w{w}.npz", frames=f.astype(np.float32), layout="mediapipe_33")
    return folder


@needs_video
@needs_vtest
def test_identify_straight_from_video(extracted, tmp_path, capsys):
    base, out, _ = extracted
    run = tmp_path / "run"
    rc, _, err = _cli(capsys, "train-encoder", "--dataset", "generic", "--root", _synthetic_33(tmp_path / "syn"),
                      "--epochs", "1", "--set", "encoder.hidden=8", "--set", "encoder.proj_dim=8",
                      "--set", "encoder.batch_size=16", "--set", "data.clip=2", "--no-progress", "--out", run)
    assert rc == 0, err
    gallery = tmp_path / "gallery.npz"
    rc, _, err = _cli(capsys, "enrol", run, "--dataset", "generic", "--root", out, "--gallery", gallery,
                      "--no-progress")
    assert rc == 0, err
    overlay = tmp_path / "named.mp4"
    rc, stdout, err = _cli(capsys, "identify", run, "--gallery", gallery, "--video", VTEST, "--frames", FRAMES,
                           "--min-frames", MIN_FRAMES, "--overlay", overlay, "--no-progress")
    assert rc == 0, err
    walks = sorted(f"vtest_{p.stem}/{p.stem}" for p in out.rglob("*.npz"))
    lines = [ln for ln in stdout.splitlines() if "->" in ln]
    assert sorted(ln.split()[0] for ln in lines) == walks
    # The clip's tracks are the gallery's walks: each is named as itself.
    assert "top-1 accuracy: 100.00%" in stdout
    import cv2

    cap = cv2.VideoCapture(str(overlay))
    assert cap.isOpened() and int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == FRAMES
    cap.release()


@needs_video
@needs_vtest
def test_real_clip_counts_in_measured_ranges_and_extraction_is_repeatable(extracted, tmp_path, capsys):
    """The first 30 frames of vtest.avi, measured on 2026-12-05: 99 person-frames with a pose, 7 tracks,
    4 walks of at least 10 frames (18, 23, 29 and 10 frames). A second extraction into another folder,
    posing one person at a time where the first posed two side by side, writes byte-identical walk files."""
    import re

    _, first, argv = extracted
    second = tmp_path / "again"
    rc, out, err = _cli(capsys, "extract", VTEST, "--out", second, "--frames", FRAMES, "--min-frames", MIN_FRAMES,
                        "--pose-threads", "1", "--no-progress")
    assert rc == 0, err
    # where the time went, per stage: on the terminal and in the video's record
    from skelreid.io import read_json
    from skelreid.video.extract import STAGES

    assert "time per frame: read " in out and " pose " in out and " write " in out
    stages = read_json(second / ".extract" / "vtest.json")["summary"]["stage_seconds"]
    assert set(stages) == set(STAGES) and all(v >= 0 for v in stages.values()) and stages["pose"] > 0
    m = re.search(r"(\d+) person-frames, (\d+) track\(s\) -> (\d+) walk\(s\)", err)
    assert m, err
    poses, tracks, walks = map(int, m.groups())
    assert 80 <= poses <= 120 and 5 <= tracks <= 9 and 3 <= walks <= 6
    a = sorted(p.relative_to(first).as_posix() for p in first.rglob("*.npz"))
    b = sorted(p.relative_to(second).as_posix() for p in second.rglob("*.npz"))
    assert a == b and len(a) == walks
    for name in a:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


# ---------------------------------------------------------------------- real clips in a CASIA-B tree
def _casia_tree(walks: Path, dest: Path, persons: int = 3) -> dict[str, int]:
    """A CASIA-B-layout tree of short clips cut from the real ``vtest.avi``
    (:mod:`skelreid.video.clips`): the walkers the module's extraction tracked for at least 16
    frames become persons ``001``..; each is pasted alone on the street's empty scene in a 320 × 240
    frame between empty frames, as in CASIA-B's one-walker videos. A track's first and second half
    are walks ``nm-01`` and ``nm-02``; view ``090`` is the crop as filmed, ``108`` the crop mirrored.
    Returns {relative clip path: frames with the walker}."""
    from skelreid.video.clips import walker_clip, write_clip
    from skelreid.video.extract import _background
    from skelreid.video.source import iter_frames

    video = dict(iter_frames(VTEST, 0, FRAMES))
    scene = _background(VTEST, 0, 60, 795)
    tracks = sorted((np.load(p) for p in walks.rglob("*.npz")), key=lambda z: -len(z["frame_index"]))
    tracks = [z for z in tracks if len(z["frame_index"]) >= 16][:persons]
    assert len(tracks) >= 2, "the first 30 frames of vtest.avi tracked fewer than 2 walkers for 16 frames"
    written = {}
    for k, z in enumerate(tracks, start=1):
        half = len(z["frame_index"]) // 2
        for cond, part in (("nm-01", slice(0, half)), ("nm-02", slice(half, None))):
            for angle, mirror in (("090", False), ("108", True)):
                rel = f"{k:03d}/{cond}/{angle}.avi"
                write_clip(dest / rel, walker_clip(video, scene, z["frame_index"][part], z["box"][part],
                                                   mirror=mirror))
                written[rel] = len(z["frame_index"][part])
    return written


@pytest.fixture(scope="module")
def casia_tree(extracted, tmp_path_factory):
    """The tree of :func:`_casia_tree`, extracted once with ``--layout casia_b_14``."""
    base = tmp_path_factory.mktemp("casia")
    clips = _casia_tree(extracted[1], base / "videos")
    rc = main(["extract", str(base / "videos"), "--out", str(base / "walks"), "--layout", "casia_b_14",
               "--min-frames", "6", "--pose-threads", "2", "--no-progress"])
    assert rc == 0
    return base, clips


@needs_video
@needs_vtest
def test_real_casia_b_tree_extracts_one_labelled_walk_per_clip(casia_tree):
    from skelreid.data.readers.generic import read_generic

    base, clips = casia_tree
    seqs = {f"{s.person}/{s.walk}": s for s in read_generic(base / "walks")}
    want = {f"{rel[:3]}/{rel[4:9]}_{rel[10:13]}": n for rel, n in clips.items()}
    assert sorted(seqs) == sorted(want)
    for key, s in seqs.items():
        assert s.layout == "casia_b_14" and s.frames.shape[1:] == (14, 3)
        assert s.condition == "nm" and s.view == {"090": "5", "108": "6"}[key[-3:]]
        # the walker is posed on (nearly) every frame they are in the clip, and on no empty frame
        assert want[key] - 3 <= len(s.frames) <= want[key]


@needs_video
@needs_vtest
def test_lone_walkers_give_the_same_walks_with_one_pose_thread_or_two(casia_tree, tmp_path):
    """Each clip of the tree holds one walker, followed in tracking mode by two followers in turn: the
    fixture posed two frames at once (one per core), this extraction one after the other, and the
    walk files are byte for byte the same."""
    base, _ = casia_tree
    again = tmp_path / "walks"
    assert main(["extract", str(base / "videos"), "--out", str(again), "--layout", "casia_b_14",
                 "--min-frames", "6", "--pose-threads", "1", "--no-progress"]) == 0
    first = sorted(p.relative_to(base / "walks").as_posix() for p in (base / "walks").rglob("*.npz"))
    second = sorted(p.relative_to(again).as_posix() for p in again.rglob("*.npz"))
    assert first == second and first
    for name in first:
        assert (base / "walks" / name).read_bytes() == (again / name).read_bytes(), name


@needs_video
@needs_vtest
def test_real_casia_b_tree_runs_the_cve_preset(casia_tree, tmp_path):
    """`extract` on a CASIA-B tree, then the CASIA_B_CVE preset through the generic reader: one run per
    view (90° and 108°), its table and the mean. Tiny model, one walk per person and view tested."""
    import json

    base, _ = casia_tree
    out = tmp_path / "cve"
    rc = main(["train", "--dataset", "casia_b_cve", "--set", "data.dataset=generic", "--root", str(base / "walks"),
               "--length", "4", "--set", "data.test_walks=1", "--set", "data.val_walks=0",
               "--set", "encoder.hidden=8", "--set", "encoder.proj_dim=8", "--epochs", "1", "--rn-epochs", "3",
               "--set", "rn.batch_size=64", "--no-progress", "--out", str(out)])
    assert rc == 0
    r = json.loads((out / "results.json").read_text())
    assert r["view"] == "all" and sorted(r["views"]) == ["5", "6"]
    assert [r["views"][v]["label"] for v in ("5", "6")] == ["90°", "108°"]
    assert r["mean"]["rank1"] == pytest.approx(np.mean([v["rank1"] for v in r["views"].values()]))
    for v in ("5", "6"):
        sub = json.loads((out / f"view_{v}" / "results.json").read_text())
        persons = len({k[:3] for k in _tree_keys(base)})
        assert sub["view"] == v and sub["split"]["views"] == [v] and sub["split"]["persons"] == persons
        assert sub["split"]["walks_per_split"] == {"train": persons, "val": 0, "test": persons}   # one walk each


def _tree_keys(base: Path) -> list[str]:
    return [p.relative_to(base / "videos").as_posix() for p in (base / "videos").rglob("*.avi")]


@needs_video
@needs_vtest
def test_extract_train_enrol_identify_on_real_extracted_walks(casia_tree, tmp_path, capsys):
    """The chain a user runs on their own video: `extract` (done by the fixture) -> `train --dataset
    generic` on the extracted walks -> `enrol` them -> `identify --video` a clip, named by its track."""
    import shutil

    base, _ = casia_tree
    run = tmp_path / "run"
    rc, out, err = _cli(capsys, "train", "--dataset", "generic", "--root", base / "walks", "--set", "data.clip=1",
                        "--set", "encoder.hidden=8", "--set", "encoder.proj_dim=8", "--epochs", "1",
                        "--rn-epochs", "3", "--no-progress", "--out", run)
    assert rc == 0, err
    assert (run / "results.json").exists() and (run / "encoders").is_dir()
    gallery = tmp_path / "gallery.npz"
    rc, out, err = _cli(capsys, "enrol", run, "--dataset", "generic", "--root", base / "walks", "--gallery", gallery,
                        "--no-progress")
    assert rc == 0, err
    assert f"enrolled {len(_tree_keys(base))} walk(s)" in out
    clip = tmp_path / "001-nm-02-090.avi"       # a CASIA-B file name: the clip's person is known (001)
    shutil.copy(base / "videos" / "001" / "nm-02" / "090.avi", clip)
    rc, out, err = _cli(capsys, "identify", run, "--gallery", gallery, "--video", clip, "--min-frames", "6",
                        "--no-progress")
    assert rc == 0, err
    lines = [ln for ln in out.splitlines() if "->" in ln]
    assert len(lines) == 1 and lines[0].split()[0] == "001/nm-02_090" and lines[0].split()[2] == "001"
    assert "top-1 accuracy: 100.00% (1 probes" in out


def test_walker_clip_pastes_only_the_walker_onto_the_empty_scene():
    from skelreid.video.clips import crop_window, walker_clip

    scene = np.zeros((100, 200, 3), np.uint8)
    frames = {i: np.full((100, 200, 3), 10 + i, np.uint8) for i in range(5)}
    boxes = np.array([[150, 40, 20, 40], [160, 40, 20, 40]], np.float32)
    assert crop_window(boxes, (200, 100), (80, 60)) == (120, 30)     # centred on (165, 60), kept inside
    clip = walker_clip(frames, scene, np.array([2, 3]), boxes, size=(80, 60), empty=2)
    assert len(clip) == 6 and all(f.shape == (60, 80, 3) for f in clip)
    assert not clip[0].any() and not clip[-1].any()                   # the empty scene before and after
    f = clip[2]                     # frame 2: box x 150..170, y 40..80; with its margin 147..173, 36..84
    assert (f[6:54, 27:53] == 12).all()                               # pasted from frame 2, in crop coordinates
    f0 = f.copy()
    f0[6:54, 27:53] = 0
    assert not f0.any()                                               # and nothing else
    mirrored = walker_clip(frames, scene, np.array([2, 3]), boxes, size=(80, 60), empty=2, mirror=True)
    np.testing.assert_array_equal(mirrored[2], f[:, ::-1])
    with pytest.raises(ValueError):
        crop_window(boxes, (200, 100), (320, 240))


@needs_video
def test_a_lone_person_is_followed_in_tracking_mode_and_reset_when_others_appear(tmp_path, monkeypatch):
    """Frames holding exactly one person go to MediaPipe's tracking mode, frames with more to the
    static estimators; the followers are reset when the lone person stops being alone. With two
    followers (the default) the lone person's frames alternate between them (even frames of the run to
    one, odd to the other), whatever the number of pose threads. ``--static-pose``
    (``track_single=False``) never tracks."""
    from skelreid.video import extract as ex
    from skelreid.video import pose as pose_mod

    calls = []

    class FakeEstimator:
        made = 0

        def __init__(self, tracking=False, **kw):
            self.tracking = tracking
            self.name = ("follower" if tracking else "static") + str(FakeEstimator.made)
            FakeEstimator.made += 1

        def __call__(self, frame, box):
            calls.append((self.name, "tracking" if self.tracking else "static", int(box[0])))
            return None

        def reset(self):
            calls.append((self.name, "reset", None))

        def close(self):
            pass

    monkeypatch.setattr(pose_mod, "PoseEstimator", FakeEstimator)
    frames = []
    for f in range(24):   # one walker throughout, moving right 4 px a frame; a second one on frames 10-15
        img = np.full((120, 240, 3), 90, np.uint8)
        img[30:90, 10 + 4 * f:30 + 4 * f] = 230
        if 10 <= f < 16:
            img[30:90, 200 - 4 * f:220 - 4 * f] = 30
        frames.append(img)
    video = _write_video(tmp_path / "two.avi", frames)
    entry = ex.find_videos(video)[0]

    ex.extract_video(entry, ex.ExtractSettings(min_frames=5, followers=1), progress=False, pose_threads=2)
    kinds = [c[1] for c in calls]
    # alone on frames 0-9: followed; two on 10-15: reset once, then each posed afresh; alone again: followed
    assert kinds == ["tracking"] * 10 + ["reset"] + ["static"] * 12 + ["tracking"] * 8
    assert len({c[0] for c in calls if c[1] == "tracking"}) == 1

    for threads in (2, 1):    # two followers (the default), posing side by side or one after the other
        calls.clear()
        ex.extract_video(entry, ex.ExtractSettings(min_frames=5), progress=False, pose_threads=threads)
        followers = sorted({c[0] for c in calls if c[1] != "static"})
        assert len(followers) == 2
        # each follower sees every other frame of a lone run (its boxes 8 px apart) and is reset once
        for f in followers:
            seq = [c[1] for c in calls if c[0] == f]
            assert seq == ["tracking"] * 5 + ["reset"] + ["tracking"] * 4, (threads, f, seq)
            xs = [c[2] for c in calls if c[0] == f and c[1] == "tracking"]
            assert all(b - a == 8 for a, b in zip(xs[:5], xs[1:5])) and all(b - a == 8 for a, b in zip(xs[5:], xs[6:]))
        assert sum(c[1] == "static" for c in calls) == 12
        # the resets come before any static pose of the two-person frames
        first_static = next(i for i, c in enumerate(calls) if c[1] == "static")
        assert all(i < first_static for i, c in enumerate(calls) if c[1] == "reset")

    calls.clear()
    ex.extract_video(entry, ex.ExtractSettings(min_frames=5, track_single=False), progress=False, pose_threads=2)
    assert {c[1] for c in calls} == {"static"}


@needs_video
def test_pose_pool_keeps_each_pose_with_its_box(monkeypatch):
    """Several threads pose a frame's people, each box with one of the pool's estimators; the poses
    come back in the order of the boxes."""
    from skelreid.video import pose as pose_mod

    seen = set()

    class TaggingEstimator:
        def __init__(self, **kw):
            pass

        def __call__(self, frame, box):
            seen.add(id(self))
            return ("pose of", box)

        def close(self):
            pass

    monkeypatch.setattr(pose_mod, "PoseEstimator", TaggingEstimator)
    boxes = [(k, 0, 5, 10) for k in range(7)]
    with pose_mod.PosePool(3) as pool:
        assert pool(None, boxes) == [("pose of", b) for b in boxes]
        assert pool(None, boxes[:1]) == [("pose of", boxes[0])]
        assert pool(None, []) == []
    assert len(seen) == 3
    with pytest.raises(Exception, match="pose-threads 0"):
        pose_mod.PosePool(0)


@needs_video
def test_reading_ahead_keeps_frame_order_and_passes_errors_on(tmp_path):
    """Frames are read and detected in a thread of their own: they arrive in order, a failure there is
    raised in the caller, and stopping early ends the thread."""
    from skelreid.video.extract import _read_and_detect

    frames = [np.full((40, 60, 3), 10 * k, np.uint8) for k in range(12)]
    video = _write_video(tmp_path / "ramp.avi", frames)
    stage = {"read": 0.0, "detect": 0.0}
    got = [(fi, float(frame.mean()), dets) for fi, frame, dets in
           _read_and_detect(video, 2, 8, lambda f: [round(float(f.mean()))], stage, depth=2)]
    assert [g[0] for g in got] == list(range(2, 10))
    assert all(abs(m - 10 * fi) < 3 and d == [round(m)] for fi, m, d in got)
    assert stage["read"] > 0 and stage["detect"] >= 0

    def broken(frame):
        if frame.mean() > 45:
            raise RuntimeError("detector failed on frame 5")
        return []

    with pytest.raises(RuntimeError, match="frame 5"):
        list(_read_and_detect(video, 0, None, broken, stage, depth=1))
    gen = _read_and_detect(video, 0, None, lambda f: [], stage, depth=1)
    next(gen)
    gen.close()     # the consumer stops early: the reading thread is told to stop and joined
    import threading
    assert not [t for t in threading.enumerate() if t.name == "read-detect"]
