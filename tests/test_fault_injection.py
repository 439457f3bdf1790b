"""SIGKILL real ``skelreid train`` processes, rerun the same command each time, and compare with an
uninterrupted run: the final results must be identical, wherever the kills landed.

Real KGBD (4 persons, the middle of each walk), a tiny model, CPU.

* ``test_sigkill_at_random_moments...``: kills at random (seeded) moments in time, so they land
  wherever the machine's speed puts them; every assertion holds for every kill moment.
* ``test_sigkill_at_named_points...``: kills at chosen steps of the computation (``SKELREID_KILL_AT``,
  :mod:`skelreid.faults`): inside an encoder epoch, right after a mid-epoch checkpoint, during
  feature extraction, inside an RN epoch, right after an RN checkpoint, between two report files.
  The same steps on every machine, so the coverage of every stage does not depend on luck.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow   # end-to-end: `make test-fast` (pytest -m "not slow") leaves it out

KILLS = 4
SEED = 20240613


def _command(root: Path, cache: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "skelreid.cli", "train", "--dataset", "KGBD", "--root", str(root),
            "--cache", str(cache), "--out", str(out), "--persons", "4", "--set", "data.clip=150",
            "--epochs", "3", "--set", "encoder.hidden=8", "--set", "encoder.proj_dim=8",
            "--set", "encoder.batch_size=64", "--rn-epochs", "6", "--set", "rn.hidden=16",
            "--set", "rn.batch_size=64", "--checkpoint-minutes", "0.002", "--no-progress"]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1]) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _run_to_end(cmd: list[str]) -> float:
    t0 = time.monotonic()
    proc = subprocess.run(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return time.monotonic() - t0


def _weights(run: Path) -> dict[str, bytes]:
    return {p.relative_to(run).as_posix(): p.read_bytes()
            for sub in ("encoders", "rn") for p in sorted((run / sub).glob("*.safetensors"))}


def _progress_since(out: Path, t0: float) -> bool:
    """A resume checkpoint was written after ``t0`` (the process is training). The process rotates
    and deletes these files while we look: a file gone between listing and ``stat`` is skipped."""
    try:
        files = list((out / "resume").glob("*.json"))
    except OSError:
        return False
    for p in files:
        try:
            if p.stat().st_mtime > t0:
                return True
        except FileNotFoundError:
            continue
    return False


def _kill_at(cmd: list[str], out: Path, when: tuple[str, float], budget: float) -> tuple:
    """Start ``cmd``; SIGKILL it ``when[1]`` s after start ("any") or after its first new checkpoint
    ("training"). Returns what happened."""
    t0 = time.time()
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    kind, delay = when
    deadline = None if kind == "training" else t0 + delay
    try:
        while proc.poll() is None and time.time() - t0 < budget:
            if deadline is None and _progress_since(out, t0):
                deadline = time.time() + delay
            if deadline is not None and time.time() >= deadline:
                os.killpg(proc.pid, signal.SIGKILL)  # the process and anything it started, at once
                proc.wait()
                left = sorted(p.name for p in (out / "resume").glob("*.json")) if (out / "resume").exists() else []
                return (kind, round(delay, 2), "killed", left)
            time.sleep(0.01)
        return (kind, round(delay, 2), "finished" if proc.poll() is not None else "not started training")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _subset(kgbd_data: Path, tmp_path: Path) -> Path:
    root = tmp_path / "Data"
    for p in ("Person001", "Person002", "Person003", "Person004"):
        shutil.copytree(kgbd_data / p, root / p)
    return root


@pytest.fixture(scope="module")
def reference(kgbd_data, tmp_path_factory):
    """The uninterrupted run both tests compare with (and the data and parse cache they share)."""
    tmp = tmp_path_factory.mktemp("faults")
    root, cache, ref = _subset(kgbd_data, tmp), tmp / "cache", tmp / "reference"
    wall = _run_to_end(_command(root, cache, ref))  # also fills the parse cache
    return root, cache, ref, wall


@pytest.mark.kgbd
def test_sigkill_at_random_moments_then_rerun_gives_identical_results(reference, tmp_path):
    root, cache, ref, wall = reference

    # Kills while it trains (the first one from a fresh start, so surely mid-encoder), then one anywhere:
    # start-up, loading, training or report writing.
    rng = random.Random(SEED)
    plan = [("training", rng.uniform(0.0, 2.0)) for _ in range(KILLS - 1)] + [("any", rng.uniform(0.2, 0.95) * wall)]
    out = tmp_path / "killed"
    moments = [_kill_at(_command(root, cache, out), out, when, budget=3 * wall) for when in plan]
    # Where the kills landed depends on the machine's speed and load; what follows holds for any of them
    # (test_sigkill_at_named_points_... makes sure that every stage is hit).
    print("reference run", round(wall, 2), "s; moments:", moments)

    _run_to_end(_command(root, cache, out))
    got = json.loads((out / "results.json").read_text())
    want = json.loads((ref / "results.json").read_text())
    assert got["metrics"] == want["metrics"], moments
    assert _weights(out) == _weights(ref), moments
    assert not (out / "resume").exists()
    assert not list(out.rglob(".*.tmp"))


#: (kill point, --checkpoint-minutes) of each killed process, in order; the process after the last
#: one runs to the end. Per process, with this command (3 encoder epochs of 14 batches, 6 RN epochs):
NAMED_PLAN = [
    ("encoder.step:20", "0"),       # encoder epoch 2, 6 batches after the epoch-1 checkpoint
    ("resume.save:5", "1e-9"),      # resumes at epoch 1; killed right after a mid-epoch-2 checkpoint
    ("encoder.step:3", "0"),        # resumes mid-epoch 2 from that checkpoint; killed 3 batches later
    ("features.batch:1", "0"),      # the encoder finishes; killed inside the RN's feature extraction
    ("rn.step:200", "0"),           # RN epoch 4, after the epoch-3 checkpoint
    ("resume.save:7", "1e-9"),      # resumes at RN epoch 3; killed right after a mid-epoch checkpoint
    ("report.file:2", "0"),         # the RN finishes; killed between results.json and results.md
]


def _history_without_timings(path: Path) -> list[dict]:
    import csv

    with open(path, newline="") as fh:
        return [{k: v for k, v in row.items() if k not in ("seconds", "windows_per_s")} for row in csv.DictReader(fh)]


@pytest.mark.kgbd
def test_sigkill_at_named_points_of_every_stage_then_rerun_gives_identical_results(reference, tmp_path):
    root, cache, ref, _ = reference
    out = tmp_path / "killed"
    for point, minutes in NAMED_PLAN:
        cmd = _command(root, cache, out)
        cmd[cmd.index("--checkpoint-minutes") + 1] = minutes
        proc = subprocess.run(cmd, env={**_env(), "SKELREID_KILL_AT": point}, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, timeout=600)
        assert proc.returncode == -signal.SIGKILL, (point, proc.returncode, proc.stderr[-2000:])
    proc = subprocess.run(_command(root, cache, out), env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads((out / "results.json").read_text())
    want = json.loads((ref / "results.json").read_text())
    assert got["metrics"] == want["metrics"]
    assert _weights(out) == _weights(ref)
    for csv_file in ("encoders/rev_rec_LA_losses.csv", "rn/history.csv"):
        assert _history_without_timings(out / csv_file) == _history_without_timings(ref / csv_file), csv_file
    assert (out / "results.md").read_text().split("Wall time")[0] == (ref / "results.md").read_text().split("Wall time")[0]
    assert not (out / "resume").exists()
    assert not list(out.rglob(".*.tmp"))
