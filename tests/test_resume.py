"""Resume after an interruption, run-folder semantics, and determinism (in-process, tiny synthetic runs).

Interruptions are injected in-process: ``KeyboardInterrupt`` right after the
k-th resume checkpoint is written (the command exits with 130, as on Ctrl-C),
or a damaged checkpoint file. Killing a real process with SIGKILL is
tests/test_fault_injection.py.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import skelreid.training.resume as R
from skelreid.cli import main
from skelreid.training.checkpoint import load_checkpoint

pytestmark = pytest.mark.slow   # end-to-end: `make test-fast` (pytest -m "not slow") leaves it out

TINY = ["--dataset", "synthetic", "--epochs", "2", "--rn-epochs", "6", "--report-both",
        "--set", "data.synthetic.num_persons=3", "--set", "data.synthetic.walks_per_person=3",
        "--set", "data.synthetic.frames=[60,80]", "--set", "encoder.hidden=8", "--set", "encoder.proj_dim=8",
        "--set", "encoder.batch_size=16", "--set", "rn.hidden=16", "--set", "rn.batch_size=32",
        "--no-progress"]


def _train(out: Path, *extra: str) -> int:
    return main(["train", *TINY, "--out", str(out), *extra])


def _weights(run: Path) -> dict[str, bytes]:
    """Every trained tensor file of a run (encoders and recognition networks), by name."""
    return {p.relative_to(run).as_posix(): p.read_bytes()
            for sub in ("encoders", "rn") for p in sorted((run / sub).glob("*.safetensors"))}


def _metrics(run: Path) -> dict:
    return json.loads((run / "results.json").read_text())["metrics"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ref") / "run"
    assert _train(out) == 0
    return out


def _interrupt_after(monkeypatch, k: int) -> None:
    real = R.ResumeFile.save
    count = {"n": 0}

    def save(self, *args, **kwargs):
        real(self, *args, **kwargs)
        count["n"] += 1
        if count["n"] == k:
            raise KeyboardInterrupt

    monkeypatch.setattr(R.ResumeFile, "save", save)


def test_same_seed_gives_identical_weights_and_metrics(tmp_path, reference):
    assert _train(tmp_path / "again") == 0
    assert _weights(tmp_path / "again") == _weights(reference)
    assert _metrics(tmp_path / "again") == _metrics(reference)


# Checkpoints with the default --checkpoint-minutes: encoder epochs 1-2 (k = 1, 2), RN epochs 1-6 (k = 3-8).
# With 1e-9 minutes every batch is one too: encoder (epoch, batch) k = 1: (0, 1), 2: (0, 2), 3: (1, 0), ...;
# RN k = 7: (0, 1) ... 11: (1, 0), ... 23: (3, 2). Identical weights imply identical metrics (evaluation
# is deterministic: test_same_seed_gives_identical_weights_and_metrics).
@pytest.mark.parametrize("k, minutes", [(1, "10"), (6, "10"), (1, "1e-9"), (8, "1e-9"), (23, "1e-9")])
def test_interrupted_run_resumes_bit_identically(tmp_path, reference, monkeypatch, capsys, k, minutes):
    out = tmp_path / "run"
    _interrupt_after(monkeypatch, k)
    assert _train(out, "--checkpoint-minutes", minutes, "--stages", "encoder,rn") == 130
    monkeypatch.undo()
    assert list((out / "resume").glob("*.json")), "a resume checkpoint was left for the rerun"
    capsys.readouterr()
    assert _train(out, "--checkpoint-minutes", minutes, "--stages", "encoder,rn") == 0
    assert "resuming after epoch" in capsys.readouterr().err
    assert _weights(out) == _weights(reference)
    assert not (out / "resume").exists()  # removed when the stages completed
    assert not list(out.rglob(".*.tmp"))


def test_damaged_latest_checkpoint_falls_back_to_the_previous(tmp_path, reference, monkeypatch, capsys):
    out = tmp_path / "run"
    _interrupt_after(monkeypatch, 4)  # encoder: 2 epoch-end checkpoints; RN: 2 more
    assert _train(out, "--stages", "encoder,rn") == 130
    monkeypatch.undo()
    latest = out / "resume" / "rn.safetensors"
    data = bytearray(latest.read_bytes())
    data[-1] ^= 0xFF
    latest.write_bytes(bytes(data))
    capsys.readouterr()
    assert _train(out, "--stages", "encoder,rn") == 0
    err = capsys.readouterr().err
    warning = [ln for ln in err.splitlines() if "warning" in ln]
    assert len(warning) == 1 and str(latest) in warning[0] and "checksum mismatch" in warning[0]
    assert "using the previous checkpoint" in warning[0]
    assert "resuming after epoch 1 " in err  # rn_prev: one RN epoch done
    assert _weights(out) == _weights(reference)


def test_both_checkpoints_damaged_restarts_the_stage(tmp_path, reference, monkeypatch, capsys):
    out = tmp_path / "run"
    _interrupt_after(monkeypatch, 1)
    assert _train(out, "--stages", "encoder,rn") == 130
    monkeypatch.undo()
    sidecar = out / "resume" / "encoder_rev_rec_LA.json"
    meta = json.loads(sidecar.read_text())
    meta["epoch"] = 2  # an edited sidecar: its own checksum no longer matches
    sidecar.write_text(json.dumps(meta))
    capsys.readouterr()
    assert _train(out, "--stages", "encoder,rn") == 0
    err = capsys.readouterr().err
    assert "the metadata file is damaged or was changed" in err and "starting the stage over" in err
    assert _weights(out) == _weights(reference)


def test_finished_stages_are_skipped_and_damaged_weights_retrained(tmp_path, reference, capsys):
    out = tmp_path / "run"
    assert _train(out) == 0
    capsys.readouterr()
    assert _train(out) == 0
    err = capsys.readouterr().err
    assert "encoder rev_rec_LA: already trained" in err and "recognition network: already trained" in err
    assert _metrics(out) == _metrics(reference)
    enc = out / "encoders" / "rev_rec_LA.safetensors"
    enc.write_bytes(enc.read_bytes()[:-8] + b"\0" * 8)
    assert _train(out) == 0
    err = capsys.readouterr().err
    assert f"{enc}: checksum mismatch" in err and "encoder rev_rec_LA is trained again" in err
    assert _weights(out) == _weights(reference)


def test_different_configuration_is_refused_and_resume_uses_the_saved_one(tmp_path, reference, monkeypatch, capsys):
    out = tmp_path / "run"
    _interrupt_after(monkeypatch, 1)
    assert _train(out) == 130
    monkeypatch.undo()
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    capsys.readouterr()
    assert _train(out, "--seed", "5") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("skelreid: error:") and "\n" not in err
    assert "different configuration (seed: 0 -> 5)" in err and "--resume" in err
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before  # nothing touched
    # --resume continues the saved run (seed 0), whatever the command line says
    assert main(["train", "--out", str(out), "--resume", "--no-progress", "--seed", "5"]) == 0
    assert "--resume: continuing" in capsys.readouterr().err
    assert _weights(out) == _weights(reference)
    assert _metrics(out) == _metrics(reference)


def test_only_rn_options_differ_points_to_the_rn_stage(tmp_path, reference, capsys):
    out = tmp_path / "run"
    assert _train(out) == 0
    capsys.readouterr()
    assert _train(out, "--rn-epochs", "3") == 2
    assert "--stages rn,evaluate" in capsys.readouterr().err


def test_resume_needs_a_run(tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path / "empty"), "--resume", "--no-progress"]) == 2
    assert "holds no run to continue" in capsys.readouterr().err


def test_folder_with_nothing_trained_is_reused(tmp_path, capsys):
    out = tmp_path / "run"
    assert _train(out, "--length", "500") == 2  # fails before training anything
    assert (out / "config.json").exists()
    assert _train(out, "--stages", "encoder") == 0  # a different configuration, but nothing to lose


def test_stale_temp_files_of_a_killed_process_are_removed(tmp_path):
    out = tmp_path / "run"
    (out / "encoders").mkdir(parents=True)
    stale = out / "encoders" / ".rev_rec_LA.safetensors.ab12cd34.tmp"
    stale.write_bytes(b"half")
    keep = out / ".notes.tmp"  # not a name skelreid writes: left alone
    keep.write_text("mine")
    assert _train(out, "--stages", "encoder") == 0
    assert not stale.exists() and keep.exists()


def test_a_run_folder_in_use_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, os, sys, time\n"
         f"fd = os.open({str(out / '.lock')!r}, os.O_RDWR | os.O_CREAT)\n"
         "fcntl.lockf(fd, fcntl.LOCK_EX); os.write(fd, b'4242'); print('locked', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert _train(out) == 2
        err = capsys.readouterr().err
        assert "is in use by another skelreid command (process 4242)" in err
    finally:
        holder.kill()
        holder.wait()
    assert _train(out, "--stages", "encoder") == 0  # the lock went with the process


def test_optimizer_state_round_trips_through_named_tensors():
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(3):
        opt.zero_grad()
        model(torch.randn(5, 4)).pow(2).sum().backward()
        opt.step()
    tensors, meta = R.optimizer_to_flat(opt)
    json.dumps(meta)  # plain JSON, no pickle
    model2 = torch.nn.Linear(4, 3)
    model2.load_state_dict(model.state_dict())
    opt2 = torch.optim.Adam(model2.parameters(), lr=1e-3)
    R.optimizer_from_flat(opt2, tensors, meta)
    x = torch.randn(5, 4)
    for m, o in ((model, opt), (model2, opt2)):
        o.zero_grad()
        m(x).pow(2).sum().backward()
        o.step()
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), model2.parameters()))


def test_checkpoint_rotation_always_leaves_a_complete_checkpoint(tmp_path, monkeypatch):
    """Fail the n-th file operation of a save; a complete checkpoint must remain every time."""
    import os

    model = torch.nn.Linear(2, 2)
    opt = torch.optim.Adam(model.parameters())
    for n in range(1, 12):
        folder = tmp_path / f"n{n}"
        rf = R.ResumeFile(folder, "stage", "fp")
        rf.save(model, opt, epoch=1, batch=0, history=[{"epoch": 1}])
        calls = {"n": 0}
        real = {name: getattr(os, name) for name in ("replace", "unlink", "link")}

        def failing(name):
            def op(*a, **kw):
                calls["n"] += 1
                if calls["n"] == n:
                    raise KeyboardInterrupt  # a kill at this point
                return real[name](*a, **kw)
            return op

        for name in real:
            monkeypatch.setattr(os, name, failing(name))
        try:
            rf.save(model, opt, epoch=2, batch=0, history=[{"epoch": 1}, {"epoch": 2}])
        except KeyboardInterrupt:
            pass
        monkeypatch.undo()
        point = R.ResumeFile(folder, "stage", "fp").load(model, opt)
        assert point is not None and point.epoch in (1, 2), n
        tensors, meta = load_checkpoint(point.source)
        assert meta["epoch"] == point.epoch
