"""SIGKILL a real ``skelreid train`` process at random (seeded) moments, rerun the same command each
time, and compare with an uninterrupted run: the final results must be identical.

Real KGBD (4 persons, the middle of each walk), a tiny model, CPU, resume checkpoints every epoch and
every ~0.1 s inside an epoch. Three kills come a random 0-2 s after the process writes its first new
checkpoint (so they land in encoder or RN training, or in a checkpoint rotation), the last one at a
random fraction of the uninterrupted run's wall time (start-up, loading, training or report writing).
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

KILLS = 4
SEED = 20240613


def _command(root: Path, cache: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "skelreid.cli", "train", "--dataset", "KGBD", "--root", str(root),
            "--cache", str(cache), "--out", str(out), "--persons", "4", "--set", "data.clip=150",
            "--epochs", "8", "--set", "encoder.hidden=8", "--set", "encoder.proj_dim=8",
            "--set", "encoder.batch_size=64", "--rn-epochs", "40", "--set", "rn.hidden=16",
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
    """A resume checkpoint was written after ``t0`` (the process is training)."""
    return any(p.stat().st_mtime > t0 for p in (out / "resume").glob("*.json")) if (out / "resume").exists() else False


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


@pytest.mark.kgbd
def test_sigkill_at_random_moments_then_rerun_gives_identical_results(kgbd_data, tmp_path):
    root = tmp_path / "Data"
    for p in ("Person001", "Person002", "Person003", "Person004"):
        shutil.copytree(kgbd_data / p, root / p)
    cache = tmp_path / "cache"

    ref = tmp_path / "reference"
    wall = _run_to_end(_command(root, cache, ref))  # also fills the parse cache

    # Kills while it trains (the first one from a fresh start, so surely mid-encoder), then one anywhere:
    # start-up, loading, training or report writing.
    rng = random.Random(SEED)
    plan = [("training", rng.uniform(0.0, 2.0)) for _ in range(KILLS - 1)] + [("any", rng.uniform(0.2, 0.95) * wall)]
    out = tmp_path / "killed"
    moments = [_kill_at(_command(root, cache, out), out, when, budget=3 * wall) for when in plan]
    print("reference run", round(wall, 2), "s; moments:", moments)
    assert sum(m[2] == "killed" and bool(m[3]) for m in moments) >= 1, moments  # at least one mid-training

    _run_to_end(_command(root, cache, out))
    got = json.loads((out / "results.json").read_text())
    want = json.loads((ref / "results.json").read_text())
    assert got["metrics"] == want["metrics"], moments
    assert _weights(out) == _weights(ref), moments
    assert not (out / "resume").exists()
    assert not list(out.rglob(".*.tmp"))
