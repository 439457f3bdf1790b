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


def test_a_compile_that_fails_at_the_first_step_falls_back_to_eager_with_one_line(windows, monkeypatch):
    """torch.compile compiles lazily: its failure surfaces at the first call of the compiled function,
    which must fall back to eager (one note), give the eager result, and never try the compiler again."""
    from skelreid.training.step import StepPlan, make_optimizer, make_step

    calls = []

    def broken_compile(fn, **options):
        def compiled(*args, **kwargs):
            calls.append(1)
            raise RuntimeError("backend compiler failed: no C compiler")
        return compiled

    def loss_fn(model, x, y):
        out = model(x)
        return {"total": ((out - y) ** 2).mean(dim=(1, 2))}

    def run(mode):
        torch.manual_seed(0)
        model = torch.nn.Linear(4, 3)
        plan = StepPlan(mode, fused=False, bf16=False, backend="aot_eager")
        opt = make_optimizer(model, 1e-2, plan)
        g = torch.Generator().manual_seed(1)
        x, y = torch.randn(2, 8, 4, generator=g), torch.randn(2, 8, 3, generator=g)
        notes = []
        step = make_step(plan, model, opt, x, y, loss_fn, grad_clip=5.0, note=notes.append)
        terms = [step(torch.arange(i, i + 4)) for i in (0, 4, 0)]
        return model, terms, notes, plan

    eager_model, eager_terms, eager_notes, _ = run("eager")
    monkeypatch.setattr(torch, "compile", broken_compile)
    model, terms, notes, plan = run("compiled")
    assert len(calls) == 1 and plan.mode == "eager"
    assert len(notes) == 1 and "compiling the step failed" in notes[0] and "RuntimeError" in notes[0]
    assert "\n" not in notes[0] and "using the eager step" in notes[0]
    for a, b in zip(eager_terms, terms):
        assert torch.equal(a["total"], b["total"])
    for p, q in zip(eager_model.parameters(), model.parameters()):
        assert torch.equal(p, q)
