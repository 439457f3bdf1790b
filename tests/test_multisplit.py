"""Issue 19: ``--split-seeds`` runs the evaluation over several seeded splits and reports mean ± std."""
from __future__ import annotations

import json

import numpy as np
import pytest

from skelreid.cli import main

TINY = ["--dataset", "synthetic", "--protocol", "probe_gallery", "--epochs", "1", "--no-progress", "--threads", "1",
        "--set", "encoder.hidden=16", "--set", "data.synthetic.num_persons=4"]


def test_split_seeds_report_mean_and_std_over_the_given_seeds(tmp_path, capsys):
    out = tmp_path / "ms"
    assert main(["train", *TINY, "--split-seeds", "0,1,2", "--out", str(out)]) == 0
    r = json.loads((out / "results.json").read_text())
    assert r["split_seeds"] == [0, 1, 2] and r["encoders_retrained_per_split"] is True
    splits = [json.loads((out / f"split_{s}" / "split.json").read_text())["splits"] for s in (0, 1, 2)]
    assert splits[0] != splits[1] or splits[1] != splits[2]           # the seeds draw different splits
    for key in ("probe_gallery sequence rank1", "probe_gallery sequence mAP", "probe_gallery walk rank1"):
        vals = []
        for s in (0, 1, 2):
            run = json.loads((out / f"split_{s}" / "results.json").read_text())
            unit, metric = key.split(" ")[1:]
            vals.append(run["pairs"]["probe_gallery"]["units"][unit][metric])
            assert r["per_split"][str(s)][key] == vals[-1]
        assert r["mean_std"][key]["mean"] == pytest.approx(np.mean(vals))
        assert r["mean_std"][key]["std"] == pytest.approx(np.std(vals, ddof=1))
        assert r["mean_std"][key]["n"] == 3
    md = (out / "results.md").read_text()
    assert "split 0 | split 1 | split 2 | mean ± std" in md and "per subsequence Rank-1" in md
    assert "retrained" in md and "Cost" in md


def test_split_seeds_refuse_one_seed_and_fixed_splits(tmp_path, capsys):
    assert main(["train", *TINY, "--split-seeds", "3", "--out", str(tmp_path / "a")]) == 2
    assert "at least two" in capsys.readouterr().err
