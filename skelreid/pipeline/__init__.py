"""The one-command pipeline: data -> encoders (3 axes) -> features -> RN -> evaluation -> reports.

A run folder holds everything needed to re-evaluate without retraining::

    config.json  split.json  encoders/<task>_<att>.{safetensors,json}  encoders/*_losses.csv
    rn/<rule>.{safetensors,json}  rn/history.csv  results.json  results.md  plots/*.png  tensorboard/
    resume/ (epoch checkpoints while a stage runs)  .lock  [view_<v>/ ... for --view all]

Each module answers one question (see docs/architecture.md):

* :mod:`.prepare` -- which walks and windows a run uses (filtering, view, scale, split, encoder set);
* :mod:`.stages` -- training the encoders and the recognition network (skipped or resumed);
* :mod:`.runner` -- running the stages in a run folder (seeds, views, milestones, re-evaluation).

Features from trained encoders live one floor down in :mod:`skelreid.encoders`, the path from a
split to its metrics in :mod:`skelreid.evaluation.protocols`; both are re-exported here.
"""
from __future__ import annotations

from ..encoders import (PAPER_LIKE, body_scale_of, contexts, encoder_specs, eval_set, load_encoders,
                        selection_rules, split_eval_set)
from ..evaluation.protocols import evaluate_legacy, evaluate_probe_gallery, load_rn
from .prepare import (DEFAULT_PAIR, SCALE_RANGE, Prepared, dataset_views, encoder_training_set, prepare,
                      reference_dataset_name, select_view, usable_sequences, warn_on_scale)
from .runner import (STAGES, TRAIN_FLAG, apply_cpu_settings, evaluate_milestone, evaluate_run, run,
                     run_milestones, run_seeds, run_views)
from .stages import (EncoderJob, encoder_job, encoder_monitor, milestone_encoder_dir, run_encoders,
                     run_paper_like_rn, run_rn, train_jobs)

__all__ = ["PAPER_LIKE", "body_scale_of", "contexts", "encoder_specs", "eval_set", "load_encoders",
           "selection_rules", "split_eval_set", "evaluate_legacy", "evaluate_probe_gallery", "load_rn",
           "DEFAULT_PAIR", "SCALE_RANGE", "Prepared", "dataset_views", "encoder_training_set", "prepare",
           "reference_dataset_name", "select_view", "usable_sequences", "warn_on_scale", "STAGES", "TRAIN_FLAG",
           "apply_cpu_settings", "evaluate_milestone", "evaluate_run", "run", "run_milestones", "run_seeds",
           "run_views", "EncoderJob", "encoder_job", "encoder_monitor", "milestone_encoder_dir", "run_encoders",
           "run_paper_like_rn", "run_rn", "train_jobs"]
