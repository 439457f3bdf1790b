"""The training stages of a run: the encoder sets (one run, or several seeds together; up to a
milestone or to the end) and the recognition network (every selection rule, and the paper-like one).
Each stage skips what is already trained with this configuration and split, and continues an
interrupted training from its resume checkpoint (see :mod:`skelreid.runstate`)."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..config import RunConfig
from ..console import note, warn
from ..data.splits import manifest_hash
from ..encoders import PAPER_LIKE, _quirk_plus, encoder_specs, eval_set, selection_rules, split_eval_set
from ..io import sha256_bytes
from ..pretext import TASKS
from ..runstate import encoder_fingerprint, final_history_row, rn_fingerprint, verified_checkpoint_meta
from ..training.checkpoint import save_checkpoint
from ..training.encoder import EncoderRun, EncoderSpec, TrainHistory, train_encoders, write_history_csv
from ..training.monitor import WalkMonitor
from ..training.recognition import EvalSet, train_rn
from ..training.resume import ResumeFile
from .prepare import Prepared, encoder_training_set


def milestone_encoder_dir(run_dir: Path, epoch: int) -> Path:
    """Where the encoder weights of milestone ``epoch`` are kept."""
    return Path(run_dir) / "encoders" / f"epoch_{int(epoch)}"


def encoder_monitor(cfg: RunConfig, p: Prepared):
    """The cheap between-milestone monitor (``None`` when off or nothing to score); never reads test walks."""
    if not cfg.monitor_every:
        return None

    train = p.windows.subset(p.manifest["splits"]["train"])
    monitor = WalkMonitor.build(train, p.splits.get("val"), per_walk=cfg.monitor_windows,
                                feature=cfg.retrieval.feature)
    if monitor is None:
        note("--monitor-every: no person has two walks to match among the encoders' training walks; "
             "the monitor is off for this run")
    return monitor


@dataclass
class EncoderJob:
    """One run's encoder set still to train (up to a milestone or to the end)."""

    run: object                 # training.encoder.EncoderRun
    resume_name: str
    fingerprint: str
    run_dir: Path


def encoder_job(cfg: RunConfig, p: Prepared, run_dir: Path, spec: EncoderSpec, until: int | None,
                info: dict, monitor=None) -> EncoderJob | None:
    """What is left to do for encoder set ``spec`` of the run in ``run_dir``: ``None`` when its
    weights (final, or of milestone ``until``) are there for this configuration and split (``info``
    records that), else the job. A milestone the encoders have already trained past is ``missing``."""
    split_sha = manifest_hash(p.manifest)
    fingerprint = f"{encoder_fingerprint(cfg)}/{split_sha}"
    final = until is None or until >= cfg.encoder.epochs
    prefix = (run_dir / "encoders" if final else milestone_encoder_dir(run_dir, until)) / spec.tag
    done = verified_checkpoint_meta(prefix, f"encoder {spec.tag}")
    if done is not None and done.get("fingerprint") == fingerprint:
        if final:
            note(f"encoder {spec.tag}: already trained with this configuration in {prefix.parent} (skipped)")
            ResumeFile(run_dir / "resume", f"encoder_{spec.tag}", fingerprint).clear()
        info[spec.tag] = {"windows": done.get("windows"), "seconds": 0.0, "skipped": True,
                          "final": final_history_row(prefix.with_name(prefix.name + "_losses.csv"))}
        return None
    if not final:
        last = verified_checkpoint_meta(run_dir / "encoders" / spec.tag, f"encoder {spec.tag}")
        if last is not None and last.get("fingerprint") == fingerprint:
            warn(f"milestone {until}: encoder {spec.tag} finished training before this milestone was asked "
                 f"for, so its epoch-{until} weights do not exist; the milestone is skipped")
            info[spec.tag] = {"missing": True}
            return None
    train_ws = encoder_training_set(cfg, p)
    inputs, targets = TASKS.get(spec.task).make(train_ws, cfg.seed)
    run = EncoderRun(inputs, targets, cfg, out_prefix=prefix,
                     meta={"split_sha256": split_sha, "seed": cfg.seed, "windows": len(inputs),
                           "fingerprint": fingerprint, "layout": train_ws.layout},
                     log_dir=run_dir / "tensorboard" / spec.tag, monitor=monitor)
    return EncoderJob(run, f"encoder_{spec.tag}", fingerprint, run_dir)


