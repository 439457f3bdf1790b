"""benchmarks/gpu_check.sh --dry-run: every step of the prepared GPU check, at toy size on CPU."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_gpu_check_dry_run_runs_every_step_and_writes_the_summary(tmp_path):
    out = tmp_path / "gpu"
    env = {**os.environ, "PYTHON": sys.executable}
    proc = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_check.sh"), "--dry-run", str(out)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:] + proc.stdout[-2000:]
    steps = [line.split("\t") for line in (out / "steps.tsv").read_text().splitlines()]
    assert [s[0] for s in steps] == ["environment", "harness_eager", "harness_compiled", "harness_graphs",
                                     "harness_bf16", "harness_seeds3", "fixture_pack", "kgbd_pipeline"]
    assert all(s[1] == "ok" for s in steps), steps
    summary = json.loads((out / "summary.json").read_text())
    assert summary["environment"]["dry_run"] is True
    assert set(summary["harness"]) == {"eager", "compiled", "graphs", "bf16", "seeds3"}
    assert summary["harness"]["seeds3"]["options"]["runs"] == 3 and summary["three_seeds_vs_one"] > 0
    assert summary["harness"]["compiled"]["options"]["step"] == "compiled"      # aot_eager on CPU
    assert summary["harness"]["graphs"]["options"]["step"] == "eager"           # no CUDA: the fallback
    assert summary["kgbd"]["finished"] and [m["epoch"] for m in summary["kgbd"]["milestones"]] == [1, 2]
    md = (out / "summary.md").read_text()
    assert "dry run on CPU" in md and "| kgbd_pipeline | ok |" in md
    # the harness says what fell back, in one line each
    log = (out / "gpu_check.log").read_text()
    assert "train.step=graphs needs a CUDA device; using the eager step" in log
