"""Trained encoders -> features: which encoder sets a run has, loading them, their context vectors,
the recognition network's input rows of a split, and the rules that select the RN's epoch.

This floor sits below the pipeline (see docs/architecture.md): :mod:`skelreid.inference` and the
evaluation protocols read features through it, never through :mod:`skelreid.pipeline`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .config import RunConfig
from .data.windows import WindowSet
from .errors import ConfigError
from .features import reference_batch_order, rows, rows_per_window
from .pretext import members, shuffle_frames
from .training.encoder import EncoderSpec, embed_windows, load_encoder
from .training.recognition import EvalSet


def body_scale_of(manifest: dict, normalise: str) -> float | None:
    """The dataset body scale a run's windows are divided by (``normalise: body``), from its manifest."""
    if normalise != "body":
        return None
    scale = manifest.get("normalisation", {}).get("scale")
    if not isinstance(scale, (int, float)) or not scale > 0:
        raise ConfigError("data.normalise=body: the split manifest has no body scale; delete split.json in the "
                          "run folder to draw the split (and the scale) again")
    return float(scale)


def encoder_specs(cfg: RunConfig) -> list[EncoderSpec]:
    return [EncoderSpec(t, a) for t, a in members(cfg.encoder.model, cfg.encoder.attention)]


def _quirk_plus(cfg: RunConfig) -> bool:
    # Reference behaviour of rev_rec_plus (spec §2.5, §7.A): only the rev_rec LA
    # weights are ever used for features, so only that model is trained.
    return cfg.reference_quirks and cfg.encoder.model == "rev_rec_plus"


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
    """``[N, M, A, f, H]`` context vectors of every window of a window set for every encoder set."""
    return context_vectors(cfg, models, ws.data, device, training)


def context_vectors(cfg: RunConfig, models: dict, windows: np.ndarray, device: torch.device,
                    training: bool) -> np.ndarray:
    """``[N, M, A, f, H]`` context vectors of windows ``[N, f, J, D]`` for every encoder set."""
    specs = encoder_specs(cfg)
    if _quirk_plus(cfg):
        rev = models["rev_rec_LA"]
        base = embed_windows(rev, windows, device)
        third = embed_windows(rev, shuffle_frames(windows, cfg.seed), device) if training else base
        return np.stack([base, base, third], axis=1)
    return np.stack([embed_windows(models[s.tag], windows, device) for s in specs], axis=1)


def split_eval_set(cfg: RunConfig, p, models: dict, name: str, device: torch.device,
                   rule: str | None = None) -> EvalSet:
    """The RN inputs of split ``name`` of ``p`` (a :class:`skelreid.pipeline.Prepared`), computed once
    per run (the RN stage's test selection and the evaluation share them). The paper-like rule has its
    own (reference-batched) copy."""
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
    return EvalSet(rows(c, cfg.rn.manner).astype(np.float32), ws.label, rows_per_window(cfg.rn.manner, ws.length),
                   walk=np.asarray(ws.walks, dtype=object)[ws.walk], position=np.asarray(ws.position))


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
