"""Finding finished runs: the equivalents of the reference's ``evaluate.py --best_model`` and ``--RN_dir``.

A run folder is any folder with a ``config.json`` and a ``results.json`` (one
written by ``skelreid train``). The "best" run of a dataset and pretext task is
chosen on what the run measured WITHOUT test data: the validation Rank-1 of its
selected recognition-network epoch. Runs that have no validation split (the
BIWI / IAS / authors'-npy splits, or probe/gallery runs) can only be ranked by
their test figures; that is allowed but reported as such.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .config import preset_key
from .errors import ConfigError
from .io import read_json


@dataclass
class RunInfo:
    path: Path
    results: dict

    @property
    def preset(self) -> str:
        return self.results.get("preset") or preset_key(self.results.get("dataset", ""))

    @property
    def model(self) -> str:
        return "age" if self.results.get("method") == "age" else self.results.get("model", "")

    def score(self) -> tuple[float | None, str]:
        """(value, what it is): validation Rank-1 when there is one, else the test Rank-1."""
        r = self.results
        if r.get("validation_rank1") is not None:
            return float(r["validation_rank1"]), "validation Rank-1"
        if "views" in r:
            return r["mean"].get("rank1"), "TEST mean Rank-1 over views"
        if r.get("protocol") == "legacy":
            return r["metrics"][r["selection"]]["rank1"], "TEST Rank-1"
        return r["metrics"]["probe_gallery"]["rank1"], "TEST Rank-1 (probe/gallery)"


def find_runs(runs_dir: str | Path) -> list[RunInfo]:
    """Every finished run under ``runs_dir`` (per-view sub-runs are listed through their parent)."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise ConfigError(f"runs folder not found: {runs_dir}")
    out = []
    for res in sorted(runs_dir.rglob("results.json")):
        folder = res.parent
        if folder.name.startswith("view_") and (folder.parent / "results.json").exists():
            continue
        if (folder / "config.json").exists():
            out.append(RunInfo(folder, read_json(res)))
    return out


def best_run(runs_dir: str | Path, dataset: str, model: str) -> tuple[RunInfo, str]:
    """The best finished run of ``dataset`` (a preset name) and ``model`` (pretext task, or ``age``)."""
    key = preset_key(dataset)
    runs = [r for r in find_runs(runs_dir) if r.preset == key and r.model == model]
    if not runs:
        raise ConfigError(f"no finished run of --dataset {dataset} with --best_model {model} under {runs_dir}")
    scored = [(r.score(), r) for r in runs]
    kinds = {what for (_, what), _ in scored}
    if len(kinds) > 1:  # compare like with like: prefer runs with a validation score
        scored = [s for s in scored if s[0][1] == "validation Rank-1"] or scored
    (value, what), run = max(scored, key=lambda s: (s[0][0] if s[0][0] is not None else -1.0, str(s[1].path)))
    return run, f"best of {len(runs)} run(s) by {what} ({100 * (value or 0):.1f})"


def resolve_run_dir(name: str, runs_dir: str | Path = "runs") -> Path:
    """``--RN_dir NAME``: a path, or the name of a folder under ``runs_dir``."""
    for candidate in (Path(name), Path(runs_dir) / name):
        if (candidate / "config.json").exists():
            return candidate
    raise ConfigError(f"--RN_dir {name}: no run folder {name} (looked in . and {runs_dir}/)")
