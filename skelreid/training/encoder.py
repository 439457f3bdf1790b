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
from ..console import note
from .resume import ResumeFile, restore
from .step import make_optimizer, make_step, plan_step

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


@dataclass
class EncoderRun:
    """One run's share of a (possibly joint) encoder training: its data, configuration and outputs."""

    inputs: np.ndarray                   # [N, f, J, D]
    targets: np.ndarray                  # [N, f, J, D]
    cfg: RunConfig
    out_prefix: Path | None = None       # where the weights go (a milestone's folder with ``until``)
    meta: dict | None = None
    log_dir: Path | None = None          # TensorBoard
    monitor: object = None               # a WalkMonitor, scored every cfg.monitor_every epochs


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
    ((model, history),) = train_encoders([EncoderRun(inputs, targets, cfg, out_prefix, meta, log_dir, monitor)],
                                         spec, device, resume=resume, until=until)
    return model, history


def merge_runs(models: list[GaitSeq2Seq]) -> GaitSeq2Seq:
    """One model whose axis dimension holds every model's axes in turn (run-major): the runs train as
    one batched computation and stay mathematically independent (see the module documentation)."""
    if len(models) == 1:
        return models[0]
    cfg = models[0].config()
    cfg["num_axes"] = sum(m.num_axes for m in models)
    ref = next(models[0].parameters())
    merged = GaitSeq2Seq(**cfg).to(device=ref.device, dtype=ref.dtype)
    parts = [dict(m.named_parameters()) for m in models]
    with torch.no_grad():
        for name, p in merged.named_parameters():
            p.copy_(torch.cat([part[name] for part in parts], dim=0))
    return merged


def _check_joint(runs: list[EncoderRun]) -> None:
    """Runs trained together may differ in their seed only."""
    from ..config import config_differences

    first = runs[0]
    for r in runs[1:]:
        if r.inputs.shape != first.inputs.shape:
            raise ValueError(f"runs trained together need the same windows: {r.inputs.shape} vs {first.inputs.shape}")
        diffs = [d for d in config_differences(first.cfg, r.cfg) if not d.startswith("seed:")]
        if diffs:
            raise ValueError(f"runs trained together may differ in their seed only, not in {diffs[0]}")


