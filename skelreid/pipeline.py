"""The one-command pipeline: data -> encoders (3 axes) -> features -> RN -> evaluation -> reports.

A run folder holds everything needed to re-evaluate without retraining::

    config.json  split.json  encoders/<task>_<att>.{safetensors,json}  encoders/*_losses.csv
    rn/<rule>.{safetensors,json}  rn/history.csv  results.json  results.md  plots/*.png  tensorboard/
    resume/ (epoch checkpoints while a stage runs)  .lock  [view_<v>/ ... for --view all]
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .config import RunConfig, from_dict
from .data.datasets import load_sequences
from .data.records import walks_by_person
from .data.splits import (assign_sets, check_persons_covered, load_manifest, make_manifest,
                          make_predefined_manifest, manifest_hash, predefined_split, save_manifest)
from .data.windows import WindowSet, dataset_body_scale, make_windows
from .device import resolve_device
from .errors import ConfigError, SkelreidError
from .features import reference_batch_order, rows, rows_per_window, window_vectors
from .io import read_json, write_json
from .pretext import TASKS, members, shuffle_frames
from .runstate import claim_run_folder, lock_run_folder
from .training.checkpoint import load_checkpoint, save_checkpoint
from .training.encoder import EncoderSpec, embed_windows, load_encoder, mean_attention
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
    tests: list[str] = field(default_factory=lambda: ["test"])          # legacy: evaluated splits
    pairs: list[dict] = field(default_factory=lambda: [dict(DEFAULT_PAIR)])  # probe_gallery
    walk_view: dict[str, str] = field(default_factory=dict)             # walk id -> view
    features: dict = field(default_factory=dict, repr=False)            # split -> EvalSet (one pass each)


DEFAULT_PAIR = {"name": "probe_gallery", "probe": "probe", "gallery": "gallery"}


def select_view(seqs: list, view: str | None) -> list:
    """Keep the walks of one view (``None`` keeps all)."""
    from .data.records import natural_key

    if view is None:
        return seqs
    views = sorted({s.view for s in seqs if s.view is not None}, key=natural_key)
    if not views:
        raise ConfigError(f"--view {view}: this dataset has no views")
    if view not in views:
        raise ConfigError(f"--view {view}: no walks of that view; the data has views {', '.join(views)}")
    return [s for s in seqs if s.view == view]


def dataset_views(seqs: list) -> list[str]:
    from .data.records import natural_key

    return sorted({s.view for s in seqs if s.view is not None}, key=natural_key)


def prepare(cfg: RunConfig, manifest_path: Path | None = None, sequences: list | None = None) -> Prepared:
    """Load walks, cut windows, load or create the split manifest.

    ``sequences`` skips reading (a ``--view all`` run reads the files once).
    """
    d = cfg.data
    if d.source == "reference_npy":
        return _prepare_reference(cfg, manifest_path)
    if d.source == "successors_npy":  # issue 19: the successors' released split
        from .successors import prepare_successors

        return prepare_successors(cfg, manifest_path)
    seqs = sequences if sequences is not None else load_sequences(d, persons=d.persons, progress=cfg.progress)
    seqs = select_view(seqs, d.view)
    seqs, excluded = usable_sequences(cfg, seqs)
    walks = walks_by_person(seqs)
    walk_person = {s.walk_id: s.person for s in seqs}
    if manifest_path is not None and manifest_path.exists():
        manifest = load_manifest(manifest_path, list(walk_person))
    else:
        if d.sets:
            legacy = d.protocol == "legacy"
            splits = predefined_split(assign_sets(seqs, d.sets), walk_person, d.split_seed,
                                      d.val_walks if legacy else 0)
            manifest = make_predefined_manifest(d.dataset, splits, d.protocol, d.split_seed,
                                                sets=d.sets, val_walks=d.val_walks if legacy else 0)
        else:
            params = ({"test_walks": d.test_walks, "val_walks": d.val_walks} if d.protocol == "legacy"
                      else {"gallery_walks": d.gallery_walks, "probe_walks": d.probe_walks})
            groups = walks
            if d.split_by_view and d.view is None and any(s.view is not None for s in seqs):
                groups = {}
                for s in seqs:
                    groups.setdefault(f"{s.person}@view{s.view}", []).append(s.walk_id)
            manifest = make_manifest(d.dataset, groups, d.protocol, d.split_seed, **params)
            manifest["persons"] = len(walks)
        if excluded:
            manifest["excluded"] = excluded.to_dict()
        if d.normalise == "body":  # one scale for the dataset, from the walks the encoders learn from
            learn = set(manifest["splits"]["train"]) | set(manifest["splits"].get("val", []))
            manifest["normalisation"] = {"mode": "body", "scale": dataset_body_scale(
                [s for s in seqs if s.walk_id in learn], d.clip)}
        if manifest_path is not None:
            save_manifest(manifest_path, manifest)
    scale = body_scale_of(manifest, d.normalise)
    ws = make_windows(seqs, d.length, d.clip, d.normalise, scale=scale)
    warn_on_scale(ws, d.normalise)
    if manifest["protocol"] == "legacy":
        check_persons_covered(manifest, walk_person)
    walk_view = {s.walk_id: s.view for s in seqs if s.view is not None}
    prepared = _prepared(cfg, ws, manifest, walk_view, frames=int(sum(s.num_frames for s in seqs)))
    if excluded:
        prepared.summary["excluded"] = excluded.to_dict()
    return prepared


def body_scale_of(manifest: dict, normalise: str) -> float | None:
    """The dataset body scale a run's windows are divided by (``normalise: body``), from its manifest."""
    if normalise != "body":
        return None
    scale = manifest.get("normalisation", {}).get("scale")
    if not isinstance(scale, (int, float)) or not scale > 0:
        raise ConfigError("data.normalise=body: the split manifest has no body scale; delete split.json in the "
                          "run folder to draw the split (and the scale) again")
    return float(scale)


