"""Self-supervised training of the per-axis gait encoder-decoders (spec §3).

The three axis models are trained together as one batched model (every
parameter has a leading axis dimension): the per-axis losses are summed before
the backward pass, so each axis still receives exactly its own gradients, and
Adam and clipping by value act element-wise, so the updates equal those of
three separate runs.
"""
from __future__ import annotations

import csv
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .. import losses as L
from ..config import RunConfig
from ..io import atomic_write
from ..models.seq2seq import GaitSeq2Seq
from .checkpoint import load_checkpoint, save_checkpoint
from .resume import ResumeFile, restore

AXES = ("x", "y", "z")
TERMS = ("reconstruction", "attention", "contrastive", "l2", "total")


@dataclass
class EncoderSpec:
    """What one encoder set is: its pretext task and attention variant."""

    task: str
    attention: str

    @property
    def tag(self) -> str:
        return f"{self.task}_{self.attention}"


@dataclass
class TrainHistory:
    epochs: list[dict] = field(default_factory=list)

    def column(self, name: str) -> list[float]:
        return [e[name] for e in self.epochs]


def to_axis_major(windows: np.ndarray) -> torch.Tensor:
    """``[N, f, J, D]`` -> ``[D, N, f, J]``: one slice per coordinate axis."""
    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(windows, -1, 0)))


def build_model(cfg: RunConfig, num_joints: int, dims: int, contrastive: bool | None = None) -> GaitSeq2Seq:
    e = cfg.encoder
    if contrastive is None:
        contrastive = e.method == "cage"
    return GaitSeq2Seq(
        num_axes=dims, num_joints=num_joints, length=cfg.data.length, hidden=e.hidden,
        layers=e.layers, contrastive=contrastive, proj_dim=e.proj_dim,
        teacher_forcing=e.teacher_forcing, kernel_seed=2 if cfg.reference_quirks else None,
    )


def batch_order(n: int, batch_size: int, shuffle_once: bool, seed: int) -> list[np.ndarray]:
    """Index batches for one epoch: consecutive slices, last partial batch dropped.

    CAGE keeps the walk order (its contrastive positives are batch neighbours);
    AGE permutes the windows once, with the same permutation every epoch.
    A set smaller than one batch gives a single batch of everything.
    """
    order = np.arange(n)
    if shuffle_once:
        order = np.random.default_rng(np.random.SeedSequence([seed, 0xA6E])).permutation(n)
    if n < batch_size:
        return [order]
    return [order[i: i + batch_size] for i in range(0, n - batch_size + 1, batch_size)]


def step_losses(model: GaitSeq2Seq, x: torch.Tensor, y: torch.Tensor, objective: torch.Tensor | None,
                temperature: float, l2: float, contrastive: bool) -> dict[str, torch.Tensor]:
    """Per-axis loss terms ``[A]`` of one batch (spec §2.3-2.7), keyed by :data:`TERMS`."""
    out = model(x, y)
    use_contrastive = contrastive and out.projection is not None and x.shape[1] > 2
    terms = L.encoder_objective(out, y, model.parameters(), la_target=objective,
                                temperature=temperature if use_contrastive else None, l2_weight=l2)
    return terms._asdict()


