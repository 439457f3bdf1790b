"""The encoders' training step, executed three ways (``train.step``), and its optimizer.

For a model this small a training step on a GPU is bound by kernel launches, not arithmetic, so
how the step is launched decides the speed:

``eager``     PyTorch as written: forward, every loss term, backward, clipping by value, Adam.
              The CPU default; bit-identical to every earlier skelreid release.
``compiled``  the forward pass and the losses through ``torch.compile`` (``train.compile_backend``,
              default ``inductor``; on CUDA with ``mode="reduce-overhead"``, i.e. CUDA graphs around
              the compiled forward and backward graphs); backward, clipping and Adam as in eager.
``graphs``    the *whole* step (gather of the batch from the device-resident windows, forward,
              losses, backward, clipping, Adam) captured once in a CUDA graph and replayed for every
              batch: one launch per step. The CUDA default (``auto``).

In every mode the windows stay on the device, batches are index tensors on the device, all batches
of an epoch have one shape (the last partial batch is dropped, as the reference does), and the loss
terms are accumulated on the device and read once per epoch: nothing inside an epoch waits for the
device. ``train.fused_adam`` (``auto``: on CUDA) uses Adam's fused kernel. ``train.bf16`` runs the
forward pass under bfloat16 autocast (CUDA only; it changes the numbers, so it is part of the
encoders' fingerprint, and its effect on accuracy has not been measured yet).

Every option falls back, with one line on stderr, where it cannot run (``graphs`` or fused Adam on a
CPU, ``graphs`` under torchrun, a compile or capture that fails).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

@dataclass
class StepPlan:
    mode: str
    fused: bool
    bf16: bool
    backend: str = "inductor"
    notes: list[str] = field(default_factory=list)


def plan_step(train_cfg, device: torch.device, distributed: bool = False) -> StepPlan:
    """What ``train_cfg`` (a :class:`~skelreid.config.TrainConfig`) means on ``device``; ``notes`` say
    what fell back and why."""
    cuda = torch.device(device).type == "cuda"
    notes = []
    mode = train_cfg.step
    if mode == "auto":
        mode = "graphs" if cuda and not distributed else "eager"
    if mode == "graphs" and not cuda:
        notes.append("train.step=graphs needs a CUDA device; using the eager step")
        mode = "eager"
    if mode == "graphs" and distributed:
        notes.append("train.step=graphs is not used under torchrun (the gradient all-reduce is not captured); "
                     "using the eager step")
        mode = "eager"
    fused = cuda if train_cfg.fused_adam == "auto" else train_cfg.fused_adam == "on"
    if fused and not cuda:
        notes.append("train.fused_adam=on needs a CUDA device; using the standard Adam")
        fused = False
    bf16 = bool(train_cfg.bf16)
    if bf16 and not cuda:
        notes.append("train.bf16 autocast is used on CUDA only; training in float32")
        bf16 = False
    return StepPlan(mode, fused, bf16, train_cfg.compile_backend, notes)


def make_optimizer(model: torch.nn.Module, lr: float, plan: StepPlan) -> torch.optim.Optimizer:
    """Adam (``lr``); fused and capturable as ``plan`` needs. Same update rule in every case."""
    kwargs = {}
    if plan.fused:
        kwargs["fused"] = True
    if plan.mode == "graphs":
        kwargs["capturable"] = True
    return torch.optim.Adam(model.parameters(), lr=lr, **kwargs)


StepFn = Callable[[torch.Tensor], dict]


def make_step(plan: StepPlan, model, opt, x_all: torch.Tensor, y_all: torch.Tensor, loss_fn,
              grad_clip: float, after_backward: Callable[[], None] | None = None,
              note: Callable[[str], None] | None = None, gather=None) -> StepFn:
    """A function ``step(batch_index) -> {term: per-axis tensor}`` that trains on one batch.

    ``gather(batch_index) -> (x, y)`` picks a batch out of the device-resident windows (default:
    the same windows for every axis, ``x_all[:, index]``; several runs trained together with their
    own orders pass their own).

    ``loss_fn(model, x, y) -> {term: [A] tensor}`` (with ``"total"``); ``after_backward`` runs between
    backward and clipping (the torchrun gradient average). The returned terms are detached tensors on
    the device; with ``graphs`` they are the graph's output buffers, overwritten by the next call, so
    add them to an accumulator before calling again.
    """
    if gather is None:
        def gather(idx: torch.Tensor):
            return x_all[:, idx], y_all[:, idx]
    if plan.mode == "graphs":
        def eager() -> StepFn:
            plan.mode = "eager"
            return make_step(plan, model, opt, x_all, y_all, loss_fn, grad_clip, after_backward, note, gather)

        return _graph_step(plan, model, opt, gather, loss_fn, grad_clip, eager, note)
    forward = loss_fn
    if plan.mode == "compiled":
        forward = _compiled(plan, loss_fn, model, note)
    autocast = _autocast(plan, x_all.device)

    def step(idx: torch.Tensor) -> dict:
        x, y = gather(idx)
        with autocast():
            terms = forward(model, x, y)
        opt.zero_grad(set_to_none=True)
        terms["total"].sum().backward()
        if after_backward is not None:
            after_backward()
        torch.nn.utils.clip_grad_value_(model.parameters(), grad_clip)
        opt.step()
        return {k: v.detach() for k, v in terms.items()}

    return step


def _autocast(plan: StepPlan, device: torch.device, cache: bool = True):
    """bfloat16 autocast when asked for. Under CUDA graph capture autocast's weight-cast cache must be
    off (a cached cast would be captured once and never refreshed after the weights change)."""
    import contextlib

    if plan.bf16:
        return lambda: torch.autocast(device.type, dtype=torch.bfloat16, cache_enabled=cache)
    return contextlib.nullcontext


def _compiled(plan: StepPlan, loss_fn, model, note):
    """``loss_fn`` through ``torch.compile``, falling back to ``loss_fn`` itself (one line through
    ``note``) when compiling fails. ``torch.compile`` compiles lazily, at the first call, so the
    fallback covers that call too: it runs before anything is updated, and eager then computes it."""
    cuda = next(model.parameters()).device.type == "cuda"
    options = {"backend": plan.backend, "dynamic": False}
    if cuda and plan.backend == "inductor":
        options["mode"] = "reduce-overhead"

    def fall_back(what: str, exc: Exception):
        if note:
            note(f"train.step=compiled: {what} ({type(exc).__name__}: {' '.join(str(exc).split())[:200]}); "
                 "using the eager step")
        plan.mode = "eager"
        return loss_fn

    try:
        compiled = torch.compile(loss_fn, **options)
    except Exception as exc:  # no compiler available: eager
        return fall_back("torch.compile is not available here", exc)
    current = {"fn": compiled, "compiled_once": False}

    def forward(model, x, y):
        if current["compiled_once"]:
            return current["fn"](model, x, y)
        try:
            out = current["fn"](model, x, y)   # the first call compiles
        except Exception as exc:               # a compiler error: nothing was updated yet
            current["fn"] = fall_back("compiling the step failed", exc)
            return loss_fn(model, x, y)
        current["compiled_once"] = True
        return out

    return forward


def _graph_step(plan: StepPlan, model, opt, gather, loss_fn, grad_clip, eager, note) -> StepFn:
    """The whole step in one CUDA graph (PyTorch's whole-network capture recipe).

    On the first call, a few warm-up iterations on a side stream create the optimizer state and the
    autograd buffers; the weights and the optimizer state are then put back exactly as they were
    (zeros for a fresh Adam, which equals a new one; the checkpoint's values after a resume), so the
    first replay is the first real step. Every later call copies the batch index into the graph's
    input buffer and replays."""
    params = list(model.parameters())
    autocast = _autocast(plan, params[0].device, cache=False)
    cap: dict = {}

    def body() -> dict:
        x, y = gather(cap["idx"])
        with autocast():
            terms = loss_fn(model, x, y)
        terms["total"].sum().backward()
        torch.nn.utils.clip_grad_value_(params, grad_clip)
        opt.step()
        return {k: v.detach() for k, v in terms.items()}

    def restore(saved_params, saved_state) -> None:
        with torch.no_grad():
            for p, v in zip(params, saved_params):
                p.copy_(v)
            for p in list(opt.state):
                if p in saved_state:
                    for k, v in opt.state[p].items():
                        if torch.is_tensor(v):
                            v.copy_(saved_state[p][k])
                else:  # state created by the warm-up: zeros, as a fresh Adam's
                    for v in opt.state[p].values():
                        if torch.is_tensor(v):
                            v.zero_()

    def capture(idx: torch.Tensor) -> None:
        cap["idx"] = idx.clone()
        with torch.no_grad():
            saved_params = [p.detach().clone() for p in params]
            saved_state = {p: {k: v.clone() for k, v in st.items() if torch.is_tensor(v)}
                           for p, st in opt.state.items()}
        try:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(3):
                    opt.zero_grad(set_to_none=True)
                    body()
            torch.cuda.current_stream().wait_stream(side)
            restore(saved_params, saved_state)    # undo the warm-up
            graph = torch.cuda.CUDAGraph()
            opt.zero_grad(set_to_none=True)
            with torch.cuda.graph(graph):
                out = body()
        finally:
            restore(saved_params, saved_state)    # capturing runs nothing, but leave no doubt
        cap.update(graph=graph, out=out)

    def step(idx: torch.Tensor) -> dict:
        if "fallback" in cap:
            return cap["fallback"](idx)
        if "graph" not in cap:
            try:
                capture(idx)
            except Exception as exc:  # a capture that fails (driver, unsupported op): the eager step
                if note:
                    note(f"train.step=graphs: capturing the step failed ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0][:160] if str(exc) else ''}); using the eager step")
                opt.zero_grad(set_to_none=True)
                cap["fallback"] = eager()
                return cap["fallback"](idx)
        cap["idx"].copy_(idx)
        cap["graph"].replay()
        return cap["out"]

    return step
