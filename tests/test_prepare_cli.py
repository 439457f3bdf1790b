"""`skelreid prepare` on real KGBD, and the window count the paper's preprocessing gives."""
from __future__ import annotations

import json

import numpy as np
import pytest

from skelreid.cli import main
from skelreid.data.windows import make_windows
from skelreid.io import load_npz


@pytest.mark.kgbd
def test_kgbd_window_count_for_f6_after_clipping(kgbd_sequences):
    ws = make_windows(kgbd_sequences, length=6, clip=10)
    # sum over the 822 walks of floor((T - 2*10) / 6), counted independently of make_windows
    assert sum((s.num_frames - 20) // 6 for s in kgbd_sequences) == 78879
    assert len(ws) == 78879 and ws.data.shape[1:] == (6, 20, 3)
    assert len(ws.persons) == 164 and len(ws.walks) == 822


@pytest.mark.kgbd
def test_prepare_writes_windows_and_byte_identical_manifests(kgbd_data, tmp_path, capsys):
    argv = ["prepare", "--dataset", "KGBD", "--root", str(kgbd_data), "--cache", str(tmp_path / "cache"),
            "--protocol", "probe_gallery", "--split-seed", "3", "--no-progress"]
    assert main(argv + ["--out", str(tmp_path / "a")]) == 0
    printed = capsys.readouterr().out
    assert "164 persons, 822 walks, 491747 frames, 78879 windows" in printed
    assert main(argv + ["--out", str(tmp_path / "b")]) == 0
    a = (tmp_path / "a" / "split_probe_gallery_seed3.json").read_bytes()
    assert a == (tmp_path / "b" / "split_probe_gallery_seed3.json").read_bytes()
    m = json.loads(a)
    assert len(m["splits"]["probe"]) == 164 and len(m["splits"]["gallery"]) == 2 * 163 + 1
    assert [w for w in m["splits"]["train"] if w.startswith("Person015/")] != []
    arrays = load_npz(tmp_path / "a" / "windows_f6_clip10_none.npz")
    assert arrays["data"].shape == (78879, 6, 20, 3)
    assert np.bincount(arrays["label"]).size == 164
    assert not list((tmp_path / "a").glob(".*.tmp"))  # nothing half-written left behind


def test_prepare_bad_root_is_one_line(tmp_path, capsys):
    assert main(["prepare", "--dataset", "KGBD", "--root", str(tmp_path / "missing"), "--no-progress",
                 "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("skelreid: error:") and "missing" in err and "\n" not in err
    assert not (tmp_path / "o").exists()
