"""Several seeds trained as one batched computation (--seeds): each run equals training it alone."""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch

from skelreid.cli import main
from skelreid.config import build_config
from skelreid.data.synthetic import generate_dataset
from skelreid.data.windows import make_windows
from skelreid.pretext import TASKS
from skelreid.training.encoder import EncoderRun, EncoderSpec, train_encoder, train_encoders

pytestmark = pytest.mark.slow   # end-to-end: `make test-fast` (pytest -m "not slow") leaves it out

TINY = ["--dataset", "synthetic", "--epochs", "2", "--rn-epochs", "4",
        "--set", "data.synthetic.num_persons=3", "--set", "data.synthetic.walks_per_person=3",
        "--set", "data.synthetic.frames=[60,80]", "--set", "encoder.hidden=8", "--set", "encoder.proj_dim=8",
        "--set", "encoder.batch_size=16", "--set", "rn.hidden=16", "--set", "rn.batch_size=32", "--no-progress"]


@pytest.fixture(scope="module")
def windows():
    return make_windows(generate_dataset(num_persons=3, walks_per_person=2, frames=(60, 70), seed=5),
                        length=6, clip=5, normalise="root")


@pytest.mark.parametrize("method, task, attention", [("cage", "rev_rec", "LA"), ("cage", "prediction", "BA"),
                                                     ("cage", "sorting", "BA"), ("age", "rev_rec", "LA")])
def test_runs_trained_together_equal_runs_trained_alone(windows, method, task, attention):
    base = build_config("synthetic", [{"encoder": {"epochs": 2, "hidden": 8, "proj_dim": 8, "batch_size": 16,
                                                   "method": method}, "progress": False}])
    cfgs = []
    for seed in (0, 1, 2):
        c = copy.deepcopy(base)
        c.seed = seed
        cfgs.append(c)
    data = [TASKS.get(task).make(windows, c.seed) for c in cfgs]
    spec = EncoderSpec(task, attention)
    alone = [train_encoder(x, y, spec, c, torch.device("cpu")) for (x, y), c in zip(data, cfgs)]
    joint = train_encoders([EncoderRun(x, y, c) for (x, y), c in zip(data, cfgs)], spec, torch.device("cpu"))
    for (ma, ha), (mj, hj) in zip(alone, joint):
        assert mj.num_axes == ma.num_axes == 3
        for (name, p), q in zip(ma.named_parameters(), mj.parameters()):
            torch.testing.assert_close(q, p, rtol=1e-5, atol=1e-6, msg=name)
        for ra, rj in zip(ha.epochs, hj.epochs):
            for term in ("reconstruction", "attention", "contrastive", "l2", "total"):
                assert rj[term] == pytest.approx(ra[term], rel=1e-5, abs=1e-6)
    # the seeds really are different runs
    assert not torch.equal(next(joint[0][0].parameters()), next(joint[1][0].parameters()))


def test_runs_differing_in_more_than_the_seed_are_refused(windows):
    a = build_config("synthetic", [{"encoder": {"epochs": 1, "hidden": 8, "proj_dim": 8}, "progress": False}])
    b = copy.deepcopy(a)
    b.encoder.temperature = 0.5
    x, y = TASKS.get("rev_rec").make(windows, 0)
    with pytest.raises(ValueError, match="may differ in their seed only"):
        train_encoders([EncoderRun(x, y, a), EncoderRun(x, y, b)], EncoderSpec("rev_rec", "LA"), torch.device("cpu"))


def test_seeds_command_writes_one_run_per_seed_and_a_mean_std_table(tmp_path, capsys):
    out = tmp_path / "seeds"
    assert main(["train", *TINY, "--seeds", "0,1", "--out", str(out)]) == 0
    alone = tmp_path / "alone"
    assert main(["train", *TINY, "--seed", "1", "--out", str(alone)]) == 0
    a = {k: v for k, v in _tensors(alone / "encoders" / "rev_rec_LA").items()}
    j = _tensors(out / "seed_1" / "encoders" / "rev_rec_LA")
    for name in a:
        torch.testing.assert_close(j[name], a[name], rtol=1e-5, atol=1e-6, msg=name)
    summary = json.loads((out / "results.json").read_text())
    assert summary["seeds"] == [0, 1]
    r1 = [json.loads((out / f"seed_{s}" / "results.json").read_text())["metrics"]["val"]["rank1"] for s in (0, 1)]
    assert summary["mean_std"]["val rank1"]["mean"] == pytest.approx(np.mean(r1))
    assert summary["mean_std"]["val rank1"]["std"] == pytest.approx(np.std(r1, ddof=1))
    assert "mean ± std" in (out / "results.md").read_text()
    # a second call finds everything done and changes nothing
    before = (out / "seed_0" / "encoders" / "rev_rec_LA.safetensors").read_bytes()
    capsys.readouterr()
    assert main(["train", *TINY, "--seeds", "0,1", "--out", str(out)]) == 0
    assert "already trained" in capsys.readouterr().err
    assert (out / "seed_0" / "encoders" / "rev_rec_LA.safetensors").read_bytes() == before


def test_an_interrupted_joint_training_resumes_to_the_same_weights(tmp_path, monkeypatch):
    import skelreid.training.resume as R

    ref = tmp_path / "ref"
    assert main(["train", *TINY, "--seeds", "0,1", "--out", str(ref), "--stages", "encoder,rn"]) == 0
    real, count = R.ResumeFile.save, {"n": 0}

    def save(self, *args, **kwargs):
        real(self, *args, **kwargs)
        count["n"] += 1
        if count["n"] == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(R.ResumeFile, "save", save)
    out = tmp_path / "run"
    assert main(["train", *TINY, "--seeds", "0,1", "--out", str(out), "--stages", "encoder,rn"]) == 130
    monkeypatch.undo()
    assert list((out / "resume").glob("*seeds_0_1.json"))
    assert main(["train", *TINY, "--seeds", "0,1", "--out", str(out), "--stages", "encoder,rn"]) == 0
    for s in (0, 1):
        for sub in ("encoders/rev_rec_LA.safetensors", "rn/val.safetensors"):
            assert (out / f"seed_{s}" / sub).read_bytes() == (ref / f"seed_{s}" / sub).read_bytes(), (s, sub)


def test_bad_seed_lists_are_one_line_errors(tmp_path, capsys):
    for bad in ("0", "a,b"):
        assert main(["train", *TINY, "--seeds", bad, "--out", str(tmp_path / "x")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("skelreid: error: --seeds")


def _tensors(prefix):
    from skelreid.training.checkpoint import load_checkpoint

    return load_checkpoint(prefix)[0]