def usable_sequences(cfg: RunConfig, seqs: list) -> tuple[list, "Exclusions"]:
    """The walks a run can use (``data.short_walks``, see :mod:`skelreid.data.filtering`): short walks
    left out, then persons (or, with ``split_by_view``, person-view groups) with too few walks for the
    split; one warning line says what was left out."""
    from .data.filtering import check_enough_persons, drop_thin_persons, exclude_unusable, walks_needed
    from .training.resume import warn

    d = cfg.data
    needed = 1 if d.sets else walks_needed(d.protocol, d.test_walks)
    by_view = bool(d.split_by_view and d.view is None and any(s.view is not None for s in seqs))
    seqs, ex = exclude_unusable(seqs, d.length, d.clip, d.short_walks, 1 if by_view else needed)
    if d.short_walks == "skip" and by_view:  # random splits drawn per (person, view): each group needs enough
        import dataclasses

        keyed = [dataclasses.replace(s, person=f"{s.person}@view{s.view}") for s in seqs]
        kept, dropped = drop_thin_persons(keyed, needed)
        keep = {k.walk_id for k in kept}
        seqs = [s for s, k in zip(seqs, keyed) if k.walk_id in keep]
        ex.persons += dropped
    if d.short_walks == "skip" and d.sets:  # predefined splits: a person needs a training walk
        try:
            train = set(assign_sets(seqs, {"train": d.sets["train"]})["train"])
        except ConfigError:
            train = set()
        lacking = sorted({s.person for s in seqs} - {s.person for s in seqs if s.walk_id in train})
        if lacking:
            ex.persons += [{"person": p, "walks": 0, "needed": 1} for p in lacking]
            seqs = [s for s in seqs if s.person not in set(lacking)]
    if ex:
        warn(ex.warning(d.length, d.clip))
    check_enough_persons(seqs, ex)
    return seqs, ex


#: Typical coordinate magnitudes outside this range train badly (huge losses, denormal floats).
SCALE_RANGE = (1e-2, 50.0)


