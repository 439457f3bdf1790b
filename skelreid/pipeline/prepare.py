"""Preparing a run's data: walks read and filtered, one view chosen, windows cut and their scale
checked, the split manifest loaded or drawn, and the windows the encoders learn from."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config import RunConfig
from ..console import warn
from ..data.datasets import load_sequences
from ..data.filtering import Exclusions, check_enough_persons, drop_thin_persons, exclude_unusable, walks_needed
from ..data.readers.reference_npy import read_reference_layout
from ..data.readers.successors_npy import read_successors_layout
from ..data.records import natural_key, walks_by_person
from ..data.splits import (assign_sets, check_persons_covered, load_manifest, make_manifest, predefined_split,
                           make_predefined_manifest, save_manifest)
from ..data.windows import WindowSet, dataset_body_scale, make_windows
from ..encoders import body_scale_of
from ..errors import ConfigError


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
    if view is None:
        return seqs
    views = sorted({s.view for s in seqs if s.view is not None}, key=natural_key)
    if not views:
        raise ConfigError(f"--view {view}: this dataset has no views")
    if view not in views:
        raise ConfigError(f"--view {view}: no walks of that view; the data has views {', '.join(views)}")
    return [s for s in seqs if s.view == view]


def dataset_views(seqs: list) -> list[str]:
    return sorted({s.view for s in seqs if s.view is not None}, key=natural_key)


def prepare(cfg: RunConfig, manifest_path: Path | None = None, sequences: list | None = None) -> Prepared:
    """Load walks, cut windows, load or create the split manifest.

    ``sequences`` skips reading (a ``--view all`` run reads the files once).
    """
    d = cfg.data
    if d.source == "reference_npy":
        return _prepare_reference(cfg, manifest_path)
    if d.source == "successors_npy":
        return _prepare_successors(cfg, manifest_path)
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


def usable_sequences(cfg: RunConfig, seqs: list) -> tuple[list, "Exclusions"]:
    """The walks a run can use (``data.short_walks``, see :mod:`skelreid.data.filtering`): short walks
    left out, then persons (or, with ``split_by_view``, person-view groups) with too few walks for the
    split; one warning line says what was left out."""
    d = cfg.data
    needed = 1 if d.sets else walks_needed(d.protocol, d.test_walks)
    by_view = bool(d.split_by_view and d.view is None and any(s.view is not None for s in seqs))
    seqs, ex = exclude_unusable(seqs, d.length, d.clip, d.short_walks, 1 if by_view else needed)
    if d.short_walks == "skip" and by_view:  # random splits drawn per (person, view): each group needs enough

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


def _prepare_successors(cfg, manifest_path: Path | None):
    """The authors' exact split: train and test splits as written by SPC-MGR's ``Preprocess.py``."""
    d = cfg.data
    if d.root is None:
        raise ConfigError("--source successors_npy needs --root (the folder that holds Datasets/)")
    if d.view == "all":
        raise ConfigError("--view all is not available with --source successors_npy; give one view")
    if d.protocol != "probe_gallery":
        raise ConfigError("--source successors_npy holds probe/gallery splits: use --protocol probe_gallery")
    splits = read_successors_layout(d.root, d.dataset, d.length, view=None if d.view is None else int(d.view))
    merged, ids = _merge_splits(splits)
    if manifest_path is not None and manifest_path.exists():
        manifest = load_manifest(manifest_path, merged.walks)
    else:
        manifest = make_predefined_manifest(d.dataset, ids, d.protocol, d.split_seed, source="successors_npy")
        if manifest_path is not None:
            save_manifest(manifest_path, manifest)
    return _prepared(cfg, merged, manifest, {}, frames=len(merged) * d.length)
