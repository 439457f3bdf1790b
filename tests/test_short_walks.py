"""Short and empty walks in every raw layout: left out, counted and named, or refused with --short-walks error."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from skelreid.cli import main
from skelreid.config import build_config
from skelreid.data.fixtures import write_fixture
from skelreid.errors import ConfigError, DataError
from skelreid.pipeline import prepare

FRAMES = (40, 50)        # every fixture walk is long enough for windows of 6 after dropping 10 at each end
KEEP = 8                 # a shortened walk keeps 8 frames: fewer than 6 + 2 * 10


def _keep_lines(path: Path, lines: int) -> None:
    data = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(data[:lines]))


def _keep_files(files: list[Path]) -> None:
    for f in sorted(files)[KEEP:]:
        f.unlink()


def _kgbd(tmp: Path):
    root = write_fixture("KGBD", tmp / "kgbd", persons=3, frames=FRAMES)
    target = root / "Person002" / "3.txt"
    _keep_lines(target, 20 * KEEP)
    return "KGBD", root, {}, target, "Person002/3"


def _biwi(tmp: Path):
    root = write_fixture("BIWI", tmp / "biwi", persons=3, frames=FRAMES)
    folder = root / "Testing" / "Walking" / "001"
    _keep_files(list(folder.glob("*_skel.txt")))
    return "BIWI", root, {}, folder, "001/Testing-Walking"


def _ias(tmp: Path):
    root = write_fixture("IAS", tmp / "ias", persons=3, frames=FRAMES)
    folder = root / "TestingA" / "002"
    _keep_files(list(folder.glob("*_skel.txt")))
    return "IAS", root, {}, folder, "002/TestingA"


def _ks20(tmp: Path):
    root = write_fixture("KS20", tmp / "ks20", persons=3, frames=FRAMES, views=[0])
    files = sorted((root / "frontal").glob("gc2_body2_*_skel.txt"))
    assert files
    _keep_files(files)
    return "KS20", root, {"view": "0"}, root / "frontal", None


def _casia(tmp: Path):
    root = write_fixture("CASIA_B", tmp / "casia", persons=3, frames=(45, 50), views=[0],
                         conditions=["nm-01", "nm-02", "nm-03", "nm-04"])
    target = root / "002" / "nm-03" / "000" / "002-nm-03-000.txt"
    _keep_lines(target, 15)   # CASIA-B windows are 20 frames long (clip 0)
    return "CASIA_B_CVE", root, {"view": "0"}, target, None


def _generic(tmp: Path):
    root = tmp / "generic"
    rng = np.random.default_rng(0)
    for p in range(3):
        for w in range(3):
            (root / f"p{p}").mkdir(parents=True, exist_ok=True)
            np.savez(root / f"p{p}" / f"w{w}.npz", frames=rng.normal(size=(50, 20, 3)), layout="kinect_v1")
    target = root / "p1" / "w2.npz"
    np.savez(target, frames=rng.normal(size=(KEEP, 20, 3)), layout="kinect_v1")
    return "generic", root, {}, target, "p1/w2"


LAYOUTS = {"KGBD": _kgbd, "BIWI": _biwi, "IAS": _ias, "KS20": _ks20, "CASIA_B": _casia, "generic": _generic}


def _cfg(preset: str, root: Path, data: dict, **extra):
    return build_config(preset, [{"data": {"root": str(root), "cache": str(root.parent / "cache"), **data, **extra},
                                  "progress": False}])


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_a_short_walk_is_skipped_and_counted_in_every_reader(layout, tmp_path, capsys):
    preset, root, data, target, walk_id = LAYOUTS[layout](tmp_path)
    p = prepare(_cfg(preset, root, data))
    ex = p.summary["excluded"]
    assert ex["short_walks"] == 1 and ex["persons_dropped"] == 0, ex
    short = ex["short_walk_ids"][0]
    if walk_id is not None:
        assert short == walk_id
    assert short not in p.windows.walks and short not in {w for ids in p.manifest["splits"].values() for w in ids}
    assert p.manifest["excluded"]["short_walk_ids"] == [short]
    warning = [ln for ln in capsys.readouterr().err.splitlines() if "warning" in ln]
    assert len(warning) == 1 and "skipped 1 walk(s) too short" in warning[0] and str(target) in warning[0]
    # strict: the first short walk is an error naming its file
    with pytest.raises(DataError) as err:
        prepare(_cfg(preset, root, data, short_walks="error"))
    assert str(target) in str(err.value) and "fewer than one window" in str(err.value)


def test_empty_walks_are_short_walks(tmp_path, capsys):
    root = write_fixture("BIWI", tmp_path / "biwi", persons=3, frames=FRAMES, untracked=0)
    folder = root / "Testing" / "Still" / "002"
    for f in sorted(folder.glob("*_skel.txt")):   # every frame untracked: a walk with no usable frame
        lines = f.read_text().splitlines()
        first = lines[0].split(",")
        first[6] = "0.0000"                       # column 6: the joint's tracking state
        f.write_text("\n".join([",".join(first)] + lines[1:]) + "\n")
    p = prepare(_cfg("BIWI", root, {}))
    assert p.summary["excluded"]["short_walk_ids"] == ["002/Testing-Still"]
    assert "(0 frames)" in capsys.readouterr().err
    with pytest.raises(DataError, match="no frame has all 20 joints tracked"):
        prepare(_cfg("BIWI", root, {}, short_walks="error"))


def test_a_person_left_with_too_few_walks_is_dropped_and_counted(tmp_path, capsys):
    root = write_fixture("KGBD", tmp_path / "kgbd", persons=3, frames=FRAMES, walks=3)
    for w in ("1", "2"):   # Person003 keeps one usable walk: the legacy protocol needs two
        _keep_lines(root / "Person003" / f"{w}.txt", 20 * KEEP)
    p = prepare(_cfg("KGBD", root, {}))
    ex = p.summary["excluded"]
    assert ex["short_walks"] == 2 and ex["persons_dropped_ids"] == ["Person003"]
    assert p.windows.persons == ["Person001", "Person002"]
    assert "left out 1 person(s) with too few walks: Person003 (1 usable walk(s), 2 needed)" in capsys.readouterr().err
    # strict mode keeps today's behaviour: the short walk is the error
    with pytest.raises(DataError, match="fewer than one window"):
        prepare(_cfg("KGBD", root, {}, short_walks="error"))


def test_fewer_than_two_persons_left_is_a_clear_error(tmp_path):
    root = write_fixture("KGBD", tmp_path / "kgbd", persons=2, frames=FRAMES, walks=2)
    _keep_lines(root / "Person002" / "1.txt", 20 * KEEP)
    with pytest.raises(ConfigError, match=r"1 person\(s\) left after leaving out 1 short walk\(s\) and 1 person"):
        prepare(_cfg("KGBD", root, {}))


def test_the_count_reaches_results_and_the_split_manifest(tmp_path, capsys):
    _, root, _, target, walk_id = _generic(tmp_path)
    out = tmp_path / "run"
    tiny = ["--epochs", "1", "--rn-epochs", "2", "--set", "encoder.hidden=8", "--set", "encoder.proj_dim=8",
            "--set", "encoder.batch_size=16", "--set", "rn.hidden=8", "--no-progress"]
    assert main(["train", "--dataset", "generic", "--root", str(root), "--out", str(out), *tiny]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["split"]["excluded"]["short_walk_ids"] == [walk_id]
    assert json.loads((out / "split.json").read_text())["excluded"]["short_walks"] == 1
    md = (out / "results.md").read_text()
    assert "Left out: 1 walk(s) too short for one window, 0 person(s)" in md
    assert "Coordinates: `body`" in md                  # the generic format's default normalisation, named
    capsys.readouterr()
    assert main(["train", "--dataset", "generic", "--root", str(root), "--out", str(tmp_path / "strict"),
                 "--short-walks", "error", *tiny]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(target) in err[0] and "--short-walks skip" in err[0]
