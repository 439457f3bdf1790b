"""Nothing a file says is executed: pickles, archives, checkpoints and YAML configs.

Each hostile input must be refused with a clear :class:`SkelreidError` naming
the file, and a marker file proves that no code ran.
"""
from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from skelreid.cli import main
from skelreid.config import load_yaml_file
from skelreid.data.archive import extract_archive
from skelreid.data.readers.generic import read_generic
from skelreid.data.readers.reference_npy import read_reference_layout, reference_files, write_reference_layout
from skelreid.data.windows import WindowSet
from skelreid.errors import ConfigError, DataError, SkelreidError
from skelreid.training.checkpoint import load_checkpoint, save_checkpoint


class _Reduce:
    """Pickles as ``func(*args)``: what a hostile pickle asks the loader to call."""

    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


# --------------------------------------------------------------------------- (a) pickled ids files


def _reference_layout(root: Path) -> Path:
    rng = np.random.default_rng(0)

    def split(n: int) -> WindowSet:
        label = np.arange(n) % 2
        return WindowSet(rng.normal(size=(n, 6, 20, 3)).astype(np.float32), label, label, np.arange(n) // 2,
                         ["1", "2"], ["1/a", "2/a"])

    write_reference_layout(root, "KGBD", 6, {"train": split(6), "test": split(4)})
    return reference_files(root, "KGBD", 6)["train"].ids


@pytest.mark.parametrize("attack", ["system", "popen", "eval"])
def test_malicious_ids_pickle_is_refused_and_never_runs(tmp_path, attack):
    import builtins
    import subprocess

    ids = _reference_layout(tmp_path)
    assert read_reference_layout(tmp_path, "KGBD", 6).persons == ["1", "2"]  # the honest files load
    marker = tmp_path / "pwned"
    evil = {"system": _Reduce(os.system, (f"touch {marker}",)),
            "popen": _Reduce(subprocess.Popen, (["touch", str(marker)],)),
            "eval": _Reduce(builtins.eval, (f"open({str(marker)!r}, 'w')",))}[attack]
    obj = np.empty((), dtype=object)
    obj[()] = {1: [0, 1, 2], 2: evil}
    with open(ids, "wb") as fh:
        np.save(fh, obj, allow_pickle=True)
    with pytest.raises(DataError) as err:
        read_reference_layout(tmp_path, "KGBD", 6)
    msg = str(err.value)
    assert str(ids) in msg and "refused" in msg and "\n" not in msg
    assert not marker.exists()


def test_pickled_object_arrays_in_npz_are_refused(tmp_path):
    marker = tmp_path / "pwned"
    obj = np.empty((), dtype=object)
    obj[()] = _Reduce(os.system, (f"touch {marker}",))
    (tmp_path / "p1").mkdir()
    np.savez(tmp_path / "p1" / "walk.npz", frames=np.zeros((5, 3, 3)), person=obj)
    with pytest.raises(DataError, match="no pickled objects allowed"):
        read_generic(tmp_path)
    assert not marker.exists()


# --------------------------------------------------------------------------- (b) archives


def _tar(path: Path, members: list[tuple[str, str, str]]) -> Path:
    """``members``: (kind, name, data-or-link-target)."""
    with tarfile.open(path, "w:gz") as tar:
        for kind, name, payload in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                data = payload.encode()
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                info.type = tarfile.SYMTYPE if kind == "symlink" else tarfile.LNKTYPE
                info.linkname = payload
                tar.addfile(info)
    return path


@pytest.mark.parametrize("members, what", [
    ([("file", "Data/ok.txt", "fine"), ("file", "../escaped.txt", "x")], "'../escaped.txt'"),
    ([("file", "Data/../../escaped.txt", "x")], "'Data/../../escaped.txt'"),
    ([("file", "{abs}", "x")], "'{abs}'"),
    ([("symlink", "Data/link", "../../outside")], "'Data/link'"),
    ([("symlink", "Data/link", "/etc"), ("file", "Data/link/passwd", "x")], "'Data/link'"),
    ([("hardlink", "Data/hard", "/etc/passwd")], "'Data/hard'"),
])
def test_archive_members_escaping_the_destination_are_refused(tmp_path, members, what):
    outside = tmp_path / "outside"
    outside.mkdir()
    absolute = str(outside / "abs.txt")
    members = [(k, n.format(abs=absolute), p) for k, n, p in members]
    archive = _tar(tmp_path / "evil.tar.gz", members)
    dest = outside / "inner" / "dest"
    with pytest.raises(DataError) as err:
        extract_archive(archive, dest)
    msg = str(err.value)
    assert str(archive) in msg and "refused archive member" in msg and what.format(abs=absolute) in msg
    assert not dest.exists()
    assert sorted(p.name for p in outside.rglob("*")) == ["inner"]  # nothing written anywhere
    assert not (tmp_path / "escaped.txt").exists() and not Path(absolute).exists()


