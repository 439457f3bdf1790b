"""The one-command pipeline: data -> encoders (3 axes) -> features -> RN -> evaluation -> reports.

A run folder holds everything needed to re-evaluate without retraining::

    config.json  split.json  encoders/<task>_<att>.{safetensors,json}  encoders/*_losses.csv
    rn/<rule>.{safetensors,json}  rn/history.csv  results.json  results.md  plots/*.png  tensorboard/
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .config import RunConfig, from_dict
from .data.datasets import load_sequences
from .data.records import walks_by_person
from .data.splits import check_persons_covered, load_manifest, make_manifest, manifest_hash, save_manifest
from .data.windows import WindowSet, make_windows
from .device import resolve_device
from .errors import ConfigError
from .features import rows, rows_per_window, window_vectors
from .io import read_json, write_json
from .pretext import TASKS, members, shuffle_frames
from .training.checkpoint import load_checkpoint, save_checkpoint
from .training.encoder import EncoderSpec, embed_windows, load_encoder, mean_attention, train_encoder
from .training.recognition import EvalSet, RecognitionNet, train_rn, window_logits

STAGES = ("encoder", "rn", "evaluate")
#: The reference code's --train_flag values mapped onto stages.
TRAIN_FLAG = {1: STAGES, 0: ("rn", "evaluate"), 2: ("evaluate",)}


@dataclass
class Prepared:
    windows: WindowSet
    manifest: dict
    splits: dict[str, WindowSet]
    summary: dict


def prepare(cfg: RunConfig, manifest_path: Path | None = None) -> Prepared:
    """Load walks, cut windows, load or create the split manifest."""
    d = cfg.data
    seqs = load_sequences(d, persons=d.persons, progress=cfg.progress)
    ws = make_windows(seqs, d.length, d.clip, d.normalise)
    walks = walks_by_person(seqs)
    if manifest_path is not None and manifest_path.exists():
        manifest = load_manifest(manifest_path, ws.walks)
    else:
        params = ({"test_walks": d.test_walks, "val_walks": d.val_walks} if d.protocol == "legacy"
                  else {"gallery_walks": d.gallery_walks, "probe_walks": d.probe_walks})
        manifest = make_manifest(d.dataset, walks, d.protocol, d.split_seed, **params)
        if manifest_path is not None:
            save_manifest(manifest_path, manifest)
    walk_person = {s.walk_id: s.person for s in seqs}
    check_persons_covered(manifest, walk_person)
    splits = {name: ws.subset(ids) for name, ids in manifest["splits"].items()}
    summary = {"persons": len(walks), "walks": len(seqs), "frames": int(sum(s.num_frames for s in seqs)),
               "windows": len(ws), "windows_per_split": {k: len(v) for k, v in splits.items()},
               "walks_per_split": {k: len(v) for k, v in manifest["splits"].items()}}
    return Prepared(ws, manifest, splits, summary)


def encoder_training_set(p: Prepared) -> WindowSet:
    """The walks the encoders learn from (no labels are used): all but test / probe / gallery."""
    names = ["train", "val"] if p.manifest["protocol"] == "legacy" else ["train"]
    ids = [w for n in names for w in p.manifest["splits"][n]]
    return p.windows.subset(ids)


def encoder_specs(cfg: RunConfig) -> list[EncoderSpec]:
    return [EncoderSpec(t, a) for t, a in members(cfg.encoder.model, cfg.encoder.attention)]


def _quirk_plus(cfg: RunConfig) -> bool:
    # Reference behaviour of rev_rec_plus (spec §2.5, §7.A): only the rev_rec LA
    # weights are ever used for features, so only that model is trained.
    return cfg.reference_quirks and cfg.encoder.model == "rev_rec_plus"


def run_encoders(cfg: RunConfig, p: Prepared, run_dir: Path, device: torch.device) -> dict:
    train_ws = encoder_training_set(p)
    info = {}
    for spec in encoder_specs(cfg):
        if _quirk_plus(cfg) and spec.task != "rev_rec":
            continue
        inputs, targets = TASKS.get(spec.task).make(train_ws, cfg.seed)
        t0 = time.perf_counter()
        _, hist = train_encoder(inputs, targets, spec, cfg, device, out_prefix=run_dir / "encoders" / spec.tag,
                                meta={"split_sha256": manifest_hash(p.manifest), "seed": cfg.seed,
                                      "windows": len(inputs)},
                                log_dir=run_dir / "tensorboard" / spec.tag)
        info[spec.tag] = {"windows": len(inputs), "seconds": time.perf_counter() - t0,
                          "final": {k: v for k, v in hist.epochs[-1].items()} if hist.epochs else {}}
    return info


def load_encoders(cfg: RunConfig, run_dir: Path, device: torch.device) -> dict:
    models = {}
    for spec in encoder_specs(cfg):
        if _quirk_plus(cfg) and spec.task != "rev_rec":
            continue
        prefix = run_dir / "encoders" / spec.tag
        if not prefix.with_suffix(".json").exists():
            raise ConfigError(f"{run_dir}: no trained encoder {spec.tag}; run the encoder stage first")
        models[spec.tag], _ = load_encoder(prefix, device)
    return models


def contexts(cfg: RunConfig, models: dict, ws: WindowSet, device: torch.device, training: bool) -> np.ndarray:
    """``[N, M, A, f, H]`` context vectors of every window for every encoder set."""
    specs = encoder_specs(cfg)
    if _quirk_plus(cfg):
        rev = models["rev_rec_LA"]
        base = embed_windows(rev, ws.data, device)
        third = embed_windows(rev, shuffle_frames(ws.data, cfg.seed), device) if training else base
        return np.stack([base, base, third], axis=1)
    return np.stack([embed_windows(models[s.tag], ws.data, device) for s in specs], axis=1)


def eval_set(cfg: RunConfig, models: dict, ws: WindowSet, device: torch.device, training: bool) -> EvalSet:
    c = contexts(cfg, models, ws, device, training)
    return EvalSet(rows(c, cfg.rn.manner).astype(np.float32), ws.label, rows_per_window(cfg.rn.manner, ws.length))


def selection_rules(cfg: RunConfig, has_val: bool) -> list[str]:
    primary = cfg.rn.select if (cfg.rn.select != "val" or has_val) else "last"
    rules = [primary]
    if cfg.rn.report_both:
        rules += [r for r in (("val" if has_val else "last"), "test") if r not in rules]
    return rules


def run_rn(cfg: RunConfig, p: Prepared, models: dict, run_dir: Path, device: torch.device) -> dict:
    from .training.encoder import write_history_csv, TrainHistory

    train = eval_set(cfg, models, p.splits["train"], device, training=True)
    val_ws = p.splits.get("val")
    val = eval_set(cfg, models, val_ws, device, training=False) if val_ws is not None and len(val_ws) else None
    rules = selection_rules(cfg, val is not None)
    test = eval_set(cfg, models, p.splits["test"], device, training=False) if "test" in rules else None
    res = train_rn(train, len(p.windows.persons), cfg.rn, device, cfg.seed, val=val, test=test,
                   progress=cfg.progress)
    for rule in rules:
        save_checkpoint(run_dir / "rn" / rule, res.states[rule], {
            "kind": "recognition_net", "selection": rule, "epoch": res.best_epoch[rule],
            "in_features": train.x.shape[1], "num_classes": len(p.windows.persons), "hidden": cfg.rn.hidden})
    write_history_csv(run_dir / "rn" / "history.csv", TrainHistory(res.history))
    return {"rules": rules, "best_epoch": {r: res.best_epoch[r] for r in rules}, "history": res.history}


def load_rn(run_dir: Path, rule: str, device: torch.device) -> tuple[RecognitionNet, dict]:
    prefix = run_dir / "rn" / rule
    if not prefix.with_suffix(".json").exists():
        raise ConfigError(f"{run_dir}: no recognition network selected by '{rule}'; run the rn stage first")
    tensors, meta = load_checkpoint(prefix)
    net = RecognitionNet(meta["in_features"], meta["num_classes"], meta["hidden"])
    net.load_state_dict(tensors)
    return net.to(device).eval(), meta


def evaluate_legacy(cfg: RunConfig, p: Prepared, models: dict, run_dir: Path, device: torch.device) -> dict:
    from .evaluation.metrics import classification_report

    test = eval_set(cfg, models, p.splits["test"], device, training=False)
    rules = selection_rules(cfg, len(p.splits.get("val", [])) > 0)
    out = {"selection": rules[0], "by_selection": {}, "scores": {}}
    for rule in rules:
        net, meta = load_rn(run_dir, rule, device)
        scores = window_logits(net, test, device)
        rep = classification_report(scores, test.y, len(p.windows.persons))
        rep["epoch"] = meta["epoch"]
        out["by_selection"][rule] = rep
        out["scores"][rule] = scores
    out["test_features"] = test.x.reshape(len(test.y), test.rows_per_window, -1).mean(axis=1)
    out["test_labels"] = test.y
    return out


def evaluate_probe_gallery(cfg: RunConfig, p: Prepared, models: dict, device: torch.device) -> dict:
    from .evaluation.retrieval import evaluate_retrieval, pairwise_euclidean, sequence_features

    feats = {}
    for name in ("gallery", "probe"):
        ws = p.splits[name]
        vec = window_vectors(contexts(cfg, models, ws, device, training=False), cfg.retrieval.feature)
        if cfg.retrieval.pooling == "mean":
            pooled, walk_idx = sequence_features(vec, ws.walk, how="mean")
            walk_idx = np.asarray(walk_idx)
            feats[name] = (pooled, ws.walk_person[walk_idx], walk_idx)
        else:
            feats[name] = (vec, ws.label, ws.walk)
    (g, gy, gw), (q, qy, qw) = feats["gallery"], feats["probe"]
    dist = pairwise_euclidean(q, g)
    rep = evaluate_retrieval(dist, qy, gy, probe_walks=qw, gallery_walks=gw)
    rep["features"] = {"window": cfg.retrieval.feature, "pooling": cfg.retrieval.pooling}
    return {"retrieval": rep, "test_features": q, "test_labels": qy}


def run(cfg: RunConfig, run_dir: str | Path, stages: tuple[str, ...] = STAGES) -> dict:
    """Run the requested stages in ``run_dir`` and write the reports; returns results."""
    from .reports.results import write_reports

    run_dir = Path(run_dir)
    bad = [s for s in stages if s not in STAGES]
    if bad:
        raise ConfigError(f"unknown stage(s) {bad}; valid: {', '.join(STAGES)}")
    device = resolve_device(cfg.device)
    t0 = time.perf_counter()
    if "encoder" not in stages:
        # Re-use the run's saved configuration for everything that defines the trained models.
        saved = from_dict(read_json(run_dir / "config.json"))
        saved.device, saved.progress = cfg.device, cfg.progress
        saved.rn = cfg.rn if "rn" in stages else saved.rn
        cfg = saved
    else:
        run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / "config.json", cfg.to_dict())
    torch.manual_seed(cfg.seed)
    p = prepare(cfg, run_dir / "split.json")
    stage_info: dict = {"prepare": p.summary}
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
    sample = p.splits["test" if protocol == "legacy" else "probe"]
    attention = {ax: a for ax, a in zip("xyz", mean_attention(next(iter(models.values())), sample.data, device))}
    results["stages"] = stage_info
    results["wall_time_s"] = time.perf_counter() - t0
    return write_reports(run_dir, cfg, p, results, attention, models, device)


def evaluate_run(run_dir: str | Path, device: str | None = None, progress: bool = True) -> dict:
    """Re-compute and re-plot a finished run from its saved weights (no training)."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").exists():
        raise ConfigError(f"{run_dir}: not a skelreid run folder (no config.json)")
    cfg = from_dict(read_json(run_dir / "config.json"))
    if device is not None:
        cfg.device = device
    cfg.progress = progress
    return run(cfg, run_dir, stages=("evaluate",))