def train_jobs(jobs: list[EncoderJob], spec: EncoderSpec, device: torch.device, until: int | None,
               resume_dir: Path, info: list[dict]) -> None:
    """Train ``jobs`` (one run, or several seeds together) and record what happened in ``info``."""
    cfg = jobs[0].run.cfg
    final = until is None or until >= cfg.encoder.epochs
    name = jobs[0].resume_name if len(jobs) == 1 else \
        f"{jobs[0].resume_name}_seeds_{'_'.join(str(j.run.cfg.seed) for j in jobs)}"
    resume = ResumeFile(resume_dir, name, "|".join(j.fingerprint for j in jobs), cfg.checkpoint_minutes)
    t0 = time.perf_counter()
    trained = train_encoders([j.run for j in jobs], spec, device, resume=resume, until=None if final else until)
    if final:
        resume.clear()  # the final weights are saved: the stage is complete
    for job, record, (_, hist) in zip(jobs, info, trained):
        record[spec.tag] = {"windows": len(job.run.inputs), "seconds": time.perf_counter() - t0,
                            "final": dict(hist.epochs[-1]) if hist.epochs else {}}


def run_encoders(cfg: RunConfig, p: Prepared, run_dir: Path, device: torch.device,
                 until: int | None = None) -> dict:
    """Train every encoder set of ``cfg``; skip those already trained with this configuration and split,
    and continue an interrupted one from its resume checkpoint (see :mod:`skelreid.runstate`).

    ``until`` (a milestone before the last epoch) trains only up to that epoch and keeps the weights
    in ``encoders/epoch_<until>/``; the resume checkpoints stay, so the next call continues from there.
    """
    monitor = encoder_monitor(cfg, p)
    info: dict = {}
    for spec in encoder_specs(cfg):
        if _quirk_plus(cfg) and spec.task != "rev_rec":
            continue
        job = encoder_job(cfg, p, run_dir, spec, until, info, monitor)
        if job is not None:
            train_jobs([job], spec, device, until, run_dir / "resume", [info])
    return info


def _features_sha256(s: EvalSet) -> str:
    return sha256_bytes(np.ascontiguousarray(s.x).tobytes() + np.ascontiguousarray(s.y).tobytes())


def _rn_saved(run_dir: Path, names: list[str], fingerprint: str) -> dict | None:
    """The saved RN sidecars of ``names`` when all are intact and of ``fingerprint``, else ``None``."""
    saved = {r: verified_checkpoint_meta(run_dir / "rn" / r, f"the recognition network ({r})") for r in names}
    if all(m is not None and m.get("fingerprint") == fingerprint for m in saved.values()):
        return saved
    return None