def test_a_clean_archive_extracts(tmp_path):
    archive = _tar(tmp_path / "ok.tar.gz", [("file", "Data/Person001/1.txt", "Head;1;2;3\n")])
    dest = extract_archive(archive, tmp_path / "dest")
    assert (dest / "Data" / "Person001" / "1.txt").read_text() == "Head;1;2;3\n"


# --------------------------------------------------------------------------- (c) checkpoints


def _checkpoint(tmp_path: Path) -> Path:
    prefix = tmp_path / "model"
    save_checkpoint(prefix, {"w": torch.arange(6.0).reshape(2, 3)}, {"kind": "test", "epoch": 3})
    tensors, meta = load_checkpoint(prefix)
    assert torch.equal(tensors["w"], torch.arange(6.0).reshape(2, 3)) and meta["epoch"] == 3
    return prefix


def test_tampered_weights_are_refused(tmp_path):
    prefix = _checkpoint(tmp_path)
    weights = prefix.with_suffix(".safetensors")
    data = bytearray(weights.read_bytes())
    data[-3] ^= 0x01  # one bit of one tensor value
    weights.write_bytes(bytes(data))
    with pytest.raises(DataError) as err:
        load_checkpoint(prefix)
    assert str(err.value) == f"{weights}: checksum mismatch: the weights file is damaged or was changed"


@pytest.mark.parametrize("edit", ["value", "added key", "checksum", "truncated"])
def test_tampered_sidecar_is_refused(tmp_path, edit):
    prefix = _checkpoint(tmp_path)
    sidecar = prefix.with_suffix(".json")
    text = sidecar.read_text()
    meta = json.loads(text)
    if edit == "value":
        meta["epoch"] = 300
    elif edit == "added key":
        meta["model"] = {"__class__": "os.system"}
    elif edit == "checksum":  # pointing the sidecar at other weights
        meta["weights_sha256"] = "0" * 64
    if edit == "truncated":
        sidecar.write_text(text[: len(text) // 2])
        expected = "invalid JSON"
    else:
        sidecar.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        expected = "checksum mismatch: the metadata file is damaged or was changed"
    with pytest.raises(DataError) as err:
        load_checkpoint(prefix)
    assert str(sidecar) in str(err.value) and expected in str(err.value)


def test_cli_refuses_a_run_whose_weights_were_tampered_with(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--out", str(out), "--stages", "encoder,rn", "--epochs", "1", "--rn-epochs", "2",
                 "--set", "data.synthetic.num_persons=3", "--set", "data.synthetic.walks_per_person=3",
                 "--set", "data.synthetic.frames=[60,80]", "--set", "encoder.hidden=8",
                 "--set", "encoder.proj_dim=8", "--set", "rn.hidden=8", "--no-progress"]) == 0
    weights = out / "rn" / "val.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4] + b"\0\0\0\0")
    capsys.readouterr()
    assert main(["evaluate", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"skelreid: error: {weights}: checksum mismatch: the weights file is damaged or was changed"
    assert not (out / "results.json").exists()


# --------------------------------------------------------------------------- (d) YAML configs


@pytest.mark.parametrize("tag", [
    "!!python/object/apply:os.system ['touch {marker}']",
    "!!python/object/new:subprocess.Popen [['touch', '{marker}']]",
    "!!python/name:os.system",
    "!!python/object:skelreid.config.RunConfig {{seed: 1}}",
])
def test_yaml_with_python_tags_is_refused(tmp_path, capsys, tag):
    marker = tmp_path / "pwned"
    cfg = tmp_path / "evil.yaml"
    cfg.write_text(f"encoder:\n  epochs: 2\nseed: {tag.format(marker=marker)}\n")
    with pytest.raises(ConfigError, match=r"evil.yaml line 3: invalid YAML"):
        load_yaml_file(cfg)
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "run"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("skelreid: error:") and str(cfg) in err and "\n" not in err
    assert not marker.exists() and not (tmp_path / "run").exists()


def test_every_refusal_is_a_skelreid_error():
    assert issubclass(DataError, SkelreidError) and issubclass(ConfigError, SkelreidError)
