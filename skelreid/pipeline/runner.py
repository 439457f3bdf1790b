"""Running a run's stages in its folder: one run, one per seed (``--seeds``), one per view
(``--view all``), the milestones, re-evaluation of a finished run, and the reports at the end."""
from __future__ import annotations

import copy
import dataclasses
import json
import time
from pathlib import Path

import torch

from .. import faults
from ..config import RunConfig, config_differences, from_dict
from ..console import note
from ..data.datasets import load_sequences
from ..data.splits import manifest_hash
from ..determinism import flush_denormals
from ..device import resolve_device
from ..encoders import _quirk_plus, encoder_specs, load_encoders, selection_rules
from ..errors import ConfigError, SkelreidError
from ..evaluation.protocols import evaluate_legacy, evaluate_probe_gallery
from ..io import read_json, write_bytes, write_json
from ..reports.milestones import write_milestone_reports
from ..reports.results import public_metrics, write_reports, write_seed_reports, write_view_reports
from ..runstate import (check_data, claim_run_folder, has_trained_anything, lock_run_folder, rn_fingerprint,
                        use_runtime_data)
from ..training.encoder import mean_attention
from .prepare import Prepared, dataset_views, prepare
from .stages import encoder_job, encoder_monitor, milestone_encoder_dir, run_encoders, run_rn, train_jobs


STAGES = ("encoder", "rn", "evaluate")
#: The reference code's --train_flag values mapped onto stages.
TRAIN_FLAG = {1: STAGES, 0: ("rn", "evaluate"), 2: ("evaluate",)}


def run(cfg: RunConfig, run_dir: str | Path, stages: tuple[str, ...] = STAGES,
        sequences: list | None = None) -> dict:
    """Run the requested stages in ``run_dir`` and write the reports; returns results.

    ``data.view == "all"`` runs the whole pipeline once per view (see :func:`run_views`).
    """
    if cfg.data.view == "all":
        return run_views(cfg, run_dir, stages)
    run_dir = Path(run_dir)
    bad = [s for s in stages if s not in STAGES]
    if bad:
        raise ConfigError(f"unknown stage(s) {bad}; valid: {', '.join(STAGES)}")
    device = resolve_device(cfg.device)
    t0 = time.perf_counter()
    if "encoder" not in stages:
        cfg = _saved_config(cfg, run_dir, stages)
    else:
        cfg = claim_run_folder(cfg, run_dir)  # a new run, the same run continued, or refused: see runstate
    apply_cpu_settings(cfg)
    before = (run_dir / "config.json").read_bytes() if (run_dir / "config.json").exists() else None
    write_json(run_dir / "config.json", cfg.to_dict())
    torch.manual_seed(cfg.seed)
    p = prepare(cfg, run_dir / "split.json", sequences)
    try:
        check_data(run_dir, cfg, p.windows)   # a moved dataset: the same content, or refused
    except ConfigError:
        if before is not None:   # the run keeps pointing at its own data
            write_bytes(run_dir / "config.json", before)
        raise
    stage_info: dict = {"prepare": p.summary}
    if cfg.milestones:
        stage_info["milestones"] = run_milestones(cfg, p, run_dir, device, stages)
    if "encoder" in stages:
        stage_info["encoder"] = run_encoders(cfg, p, run_dir, device)
    models = load_encoders(cfg, run_dir, device)
    protocol = p.manifest["protocol"]
    results: dict = {"protocol": protocol}
    if protocol == "legacy" and "rn" in stages:
        stage_info["rn"] = {k: v for k, v in run_rn(cfg, p, models, run_dir, device).items() if k != "history"}
    if "evaluate" not in stages:
        return {"protocol": protocol, "stages": stage_info}
    if protocol == "legacy":
        results.update(evaluate_legacy(cfg, p, models, run_dir, device))
    else:
        results.update(evaluate_probe_gallery(cfg, p, models, device))
    sample = p.splits[p.tests[0] if protocol == "legacy" else p.pairs[0]["probe"]]
    attention = {ax: a for ax, a in zip("xyz", mean_attention(next(iter(models.values())), sample.data, device))}
    results["stages"] = stage_info
    results["wall_time_s"] = time.perf_counter() - t0
    out = write_reports(run_dir, cfg, p, results, attention)
    if cfg.milestones:
        write_milestone_reports(run_dir, cfg)
    if protocol != "legacy" and cfg.retrieval.select_on_test:  # optimistic row, labelled
        from ..reports.milestones import write_optimistic

        out["select_on_test"] = write_optimistic(run_dir, cfg)
    return out


