"""Bad input through the command line: one actionable line ``skelreid: error: ...``, exit status 2,
and whatever an earlier run left in the folder stays as it was."""
from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from skelreid.cli import main

TINY = ["--epochs", "1", "--rn-epochs", "2", "--set", "encoder.hidden=8", "--set", "encoder.proj_dim=8",
        "--set", "rn.hidden=8", "--no-progress"]
SYNTH = ["--dataset", "synthetic", "--set", "data.synthetic.num_persons=3", "--set", "data.synthetic.walks_per_person=3",
         "--set", "data.synthetic.frames=[60,80]"]


def _error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("skelreid: error: ") and "\n" not in err, err
    assert "Traceback" not in err
    return err


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != ".lock"}


@pytest.fixture
def kgbd_small(kgbd_data, tmp_path) -> Path:
    """A private copy of 3 real KGBD persons, safe to damage."""
    root = tmp_path / "Data"
    for p in ("Person001", "Person002", "Person003"):
        shutil.copytree(kgbd_data / p, root / p)
    return root


def _kgbd(root: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "--dataset", "KGBD", "--root", str(root), "--cache", str(out.parent / "cache"),
            "--out", str(out), "--set", "data.clip=150", *TINY, *extra]


def _edit_line(path: Path, lineno: int, edit) -> None:
    lines = path.read_bytes().split(b"\n")
    lines[lineno - 1] = edit(lines[lineno - 1])
    path.write_bytes(b"\n".join(lines))


# --------------------------------------------------------------------------- raw files


@pytest.mark.kgbd
def test_malformed_kgbd_file_names_file_and_line(kgbd_small, tmp_path, capsys):
    bad = kgbd_small / "Person002" / "3.txt"
    _edit_line(bad, 47, lambda ln: ln.replace(b";", b";abc;", 1))
    assert main(_kgbd(kgbd_small, tmp_path / "run")) == 2
    err = _error(capsys)
    assert f"{bad}:47: " in err and "expected 4 fields" in err


@pytest.mark.kgbd
def test_kgbd_partial_frame_is_a_wrong_joint_count(kgbd_small, tmp_path, capsys):
    bad = kgbd_small / "Person001" / "2.txt"
    lines = bad.read_bytes().rstrip(b"\r\n").split(b"\n")
    bad.write_bytes(b"\n".join(lines[:-1]) + b"\n")  # the last frame loses its last joint
    assert main(_kgbd(kgbd_small, tmp_path / "run")) == 2
    err = _error(capsys)
    assert f"{bad}:{len(lines) - 1}: file ends in a partial frame" in err and "19 of 20 joints" in err


@pytest.mark.kgbd
def test_nan_in_kgbd_is_refused_by_default_and_handled_by_the_policies(kgbd_small, tmp_path, capsys):
    bad = kgbd_small / "Person003" / "1.txt"
    _edit_line(bad, 3023, lambda ln: b";".join(ln.split(b";")[:2] + [b"NaN"] + ln.split(b";")[3:]))
    assert main(_kgbd(kgbd_small, tmp_path / "run")) == 2
    err = _error(capsys)
    assert f"{bad}:3023: non-finite coordinate 'NaN'" in err and "--nan-policy drop-frames" in err
    for policy in ("drop-frames", "interpolate"):
        assert main(_kgbd(kgbd_small, tmp_path / policy, "--nan-policy", policy, "--stages", "encoder")) == 0
        assert json.loads((tmp_path / policy / "config.json").read_text())["data"]["nan_policy"] == policy
    capsys.readouterr()
    # frame counts: drop-frames loses exactly the one frame, interpolate keeps it
    counts = {}
    for policy in ("error", "drop-frames", "interpolate"):
        if policy == "error":
            _edit_line(bad, 3023, lambda ln: ln.replace(b"NaN", b"0.5"))
        # one parse cache per policy: the file is edited in place, and a cache keyed on size and mtime
        # could miss an edit within one timestamp tick on coarse file systems
        assert main(["prepare", "--dataset", "KGBD", "--root", str(kgbd_small), "--cache", str(tmp_path / f"c-{policy}"),
                     "--set", f"data.nan_policy={policy}", "--out", str(tmp_path / f"prep-{policy}"),
                     "--no-progress"]) == 0
        counts[policy] = int(capsys.readouterr().out.split(" frames,")[0].split()[-1])
        if policy == "error":
            _edit_line(bad, 3023, lambda ln: ln.replace(b"0.5", b"NaN"))
    assert counts["drop-frames"] == counts["error"] - 1 and counts["interpolate"] == counts["error"]


def _npz(path: Path, joints: int, layout: str | None = None, frames: int = 40) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    extra = {"layout": layout} if layout else {}
    np.savez(path, frames=np.random.default_rng(0).normal(size=(frames, joints, 3)), **extra)


