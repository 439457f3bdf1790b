"""The fast training step (skelreid/training/step.py) on CPU, where CI runs: the compiled path equals the
eager one for every pretext task, nothing inside an epoch waits for the device, and every option that
cannot run here falls back with one line."""
from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest
import torch

from skelreid.config import build_config
from skelreid.pretext import TASKS
from skelreid.data.synthetic import generate_dataset
from skelreid.data.windows import make_windows
from skelreid.training.encoder import EncoderSpec, train_encoder

SKELREID = str(Path(__file__).resolve().parents[1] / "skelreid")


def _cfg(**train):
    cfg = build_config("synthetic", [{"encoder": {"epochs": 2, "hidden": 8, "proj_dim": 8, "batch_size": 16},
                                      "train": train, "progress": False}])
    return cfg


@pytest.fixture(scope="module")
def windows():
    return make_windows(generate_dataset(num_persons=3, walks_per_person=2, frames=(60, 70), seed=5),
                        length=6, clip=5, normalise="root")


def _train(ws, task: str, attention: str, cfg, n: int | None = None):
    x, y = TASKS.get(task).make(ws, cfg.seed)
    n = n or len(x)
    return train_encoder(np.ascontiguousarray(x[:n]), np.ascontiguousarray(y[:n]), EncoderSpec(task, attention),
                         cfg, torch.device("cpu"))


# rev_rec_plus trains exactly these three (task, attention) members
@pytest.mark.parametrize("task, attention", [("rev_rec", "LA"), ("prediction", "BA"), ("sorting", "BA")])
def test_compiled_step_gives_the_eager_losses_and_weights(windows, task, attention):
    eager_model, eager = _train(windows, task, attention, _cfg(step="eager"))
    compiled_model, compiled = _train(windows, task, attention, _cfg(step="compiled", compile_backend="aot_eager"))
    for a, b in zip(eager.epochs, compiled.epochs):
        for term in ("reconstruction", "attention", "contrastive", "l2", "total"):
            assert b[term] == pytest.approx(a[term], rel=1e-5, abs=1e-6), term
    for (name, p), q in zip(eager_model.named_parameters(), compiled_model.parameters()):
        torch.testing.assert_close(q, p, rtol=1e-5, atol=1e-6, msg=name)
    moved = any(not torch.equal(p, q) for p, q in zip(eager_model.parameters(),
                                                       type(eager_model)(**eager_model.config()).parameters()))
    assert moved


class _SyncCounter:
    """Counts host reads of tensor values (item, cpu, numpy, tolist, float, bool, int) made directly by
    skelreid code. (Reads inside torch, such as CPU Adam reading its CPU step counter, are not host syncs
    of a device; on CUDA skelreid uses fused Adam, whose step counter stays on the device.)"""

    METHODS = ("item", "cpu", "numpy", "tolist", "__float__", "__bool__", "__int__", "__index__")

    def __init__(self, monkeypatch):
        self.calls: list[str] = []
        for name in self.METHODS:
            real = getattr(torch.Tensor, name)
            monkeypatch.setattr(torch.Tensor, name, self._wrap(name, real))

    def _wrap(self, name, real):
        counter = self

        def wrapped(tensor, *args, **kwargs):
            frame = inspect.currentframe().f_back
            if frame is not None and frame.f_code.co_filename.startswith(SKELREID):
                counter.calls.append(f"{name} at {Path(frame.f_code.co_filename).name}:{frame.f_lineno}")
            return real(tensor, *args, **kwargs)

        return wrapped


def test_no_host_sync_inside_an_epoch(windows, monkeypatch):
    """The host reads the device once per epoch (the loss sums), however many batches the epoch has."""
    cfg = _cfg(step="eager")
    cfg.encoder.epochs = 1
    counts = {}
    for batches in (2, 5):
        counter = _SyncCounter(monkeypatch)
        _train(windows, "rev_rec", "LA", cfg, n=batches * cfg.encoder.batch_size)
        counts[batches] = list(counter.calls)
        monkeypatch.undo()
    assert len(counts[2]) == len(counts[5]), (counts[2], counts[5])
    assert all("encoder.py" in c for c in counts[5]), counts[5]     # only the epoch-end read of the sums


def test_options_that_cannot_run_on_cpu_fall_back_with_one_line_each(windows, capsys):
    reference, ref_hist = _train(windows, "rev_rec", "LA", _cfg(step="eager"))
    capsys.readouterr()
    model, hist = _train(windows, "rev_rec", "LA", _cfg(step="graphs", fused_adam="on", bf16=True))
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("skelreid:")]
    assert any("train.step=graphs needs a CUDA device; using the eager step" in ln for ln in err), err
    assert any("train.fused_adam=on needs a CUDA device" in ln for ln in err), err
    assert any("train.bf16 autocast is used on CUDA only" in ln for ln in err), err
    for p, q in zip(reference.parameters(), model.parameters()):   # the fallback is the eager step itself
        assert torch.equal(p, q)
    assert [r["total"] for r in hist.epochs] == [r["total"] for r in ref_hist.epochs]


def test_auto_is_eager_on_cpu_and_graphs_on_cuda():
    from skelreid.training.step import plan_step

    cfg = _cfg()
    cpu = plan_step(cfg.train, torch.device("cpu"))
    assert (cpu.mode, cpu.fused, cpu.notes) == ("eager", False, [])
    cuda = plan_step(cfg.train, torch.device("cuda", 0))
    assert (cuda.mode, cuda.fused) == ("graphs", True)
    assert plan_step(cfg.train, torch.device("cuda", 0), distributed=True).mode == "eager"