def run_milestones(cfg: RunConfig, p: Prepared, run_dir: Path, device: torch.device,
                   stages: tuple[str, ...]) -> dict:
    """Every milestone before the last epoch: train the encoders up to it (``encoder`` stage), keep
    their weights, and evaluate them with the run's protocol (``milestones/epoch_<E>/``); the tables
    ``results_by_epoch.*`` are rewritten after each one. The last milestone is the run itself."""
    info = {}
    for epoch in cfg.milestones[:-1]:
        if "encoder" in stages:
            trained = run_encoders(cfg, p, run_dir, device, until=epoch)
            if any(v.get("missing") for v in trained.values()):
                info[epoch] = "missing"
                continue
        if not (milestone_encoder_dir(run_dir, epoch) / f"{encoder_specs(cfg)[0].tag}.json").exists():
            info[epoch] = "missing"
            continue
        info[epoch] = evaluate_milestone(cfg, p, run_dir, device, epoch, stages)
        write_milestone_reports(run_dir, cfg)
    return info


def evaluate_milestone(cfg: RunConfig, p: Prepared, run_dir: Path, device: torch.device, epoch: int,
                       stages: tuple[str, ...]) -> str:
    """The run's protocol on the encoders of milestone ``epoch``: ``milestones/epoch_<E>/metrics.json``
    (legacy: a recognition network per selection rule in ``milestones/epoch_<E>/rn/``). Skipped when
    that file is already there for these encoders and options, unless only evaluation was asked for."""
    folder = run_dir / "milestones" / f"epoch_{epoch}"
    enc_dir = milestone_encoder_dir(run_dir, epoch)
    models = load_encoders(cfg, run_dir, device, folder=enc_dir)
    protocol = p.manifest["protocol"]
    has_val = len(p.splits.get("val", [])) > 0
    rules = selection_rules(cfg, has_val) if protocol == "legacy" else []
    fingerprint = (f"{rn_fingerprint(cfg, manifest_hash(p.manifest), enc_dir, list(models))}/"
                   f"{','.join(rules)}/{cfg.rn.paper_like}/{json.dumps(cfg.retrieval.__dict__, sort_keys=True)}")
    path = folder / "metrics.json"
    if stages != ("evaluate",) and path.exists():
        try:
            if read_json(path).get("fingerprint") == fingerprint:
                return "done"
        except SkelreidError:
            pass
    pm = dataclasses.replace(p, features={})   # this milestone's own features
    if protocol == "legacy":
        if "rn" in stages:
            run_rn(cfg, pm, models, folder, device, encoder_dir=enc_dir)
        results = evaluate_legacy(cfg, pm, models, folder, device)
    else:
        results = evaluate_probe_gallery(cfg, pm, models, device)
    results["protocol"] = protocol
    write_json(path, {"epoch": int(epoch), "protocol": protocol, "fingerprint": fingerprint,
                      **public_metrics(results)})
    note(f"milestone: encoder epoch {epoch} evaluated ({path})")
    faults.point("milestone.done")
    return "evaluated"


def apply_cpu_settings(cfg: RunConfig) -> None:
    """``--threads N`` (the number of CPU threads torch uses) and flushing denormal floats to zero on
    CPU (both recorded in results.json). Denormals only arise from badly scaled inputs, where they
    can slow CPU kernels; on KGBD's metre-scale data training with and without flushing gave
    byte-identical weights (docs/performance.md, "Denormal floats on CPU")."""
    if cfg.threads is not None and cfg.threads != torch.get_num_threads():
        torch.set_num_threads(int(cfg.threads))
    if str(cfg.device).strip().lower() == "cpu":
        flush_denormals()


def run_seeds(cfg: RunConfig, run_dir: str | Path, seeds: list[int], stages: tuple[str, ...] = STAGES) -> dict:
    """``--seeds 0,1,2``: one complete run folder per seed (``run_dir/seed_<s>/``) whose encoders train
    together as one batched computation (:func:`skelreid.training.encoder.train_encoders`): each seed
    keeps its own initial weights, data order, RNG and results, equal to training it alone. Then each
    run's recognition network and evaluation, and one table of mean ± std (``run_dir/results.md``)."""
    run_dir = Path(run_dir)
    seeds = list(dict.fromkeys(int(s) for s in seeds))
    if cfg.data.view == "all":
        raise ConfigError("--seeds with --view all: run the views one by one (--view V) with --seeds")
    if len(seeds) < 2:
        raise ConfigError("--seeds needs at least two seeds (use --seed for one)")
    cfgs = {s: copy.deepcopy(cfg) for s in seeds}
    for s in seeds:
        cfgs[s].seed = s
    dirs = {s: run_dir / f"seed_{s}" for s in seeds}
    lock_run_folder(run_dir)
    if "encoder" in stages:
        device = resolve_device(cfg.device)
        preps = {}
        for s in seeds:
            cfgs[s] = claim_run_folder(cfgs[s], dirs[s])
            write_json(dirs[s] / "config.json", cfgs[s].to_dict())
            preps[s] = prepare(cfgs[s], dirs[s] / "split.json")
            check_data(dirs[s], cfgs[s], preps[s].windows)
        apply_cpu_settings(cfg)
        for until in [*cfg.milestones[:-1], None]:
            for spec in encoder_specs(cfg):
                if _quirk_plus(cfg) and spec.task != "rev_rec":
                    continue
                infos = {s: {} for s in seeds}
                jobs = [(s, encoder_job(cfgs[s], preps[s], dirs[s], spec, until, infos[s],
                                        encoder_monitor(cfgs[s], preps[s]))) for s in seeds]
                todo = [(s, j) for s, j in jobs if j is not None]
                if todo:
                    train_jobs([j for _, j in todo], spec, device, until, run_dir / "resume",
                               [infos[s] for s, _ in todo])
    per_seed = {s: run(cfgs[s], dirs[s], stages) for s in seeds}   # the encoders are there: RN, evaluation
    return write_seed_reports(run_dir, cfg, per_seed)


