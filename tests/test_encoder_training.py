"""Self-supervised encoder training on real KGBD walks (CPU, paper architecture)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from skelreid.config import build_config, parse_set
from skelreid.data.windows import make_windows
from skelreid.features import ap_rows, sc_rows
from skelreid.pretext import TASKS
from skelreid.training.encoder import EncoderSpec, batch_order, embed_windows, load_encoder, train_encoder

pytestmark = pytest.mark.slow   # end-to-end: `make test-fast` (pytest -m "not slow") leaves it out


@pytest.fixture(scope="module")
def kgbd_small(kgbd_sequences):
    # two real walks, about 150 windows: enough for every loss term to move, quick on 2 cores
    keep = {"Person001/1", "Person002/1"}
    return make_windows([s for s in kgbd_sequences if s.walk_id in keep], length=6, clip=10)


def _cfg(*sets: str):
    return build_config("kgbd", [parse_set(["progress=false", *sets])])


@pytest.mark.kgbd
def test_every_loss_term_falls_and_features_have_documented_shapes(kgbd_small, tmp_path):
    cfg = _cfg("encoder.epochs=10", "encoder.batch_size=32")
    x, y = TASKS.get("rev_rec").make(kgbd_small, 0)
    model, hist = train_encoder(x, y, EncoderSpec("rev_rec", "LA"), cfg, torch.device("cpu"),
                                out_prefix=tmp_path / "enc")
    first, last = hist.epochs[0], hist.epochs[-1]
    for term in ("reconstruction", "attention", "contrastive", "l2", "total"):
        assert last[term] < first[term], term
        assert all(last[f"{term}_{a}"] > 0 for a in "xyz")
    ctx = embed_windows(model, kgbd_small.data, torch.device("cpu"))
    n = len(kgbd_small)
    assert ctx.shape == (n, 3, 6, 256)
    assert ap_rows(ctx[:, None]).shape == (n * 6, 768)
    assert sc_rows(ctx[:, None]).shape == (n, 3 * 6 * 256)
    # the saved checkpoint (safetensors + JSON) gives back the same encodings
    loaded, meta = load_encoder(tmp_path / "enc", torch.device("cpu"))
    assert meta["task"] == "rev_rec" and meta["epochs"] == 10
    np.testing.assert_array_equal(embed_windows(loaded, kgbd_small.data, torch.device("cpu")), ctx)
    assert (tmp_path / "enc_losses.csv").read_text().count("\n") == 11


@pytest.mark.kgbd
def test_same_seed_same_losses_on_cpu(kgbd_small):
    x, y = TASKS.get("rev_rec").make(kgbd_small, 0)
    x, y = x[:96], y[:96]
    runs = [train_encoder(x, y, EncoderSpec("rev_rec", "LA"), _cfg("encoder.epochs=2", "encoder.batch_size=32", f"seed={s}"),
                          torch.device("cpu"))[1] for s in (5, 5, 6)]
    cols = lambda h: [h.column(t) for t in ("reconstruction", "attention", "contrastive", "l2")]  # noqa: E731
    assert cols(runs[0]) == cols(runs[1])
    assert cols(runs[0]) != cols(runs[2])


@pytest.mark.kgbd
def test_age_has_no_contrastive_term_and_ba_no_attention_term(kgbd_small):
    x, y = TASKS.get("rev_rec").make(kgbd_small, 0)
    x, y = x[:64], y[:64]
    model, hist = train_encoder(x, y, EncoderSpec("rev_rec", "BA"), _cfg("encoder.epochs=1", "encoder.batch_size=32", "encoder.method=age"),
                                torch.device("cpu"))
    assert hist.epochs[0]["contrastive"] == 0 and hist.epochs[0]["attention"] == 0
    assert hist.epochs[0]["reconstruction"] > 0
    assert not any(n.startswith("proj") for n, _ in model.named_parameters())


def test_batch_order_cage_keeps_walk_order_age_shuffles_once():
    cage = batch_order(300, 128, shuffle_once=False, seed=0)
    assert [b.tolist() for b in cage] == [list(range(128)), list(range(128, 256))]  # partial batch dropped
    age = batch_order(300, 128, shuffle_once=True, seed=0)
    assert [b.tolist() for b in age] == [b.tolist() for b in batch_order(300, 128, True, 0)]
    assert sorted(np.concatenate(age).tolist()) != list(range(256))
    assert len(batch_order(50, 128, False, 0)) == 1  # a set smaller than a batch is one batch
