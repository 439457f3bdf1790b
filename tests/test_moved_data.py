"""A run whose data moved to another disk: a new --root (with --resume, with --stages rn,evaluate, and
with `skelreid evaluate`) is used when the data there is the run's, and refused with the reason when not."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from skelreid.cli import main
from skelreid.data.fixtures import write_fixture

pytestmark = pytest.mark.slow   # end-to-end: `make test-fast` (pytest -m "not slow") leaves it out

TINY = ["--dataset", "KGBD", "--epochs", "1", "--rn-epochs", "2", "--length", "6", "--threads", "1",
        "--set", "encoder.hidden=8", "--set", "encoder.proj_dim=8", "--set", "encoder.batch_size=16",
        "--set", "rn.hidden=16", "--set", "rn.batch_size=32", "--no-progress"]


def _config(run: Path) -> dict:
    return json.loads((run / "config.json").read_text())


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished run whose data then moved: the old folder is gone, a copy lives elsewhere."""
    tmp = tmp_path_factory.mktemp("moved")
    old = write_fixture("KGBD", tmp / "disk1" / "kgbd", persons=3, frames=(60, 70))
    run = tmp / "run"
    assert main(["train", *TINY, "--root", str(old), "--cache", str(tmp / "cache1"), "--out", str(run)]) == 0
    new = tmp / "disk2" / "kgbd"
    shutil.copytree(old, new)
    shutil.rmtree(tmp / "disk1")
    shutil.rmtree(tmp / "cache1")
    return run, old, new, tmp


def test_resume_rn_stage_and_evaluate_honour_a_new_root_with_the_same_data(trained, capsys):
    run, old, new, tmp = trained
    record = json.loads((run / "data.json").read_text())
    assert record["root"] == str(old) and record["walks"] > 0
    assert main(["train", *TINY, "--root", str(new), "--cache", str(tmp / "cache2"), "--out", str(run),
                 "--resume", "--threads", "2"]) == 0
    assert _config(run)["data"]["root"] == str(new) and _config(run)["data"]["cache"] == str(tmp / "cache2")
    assert _config(run)["threads"] == 2
    assert "moved" in capsys.readouterr().err
    assert json.loads((run / "data.json").read_text()) == {**record, "root": str(new)}
    assert main(["train", *TINY, "--root", str(new), "--out", str(run), "--stages", "rn,evaluate",
                 "--threads", "1"]) == 0
    assert _config(run)["threads"] == 1
    shutil.move(str(new), str(tmp / "disk3"))
    assert main(["evaluate", str(run), "--root", str(tmp / "disk3"), "--no-progress"]) == 0
    assert _config(run)["data"]["root"] == str(tmp / "disk3")
    shutil.move(str(tmp / "disk3"), str(new))


def test_a_new_root_with_other_data_is_refused_with_the_reason(trained, tmp_path, capsys):
    run, old, new, tmp = trained
    before = _config(run)
    other = write_fixture("KGBD", tmp_path / "other", persons=3, frames=(60, 70), seed=7)
    capsys.readouterr()
    assert main(["evaluate", str(run), "--root", str(other), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"--root {other}: the data there is not the data the run in {run} was trained on" in err
    assert "windows of" in err and "walks" in err
    assert _config(run) == before   # the run still points at its own data
    assert main(["train", *TINY, "--root", str(other), "--out", str(run), "--stages", "rn,evaluate"]) == 2
    assert "is not the data the run" in capsys.readouterr().err