def run_rn(cfg: RunConfig, p: Prepared, models: dict, run_dir: Path, device: torch.device,
           encoder_dir: Path | None = None) -> dict:
    """Train the RN (skipped when already trained with this configuration and split; an interrupted
    training continues from its resume checkpoint, see :mod:`skelreid.runstate`).

    ``run_dir`` receives ``rn/`` and ``resume/``; ``encoder_dir`` holds the encoders the features
    come from (default ``run_dir/encoders``; a milestone's are in ``encoders/epoch_<E>/``).
    """
    val_ws = p.splits.get("val")
    has_val = val_ws is not None and len(val_ws) > 0
    rules = [r for r in selection_rules(cfg, has_val) if r != PAPER_LIKE]
    saved_rules = list(rules)
    if "test" in rules and len(p.tests) > 1:
        saved_rules += [f"test-{name}" for name in p.tests]   # one test-selected RN per test split
    fingerprint = rn_fingerprint(cfg, manifest_hash(p.manifest), encoder_dir or run_dir / "encoders", list(models))
    out: dict = {"rules": list(rules), "best_epoch": {}, "history": []}
    saved = _rn_saved(run_dir, saved_rules, fingerprint)
    if saved is not None and (run_dir / "rn" / "history.csv").exists():
        note(f"recognition network: already trained with this configuration in {run_dir / 'rn'} (skipped)")
        ResumeFile(run_dir / "resume", "rn", fingerprint).clear()
        out.update(best_epoch={r: saved[r]["epoch"] for r in rules}, skipped=True)
    else:
        train = eval_set(cfg, models, p.splits["train"], device, training=True)
        val = eval_set(cfg, models, val_ws, device, training=False) if has_val else None
        test = ({name: split_eval_set(cfg, p, models, name, device) for name in p.tests}
                if "test" in rules else None)
        resume = ResumeFile(run_dir / "resume", "rn", fingerprint, cfg.checkpoint_minutes,
                            inputs=_features_sha256(train))
        res = train_rn(train, len(p.windows.persons), cfg.rn, device, cfg.seed, val=val, test=test,
                       progress=cfg.progress, resume=resume)
        write_history_csv(run_dir / "rn" / "history.csv", TrainHistory(res.history))
        for rule in saved_rules:
            _save_rn(run_dir / "rn" / rule, res, rule, rule, train, len(p.windows.persons), cfg, fingerprint)
        resume.clear()  # every selected state is saved: the stage is complete
        out.update(best_epoch={r: res.best_epoch[r] for r in rules}, history=res.history)
    if cfg.rn.paper_like:
        out["best_epoch"][PAPER_LIKE] = run_paper_like_rn(cfg, p, models, run_dir, device, fingerprint)
        out["rules"].append(PAPER_LIKE)
    return out


def _save_rn(prefix: Path, res, state: str, rule: str, train: EvalSet, classes: int, cfg: RunConfig,
             fingerprint: str) -> None:
    save_checkpoint(prefix, res.states[state], {
        "kind": "recognition_net", "selection": rule, "epoch": res.best_epoch[state],
        "in_features": train.x.shape[1], "num_classes": classes, "hidden": cfg.rn.hidden,
        "fingerprint": fingerprint, "train_windows": int(len(train.y))})


def run_paper_like_rn(cfg: RunConfig, p: Prepared, models: dict, run_dir: Path, device: torch.device,
                      fingerprint: str) -> int:
    """The reference's RN (:data:`PAPER_LIKE`): train + validation windows in the reference's padded
    128-window batches, every test split cut to whole batches of 128, the epoch chosen on test.
    Saved as ``rn/paper-like`` (and ``rn/paper-like-<test>`` with several test splits). Returns the
    chosen epoch."""
    fingerprint = f"{fingerprint}/{PAPER_LIKE}"
    names = [PAPER_LIKE] + ([f"{PAPER_LIKE}-{t}" for t in p.tests] if len(p.tests) > 1 else [])
    saved = _rn_saved(run_dir, names, fingerprint)
    if saved is not None:
        note(f"recognition network ({PAPER_LIKE}): already trained in {run_dir / 'rn'} (skipped)")
        return int(saved[PAPER_LIKE]["epoch"])
    walks = [w for n in ("train", "val") for w in p.manifest["splits"].get(n, [])]
    train = eval_set(cfg, models, p.windows.subset(walks), device, training=True, reference_batches=True)
    tests = {name: split_eval_set(cfg, p, models, name, device, rule=PAPER_LIKE) for name in p.tests}
    resume = ResumeFile(run_dir / "resume", "rn_paper_like", fingerprint, cfg.checkpoint_minutes,
                        inputs=_features_sha256(train))
    res = train_rn(train, len(p.windows.persons), cfg.rn, device, cfg.seed, val=None, test=tests,
                   progress=cfg.progress, resume=resume, desc=f"recognition net ({PAPER_LIKE})")

    write_history_csv(run_dir / "rn" / "history_paper_like.csv", TrainHistory(res.history))
    for name in names:
        state = "test" if name == PAPER_LIKE else f"test-{name[len(PAPER_LIKE) + 1:]}"
        _save_rn(run_dir / "rn" / name, res, state, name, train, len(p.windows.persons), cfg, fingerprint)
    resume.clear()
    return int(res.best_epoch["test"])