def train_encoder(inputs: np.ndarray, targets: np.ndarray, spec: EncoderSpec, cfg: RunConfig,
                  device: torch.device, out_prefix: Path | None = None, meta: dict | None = None,
                  log_dir: Path | None = None, resume: ResumeFile | None = None, until: int | None = None,
                  monitor=None) -> tuple[GaitSeq2Seq, TrainHistory]:
    """Train one encoder set (all axes) on ``inputs -> targets`` (both ``[N, f, J, D]``).

    With ``resume``, training continues from its last checkpoint and checkpoints
    every epoch (see :mod:`skelreid.training.resume`); the result is the same.
    ``until`` stops after that many epochs (a milestone: with ``resume`` the next
    call continues from there); ``out_prefix`` then receives that epoch's weights.
    ``monitor`` (a :class:`~skelreid.training.monitor.WalkMonitor`) is scored every
    ``cfg.monitor_every`` epochs into the history (``monitor_rank1``).
    """
    from tqdm.auto import tqdm

    from .. import faults
    from . import distributed as ddp  # data-parallel hooks (torchrun); no-ops in a single process

    e = cfg.encoder
    seed = cfg.seed
    torch.manual_seed(seed)
    contrastive = e.method == "cage"
    model = build_model(cfg, inputs.shape[2], inputs.shape[3], contrastive).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=e.lr)
    x_all = to_axis_major(inputs).to(device)
    y_all = to_axis_major(targets).to(device)
    objective = L.la_objective(cfg.data.length).to(device) if spec.attention == "LA" else None
    batches = [torch.as_tensor(b, device=device) for b in
               batch_order(len(inputs), e.batch_size, shuffle_once=e.method == "age", seed=seed)]
    batches = ddp.local_batches(batches)  # torchrun: this rank's contiguous shard of the batches
    history = TrainHistory()
    start, done0, extra = restore(resume, model, opt, history.epochs)  # (0, 0, {}) without a checkpoint
    writer = _tensorboard(log_dir if ddp.is_main() else None)
    stop = e.epochs if until is None else min(int(until), e.epochs)
    every = int(cfg.monitor_every) if monitor is not None else 0
    bar = tqdm(range(start, stop), initial=start, total=e.epochs, desc=f"encoder {spec.tag}", unit="epoch",
               disable=not cfg.progress, dynamic_ncols=True)
    model.train()
    for epoch in bar:
        t0 = time.perf_counter()
        done = done0 if epoch == start else 0  # batches of this epoch done before the resume
        sums = {k: extra[f"sum.{k}"].to(device, copy=True) if done else torch.zeros(x_all.shape[0], device=device)
                for k in TERMS}
        for idx in batches[done:]:
            terms = step_losses(model, x_all[:, idx], y_all[:, idx], objective, e.temperature, e.l2, contrastive)
            opt.zero_grad(set_to_none=True)
            terms["total"].sum().backward()
            ddp.average_gradients(model)  # torchrun: mean gradient over the ranks, before clipping
            torch.nn.utils.clip_grad_value_(model.parameters(), e.grad_clip)
            opt.step()
            for k in TERMS:
                sums[k] += terms[k].detach()
            done += 1
            faults.point("encoder.step")
            if resume is not None and resume.due():  # every checkpoint_minutes inside a long epoch
                resume.save(model, opt, epoch=epoch, batch=done, history=history.epochs,
                            tensors={f"sum.{k}": v for k, v in sums.items()})
        seconds = time.perf_counter() - t0
        row = {"epoch": epoch + 1, "seconds": seconds,
               "windows_per_s": len(batches) * len(batches[0]) / max(seconds, 1e-9)}
        for k in TERMS:
            per_axis = (sums[k] / len(batches)).cpu().numpy()
            row[k] = float(per_axis.sum())
            for a, v in zip(AXES, per_axis):
                row[f"{k}_{a}"] = float(v)
        if every and (epoch + 1) % every == 0 and ddp.is_main():
            t1 = time.perf_counter()
            row["monitor_rank1"] = monitor.rank1(model, device)
            row["monitor_seconds"] = time.perf_counter() - t1
            model.train()
        history.epochs.append(row)
        if resume is not None:  # what a killed run continues from
            resume.save(model, opt, epoch=epoch + 1, batch=0, history=history.epochs)
        post = dict(rec=f"{row['reconstruction']:.3g}", att=f"{row['attention']:.3g}",
                    con=f"{row['contrastive']:.3g}", win_s=f"{row['windows_per_s']:.0f}")
        if "monitor_rank1" in row:
            post["mon_r1"] = f"{100 * row['monitor_rank1']:.1f}"
        bar.set_postfix(post)
        if writer is not None:
            for k in TERMS:
                writer.add_scalar(f"{spec.tag}/{k}", row[k], epoch + 1)
            if "monitor_rank1" in row:
                writer.add_scalar(f"{spec.tag}/monitor_rank1", row["monitor_rank1"], epoch + 1)
    if writer is not None:
        writer.close()
    if out_prefix is not None and ddp.is_main():
        save_encoder(out_prefix, model, spec, cfg, history, meta or {})
    ddp.barrier()  # torchrun: the other ranks wait until the main rank has saved
    return model, history


def _tensorboard(log_dir: Path | None):
    if log_dir is None:
        return None
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(str(log_dir))


def save_encoder(prefix: Path, model: GaitSeq2Seq, spec: EncoderSpec, cfg: RunConfig,
                 history: TrainHistory, meta: dict) -> None:
    save_checkpoint(prefix, model.state_dict(), {
        **meta, "kind": "encoder", "task": spec.task, "attention": spec.attention,
        "epochs": len(history.epochs), "config": cfg.to_dict(),
        "model": model.config(),
    })
    write_history_csv(prefix.with_name(prefix.name + "_losses.csv"), history)


def write_history_csv(path: Path, history: TrainHistory) -> None:
    if not history.epochs:
        return
    keys = list(dict.fromkeys(k for row in history.epochs for k in row))  # the monitor fills some rows only
    with atomic_write(path, "w") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        for row in history.epochs:
            w.writerow({k: (f"{row[k]:.6g}" if isinstance(row.get(k), float) else row.get(k, ""))
                        for k in keys})


def load_encoder(prefix: Path, device: torch.device) -> tuple[GaitSeq2Seq, dict]:
    tensors, meta = load_checkpoint(prefix)
    model = GaitSeq2Seq(**meta["model"])
    model.load_state_dict(tensors)
    return model.to(device).eval(), meta


@torch.no_grad()
def embed_windows(model: GaitSeq2Seq, windows: np.ndarray, device: torch.device,
                  batch_size: int = 2048) -> np.ndarray:
    """Context vectors of every window: ``[N, A, f, H]`` float32 (eval mode, no gradients)."""
    from .. import faults

    out = []
    for i in range(0, len(windows), batch_size):
        x = to_axis_major(windows[i: i + batch_size]).to(device)
        out.append(model.embed(x).permute(1, 0, 2, 3).float().cpu().numpy())
        faults.point("features.batch")
    if not out:
        return np.zeros((0, model.num_axes, model.length, model.hidden), np.float32)
    return np.concatenate(out)


@torch.no_grad()
def mean_attention(model: GaitSeq2Seq, windows: np.ndarray, device: torch.device,
                   max_windows: int = 4096) -> np.ndarray:
    """Mean attention matrix per axis ``[A, f, f]`` over (up to) ``max_windows`` windows."""
    model.eval()
    x = to_axis_major(windows[:max_windows]).to(device)
    return model(x).attention.mean(dim=1).cpu().numpy()