def _saved_config(cfg: RunConfig, run_dir: Path, stages: tuple[str, ...]) -> RunConfig:
    """Stages after the encoders re-use the run's saved configuration for everything that defines
    the trained models; the command line gives the run-time options (device, progress, threads,
    checkpoint minutes, ``--root`` / ``--cache`` when given) and the RN's, when retrained."""
    saved = from_dict(read_json(run_dir / "config.json"))
    saved.device, saved.progress, saved.threads = cfg.device, cfg.progress, cfg.threads
    saved.rn = cfg.rn if "rn" in stages else saved.rn
    saved.checkpoint_minutes = cfg.checkpoint_minutes
    use_runtime_data(saved, cfg)   # the data may have moved: --root / --cache (checked by run)
    lock_run_folder(run_dir)  # one command at a time in a run folder
    return saved


def run_views(cfg: RunConfig, run_dir: str | Path, stages: tuple[str, ...] = STAGES) -> dict:
    """The whole pipeline once per view, each in ``run_dir/view_<v>/``, then one table.

    This is the cross-view evaluation of CASIA-B (11 views) and KS20 (5 views): the
    encoders, the recognition network and the test all use one view's walks.
    """
    run_dir = Path(run_dir)
    if "encoder" not in stages:
        cfg = _saved_config(cfg, run_dir, stages)
    else:
        _refuse_other_view_runs(cfg, run_dir)
        cfg = claim_run_folder(cfg, run_dir)
    write_json(run_dir / "config.json", cfg.to_dict())
    t0 = time.perf_counter()
    seqs = None if cfg.data.source == "reference_npy" else load_sequences(
        cfg.data, persons=cfg.data.persons, progress=cfg.progress)
    views = dataset_views(seqs or [])
    if not views:
        raise ConfigError("--view all: this dataset has no views")
    per_view = {}
    for v in views:
        vcfg = copy.deepcopy(cfg)
        vcfg.data.view = v
        if cfg.progress:
            print(f"view {v} ({views.index(v) + 1}/{len(views)})", flush=True)
        per_view[v] = run(vcfg, run_dir / f"view_{v}", stages, sequences=seqs)
    return write_view_reports(run_dir, cfg, per_view, time.perf_counter() - t0)


def _refuse_other_view_runs(cfg: RunConfig, run_dir: Path) -> None:
    """A ``--view all`` folder whose views already trained under another configuration is refused."""
    saved_path = run_dir / "config.json"
    if cfg.resume or not saved_path.exists():
        return
    if not any(has_trained_anything(d) for d in run_dir.glob("view_*")):
        return
    diffs = config_differences(from_dict(read_json(saved_path)), cfg)
    if diffs:
        raise ConfigError(f"{run_dir} holds per-view runs of another configuration ({'; '.join(diffs[:3])}); "
                          "choose another --out folder, or add --resume to continue that run")


def evaluate_run(run_dir: str | Path, device: str | None = None, progress: bool = True,
                 root: str | None = None, cache: str | None = None) -> dict:
    """Re-compute and re-plot a finished run from its saved weights (no training). ``root`` /
    ``cache``: where the run's data is now, when it moved (its content must be the run's)."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").exists():
        raise ConfigError(f"{run_dir}: not a skelreid run folder (no config.json)")
    cfg = from_dict(read_json(run_dir / "config.json"))
    if device is not None:
        cfg.device = device
    cfg.progress = progress
    cfg.data.root = root if root is not None else cfg.data.root
    cfg.data.cache = cache if cache is not None else cfg.data.cache
    return run(cfg, run_dir, stages=("evaluate",))