def train_encoders(runs: list[EncoderRun], spec: EncoderSpec, device: torch.device,
                   resume: ResumeFile | None = None, until: int | None = None) -> list[tuple[GaitSeq2Seq, TrainHistory]]:
    """Train one encoder set for every run in ``runs`` as one batched computation (``--seeds``).

    Each run's model starts from its own seed's initial weights and sees its own data order (AGE
    shuffles by seed; ``sorting`` permutes frames by seed); the axis dimension of the batched model
    holds run 0's axes, then run 1's, and so on. Every loss term is per axis, clipping and Adam act
    element-wise, so each run receives exactly the updates it would receive alone (equal within float
    tolerance: the batched kernels may round differently). One run is the ordinary training, unchanged.
    Returns ``(model, history)`` per run; each run's weights go to its ``out_prefix``.
    """
    from tqdm.auto import tqdm

    from .. import faults
    from . import distributed as ddp  # data-parallel hooks (torchrun); no-ops in a single process

    _check_joint(runs)
    cfg = runs[0].cfg
    e = cfg.encoder
    R = len(runs)
    contrastive = e.method == "cage"
    models = []
    for r in runs:
        torch.manual_seed(r.cfg.seed)
        models.append(build_model(r.cfg, r.inputs.shape[2], r.inputs.shape[3], contrastive).to(device))
    model = merge_runs(models)
    A = models[0].num_axes
    plan = plan_step(cfg.train, device, distributed=ddp.is_distributed())
    for line in plan.notes:
        note(line)
    opt = make_optimizer(model, e.lr, plan)
    x_all = torch.cat([to_axis_major(r.inputs) for r in runs]).to(device)   # resident on the device
    y_all = torch.cat([to_axis_major(r.targets) for r in runs]).to(device)
    objective = attention_target(spec.attention, cfg.data.length)
    objective = objective.to(device) if objective is not None else None
    n = len(runs[0].inputs)
    orders = [batch_order(n, e.batch_size, shuffle_once=e.method == "age", seed=r.cfg.seed) for r in runs]
    shared = all(len(o) == len(orders[0]) and all(np.array_equal(a, b) for a, b in zip(o, orders[0]))
                 for o in orders)
    if shared:   # one index per batch (CAGE keeps the walk order: the same for every seed)
        batches = [torch.as_tensor(b, device=device) for b in orders[0]]
        gather = None
    else:        # [R, B]: each run's own batch
        batches = [torch.as_tensor(np.stack(bs), device=device) for bs in zip(*orders)]

        def gather(idx):
            return (torch.cat([x_all[k * A:(k + 1) * A][:, idx[k]] for k in range(R)]),
                    torch.cat([y_all[k * A:(k + 1) * A][:, idx[k]] for k in range(R)]))
    batches = ddp.local_batches(batches)  # torchrun: this rank's contiguous shard of the batches
    histories = [TrainHistory() for _ in runs]
    saved: list[dict] = []
    start, done0, extra = restore(resume, model, opt, saved)  # (0, 0, {}) without a checkpoint
    for k, h in enumerate(histories):
        h.epochs[:] = saved if R == 1 else [row["runs"][k] for row in saved]
    writers = [_tensorboard(r.log_dir if ddp.is_main() else None) for r in runs]
    stop = e.epochs if until is None else min(int(until), e.epochs)
    monitored = [(k, r.monitor) for k, r in enumerate(runs) if r.monitor is not None]
    every = int(cfg.monitor_every) if monitored else 0
    bar = tqdm(range(start, stop), initial=start, total=e.epochs,
               desc=f"encoder {spec.tag}" + (f" x{R} runs" if R > 1 else ""), unit="epoch",
               disable=not cfg.progress, dynamic_ncols=True)
    model.train()

    def losses(m, x, y):
        return step_losses(m, x, y, objective, e.temperature, e.l2, contrastive)

    step = make_step(plan, model, opt, x_all, y_all, losses, e.grad_clip,
                     after_backward=(lambda: ddp.average_gradients(model)) if ddp.is_distributed() else None,
                     note=note, gather=gather)
    for epoch in bar:
        t0 = time.perf_counter()
        done = done0 if epoch == start else 0  # batches of this epoch done before the resume
        sums = {k: extra[f"sum.{k}"].to(device, copy=True) if done else torch.zeros(x_all.shape[0], device=device)
                for k in TERMS}
        for idx in batches[done:]:
            terms = step(idx)  # forward, losses, backward, (torchrun: gradient average), clipping, Adam
            for k in TERMS:
                sums[k] += terms[k]  # on the device: read once per epoch
            done += 1
            faults.point("encoder.step")
            if resume is not None and resume.due():  # every checkpoint_minutes inside a long epoch
                resume.save(model, opt, epoch=epoch, batch=done, history=_joint(histories),
                            tensors={f"sum.{k}": v for k, v in sums.items()})
        seconds = time.perf_counter() - t0
        per_axis = {k: (sums[k] / len(batches)).cpu().numpy() for k in TERMS}
        rows = []
        for r in range(R):
            row = {"epoch": epoch + 1, "seconds": seconds,
                   "windows_per_s": R * len(batches) * len(batches[0]) / max(seconds, 1e-9)}
            for k in TERMS:
                mine = per_axis[k][r * A:(r + 1) * A]
                row[k] = float(mine.sum())
                for a, v in zip(AXES, mine):
                    row[f"{k}_{a}"] = float(v)
            rows.append(row)
        if every and (epoch + 1) % every == 0 and ddp.is_main():
            for k, mon in monitored:
                t1 = time.perf_counter()
                rows[k]["monitor_rank1"] = mon.rank1(model if R == 1 else model.select_axes(range(k * A, (k + 1) * A)),
                                                     device)
                rows[k]["monitor_seconds"] = time.perf_counter() - t1
            model.train()
        for h, row in zip(histories, rows):
            h.epochs.append(row)
        if resume is not None:  # what a killed run continues from
            resume.save(model, opt, epoch=epoch + 1, batch=0, history=_joint(histories))
        row = rows[0]
        post = dict(rec=f"{row['reconstruction']:.3g}", att=f"{row['attention']:.3g}",
                    con=f"{row['contrastive']:.3g}", win_s=f"{row['windows_per_s']:.0f}")
        if "monitor_rank1" in row:
            post["mon_r1"] = f"{100 * row['monitor_rank1']:.1f}"
        bar.set_postfix(post)
        for writer, row in zip(writers, rows):
            if writer is not None:
                for k in TERMS:
                    writer.add_scalar(f"{spec.tag}/{k}", row[k], epoch + 1)
                if "monitor_rank1" in row:
                    writer.add_scalar(f"{spec.tag}/monitor_rank1", row["monitor_rank1"], epoch + 1)
    for writer in writers:
        if writer is not None:
            writer.close()
    out = []
    for k, (r, h) in enumerate(zip(runs, histories)):
        mine = model if R == 1 else model.select_axes(range(k * A, (k + 1) * A))
        if r.out_prefix is not None and ddp.is_main():
            save_encoder(r.out_prefix, mine, spec, r.cfg, h, r.meta or {})
        out.append((mine, h))
    ddp.barrier()  # torchrun: the other ranks wait until the main rank has saved
    return out