def test_generic_wrong_joint_count_for_its_layout(tmp_path, capsys):
    _npz(tmp_path / "data" / "p1" / "w1.npz", 19, "kinect_v1")
    assert main(["train", "--dataset", "generic", "--root", str(tmp_path / "data"), "--out", str(tmp_path / "run"),
                 *TINY]) == 2
    err = _error(capsys)
    assert "w1.npz: layout 'kinect_v1' has 20 joints in 3D, but frames have 19 joints in 3D" in err


def test_generic_mixed_layouts_in_one_folder(tmp_path, capsys):
    _npz(tmp_path / "data" / "p1" / "w1.npz", 20)
    _npz(tmp_path / "data" / "p2" / "w1.npz", 25)
    assert main(["train", "--dataset", "generic", "--root", str(tmp_path / "data"), "--out", str(tmp_path / "run"),
                 *TINY]) == 2
    err = _error(capsys)
    assert "mixed layouts" in err and "has 20 joints" in err and "has 25" in err


# --------------------------------------------------------------------------- options and splits


def test_window_longer_than_every_walk(tmp_path, capsys):
    assert main(["train", *SYNTH, "--length", "400", "--out", str(tmp_path / "run"), *TINY]) == 2
    err = _error(capsys)
    assert "window length 400 with clip 10 leaves no window: the longest walk has" in err


def test_split_manifest_with_a_person_missing_from_training(tmp_path, capsys):
    assert main(["prepare", *SYNTH, "--out", str(tmp_path / "prep"), "--no-progress"]) == 0
    manifest = json.loads((tmp_path / "prep" / "split_legacy_seed0.json").read_text())
    moved = [w for w in manifest["splits"]["train"] + manifest["splits"]["val"] if w.startswith("P001/")]
    for name in ("train", "val"):
        manifest["splits"][name] = [w for w in manifest["splits"][name] if w not in moved]
    manifest["splits"]["test"] = sorted(manifest["splits"]["test"] + moved)
    run = tmp_path / "run"
    run.mkdir()
    (run / "split.json").write_text(json.dumps(manifest))
    capsys.readouterr()
    assert main(["train", *SYNTH, "--out", str(run), *TINY]) == 2
    err = _error(capsys)
    assert "split 'test' has persons with no training walk: ['P001']" in err and "split.json" in err


@pytest.mark.parametrize("device, message", [
    ("cuda:7", "--device cuda:7: no CUDA GPU is available on this machine; use --device cpu"),
    ("99", "--device 99: no CUDA GPU is available on this machine; use --device cpu"),
    ("cuda", "--device cuda: no CUDA GPU is available on this machine; use --device cpu"),
    ("cuda:x", "--device 'cuda:x' is not valid; use cpu, cuda, cuda:N or a GPU index"),
    ("tpu", "--device 'tpu' is not valid"),
])
def test_unavailable_or_invalid_device(tmp_path, capsys, device, message):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the 'no GPU' messages do not apply")
    assert main(["train", *SYNTH, "--device", device, "--out", str(tmp_path / "run"), *TINY]) == 2
    assert message in _error(capsys)
    assert not (tmp_path / "run").exists()  # refused before anything is written


def test_bad_option_values(tmp_path, capsys):
    for argv, message in (
        (["--checkpoint-minutes", "-1"], "checkpoint_minutes must be >= 0"),
        (["--set", "data.nan_policy=zero"], "option data.nan_policy='zero' is not valid"),
    ):
        assert main(["train", *SYNTH, *argv, "--out", str(tmp_path / "run"), *TINY]) == 2
        assert message in _error(capsys)


# --------------------------------------------------------------------------- a full disk


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("disk") / "run"
    assert main(["train", *SYNTH, "--out", str(out), *TINY]) == 0
    return out


@pytest.mark.parametrize("fail_on", ["results.json", "any"])
def test_full_disk_keeps_the_previous_results(finished_run, monkeypatch, capsys, fail_on):
    before = _snapshot(finished_run)
    real_fsync = os.fsync

    def fsync(fd):
        name = os.readlink(f"/proc/self/fd/{fd}") if os.path.exists(f"/proc/self/fd/{fd}") else ""
        if fail_on == "any" or f".{fail_on}." in Path(name).name:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    capsys.readouterr()
    assert main(["evaluate", str(finished_run), "--no-progress"]) == 2
    monkeypatch.undo()
    err = _error(capsys)
    assert "No space left on device (ENOSPC)" in err and "previous version of the file, if any, is unchanged" in err
    if fail_on == "results.json":
        assert f"cannot write {finished_run / 'results.json'}" in err
    after = _snapshot(finished_run)
    assert after["results.json"] == before["results.json"]
    if fail_on == "any":
        assert after == before  # the very first write failed: every file is as it was
    assert not list(finished_run.rglob(".*.tmp"))
    assert main(["evaluate", str(finished_run), "--no-progress"]) == 0  # space is back: all is well
    assert json.loads((finished_run / "results.json").read_text())["metrics"] == \
        json.loads(before["results.json"])["metrics"]
