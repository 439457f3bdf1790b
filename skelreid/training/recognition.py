"""The Recognition Network (RN) on frozen gait encodings, with model selection (spec §4).

Selection is honest by default: the epoch is chosen on a validation split of
training walks. ``select="test"`` reproduces the reference code, which keeps the
epoch with the best test accuracy; every report labels which rule was used.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ..config import RNConfig
from ..evaluation.metrics import average_window_logits
from .resume import ResumeFile, restore


RN_STEPS = ("auto", "eager")


class RecognitionNet(nn.Module):
    """``first_size -> hidden ReLU -> classes``, weights N(0, 1) (not scaled), biases zero."""

    def __init__(self, in_features: int, num_classes: int, hidden: int = 256):
        super().__init__()
        self.w1 = nn.Parameter(torch.randn(in_features, hidden))
        self.b1 = nn.Parameter(torch.zeros(hidden))
        self.w2 = nn.Parameter(torch.randn(hidden, num_classes))
        self.b2 = nn.Parameter(torch.zeros(num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x @ self.w1 + self.b1) @ self.w2 + self.b2


@dataclass
class EvalSet:
    """Feature rows of one split, ``rows_per_window`` contiguous rows per window.

    ``walk`` and ``position`` (when known) name each window: its walk id and its index in that walk.
    The windows need not be the split's in its order (``reference_quirks`` pads, cuts and reorders
    them), so whatever is reported per window is matched through these, never by position.
    """

    x: np.ndarray
    y: np.ndarray               # one label per window
    rows_per_window: int
    walk: np.ndarray | None = None      # walk id (str) of each window
    position: np.ndarray | None = None  # index of each window within its walk


@dataclass
class RNResult:
    model: RecognitionNet
    states: dict[str, dict]                 # "val" / "test" / "last" -> state dict
    best_epoch: dict[str, int]
    history: list[dict] = field(default_factory=list)


@torch.no_grad()
def window_logits(model: RecognitionNet, s: EvalSet, device: torch.device, batch: int = 65536,
                  x: torch.Tensor | None = None) -> np.ndarray:
    """Sequence (window) scores: raw logits averaged over the window's rows ("ap"). ``x``: the rows of
    ``s`` already on ``device`` (default: read from ``s.x``)."""
    model.eval()
    x = torch.from_numpy(s.x) if x is None else x
    out = [model(x[i: i + batch].to(device)).float().cpu() for i in range(0, len(x), batch)]
    logits = torch.cat(out).numpy() if out else np.zeros((0, model.b2.numel()), np.float32)
    return average_window_logits(logits, s.rows_per_window) if s.rows_per_window > 1 else logits


def accuracy(model: RecognitionNet, s: EvalSet, device: torch.device, x: torch.Tensor | None = None) -> float:
    scores = window_logits(model, s, device, x=x)
    return float((scores.argmax(1) == s.y).mean()) if len(s.y) else float("nan")


def train_rn(train: EvalSet, num_classes: int, cfg: RNConfig, device: torch.device, seed: int,
             val: EvalSet | None = None, test: EvalSet | dict[str, EvalSet] | None = None,
             progress: bool = False, resume: ResumeFile | None = None, desc: str = "recognition net",
             step: str = "auto", note=None) -> RNResult:
    """Train the RN; track the best epoch on ``val`` and, when given, on ``test``.

    ``test`` must only be passed when the user asked for test selection or for a
    report of both rules: without it this function never sees test data. Several
    named test sets (IAS-A / IAS-B) give one state per set, ``"test-<name>"``
    (each chosen on its own set, as the reference does), and ``"test"``, chosen
    on their mean Rank-1.

    With ``resume``, training continues from its last checkpoint (weights,
    optimizer, RNG, history and the best-so-far state of every rule) and
    checkpoints every epoch (see :mod:`skelreid.training.resume`); the result is
    the same as without interruption.

    ``step``: ``auto`` (default) trains with the plain eager loop on a CPU and, on CUDA, replays the
    whole step (batch gather, forward, loss, backward, Adam) as one CUDA graph: the RN's 128-row steps
    are bound by kernel launches on a GPU (about 1.1 ms each measured eagerly on an H200, 2,200 per
    KGBD epoch). ``eager`` keeps the eager loop everywhere. A capture that fails falls back to eager
    with one line through ``note``. On a CPU the loop, and so every number, is the one of earlier releases.
    """
    from tqdm.auto import tqdm

    from .. import faults

    if step not in RN_STEPS:
        raise ValueError(f"unknown RN step {step!r}; choose from {', '.join(RN_STEPS)}")
    torch.manual_seed(seed)
    model = RecognitionNet(train.x.shape[1], num_classes, cfg.hidden).to(device)
    graphs = step == "auto" and torch.device(device).type == "cuda"
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, **({"fused": True, "capturable": True} if graphs else {}))
    row_labels = np.repeat(train.y, train.rows_per_window)
    perm = np.random.default_rng(np.random.SeedSequence([seed, 0x52E])).permutation(len(row_labels))
    x = torch.from_numpy(train.x[perm]).to(device)
    y = torch.from_numpy(row_labels[perm]).to(device)
    n = len(y)
    bs = min(cfg.batch_size, n)
    starts = range(0, n - bs + 1, bs)
    loss_fn = nn.CrossEntropyLoss()
    tests = {} if test is None else (dict(test) if isinstance(test, dict) else {"test": test})
    multi = len(tests) > 1
    best = {"val": -1.0, "test": -1.0, **{f"test-{n}": -1.0 for n in tests if multi}}
    states: dict[str, dict] = {}
    best_epoch: dict[str, int] = {}
    history: list[dict] = []
    start, done0, extra = restore(resume, model, opt, history)
    _restore_best(extra, best, states, best_epoch)
    graph_step = _graph_step(model, opt, x, y, bs, loss_fn, note) if graphs else None
    on_device = {}  # CUDA: the evaluation rows stay on the device instead of crossing every epoch
    if torch.device(device).type == "cuda":
        on_device = {id(s): torch.from_numpy(s.x).to(device) for s in [val, *tests.values()] if s is not None}
    bar = tqdm(range(start, cfg.epochs), initial=start, total=cfg.epochs, desc=desc, unit="epoch",
               disable=not progress, dynamic_ncols=True)
    for epoch in bar:
        model.train()
        done = done0 if epoch == start else 0  # batches of this epoch done before the resume
        total = extra["total"].to(device, copy=True) if done else torch.zeros((), device=device)
        for s0 in starts[done:]:
            if graph_step is not None:
                total += graph_step(s0)
            else:
                loss = loss_fn(model(x[s0: s0 + bs]), y[s0: s0 + bs])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += loss.detach()
            done += 1
            faults.point("rn.step")
            if resume is not None and resume.due():  # every checkpoint_minutes inside a long epoch
                resume.save(model, opt, epoch=epoch, batch=done, history=history,
                            tensors={**_best_tensors(best, states, best_epoch), "total": total})
        row = {"epoch": epoch + 1, "train_loss": float(total) / max(len(starts), 1)}
        scores = []
        if val is not None and len(val.y):
            scores.append(("val", accuracy(model, val, device, on_device.get(id(val)))))
        accs = {n: accuracy(model, s, device, on_device.get(id(s))) for n, s in tests.items() if len(s.y)}
        if accs:
            scores.append(("test", float(np.mean(list(accs.values())))))
            if multi:
                scores += [(f"test-{n}", a) for n, a in accs.items()]
        for name, acc in scores:
            row[f"{name.replace('-', '_')}_rank1"] = acc
            if acc >= best[name]:  # ">=": the latest of equally good epochs, as the reference
                best[name] = acc
                states[name] = copy.deepcopy(model.state_dict())
                best_epoch[name] = epoch + 1
        history.append(row)
        if resume is not None:  # what a killed run continues from
            resume.save(model, opt, epoch=epoch + 1, batch=0, history=history,
                        tensors=_best_tensors(best, states, best_epoch))
        bar.set_postfix({k: f"{v:.3f}" for k, v in row.items() if k != "epoch"})
    states["last"] = copy.deepcopy(model.state_dict())
    best_epoch["last"] = cfg.epochs
    return RNResult(model, states, best_epoch, history)


def _graph_step(model: RecognitionNet, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, bs: int,
                loss_fn, note):
    """``step(s0) -> loss`` (a device scalar, valid until the next call): one RN step on rows
    ``s0 .. s0 + bs`` of the device-resident ``x``/``y``, replayed as one CUDA graph (the encoder's
    whole-step capture, :func:`skelreid.training.step.make_step`, with no clipping)."""
    from types import SimpleNamespace

    from .step import StepPlan, make_step

    plan = StepPlan(mode="graphs", fused=True, bf16=False)
    offsets = torch.arange(bs, device=x.device)

    def gather(idx: torch.Tensor):
        return x[idx], y[idx]

    def loss(m, xb, yb):
        return {"total": loss_fn(m(xb), yb).reshape(1)}

    step = make_step(plan, model, opt, x, y, loss, float("inf"), note=note, gather=gather)
    holder = SimpleNamespace(idx=torch.empty(bs, dtype=torch.long, device=x.device))

    def run(s0: int) -> torch.Tensor:
        torch.add(offsets, s0, out=holder.idx)
        return step(holder.idx)["total"][0]

    return run


def _best_tensors(best: dict[str, float], states: dict[str, dict], best_epoch: dict[str, int]) -> dict:
    """The best-so-far state of every selection rule, as named tensors (exact values)."""
    out = {}
    for name, state in states.items():
        out[f"best.{name}"] = torch.tensor(best[name], dtype=torch.float64)
        out[f"best_epoch.{name}"] = torch.tensor(best_epoch[name], dtype=torch.int64)
        out.update({f"state.{name}.{k}": v for k, v in state.items()})
    return out


def _restore_best(extra: dict, best: dict[str, float], states: dict[str, dict], best_epoch: dict[str, int]) -> None:
    for name in list(best):
        if f"best.{name}" in extra:
            best[name] = float(extra[f"best.{name}"])
            best_epoch[name] = int(extra[f"best_epoch.{name}"])
            prefix = f"state.{name}."
            states[name] = {k[len(prefix):]: v.clone() for k, v in extra.items() if k.startswith(prefix)}