def _joint(histories: list[TrainHistory]) -> list[dict]:
    """The history a resume checkpoint keeps: one run's rows, or per epoch every run's row."""
    if len(histories) == 1:
        return histories[0].epochs
    return [{"epoch": rows[0]["epoch"], "runs": list(rows)} for rows in zip(*(h.epochs for h in histories))]


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


def attention_target(attention: str, length: int) -> torch.Tensor | None:
    """The attention target ``O`` ``[f, f]`` an encoder set trains towards: none with ``BA``; with
    ``LA`` the anti-diagonal one (decoder step t attends near encoder position f-1-t) for **every**
    pretext task -- also ``prediction`` and ``sorting``, whose targets are not reversed. That is the
    reference's behaviour (spec §2.4: its objective is built with ``Reverse=True`` always), kept for
    comparability; see docs/model.md."""
    if attention != "LA":
        return None
    return L.la_objective(length, reverse=True)


#: Windows per encoder call when embedding (the pipeline's features and :mod:`skelreid.inference`'s).
EMBED_BATCH = 2048


def static_shapes(device: torch.device) -> bool:
    """Whether :func:`embed_windows` pads the last of several batches to the full batch size: on CUDA,
    so a compiled or captured model never sees a new shape (and kernels, hence the bits, are those of
    the full batches)."""
    return torch.device(device).type == "cuda"


@torch.no_grad()
def embed_windows(model: GaitSeq2Seq, windows: np.ndarray, device: torch.device,
                  batch_size: int | None = None) -> np.ndarray:
    """Context vectors of every window: ``[N, A, f, H]`` float32 (eval mode, no gradients).

    Windows go through the model :data:`EMBED_BATCH` at a time. On CPU each batch is computed and
    returned as it comes. On CUDA (:func:`static_shapes`) the last of several batches is padded to the
    full size, so a compiled or captured model never sees a new shape; the results stay on the device
    and are copied to the host once per GiB, not once per batch.
    """
    from .. import faults

    device = torch.device(device)
    cuda = device.type == "cuda"
    pad = static_shapes(device)
    batch_size = int(batch_size or EMBED_BATCH)
    out: list[np.ndarray] = []
    pending: list[torch.Tensor] = []
    pending_bytes = 0
    for i in range(0, len(windows), batch_size):
        chunk = windows[i: i + batch_size]
        n = len(chunk)
        x = to_axis_major(chunk).to(device, non_blocking=cuda)
        if pad and n < batch_size and i > 0:  # static shape: pad the last batch, drop the padding after
            x = torch.cat([x, x.new_zeros(x.shape[0], batch_size - n, *x.shape[2:])], dim=1)
        c = model.embed(x)[:, :n].permute(1, 0, 2, 3).float()
        if cuda:
            pending.append(c)
            pending_bytes += c.numel() * 4
            if pending_bytes >= 1 << 30:
                out.append(torch.cat(pending).cpu().numpy())
                pending, pending_bytes = [], 0
        else:
            out.append(c.cpu().numpy())
        faults.point("features.batch")
    if pending:
        out.append(torch.cat(pending).cpu().numpy())
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
