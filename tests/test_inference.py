"""Using a trained model: ``skelreid embed / enrol / identify`` and ``skelreid.load`` (issue 13).

One tiny probe/gallery run on the embedded synthetic walkers is trained in-process per module
(a second one, with another seed, for the "another model" check). Every comparison is between
deterministic computations of the same process: features of the same windows through the same
weights in the same batches are bit-identical.
"""
from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from skelreid.cli import main

REPO = Path(__file__).resolve().parents[1]
TINY = ["--dataset", "synthetic", "--protocol", "probe_gallery", "--epochs", "2",
        "--set", "encoder.hidden=8", "--set", "encoder.proj_dim=8", "--set", "encoder.batch_size=16",
        "--set", "data.synthetic.num_persons=6", "--set", "data.synthetic.walks_per_person=5",
        "--set", "data.synthetic.frames=[70,90]", "--no-progress"]
LEFT_OUT = "P006"


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("inference") / "run"
    assert main(["train", *TINY, "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def other_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("inference_other") / "run"
    assert main(["train", *TINY, "--seed", "1", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def model(run):
    import skelreid

    return skelreid.load(run)


def _cli(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main([*argv])
    out, err = capsys.readouterr()
    return rc, out, err


def _error_line(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("skelreid: error:")]
    assert len(lines) == 1, err
    return lines[0]


def _split(run: Path, name: str) -> list[str]:
    return json.loads((run / "split.json").read_text())["splits"][name]


def _pipeline_split_features(run: Path, name: str):
    """What ``evaluate_probe_gallery`` computes for a split: window vectors and walk means."""
    import torch

    from skelreid.config import from_dict
    from skelreid.evaluation.retrieval import sequence_features
    from skelreid.features import window_vectors
    from skelreid.io import read_json
    from skelreid.pipeline import contexts, load_encoders, prepare

    cfg = from_dict(read_json(run / "config.json"))
    p = prepare(cfg, run / "split.json")
    device = torch.device("cpu")
    models = load_encoders(cfg, run, device)
    ws = p.splits[name]
    vec = window_vectors(contexts(cfg, models, ws, device, training=False), cfg.retrieval.feature)
    pooled, idx = sequence_features(vec, ws.walk, how="mean")
    return ws, vec, pooled, [ws.walks[i] for i in idx]


# ---------------------------------------------------------------------- identification = the protocol's Rank-1
def test_identify_top1_equals_the_runs_rank1(run, model, tmp_path, capsys):
    from skelreid.gallery import Gallery
    from skelreid.inference import identify_features, read_walks, top1_accuracy

    gallery = tmp_path / "g.npz"
    rc, out, _ = _cli(capsys, "enrol", str(run), "--split", "gallery", "--gallery", str(gallery), "--no-progress")
    assert rc == 0 and "enrolled 12 walk(s)" in out
    rc, out, _ = _cli(capsys, "identify", str(run), "--gallery", str(gallery), "--split", "probe",
                      "--out", str(tmp_path / "ranks.csv"), "--no-progress")
    assert rc == 0
    rep = json.loads((run / "results.json").read_text())["metrics"]["probe_gallery"]
    rank1, queries = rep["rank1"], rep["num_queries"]
    assert f"top-1 accuracy: {rank1 * 100:.2f}% ({queries} probes with an enrolled identity)" in out.splitlines()

    # The exact float, from the ranks file and from the API.
    rows = list(csv.DictReader((tmp_path / "ranks.csv").open()))
    firsts = [r for r in rows if r["rank"] == "1"]
    assert sorted(r["probe"] for r in firsts) == sorted(_split(run, "probe"))
    assert float(np.mean([r["identity"] == r["person"] for r in firsts])) == rank1
    seqs, _ = read_walks(model, split="probe", progress=False)
    e = model.embed_sequences(seqs, progress=False)
    results = identify_features(e.features, Gallery.load(gallery), 5, None, e.walk, e.source, e.person)
    assert top1_accuracy(results) == (rank1, queries)
    for r in results:  # each identity listed once, at its nearest walk's distance, nearest first
        names = [n for n, _ in r.ranks]
        assert len(names) == len(set(names)) == 5
        assert [d for _, d in r.ranks] == sorted(d for _, d in r.ranks)


# ---------------------------------------------------------------------- embed
def test_embed_equals_the_pipeline_features(run, model, tmp_path, capsys):
    ws, vec, pooled, ids = _pipeline_split_features(run, "gallery")
    out = tmp_path / "emb.npz"
    rc, text, _ = _cli(capsys, "embed", str(run), "--split", "gallery", "--out", str(out), "--no-progress")
    assert rc == 0 and "12 walk embedding(s)" in text
    with np.load(out, allow_pickle=False) as z:
        assert z["walk"].tolist() == ids == sorted(_split(run, "gallery"), key=lambda w: (w[:4], int(w[5:])))
        assert z["person"].tolist() == [w.split("/")[0] for w in ids]
        assert np.array_equal(z["embeddings"], pooled) and z["embeddings"].dtype == np.float32
        for key in ("person", "walk", "view", "condition", "source"):
            assert z[key].dtype.kind == "U"
        meta = json.loads(str(z["meta"]))
        assert meta["level"] == "walk" and meta["fingerprint"] == model.fingerprint

    rc, _, _ = _cli(capsys, "embed", str(run), "--split", "gallery", "--windows", "--out", str(out), "--no-progress")
    assert rc == 0
    with np.load(out, allow_pickle=False) as z:
        assert len(z["embeddings"]) == len(ws) and np.array_equal(z["embeddings"], vec)
        assert z["walk"].tolist() == [ws.walks[i] for i in ws.walk]
        assert z["window"].tolist() == ws.position.tolist()

    # Every walk of the data without --split; the API gives the same features for the same walks.
    rc, _, _ = _cli(capsys, "embed", str(run), "--out", str(out), "--no-progress")
    with np.load(out, allow_pickle=False) as z:
        assert rc == 0 and len(z["walk"]) == 30 and len(set(z["walk"].tolist())) == 30
    from skelreid.inference import read_walks

    seqs, _ = read_walks(model, split="gallery", progress=False)
    assert [s.walk_id for s in seqs] == ids
    assert np.array_equal(model.embed([s.frames for s in seqs]), pooled)


def _write_generic(folder: Path, joints: int, dims: int, layout: str | None = None, persons: int = 2) -> Path:
    rng = np.random.default_rng(0)
    for p in range(persons):
        for w in range(2):
            (folder / f"p{p}").mkdir(parents=True, exist_ok=True)
            extra = {"layout": layout} if layout else {}
            np.savez(folder / f"p{p}" / f"w{w}.npz", frames=rng.normal(size=(60, joints, dims)).astype(np.float32),
                     **extra)
    return folder


@pytest.mark.parametrize("joints, dims, layout, data_says", [
    (25, 3, "kinect_v2", "25 joints in 3D (layout kinect_v2)"),
    (20, 2, None, "20 joints in 2D (layout generic_20x2)"),
    (14, 3, None, "14 joints in 3D (layout generic_14x3)"),
])
def test_embed_refuses_data_of_another_layout(run, tmp_path, capsys, joints, dims, layout, data_says):
    root = _write_generic(tmp_path / "walks", joints, dims, layout)
    rc, _, err = _cli(capsys, "embed", str(run), "--dataset", "generic", "--root", str(root),
                      "--out", str(tmp_path / "x.npz"), "--no-progress")
    assert rc == 2
    line = _error_line(err)
    assert f"{root}: the walks have {data_says}; " in line
    assert f"the model in {run} was trained on 20 joints in 3D (layout kinect_v1)" in line
    assert not (tmp_path / "x.npz").exists()


def test_embed_reads_unnamed_walks_of_the_right_shape_and_skips_short_ones(run, tmp_path, capsys):
    root = _write_generic(tmp_path / "walks", 20, 3)
    np.savez(root / "p0" / "short.npz", frames=np.zeros((12, 20, 3), np.float32))
    rc, out, err = _cli(capsys, "embed", str(run), "--dataset", "generic", "--root", str(root),
                        "--out", str(tmp_path / "x.npz"), "--no-progress")
    assert rc == 0, err
    assert "skipped 1 walk(s) too short" in err and len(err.strip().splitlines()) == 1
    with np.load(tmp_path / "x.npz", allow_pickle=False) as z:
        assert z["walk"].tolist() == ["p0/w0", "p0/w1", "p1/w0", "p1/w1"]
        assert z["source"].tolist()[0] == str((root / "p0" / "w0.npz").resolve())


def test_unknown_split_names_the_splits(run, tmp_path, capsys):
    rc, _, err = _cli(capsys, "embed", str(run), "--split", "test", "--out", str(tmp_path / "x.npz"))
    assert rc == 2 and "its splits are gallery, probe, train" in _error_line(err)


# ---------------------------------------------------------------------- galleries
def test_gallery_of_another_model_is_refused(run, other_run, tmp_path, capsys):
    gallery = tmp_path / "g.npz"
    assert _cli(capsys, "enrol", str(run), "--split", "gallery", "--gallery", str(gallery))[0] == 0
    before = gallery.read_bytes()
    for argv in (["identify", str(other_run), "--gallery", str(gallery), "--split", "probe"],
                 ["enrol", str(other_run), "--gallery", str(gallery), "--split", "probe"],
                 ["identify", str(other_run), "--gallery", str(gallery), "--calibrate", "--far", "0.1"]):
        rc, _, err = _cli(capsys, *argv)
        line = _error_line(err)
        assert rc == 2 and "g.npz was enrolled with another model (fingerprint " in line
        assert f"of {other_run}); enrol again with this model" in line
    assert gallery.read_bytes() == before


def test_tampered_gallery_is_refused(run, tmp_path, capsys):
    gallery = tmp_path / "g.npz"
    assert _cli(capsys, "enrol", str(run), "--split", "gallery", "--gallery", str(gallery))[0] == 0
    with np.load(gallery, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    changed = dict(arrays, embeddings=arrays["embeddings"].copy())
    changed["embeddings"][3, 5] += np.float32(0.5)
    np.savez(gallery, **changed)
    rc, _, err = _cli(capsys, "identify", str(run), "--gallery", str(gallery), "--split", "probe")
    assert rc == 2 and _error_line(err) == (f"skelreid: error: {gallery}: checksum mismatch: the gallery file "
                                            "was changed or damaged; enrol the walks again")
    # A changed label or metadata is refused too, and so is a pickled array.
    meta = json.loads(str(arrays["meta"]))
    meta["fingerprint"] = "0" * 64
    np.savez(gallery, **dict(arrays, meta=np.array(json.dumps(meta, sort_keys=True))))
    assert "checksum mismatch" in _error_line(_cli(capsys, "enrol", str(run), "--gallery", str(gallery))[2])
    np.savez(gallery, **dict(arrays, labels=np.array(arrays["labels"].tolist(), dtype=object)))
    rc, _, err = _cli(capsys, "identify", str(run), "--gallery", str(gallery), "--split", "probe")
    assert rc == 2 and str(gallery) in _error_line(err)


def test_enrolling_the_same_walks_twice_does_not_duplicate_them(run, tmp_path, capsys):
    from skelreid.gallery import Gallery

    gallery = tmp_path / "g.npz"
    assert _cli(capsys, "enrol", str(run), "--split", "gallery", "--gallery", str(gallery))[0] == 0
    first = gallery.read_bytes()
    rc, out, _ = _cli(capsys, "enrol", str(run), "--split", "gallery", "--gallery", str(gallery))
    assert rc == 0 and "enrolled 0 walk(s); 12 already there" in out
    assert gallery.read_bytes() == first
    rc, out, _ = _cli(capsys, "enrol", str(run), "--split", "gallery,probe", "--gallery", str(gallery))
    assert rc == 0 and "enrolled 6 walk(s); 12 already there" in out and "18 walk(s) of 6 person(s)" in out
    g = Gallery.load(gallery)
    keys = list(zip(g.walks.tolist(), g.sources.tolist()))
    assert len(keys) == len(set(keys)) == 18
    assert sorted(g.walks.tolist()) == sorted(_split(run, "gallery") + _split(run, "probe"))


# ---------------------------------------------------------------------- calibration and unknown persons
def test_calibrated_threshold_reports_a_person_left_out_as_unknown(run, model, tmp_path, capsys):
    """FAR 0 on the gallery + probe walks puts the threshold below every impostor distance among
    them, which include the left-out person's probe walk against every enrolled walk (all of other
    persons): its nearest enrolled walk is farther than the threshold, so it is "unknown", whatever
    the trained weights. (At FAR 0.01, 1 of the 135 impostor pairs may be accepted, and that pair
    may be exactly this one: not deterministic at this size.)"""
    from skelreid.gallery import Gallery
    from skelreid.inference import read_walks

    seqs, _ = read_walks(model, split="gallery", progress=False)
    e = model.embed_sequences([s for s in seqs if s.person != LEFT_OUT], progress=False)
    gallery = tmp_path / "g.npz"
    model.new_gallery(e).save(gallery)
    rc, out, _ = _cli(capsys, "identify", str(run), "--gallery", str(gallery), "--calibrate", "--far", "0",
                      "--split", "gallery,probe")
    assert rc == 0 and "18 genuine and 135 impostor pair(s)" in out
    cal = Gallery.load(gallery).calibration
    assert cal["far"] == 0.0 and cal["false_accept_rate"] == 0.0
    assert (cal["genuine_pairs"], cal["impostor_pairs"], cal["walks"], cal["persons"]) == (18, 135, 18, 6)
    assert 0.0 <= cal["genuine_accept_rate"] <= 1.0 and cal["threshold"] > 0
    assert f"threshold {cal['threshold']!r}" in out

    rc, out, _ = _cli(capsys, "identify", str(run), "--gallery", str(gallery), "--split", "probe",
                      "--out", str(tmp_path / "ranks.csv"))
    assert rc == 0 and "(calibrated at FAR 0.0)" in out
    rows = [r for r in csv.DictReader((tmp_path / "ranks.csv").open()) if r["rank"] == "1"]
    left_out = [r for r in rows if r["person"] == LEFT_OUT]
    assert left_out and all(r["decision"] == "unknown" for r in left_out)
    assert all(float(r["distance"]) > cal["threshold"] for r in left_out)
    assert all(r["decision"] == ("unknown" if float(r["distance"]) > cal["threshold"] else r["identity"])
               for r in rows)
    assert "(5 probes with an enrolled identity)" in out   # the left-out person's probe is not counted

    # --threshold wins over the stored one; a huge one accepts every probe.
    rc, out, _ = _cli(capsys, "identify", str(run), "--gallery", str(gallery), "--split", "probe",
                      "--threshold", "1e9")
    assert rc == 0 and "0 of 6 probe(s) unknown" in out and "unknown " not in out.split("top-1")[0]

    # Calibrating at another FAR rewrites the stored calibration; the enrolled walks stay.
    assert _cli(capsys, "identify", str(run), "--gallery", str(gallery), "--calibrate", "--far", "0.01",
                "--split", "gallery,probe")[0] == 0
    g = Gallery.load(gallery)
    assert g.calibration["far"] == 0.01 and g.calibration["false_accept_rate"] <= 0.01 and len(g) == 10


def test_calibrate_threshold_maths():
    from skelreid.gallery import accepted_count, calibrate_threshold

    x = np.array([[0.0], [1.0], [10.0], [12.0]])
    labels = ["a", "a", "b", "b"]              # genuine 1, 2; impostor 9, 10, 11, 12
    zero = calibrate_threshold(x, labels, 0.0)
    assert zero["threshold"] == np.nextafter(9.0, -np.inf) and zero["false_accept_rate"] == 0.0
    assert zero["genuine_accept_rate"] == 1.0 and (zero["genuine_pairs"], zero["impostor_pairs"]) == (2, 4)
    quarter = calibrate_threshold(x, labels, 0.25)
    assert quarter["threshold"] == np.nextafter(10.0, -np.inf) and quarter["false_accept_rate"] == 0.25
    assert calibrate_threshold(x, labels, 0.3)["threshold"] == quarter["threshold"]
    assert calibrate_threshold(x, labels, 1.0)["threshold"] == 12.0
    assert accepted_count(0.29, 100) == 29 and accepted_count(0.01, 99) == 0 and accepted_count(0.07, 100) == 7


def test_identity_ranking_and_ties():
    from skelreid.gallery import decide, rank_identities

    labels = np.array(["b", "a", "b", "c", "a"])
    dist = np.array([2.0, 3.0, 1.0, 1.0, 0.5])
    assert rank_identities(dist, labels, 5) == [("a", 0.5), ("b", 1.0), ("c", 1.0)]  # b's walk 2 before c's 3
    assert rank_identities(dist, labels, 1, keep=np.array([1, 1, 1, 1, 0], bool)) == [("b", 1.0)]
    assert decide([("a", 0.5)], 0.4) == "unknown" and decide([("a", 0.5)], 0.5) == "a" and decide([], None) == "unknown"


# ---------------------------------------------------------------------- the Python API
def test_api_embed_enrol_identify(model, tmp_path):
    from skelreid.data.synthetic import generate_dataset
    from skelreid.errors import DataError
    from skelreid.gallery import Gallery

    walks = generate_dataset(num_persons=3, walks_per_person=3, frames=(60, 80), seed=5)
    frames = [w.frames for w in walks]
    one = model.embed(frames[0])
    many = model.embed(frames)
    assert one.shape == (model.feature_dim,) and many.shape == (9, model.feature_dim)
    win, index = model.embed_windows(frames, return_walk_index=True)
    assert model.embed_windows(frames[0]).shape[1] == model.feature_dim and len(win) == len(index)
    assert index.tolist() == sorted(index.tolist()) and set(index.tolist()) == set(range(9))
    known = [w for w in walks if w.walk != "3"]
    gallery = model.enrol([w.frames for w in known], [w.person for w in known])
    assert len(model.enrol([w.frames for w in known[:2]], ["x", "x"], gallery=gallery)) == len(gallery) == 6
    gallery.save(tmp_path / "g.npz")
    again = Gallery.load(tmp_path / "g.npz")
    assert np.array_equal(again.embeddings, gallery.embeddings) and again.identities == ["P001", "P002", "P003"]
    results = model.identify([w.frames for w in walks if w.walk == "3"], again, top_k=2)
    assert len(results) == 3 and all(len(r.ranks) == 2 and r.identity == r.ranks[0][0] for r in results)
    info = model.calibrate(frames, [w.person for w in walks], far=0.0)
    unknown = model.identify(frames[:1], again.calibrated(info), top_k=1, threshold=-1.0)[0]
    assert unknown.identity == "unknown" and unknown.ranks
    with pytest.raises(DataError, match=r"walk 0: the walks have 20 joints in 2D"):
        model.embed(np.zeros((60, 20, 2), np.float32))
    with pytest.raises(DataError, match=r"walk 1: 20 frames: fewer than one window of 6 frames"):
        model.embed([frames[0], frames[0][:20]])


def test_all_windows_go_to_the_encoders_together(model, monkeypatch, capsys):
    """One encoder call per batch of the pipeline's size, not one per walk; a progress bar only with
    many windows and progress on."""
    import skelreid.encoders as encoders
    import skelreid.inference as inf

    calls = []
    real = encoders.context_vectors

    def counting(cfg, models, windows, device, training):
        calls.append(len(windows))
        return real(cfg, models, windows, device, training)

    monkeypatch.setattr(encoders, "context_vectors", counting)
    monkeypatch.setattr(inf, "_encoder_batch", lambda: 64)
    from skelreid.data.synthetic import generate_dataset

    walks = [w.frames for w in generate_dataset(num_persons=4, walks_per_person=3, frames=(70, 90))]
    windows = len(model.embed_windows(walks, progress=False))
    assert calls == [64] * (windows // 64) + ([windows % 64] if windows % 64 else [])
    monkeypatch.setattr(inf, "PROGRESS_WINDOWS", 10)
    capsys.readouterr()
    model.embed(walks, progress=False)
    assert "embedding" not in capsys.readouterr().err
    model.embed(walks, progress=True)
    assert "embedding" in capsys.readouterr().err


def test_device_option(run, tmp_path, capsys):
    import torch

    rc, _, err = _cli(capsys, "embed", str(run), "--split", "probe", "--device", "cuda:0",
                      "--out", str(tmp_path / "x.npz"), "--no-progress")
    if torch.cuda.is_available():
        assert rc == 0
    else:
        assert rc == 2 and "no CUDA GPU" in _error_line(err)
    assert _cli(capsys, "embed", str(run), "--split", "probe", "--device", "tpu", "--out",
                str(tmp_path / "x.npz"))[0] == 2


def test_import_skelreid_stays_cheap():
    code = "import sys, skelreid; assert callable(skelreid.load); print(sorted(m for m in ('torch', 'numpy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "[]"


def test_readme_example_runs(run, tmp_path):
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Use a trained model\n", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert "skelreid.load(" in code and len(code.strip().splitlines()) <= 13
    assert '"runs/demo"' in code
    script = tmp_path / "example.py"
    script.write_text(code.replace('"runs/demo"', repr(str(run))), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, env=env,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 3 and all(re.match(r"P00\d -> (P00\d|unknown) \[\('P00\d', ", ln) for ln in lines)
    assert (tmp_path / "gallery.npz").exists()


# ---------------------------------------------------------------------- parquet
def test_parquet_without_pyarrow_is_a_one_line_error(run, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)      # import pyarrow -> ImportError
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    rc, _, err = _cli(capsys, "embed", str(run), "--split", "probe", "--out", str(tmp_path / "x.parquet"))
    assert rc == 2
    assert _error_line(err) == ("skelreid: error: writing .parquet needs pyarrow: pip install pyarrow, "
                                "or write .npz instead")
    assert not (tmp_path / "x.parquet").exists()


def test_parquet_round_trip(run, tmp_path, capsys):
    pq = pytest.importorskip("pyarrow.parquet")
    for extra in ([], ["--windows"]):
        rc, _, _ = _cli(capsys, "embed", str(run), "--split", "gallery", *extra, "--out", str(tmp_path / "x.npz"))
        rc2, _, _ = _cli(capsys, "embed", str(run), "--split", "gallery", *extra,
                         "--out", str(tmp_path / "x.parquet"))
        assert rc == rc2 == 0
        table = pq.read_table(tmp_path / "x.parquet")
        with np.load(tmp_path / "x.npz", allow_pickle=False) as z:
            emb = np.array(table.column("embedding").to_pylist(), dtype=np.float32)
            assert np.array_equal(emb, z["embeddings"])
            for key in ("person", "walk", "view", "condition", "source", *(["window"] if extra else [])):
                assert table.column(key).to_pylist() == z[key].tolist()
        meta = json.loads(table.schema.metadata[b"skelreid"])
        assert meta["level"] == ("window" if extra else "walk")


def test_inference_batches_have_the_pipelines_shapes_where_shapes_are_static(tmp_path, monkeypatch):
    """On CUDA the pipeline pads the last of several batches to the full size (static shapes); the
    inference API must give the encoders the same shapes, so the kernels, and the bits, are the same.
    Simulated on CPU by turning static shapes on; the features stay equal to the pipeline's."""
    import torch

    import skelreid.inference as inf
    from skelreid.config import build_config
    from skelreid.data.windows import WindowSet
    from skelreid.encoders import contexts
    from skelreid.features import window_vectors
    from skelreid.models.seq2seq import GaitSeq2Seq
    from skelreid.training import encoder as enc

    monkeypatch.setattr(enc, "static_shapes", lambda device: True)
    monkeypatch.setattr(enc, "EMBED_BATCH", 16)
    monkeypatch.setattr(inf, "_encoder_batch", lambda: enc.EMBED_BATCH)
    cfg = build_config("synthetic", [{"encoder": {"hidden": 4}, "progress": False}])
    torch.manual_seed(0)
    model = GaitSeq2Seq(num_joints=20, length=6, hidden=4, layers=1, proj_dim=4).eval()
    shapes = []
    real_embed = model.embed

    def recording(x):
        shapes.append(tuple(x.shape))
        return real_embed(x)

    monkeypatch.setattr(model, "embed", recording)
    n = 16 * 2 + 5
    data = np.random.default_rng(3).normal(size=(n, 6, 20, 3)).astype(np.float32)
    ws = WindowSet(data, np.zeros(n, np.int64), np.zeros(n, np.int64), np.arange(n), ["p"], ["p/w"], "kinect_v1")
    device = torch.device("cpu")
    pipeline_features = window_vectors(contexts(cfg, {"rev_rec_LA": model}, ws, device, training=False), "sc")
    pipeline_shapes, shapes[:] = list(shapes), []
    meta = {"model": model.config(), "layout": "kinect_v1", "weights_sha256": "0" * 64}
    gm = inf.GaitModel(tmp_path, cfg, {"rev_rec_LA": model}, {"rev_rec_LA": meta}, device)
    features = gm.encode(data, progress=False)
    assert pipeline_shapes == [(3, 16, 6, 20)] * 3
    assert shapes == pipeline_shapes
    assert np.array_equal(features, pipeline_features)
