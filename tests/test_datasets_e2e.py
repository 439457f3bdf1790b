"""Every benchmark preset end to end, through the command a user types, on generated
fixtures written in each dataset's real on-disk layout (and in the authors' npy layout)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from skelreid.cli import main

pytestmark = pytest.mark.slow   # end-to-end: `make test-fast` (pytest -m "not slow") leaves it out

TINY = ["--set", "encoder.hidden=8", "--set", "encoder.proj_dim=8", "--epochs", "1", "--rn-epochs", "3",
        "--no-progress"]
CASIA_VIEWS = (0, 5, 10)


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    """Raw fixtures, written once: {dataset: --root}."""
    from skelreid.data.fixtures import write_fixture

    base = tmp_path_factory.mktemp("raw")
    return {
        "BIWI": write_fixture("BIWI", base / "biwi", persons=3),
        "IAS": write_fixture("IAS", base / "ias", persons=3),
        "KS20": write_fixture("KS20", base / "ks20", persons=3),
        # three of CASIA-B's 11 views (0°, 90°, 180°): the per-view tables keep their first, a middle
        # and their last column, at a quarter of the cost of all eleven
        "CASIA_B": write_fixture("CASIA_B", base / "casia", persons=3, views=CASIA_VIEWS,
                                 conditions=("nm-01", "nm-02", "nm-03", "nm-04", "nm-05", "nm-06",
                                             "bg-01", "bg-02", "cl-01", "cl-02")),
    }


def _train(tmp_path: Path, *argv: str) -> dict:
    out = tmp_path / "run"
    assert main(["train", *argv, *TINY, "--out", str(out)]) == 0
    return json.loads((out / "results.json").read_text()), (out / "results.md").read_text(), out


def test_biwi_walking_and_still(tmp_path, raw):
    r, md, _ = _train(tmp_path, "--dataset", "BIWI", "--root", str(raw["BIWI"]))
    assert r["primary_test"] == "Walking" and set(r["test_sets"]) == {"Walking", "Still"}
    assert r["metrics"] == r["test_sets"]["Walking"]
    assert r["split"]["walks_per_split"] == {"train": 3, "Walking": 3, "Still": 3}
    assert "paper CAGE (Rev. Rec.) (BIWI) | test data (reference code) | – | 62.9" in md
    assert "## Test split `Still`" in md


def test_biwi_probe_gallery_walking_vs_still(tmp_path, raw):
    r, md, _ = _train(tmp_path, "--dataset", "BIWI", "--root", str(raw["BIWI"]), "--protocol", "probe_gallery")
    assert set(r["pairs"]) == {"BIWI-W", "BIWI-S"} and r["primary_pair"] == "BIWI-W"
    assert (r["pairs"]["BIWI-W"]["probe"], r["pairs"]["BIWI-W"]["gallery"]) == ("Walking", "Still")
    assert "| BIWI-S | published re-evaluation | 25.8" in md


def test_ias_reports_ias_a_and_ias_b(tmp_path, raw):
    r, md, out = _train(tmp_path, "--dataset", "IAS", "--root", str(raw["IAS"]), "--report-both")
    # test selection, as the reference: one RN per test split, each chosen on its own split
    hist = (out / "rn" / "history.csv").read_text().splitlines()[0].split(",")
    assert {"test_IAS_A_rank1", "test_IAS_B_rank1", "test_rank1"} <= set(hist)
    for name in ("IAS-A", "IAS-B"):
        meta = json.loads((out / "rn" / f"test-{name}.json").read_text())
        assert r["test_sets"][name]["test"]["epoch"] == meta["epoch"]
    assert set(r["test_sets"]) == {"IAS-A", "IAS-B"}
    for name in ("IAS-A", "IAS-B"):
        assert set(r["test_sets"][name]) == {"last", "test"}   # one training walk per person: no validation
        assert 0.0 <= r["test_sets"][name]["last"]["rank1"] <= 1.0
    assert "(IAS-A) | test data (reference code) | – | 60.1" in md
    assert "(IAS-B) | test data (reference code) | – | 62.5" in md


def test_ias_probe_gallery_a_vs_b(tmp_path, raw):
    r, _, _ = _train(tmp_path, "--dataset", "IAS", "--root", str(raw["IAS"]), "--protocol", "probe_gallery")
    assert {k: (v["probe"], v["gallery"]) for k, v in r["pairs"].items()} == {
        "IAS-A": ("IAS-A", "IAS-B"), "IAS-B": ("IAS-B", "IAS-A")}


def test_ks20_all_views_per_view_table_and_one_view(tmp_path, raw):
    r, md, _ = _train(tmp_path / "all", "--dataset", "KS20", "--root", str(raw["KS20"]))
    views = r["per_view"]["test"]
    assert sorted(views) == ["0", "1", "2", "3", "4"]        # one test walk per person and view
    assert r["split"]["views"] == ["0", "1", "2", "3", "4"]
    assert "Rank-1 per view" in md and "| view | 0 | 1 | 2 | 3 | 4 |" in md
    r1, _, _ = _train(tmp_path / "one", "--dataset", "KS20", "--root", str(raw["KS20"]), "--view", "2")
    assert r1["view"] == "2" and r1["split"]["views"] == ["2"] and "per_view" not in r1
    assert r1["split"]["windows"] < r["split"]["windows"]


def test_casia_b_cve_all_views_table(tmp_path, raw):
    r, md, out = _train(tmp_path, "--dataset", "CASIA_B_CVE", "--root", str(raw["CASIA_B"]),
                        "--set", "rn.batch_size=64")
    assert r["view"] == "all" and sorted(r["views"], key=int) == [str(v) for v in CASIA_VIEWS]
    assert [r["views"][str(v)]["label"] for v in CASIA_VIEWS] == ["0°", "90°", "180°"]
    assert r["mean"]["rank1"] == pytest.approx(np.mean([v["rank1"] for v in r["views"].values()]))
    assert "| | 0° | 90° | 180° | mean |" in md
    assert "| paper Rank-1 (test-selected) | 35.5 | 76.0 | 46.3 |" in md       # the paper's figures of those views
    for v in CASIA_VIEWS:
        sub = json.loads((out / f"view_{v}" / "results.json").read_text())
        assert sub["view"] == str(v) and sub["split"]["views"] == [str(v)]
        assert sub["metrics"][sub["selection"]]["rank1"] == r["views"][str(v)]["rank1"]
    assert (out / "plots" / "views.png").stat().st_size > 0
    # re-evaluating the folder re-scores every view from the saved weights
    assert main(["evaluate", str(out), "--no-progress"]) == 0
    again = json.loads((out / "results.json").read_text())
    assert again["views"] == r["views"]


def test_casia_b_cme_five_pairs(tmp_path, raw, capsys):
    r, md, _ = _train(tmp_path, "--dataset", "CASIA-B-CME", "--root", str(raw["CASIA_B"]), "--length", "20",
                      "--probe_type", "all")
    assert set(r["pairs"]) == {"nm.nm", "cl.cl", "bg.bg", "cl.nm", "bg.nm"}
    assert r["split"]["walks_per_split"]["train"] == 3 * len(CASIA_VIEWS) * 4    # nm-01..04 of every view
    assert "| | nm.nm | cl.cl | bg.bg | cl.nm | bg.nm |" in md
    assert "| paper Rank-1 | 54.3 | 31.9 | 37.5 | 27.0 | 36.3 |" in md
    for rep in r["pairs"].values():
        assert rep["features"] == {"window": "sc", "pooling": "none"}
        assert 0 < rep["num_queries"]


def test_cme_one_probe_type_and_a_bad_one(tmp_path, raw, capsys):
    r, _, _ = _train(tmp_path, "--dataset", "CASIA_B_CME", "--root", str(raw["CASIA_B"]), "--length", "20",
                     "--probe_type", "cl.nm")
    assert list(r["pairs"]) == ["cl.nm"]
    capsys.readouterr()
    assert main(["train", "--dataset", "CASIA_B_CME", "--root", str(raw["CASIA_B"]), "--probe_type", "xx.nm",
                 *TINY, "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "nm.nm, cl.cl, bg.bg, cl.nm, bg.nm" in err


@pytest.mark.parametrize("dataset,extra,tests", [
    ("IAS", [], ["IAS-A", "IAS-B"]),
    ("KGBD", [], ["test"]),
    ("CASIA_B", ["--view", "4"], ["test"]),
])
def test_authors_npy_layout_legacy(tmp_path, dataset, extra, tests):
    from skelreid.data.fixtures import write_reference_fixture

    root = write_reference_fixture(dataset, tmp_path / "ref", length=6, persons=3,
                                   view=int(extra[1]) if extra else None)
    preset = {"CASIA_B": "CASIA_B_CVE"}.get(dataset, dataset)
    r, md, _ = _train(tmp_path, "--dataset", preset, "--root", str(root), "--source", "reference_npy",
                      "--length", "6", *extra)
    assert r["source"] == "reference_npy" and sorted(r["test_sets"]) == tests
    assert "from the authors' npy files" in md
    assert r["split"]["persons"] == 3


def test_authors_npy_layout_cme(tmp_path):
    from skelreid.data.fixtures import write_reference_fixture

    root = write_reference_fixture("CASIA_B_match", tmp_path / "ref", length=20, persons=3)
    r, md, _ = _train(tmp_path, "--dataset", "CASIA_B_CME", "--root", str(root), "--source", "reference_npy",
                      "--length", "20")
    assert set(r["pairs"]) == {"nm.nm", "cl.cl", "bg.bg", "cl.nm", "bg.nm"}
    assert "| | nm.nm | cl.cl | bg.bg | cl.nm | bg.nm |" in md


def test_evaluate_best_model_and_rn_dir(tmp_path, raw, capsys):
    runs = tmp_path / "runs"
    for seed in ("0", "1"):
        assert main(["train", "--dataset", "KS20", "--root", str(raw["KS20"]), "--view", "0", "--seed", seed,
                     *TINY, "--out", str(runs / f"ks20_seed{seed}")]) == 0
    scores = {s: json.loads((runs / f"ks20_seed{s}" / "results.json").read_text())["validation_rank1"]
              for s in ("0", "1")}
    best = max(scores, key=lambda s: (scores[s], f"ks20_seed{s}"))
    capsys.readouterr()
    assert main(["evaluate", "--dataset", "KS20", "--best_model", "rev_rec", "--runs", str(runs),
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"ks20_seed{best}: best of 2 run(s) by validation Rank-1" in out
    assert main(["evaluate", "--RN_dir", "ks20_seed0", "--runs", str(runs), "--no-progress"]) == 0
    assert main(["evaluate", "--dataset", "BIWI", "--best_model", "rev_rec", "--runs", str(runs)]) == 2
    assert "no finished run of --dataset BIWI" in capsys.readouterr().err


def test_biwi_two_thirds_rule_only_with_reference_quirks(raw):
    from skelreid.config import build_config
    from skelreid.pipeline import encoder_training_set, prepare

    cfg = build_config("BIWI", [{"data": {"root": str(raw["BIWI"])}, "progress": False}])
    p = prepare(cfg)
    full = encoder_training_set(cfg, p)
    assert len(full) == len(p.splits["train"]) + len(p.splits.get("val", []))
    cfg.reference_quirks = True
    part = encoder_training_set(cfg, p)
    n = len(full)
    assert len(part) == n - -(-n // 3)                      # input[:-len//3] with len//3 rounded up
    np.testing.assert_array_equal(part.data, full.data[: len(part)])


def test_make_fixture_command_and_bad_view(tmp_path, raw, capsys):
    assert main(["make-fixture", "IAS", str(tmp_path / "ias"), "--persons", "2"]) == 0
    assert (tmp_path / "ias" / "TestingB").is_dir()
    assert main(["make-fixture", "KS20", str(tmp_path / "ref"), "--reference-npy", "--length", "8"]) == 0
    assert (tmp_path / "ref" / "Datasets" / "KS20" / "8" / "KS20_train_npy_data").is_dir()
    capsys.readouterr()
    assert main(["train", "--dataset", "KS20", "--root", str(raw["KS20"]), "--view", "7", *TINY,
                 "--out", str(tmp_path / "bad")]) == 2
    assert "--view 7: no walks of that view; the data has views 0, 1, 2, 3, 4" in capsys.readouterr().err
    assert main(["train", "--dataset", "BIWI", "--root", str(raw["BIWI"]), "--view", "1", *TINY,
                 "--out", str(tmp_path / "bad2")]) == 2
    assert "this dataset has no views" in capsys.readouterr().err


def test_kgbd_preset_on_a_fixture_in_the_raw_layout(tmp_path):
    from skelreid.data.fixtures import write_fixture

    root = write_fixture("KGBD", tmp_path / "kgbd", persons=3)
    r, md, _ = _train(tmp_path, "--dataset", "KGBD", "--root", str(root), "--cache", str(tmp_path / "cache"))
    assert r["split"]["persons"] == 3 and r["split"]["walks_per_split"] == {"train": 9, "val": 3, "test": 3}
    assert "paper CAGE (Rev. Rec.) (KGBD) | test data (reference code) | – | 86.9" in md
