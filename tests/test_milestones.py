"""Evaluation at encoder milestones, the between-milestone monitor and the paper-like RN row (tiny runs)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from skelreid.cli import main

pytestmark = pytest.mark.slow   # end-to-end: `make test-fast` (pytest -m "not slow") leaves it out

REPO = Path(__file__).resolve().parents[1]
TINY = ["--dataset", "synthetic", "--epochs", "4", "--rn-epochs", "5",
        "--set", "data.synthetic.num_persons=4", "--set", "data.synthetic.walks_per_person=4",
        "--set", "data.synthetic.frames=[70,90]", "--set", "encoder.hidden=8", "--set", "encoder.proj_dim=8",
        "--set", "encoder.batch_size=16", "--set", "rn.hidden=16", "--set", "rn.batch_size=32", "--no-progress"]
LEGACY = [*TINY, "--milestones", "1,2", "--monitor-every", "1", "--report-both", "--paper-like"]


def _train(out: Path, *args: str) -> int:
    return main(["train", *args, "--out", str(out)])


def _table(run: Path) -> dict:
    """The tables without their timings (the monitor's seconds columns)."""
    md = []
    for line in (run / "results_by_epoch.md").read_text().splitlines():
        cells = line.split(" | ")
        md.append(" | ".join(cells[:3]) if line.startswith("| rev_rec_LA |") else line)
    return {"md": md, "csv": (run / "results_by_epoch.csv").read_text()}


@pytest.fixture(scope="module")
def legacy_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("milestones") / "run"
    assert _train(out, *LEGACY) == 0
    return out


def test_one_row_per_milestone_and_the_last_row_is_the_final_result(legacy_run):
    doc = json.loads((legacy_run / "results_by_epoch.json").read_text())
    assert [r["epoch"] for r in doc["rows"]] == [1, 2, 4]      # the final epoch is always a milestone
    final = json.loads((legacy_run / "results.json").read_text())
    assert doc["rows"][-1]["metrics"] == final["metrics"]
    assert doc["rows"][-1]["test_sets"] == final["test_sets"]
    for e in (1, 2):
        assert (legacy_run / "encoders" / f"epoch_{e}" / "rev_rec_LA.safetensors").exists()
        meta = json.loads((legacy_run / "encoders" / f"epoch_{e}" / "rev_rec_LA.json").read_text())
        assert meta["epochs"] == e
        rules = set(json.loads((legacy_run / "milestones" / f"epoch_{e}" / "metrics.json").read_text())["metrics"])
        assert rules == {"val", "test", "paper-like"}
    csv_rows = (legacy_run / "results_by_epoch.csv").read_text().splitlines()
    assert csv_rows[0].startswith("encoder_epoch,test,selection")
    assert len(csv_rows) == 1 + 3 * 3                          # 3 milestones x 3 rules
    assert (legacy_run / "plots" / "accuracy_by_epoch.png").stat().st_size > 1000
    # the monitor: every epoch, in the losses CSV and the table
    assert [e for e in doc["monitor"]["rev_rec_LA"]["epoch"]] == [1, 2, 3, 4]
    assert all(0.0 <= r <= 1.0 for r in doc["monitor"]["rev_rec_LA"]["rank1"])
    assert "monitor_rank1" in (legacy_run / "encoders" / "rev_rec_LA_losses.csv").read_text().splitlines()[0]


def test_milestones_and_monitor_do_not_change_the_final_weights(legacy_run, tmp_path):
    plain = tmp_path / "plain"
    assert _train(plain, *TINY, "--report-both", "--paper-like") == 0
    for rel in ("encoders/rev_rec_LA.safetensors", "rn/val.safetensors", "rn/test.safetensors",
                "rn/paper-like.safetensors"):
        assert (plain / rel).read_bytes() == (legacy_run / rel).read_bytes(), rel
    assert json.loads((plain / "results.json").read_text())["metrics"] == \
        json.loads((legacy_run / "results.json").read_text())["metrics"]


def test_paper_like_rule_trains_on_train_and_val_windows_and_is_labelled_everywhere(legacy_run, capsys):
    from skelreid.features import reference_batch_order
    from skelreid.pipeline import prepare
    from skelreid.config import from_dict

    cfg = from_dict(json.loads((legacy_run / "config.json").read_text()))
    p = prepare(cfg, legacy_run / "split.json")
    trainval = p.windows.subset(p.manifest["splits"]["train"] + p.manifest["splits"]["val"])
    meta = json.loads((legacy_run / "rn" / "paper-like.json").read_text())
    assert meta["train_windows"] == len(reference_batch_order(trainval.label, pad=True))
    assert meta["train_windows"] > len(p.splits["train"])       # more than the honest RN's training set
    honest = json.loads((legacy_run / "rn" / "val.json").read_text())
    assert honest["train_windows"] == len(p.splits["train"])
    results = json.loads((legacy_run / "results.json").read_text())
    test_windows = len(reference_batch_order(p.splits["test"].label, pad=False))
    assert results["metrics"]["paper-like"]["test_windows"] == test_windows
    label = "epoch chosen on TEST"
    assert label in (legacy_run / "results.md").read_text()
    assert "paper-like (optimistic)" in (legacy_run / "results_by_epoch.md").read_text()
    capsys.readouterr()
    assert main(["evaluate", str(legacy_run), "--no-progress"]) == 0
    assert label in capsys.readouterr().out


def test_the_monitor_never_reads_test_walks(legacy_run):
    from skelreid.config import from_dict
    from skelreid.pipeline import encoder_monitor, prepare

    cfg = from_dict(json.loads((legacy_run / "config.json").read_text()))
    p = prepare(cfg, legacy_run / "split.json")
    mon = encoder_monitor(cfg, p)
    test = p.splits["test"]
    seen = {p.windows.walks[w] for w in np.unique(mon.walk)}
    assert seen == set(p.manifest["splits"]["train"]) | set(p.manifest["splits"]["val"])
    assert not seen & set(p.manifest["splits"]["test"])
    # no monitored window equals a test window
    flat = {row.tobytes() for row in test.data.reshape(len(test), -1)}
    assert not any(row.tobytes() in flat for row in mon.windows.reshape(len(mon.windows), -1))
    # validation walks are the probes, training walks the gallery
    probe_walks = {p.windows.walks[w] for w in np.unique(mon.walk[mon.is_probe])}
    assert probe_walks == set(p.manifest["splits"]["val"]) and not mon.leave_one_out


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def test_a_run_killed_after_the_second_milestone_ends_with_the_same_table(legacy_run, tmp_path):
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "skelreid.cli", "train", *LEGACY, "--out", str(out)]
    proc = subprocess.run(cmd, env=_env(SKELREID_KILL_AT="milestone.done:2"), capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    partial = json.loads((out / "results_by_epoch.json").read_text())
    assert [r["epoch"] for r in partial["rows"]] == [1]         # killed just before the table was rewritten
    proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "epoch 2 evaluated" not in proc.stderr               # the finished milestone was not redone
    assert _table(out) == _table(legacy_run)
    assert json.loads((out / "results_by_epoch.json").read_text())["rows"] == \
        json.loads((legacy_run / "results_by_epoch.json").read_text())["rows"]


def test_probe_gallery_milestones_report_retrieval_and_a_leave_one_out_monitor(tmp_path):
    out = tmp_path / "pg"
    assert _train(out, *TINY, "--set", "data.synthetic.walks_per_person=5", "--protocol", "probe_gallery",
                  "--milestones", "2", "--monitor-every", "2") == 0
    doc = json.loads((out / "results_by_epoch.json").read_text())
    assert [r["epoch"] for r in doc["rows"]] == [2, 4]
    assert set(doc["rows"][0]["pairs"]["probe_gallery"]) >= {"rank1", "rank5", "rank10", "mAP"}
    assert doc["rows"][-1]["metrics"] == json.loads((out / "results.json").read_text())["metrics"]
    assert doc["monitor"]["rev_rec_LA"]["epoch"] == [2, 4]
    assert "leave-one-walk-out" in (out / "results_by_epoch.md").read_text()


@pytest.mark.parametrize("value, message", [("0", "not an encoder epoch"), ("5", "between 1 and 4"),
                                            ("a", "not an encoder epoch")])
def test_bad_milestones_are_one_line_errors(tmp_path, capsys, value, message):
    assert _train(tmp_path / "bad", *TINY, "--milestones", value) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("skelreid: error: option milestones") and message in err[0]
