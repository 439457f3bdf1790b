"""``--split-seeds 0,1,2``: the evaluation over several seeded splits, mean ± std.

The successors' KGBD/KS20 splits were drawn unseeded and cannot be reproduced; a spread over seeded
splits is what can be compared and repeated. Each split is a complete run in ``OUT/split_<s>/``
(``data.split_seed = s``). The split decides which walks the encoders learn from, so **the encoders
are retrained for every split**: the cost is the number of seeds times one run (``results.md`` lists
each split's wall time).
"""
from __future__ import annotations

import copy
import time
from pathlib import Path

import numpy as np

from .errors import ConfigError
from .io import write_json, write_text

UNIT_ORDER = ("sequence", "walk")


def split_metrics(r: dict) -> dict[str, float]:
    """One split's headline figures, flat: ``"<pair> <unit> rank1"`` ... and the optimistic rows
    (``"<pair> <unit> optimistic rank1"``) of ``--select-on-test``; legacy runs: ``"<rule> rank1"`` ..."""
    out: dict[str, float] = {}
    if r.get("protocol") == "legacy":
        for rule, m in r.get("metrics", {}).items():
            for k in ("rank1", "rank5", "nauc_roc"):
                if m.get(k) is not None:
                    out[f"{rule} {k}"] = float(m[k])
        return out
    for pair, m in r.get("pairs", {}).items():
        units = m.get("units") or {"walk": m}
        for u in UNIT_ORDER:
            if u in units:
                for k in ("rank1", "rank5", "rank10", "mAP"):
                    out[f"{pair} {u} {k}"] = float(units[u][k])
    for pair, units in (r.get("select_on_test") or {}).get("pairs", {}).items():
        for u in UNIT_ORDER:
            if u in units:
                for k in ("rank1", "mAP"):
                    out[f"{pair} {u} optimistic {k}"] = float(units[u][k])
    return out


def mean_std(rows: dict) -> dict:
    keys = list(dict.fromkeys(k for row in rows.values() for k in row))
    stats = {}
    for k in keys:
        vals = np.array([row[k] for row in rows.values() if k in row], dtype=np.float64)
        stats[k] = {"mean": float(vals.mean()), "std": float(vals.std(ddof=1)) if len(vals) > 1 else 0.0,
                    "n": int(len(vals))}
    return stats


def _label(key: str) -> str:
    parts = key.split(" ")
    names = {"sequence": "per subsequence", "walk": "per walk", "rank1": "Rank-1", "rank5": "Rank-5",
             "rank10": "Rank-10", "mAP": "mAP", "optimistic": "(optimistic, test-selected epoch)"}
    return " ".join(names.get(p, p) for p in parts)


def run_split_seeds(cfg, run_dir: str | Path, seeds: list[int], stages=None) -> dict:
    """One complete run per split seed (encoders retrained), then ``results.{json,md}`` of mean ± std."""
    from .pipeline import STAGES, run
    from .runstate import lock_run_folder

    stages = STAGES if stages is None else stages
    seeds = list(dict.fromkeys(int(s) for s in seeds))
    if len(seeds) < 2:
        raise ConfigError("--split-seeds needs at least two seeds (use --split-seed for one)")
    if cfg.data.source != "raw":
        raise ConfigError(f"--split-seeds: --source {cfg.data.source} fixes the split; there is nothing to redraw")
    if cfg.data.sets:
        raise ConfigError("--split-seeds: this preset's splits are predefined (data.sets); there is nothing to redraw")
    if cfg.data.view == "all":
        raise ConfigError("--split-seeds with --view all: run the views one by one (--view V)")
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    lock_run_folder(run_dir)
    per_split, seconds = {}, {}
    for s in seeds:
        c = copy.deepcopy(cfg)
        c.data.split_seed = s
        t0 = time.perf_counter()
        per_split[s] = run(c, run_dir / f"split_{s}", stages)
        seconds[s] = time.perf_counter() - t0
    return write_split_reports(run_dir, cfg, per_split, seconds)


def write_split_reports(run_dir: Path, cfg, per_split: dict, seconds: dict | None = None) -> dict:
    rows = {s: split_metrics(r) for s, r in per_split.items() if "metrics" in r}
    stats = mean_std(rows)
    seconds = seconds or {}
    out = {"experiment": cfg.name or cfg.data.dataset, "dataset": cfg.data.dataset, "protocol": cfg.data.protocol,
           "split_seeds": [int(s) for s in per_split], "runs": {str(s): f"split_{s}/results.json" for s in per_split},
           "per_split": {str(s): row for s, row in rows.items()}, "mean_std": stats,
           "seconds": {str(s): float(v) for s, v in seconds.items()}, "encoder_epochs": cfg.encoder.epochs,
           "encoders_retrained_per_split": True, "config": cfg.to_dict()}
    write_json(Path(run_dir) / "results.json", out)
    lines = [f"# {out['experiment']}: {len(per_split)} seeded splits (split seeds "
             f"{', '.join(map(str, per_split))})", "",
             f"Each split is a complete run in `split_<s>/`: its own walk split (`data.split_seed`), encoders "
             f"retrained on that split's training walks ({cfg.encoder.epochs} encoder epochs, model seed {cfg.seed}), "
             "then the evaluation. Mean ± standard deviation (n − 1) over the splits:", "",
             "| figure | " + " | ".join(f"split {s}" for s in rows) + " | mean ± std |",
             "|---|" + "---|" * (len(rows) + 1)]
    for k, v in stats.items():
        lines.append(f"| {_label(k)} | " + " | ".join("–" if k not in row else f"{100 * row[k]:.1f}"
                                                       for row in rows.values())
                     + f" | {100 * v['mean']:.1f} ± {100 * v['std']:.1f} |")
    if seconds:
        lines += ["", "Cost (the encoders are retrained per split): " + ", ".join(
            f"split {s} {v:.0f} s" for s, v in seconds.items()) + f"; {sum(seconds.values()):.0f} s in all."]
    if any("optimistic" in k for k in stats):
        lines += ["", "Rows marked optimistic chose the encoder milestone on the probe set (`--select-on-test`)."]
    write_text(Path(run_dir) / "results.md", "\n".join(lines) + "\n")
    return out


def format_split_summary(r: dict) -> str:
    from .reports.results import format_mean_std

    return format_mean_std(r["mean_std"], label=_label, width=48)