def warn_on_scale(ws: WindowSet, normalise: str) -> None:
    """One warning when the windows' coordinates are far from order one (pixels, millimetres)."""
    from .training.resume import warn

    if not len(ws):
        return
    sample = np.abs(ws.data[:: max(1, len(ws) // 2000)]).ravel()
    typical = float(np.percentile(sample, 99))
    if not SCALE_RANGE[0] <= typical <= SCALE_RANGE[1]:
        warn(f"coordinates are of order {typical:.3g} (99th percentile of |value|, data.normalise={normalise}); "
             "values far from 1 train badly: use --set data.normalise=body (hip-centred, divided by body size)")


def _prepared(cfg: RunConfig, ws: WindowSet, manifest: dict, walk_view: dict, frames: int,
              tests: list[str] | None = None) -> Prepared:
    d = cfg.data
    splits = {name: ws.subset(ids) for name, ids in manifest["splits"].items()}
    tests = tests or list(d.tests)
    pairs = [dict(p) for p in d.pairs] or [dict(DEFAULT_PAIR)]
    needed = tests if manifest["protocol"] == "legacy" else [x for p in pairs for x in (p["probe"], p["gallery"])]
    missing = sorted({n for n in needed if n not in splits})
    if missing:
        raise ConfigError(f"the split has no {', '.join(missing)}; it has {', '.join(splits)}")
    persons = {w.split("/", 1)[0] for w in manifest["splits"].get("train", [])}
    summary = {"persons": len(ws.persons), "walks": len(ws.walks), "frames": frames,
               "windows": len(ws), "windows_per_split": {k: len(v) for k, v in splits.items()},
               "walks_per_split": {k: len(v) for k, v in manifest["splits"].items()},
               "train_persons": len(persons)}
    if walk_view:
        summary["views"] = sorted(set(walk_view.values()))
    return Prepared(ws, manifest, splits, summary, tests, pairs, walk_view)


#: The authors' npy layout names CASIA-B's condition-matching data ``CASIA_B_match``.
def reference_dataset_name(cfg: RunConfig) -> str:
    d = cfg.data
    if d.dataset.upper() == "CASIA_B" and d.protocol == "probe_gallery":
        return "CASIA_B_match"
    return d.dataset


def _prepare_reference(cfg: RunConfig, manifest_path: Path | None) -> Prepared:
    """Windows and splits straight from the authors' preprocessed npy files (spec §1.1-1.2)."""
    from .data.readers.reference_npy import read_reference_layout

    d = cfg.data
    if d.root is None:
        raise ConfigError("--source reference_npy needs --root (the folder that holds Datasets/)")
    if d.view == "all":
        raise ConfigError("--view all is not available with --source reference_npy; give one view")
    name = reference_dataset_name(cfg)
    ref = read_reference_layout(d.root, name, d.length, view=None if d.view is None else int(d.view))
    merged, ids = _merge_splits(ref.splits)
    if manifest_path is not None and manifest_path.exists():
        manifest = load_manifest(manifest_path, merged.walks)
    else:
        manifest = make_predefined_manifest(name, ids, d.protocol, d.split_seed, source="reference_npy")
        if manifest_path is not None:
            save_manifest(manifest_path, manifest)
    tests = d.tests if all(t in ids for t in d.tests) else [n for n in ids if n != "train"]
    if d.protocol == "legacy":
        check_persons_covered(manifest, {w: w.split("/", 1)[0] for w in merged.walks})
    return _prepared(cfg, merged, manifest, {}, frames=len(merged) * d.length, tests=tests)


def _merge_splits(splits: dict[str, WindowSet]) -> tuple[WindowSet, dict[str, list[str]]]:
    """One window set of every split, walk ids kept apart per split."""
    first = next(iter(splits.values()))
    walks: list[str] = []
    parts, ids = [], {}
    for name, ws in splits.items():
        offset = len(walks)
        walks += ws.walks
        parts.append((ws, offset))
        ids[name] = list(ws.walks)
    merged = WindowSet(np.concatenate([ws.data for ws, _ in parts]), np.concatenate([ws.label for ws, _ in parts]),
                       np.concatenate([ws.walk + off for ws, off in parts]),
                       np.concatenate([ws.position for ws, _ in parts]), list(first.persons), walks, first.layout)
    return merged, ids


def encoder_training_set(cfg: RunConfig, p: Prepared) -> WindowSet:
    """The walks the encoders learn from (no labels are used): train (+ val), never a test split.

    With ``reference_quirks`` on BIWI, only the first two thirds of the training
    windows in file order are used, as the reference code does (spec §1.7).
    """
    names = ["train", "val"] if "val" in p.manifest["splits"] else ["train"]
    ids = [w for n in names for w in p.manifest["splits"][n]]
    ws = p.windows.subset(ids)
    if cfg.reference_quirks and cfg.data.dataset.upper() == "BIWI":
        keep = np.zeros(len(ws), dtype=bool)
        keep[: len(ws) - (-(-len(ws) // 3))] = True
        ws = WindowSet(ws.data[keep], ws.label[keep], ws.walk[keep], ws.position[keep], ws.persons, ws.walks,
                       ws.layout)
    return ws


def encoder_specs(cfg: RunConfig) -> list[EncoderSpec]:
    return [EncoderSpec(t, a) for t, a in members(cfg.encoder.model, cfg.encoder.attention)]


def _quirk_plus(cfg: RunConfig) -> bool:
    # Reference behaviour of rev_rec_plus (spec §2.5, §7.A): only the rev_rec LA
    # weights are ever used for features, so only that model is trained.
    return cfg.reference_quirks and cfg.encoder.model == "rev_rec_plus"


def milestone_encoder_dir(run_dir: Path, epoch: int) -> Path:
    """Where the encoder weights of milestone ``epoch`` are kept."""
    return Path(run_dir) / "encoders" / f"epoch_{int(epoch)}"


def encoder_monitor(cfg: RunConfig, p: Prepared):
    """The cheap between-milestone monitor (``None`` when off or nothing to score); never reads test walks."""
    if not cfg.monitor_every:
        return None
    from .training.monitor import WalkMonitor

    from .training.resume import note

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
    from .runstate import encoder_fingerprint, final_history_row, verified_checkpoint_meta
    from .training.encoder import EncoderRun
    from .training.resume import ResumeFile, note, warn

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
    from .training.encoder import train_encoders
    from .training.resume import ResumeFile

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


def load_encoders(cfg: RunConfig, run_dir: Path, device: torch.device, folder: Path | None = None) -> dict:
    models = {}
    folder = folder or run_dir / "encoders"
    for spec in encoder_specs(cfg):
        if _quirk_plus(cfg) and spec.task != "rev_rec":
            continue
        prefix = folder / spec.tag
        if not prefix.with_suffix(".json").exists():
            raise ConfigError(f"{run_dir}: no trained encoder {spec.tag} in {folder}; run the encoder stage first")
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


def split_eval_set(cfg: RunConfig, p: Prepared, models: dict, name: str, device: torch.device,
                   rule: str | None = None) -> EvalSet:
    """The RN inputs of an evaluated split, computed once per run (the RN stage's test selection
    and the evaluation share them). The paper-like rule has its own (reference-batched) copy."""
    key = name if rule != PAPER_LIKE else f"{name}@{PAPER_LIKE}"
    if key not in p.features:
        p.features[key] = eval_set(cfg, models, p.splits[name], device, training=False,
                                   reference_batches=True if rule == PAPER_LIKE else None)
    return p.features[key]


def eval_set(cfg: RunConfig, models: dict, ws: WindowSet, device: torch.device, training: bool,
             reference_batches: bool | None = None) -> EvalSet:
    """The RN's input rows of a split. With ``reference_quirks`` (or ``reference_batches``) the
    windows are those the reference's fixed batches of 128 produce (spec §7.B): short persons padded
    with copies of their first window in training features (and, for rev_rec_plus, in test features
    too), long persons cut to a multiple of 128."""
    if cfg.reference_quirks if reference_batches is None else reference_batches:
        ws = ws.take(reference_batch_order(ws.label, pad=training or _quirk_plus(cfg)))
    c = contexts(cfg, models, ws, device, training)
    return EvalSet(rows(c, cfg.rn.manner).astype(np.float32), ws.label, rows_per_window(cfg.rn.manner, ws.length))


#: The reference's own recognition network, for a like-for-like row: trained on every non-test walk
#: (train + validation), its epoch chosen on TEST accuracy, features in the reference's 128-window batches.
PAPER_LIKE = "paper-like"


def selection_rules(cfg: RunConfig, has_val: bool) -> list[str]:
    primary = cfg.rn.select if (cfg.rn.select != "val" or has_val) else "last"
    rules = [primary]
    if cfg.rn.report_both:
        rules += [r for r in (("val" if has_val else "last"), "test") if r not in rules]
    if cfg.rn.paper_like:
        rules.append(PAPER_LIKE)
    return rules


def _features_sha256(s: EvalSet) -> str:
    from .io import sha256_bytes

    return sha256_bytes(np.ascontiguousarray(s.x).tobytes() + np.ascontiguousarray(s.y).tobytes())


def _rn_saved(run_dir: Path, names: list[str], fingerprint: str) -> dict | None:
    """The saved RN sidecars of ``names`` when all are intact and of ``fingerprint``, else ``None``."""
    from .runstate import verified_checkpoint_meta

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
    from .runstate import rn_fingerprint
    from .training.encoder import write_history_csv, TrainHistory
    from .training.resume import ResumeFile, note

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
    from .training.resume import ResumeFile, note

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
    from .training.encoder import TrainHistory, write_history_csv

    write_history_csv(run_dir / "rn" / "history_paper_like.csv", TrainHistory(res.history))
    for name in names:
        state = "test" if name == PAPER_LIKE else f"test-{name[len(PAPER_LIKE) + 1:]}"
        _save_rn(run_dir / "rn" / name, res, state, name, train, len(p.windows.persons), cfg, fingerprint)
    resume.clear()
    return int(res.best_epoch["test"])


def load_rn(run_dir: Path, rule: str, device: torch.device) -> tuple[RecognitionNet, dict]:
    prefix = run_dir / "rn" / rule
    if not prefix.with_suffix(".json").exists():
        raise ConfigError(f"{run_dir}: no recognition network selected by '{rule}'; run the rn stage first")
    tensors, meta = load_checkpoint(prefix)
    net = RecognitionNet(meta["in_features"], meta["num_classes"], meta["hidden"])
    net.load_state_dict(tensors)
    return net.to(device).eval(), meta


def evaluate_legacy(cfg: RunConfig, p: Prepared, models: dict, run_dir: Path, device: torch.device) -> dict:
    """Score every legacy test split with the RN of every selection rule.

    With ``rn.select=test`` and several test splits (IAS-A / IAS-B), each split is
    scored with the epoch chosen on that split, as the reference code does.
    """
    from .evaluation.metrics import classification_report

    rules = selection_rules(cfg, len(p.splits.get("val", [])) > 0)
    out: dict = {"selection": rules[0], "tests": {}, "primary_test": p.tests[0]}
    nets = {}
    for name in p.tests:
        test = split_eval_set(cfg, p, models, name, device)
        entry: dict = {"by_selection": {}, "scores": {}}
        for rule in rules:
            key = _rn_name(run_dir, rule, name)
            if key not in nets:
                nets[key] = load_rn(run_dir, key, device)
            net, meta = nets[key]
            rule_test = split_eval_set(cfg, p, models, name, device, rule=rule) if rule == PAPER_LIKE else test
            scores = window_logits(net, rule_test, device)
            rep = classification_report(scores, rule_test.y, len(p.windows.persons))
            rep["epoch"] = meta["epoch"]
            rep["test_windows"] = int(len(rule_test.y))
            entry["by_selection"][rule] = rep
            entry["scores"][rule] = scores
        views = _per_view(p, p.splits[name], entry["scores"][rules[0]]) if rules[0] != PAPER_LIKE else {}
        if views:
            entry["per_view"] = views
        out["tests"][name] = entry
        if name == p.tests[0]:
            out["by_selection"], out["scores"] = entry["by_selection"], entry["scores"]
            out["test_features"] = test.x.reshape(len(test.y), test.rows_per_window, -1).mean(axis=1)
            out["test_labels"] = test.y
    return out


def _rn_name(run_dir: Path, rule: str, test_name: str) -> str:
    """The saved RN of a rule; test selection may have one RN per test split."""
    per_split = f"{rule}-{test_name}"
    if rule in ("test", PAPER_LIKE) and (run_dir / "rn" / f"{per_split}.json").exists():
        return per_split
    return rule


def _per_view(p: Prepared, ws: WindowSet, scores: np.ndarray) -> dict:
    """Rank-1 of the test windows of each view, when the test split has several views."""
    if not p.walk_view or len(scores) != len(ws):  # reference_quirks may have cut the test windows
        return {}
    view_of = np.array([p.walk_view.get(w, "") for w in ws.walks])[ws.walk]
    views = [v for v in dict.fromkeys(view_of.tolist()) if v]
    if len(views) < 2:
        return {}
    from .data.records import natural_key

    hit = scores.argmax(1) == ws.label
    return {v: {"rank1": float(hit[view_of == v].mean()), "windows": int((view_of == v).sum())}
            for v in sorted(views, key=natural_key)}


def evaluate_probe_gallery(cfg: RunConfig, p: Prepared, models: dict, device: torch.device) -> dict:
    """Retrieval for every probe/gallery pair (same-walk matches excluded by walk id)."""
    from .evaluation.retrieval import evaluate_retrieval, pairwise_euclidean, sequence_features

    from .evaluation.units import pair_units, unit_features  # issue 19

    feats: dict = {}
    vecs: dict = {}

    def vectors(name: str, feature: str):  # one encoder pass per split, every window feature needed
        if name not in vecs:
            c = contexts(cfg, models, p.splits[name], device, training=False)
            vecs[name] = {f: window_vectors(c, f) for f in unit_features(cfg.retrieval)}
        return vecs[name][feature]

    def features(name: str):
        if name not in feats:
            ws = p.splits[name]
            vec = vectors(name, cfg.retrieval.feature)
            if cfg.retrieval.pooling == "mean":
                pooled, walk_idx = sequence_features(vec, ws.walk, how="mean")
                walk_idx = np.asarray(walk_idx)
                feats[name] = (pooled, ws.walk_person[walk_idx], walk_idx)
            elif cfg.data.source in ("reference_npy", "successors_npy"):
                # The authors' files have no walk boundaries (one pseudo-walk per person and split):
                # exclude only the probe window itself, as the reference's 2nd-nearest rule intends.
                feats[name] = (vec, ws.label, ws.walk * len(p.windows) + ws.position)
            else:
                feats[name] = (vec, ws.label, ws.walk)
        return feats[name]

    out: dict = {"pairs": {}}
    for pair in p.pairs:
        (g, gy, gw), (q, qy, qw) = features(pair["gallery"]), features(pair["probe"])
        rep = evaluate_retrieval(pairwise_euclidean(q, g), qy, gy, probe_walks=qw, gallery_walks=gw)
        rep["features"] = {"window": cfg.retrieval.feature, "pooling": cfg.retrieval.pooling}
        rep["probe"], rep["gallery"] = pair["probe"], pair["gallery"]
        rep["units"] = pair_units(cfg.retrieval, lambda n, f: vectors(n, f), p.splits[pair["probe"]],  # issue 19
                                  p.splits[pair["gallery"]], pair["probe"], pair["gallery"],
                                  per_window_groups=cfg.data.source != "raw")
        out["pairs"][pair["name"]] = rep
        if "retrieval" not in out:
            out.update(retrieval=rep, primary_pair=pair["name"], test_features=q, test_labels=qy)
    return out


def run(cfg: RunConfig, run_dir: str | Path, stages: tuple[str, ...] = STAGES,
        sequences: list | None = None) -> dict:
    """Run the requested stages in ``run_dir`` and write the reports; returns results.

    ``data.view == "all"`` runs the whole pipeline once per view (see :func:`run_views`).
    """
    from .reports.results import write_reports

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
    write_json(run_dir / "config.json", cfg.to_dict())
    torch.manual_seed(cfg.seed)
    p = prepare(cfg, run_dir / "split.json", sequences)
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
    out = write_reports(run_dir, cfg, p, results, attention, models, device)
    if cfg.milestones:
        from .reports.milestones import write_milestone_reports

        write_milestone_reports(run_dir, cfg)
    if protocol != "legacy" and cfg.retrieval.select_on_test:  # issue 19: optimistic row, labelled
        from .reports.pg_units import write_optimistic

        out["select_on_test"] = write_optimistic(run_dir, cfg)
    return out


def run_milestones(cfg: RunConfig, p: Prepared, run_dir: Path, device: torch.device,
                   stages: tuple[str, ...]) -> dict:
    """Every milestone before the last epoch: train the encoders up to it (``encoder`` stage), keep
    their weights, and evaluate them with the run's protocol (``milestones/epoch_<E>/``); the tables
    ``results_by_epoch.*`` are rewritten after each one. The last milestone is the run itself."""
    from .reports.milestones import write_milestone_reports

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
    import dataclasses

    from . import faults
    from .reports.results import public_metrics
    from .runstate import rn_fingerprint
    from .training.resume import note

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
    from .determinism import flush_denormals

    if cfg.threads is not None and cfg.threads != torch.get_num_threads():
        torch.set_num_threads(int(cfg.threads))
    if str(cfg.device).strip().lower() == "cpu":
        flush_denormals()


def run_seeds(cfg: RunConfig, run_dir: str | Path, seeds: list[int], stages: tuple[str, ...] = STAGES) -> dict:
    """``--seeds 0,1,2``: one complete run folder per seed (``run_dir/seed_<s>/``) whose encoders train
    together as one batched computation (:func:`skelreid.training.encoder.train_encoders`): each seed
    keeps its own initial weights, data order, RNG and results, equal to training it alone. Then each
    run's recognition network and evaluation, and one table of mean ± std (``run_dir/results.md``)."""
    import copy

    from .reports.results import write_seed_reports

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
    the trained models; the command line gives the run-time options (and the RN's, when retrained)."""
    saved = from_dict(read_json(run_dir / "config.json"))
    saved.device, saved.progress = cfg.device, cfg.progress
    saved.rn = cfg.rn if "rn" in stages else saved.rn
    saved.checkpoint_minutes = cfg.checkpoint_minutes
    lock_run_folder(run_dir)  # one command at a time in a run folder
    return saved


def run_views(cfg: RunConfig, run_dir: str | Path, stages: tuple[str, ...] = STAGES) -> dict:
    """The whole pipeline once per view, each in ``run_dir/view_<v>/``, then one table.

    This is the cross-view evaluation of CASIA-B (11 views) and KS20 (5 views): the
    encoders, the recognition network and the test all use one view's walks.
    """
    import copy

    from .reports.results import write_view_reports

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
    from .runstate import config_differences, has_trained_anything

    saved_path = run_dir / "config.json"
    if cfg.resume or not saved_path.exists():
        return
    if not any(has_trained_anything(d) for d in run_dir.glob("view_*")):
        return
    diffs = config_differences(from_dict(read_json(saved_path)), cfg)
    if diffs:
        raise ConfigError(f"{run_dir} holds per-view runs of another configuration ({'; '.join(diffs[:3])}); "
                          "choose another --out folder, or add --resume to continue that run")


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
