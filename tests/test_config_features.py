"""Configuration layering and feature layouts."""
from __future__ import annotations

import numpy as np
import pytest

from skelreid.config import build_config, from_dict, parse_set
from skelreid.errors import ConfigError
from skelreid.features import ap_rows, sc_rows, window_vectors


def test_preset_then_overrides():
    cfg = build_config("kgbd")
    assert (cfg.encoder.epochs, cfg.rn.epochs, cfg.encoder.temperature) == (150, 200, 0.5)
    cfg = build_config("kgbd", [parse_set(["encoder.epochs=3", "seed=7", "rn.select=test"])])
    assert (cfg.encoder.epochs, cfg.seed, cfg.rn.select) == (3, 7, "test")
    age = build_config("kgbd", [{"encoder": {"method": "age"}}])
    assert (age.encoder.epochs, age.rn.epochs) == (400, 150)
    # an explicit option beats the method section of the preset
    age = build_config("kgbd", [{"encoder": {"method": "age", "epochs": 5}}])
    assert age.encoder.epochs == 5
    assert from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize("bad, match", [
    (["encoder.epoch=3"], "unknown option encoder.epoch"),
    (["encoder.epochs=three"], "expected a number"),
    (["encoder.attention=XA"], "encoder.attention='XA' is not valid"),
    (["data.length=1"], "at least 2"),
    (["rn.manner=zz"], "rn.manner"),
    (["nonsense"], "key=value"),
])
def test_bad_overrides_are_named(bad, match):
    with pytest.raises(ConfigError, match=match):
        build_config("synthetic", [parse_set(bad)])


def test_unknown_dataset_lists_valid_names():
    with pytest.raises(ConfigError, match="valid names: .*kgbd.*synthetic"):
        build_config("nope")


def test_feature_layouts_follow_the_reference_order():
    n, m, a, f, h = 2, 3, 3, 4, 5
    c = np.random.default_rng(0).normal(size=(n, m, a, f, h)).astype(np.float32)
    ap = ap_rows(c)
    assert ap.shape == (n * f, a * m * h)
    # row t of window 1 = [x_m0, x_m1, x_m2, y_m0, ...] at decoding step t
    np.testing.assert_array_equal(ap[1 * f + 2, :h], c[1, 0, 0, 2])
    np.testing.assert_array_equal(ap[1 * f + 2, h:2 * h], c[1, 1, 0, 2])
    np.testing.assert_array_equal(ap[1 * f + 2, m * h:m * h + h], c[1, 0, 1, 2])
    sc = sc_rows(c)
    assert sc.shape == (n, a * m * f * h)
    # [vec(C^x_m0) (f*h), vec(C^x_m1), vec(C^x_m2), vec(C^y_m0), ...]
    np.testing.assert_array_equal(sc[1, :f * h], c[1, 0, 0].reshape(-1))
    np.testing.assert_array_equal(sc[1, f * h:2 * f * h], c[1, 1, 0].reshape(-1))
    np.testing.assert_array_equal(sc[1, m * f * h:(m + 1) * f * h], c[1, 0, 1].reshape(-1))
    v = window_vectors(c, "ap")
    np.testing.assert_allclose(v, ap.reshape(n, f, -1).mean(axis=1), rtol=1e-6)


def test_reference_batch_order_pads_short_persons_and_cuts_long_ones():
    from skelreid.features import reference_batch_order

    labels = np.array([0] * 3 + [1] * 10 + [2] * 4)
    train = reference_batch_order(labels, pad=True, batch=4)
    # person 0: 3 windows + 1 copy of its first; person 1: 10 -> 8; person 2: exactly one batch
    np.testing.assert_array_equal(train, [0, 1, 2, 0, 3, 4, 5, 6, 7, 8, 9, 10, 13, 14, 15, 16])
    test = reference_batch_order(labels, pad=False, batch=4)
    np.testing.assert_array_equal(test, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 13, 14, 15, 16])


def test_reference_quirks_change_the_rn_features_only_when_asked():
    import torch

    from skelreid.config import build_config
    from skelreid.pipeline import eval_set, prepare
    from skelreid.training.encoder import build_model

    cfg = build_config("synthetic", [{"encoder": {"hidden": 8, "proj_dim": 8}, "progress": False}])
    p = prepare(cfg)
    ws = p.splits["train"]
    model = build_model(cfg, ws.num_joints, ws.dims).eval()
    models = {"rev_rec_LA": model}
    plain = eval_set(cfg, models, ws, torch.device("cpu"), training=True)
    assert len(plain.y) == len(ws)
    cfg.reference_quirks = True
    quirky = eval_set(cfg, models, ws, torch.device("cpu"), training=True)
    counts = np.bincount(ws.label)
    assert (counts < 128).all()                       # every synthetic person is padded to 128 windows
    assert len(quirky.y) == 128 * len(counts) and (np.bincount(quirky.y) == 128).all()
    test = eval_set(cfg, models, p.splits["test"], torch.device("cpu"), training=False)
    assert len(test.y) == len(p.splits["test"])       # test copies are removed again


def test_one_list_per_set_of_choices_feeds_the_command_line_and_the_validation():
    """Each option's values are spelled out once (config.CHOICES, itself read from where they are
    implemented); the command line's choices and the configuration's validation both come from it."""
    import pytest

    from skelreid.cli import build_parser
    from skelreid.config import CHOICES, build_config
    from skelreid.data.nan_policy import POLICIES
    from skelreid.data.windows import NORMALISATIONS
    from skelreid.errors import ConfigError
    from skelreid.pretext import MODELS, TASKS

    assert CHOICES["data.nan_policy"] is POLICIES and CHOICES["data.normalise"] is NORMALISATIONS
    assert CHOICES["encoder.model"] is MODELS and set(MODELS) == set(TASKS.names()) | {"rev_rec_plus"}
    train = next(a for a in build_parser()._subparsers._group_actions[0].choices.items() if a[0] == "train")[1]
    options = {a.option_strings[0]: a.choices for a in train._actions if a.option_strings}
    for flag, key in {"--protocol": "data.protocol", "--nan-policy": "data.nan_policy",
                      "--short-walks": "data.short_walks", "--source": "data.source", "--method": "encoder.method",
                      "--model": "encoder.model", "--attention": "encoder.attention", "--manner": "rn.manner"}.items():
        assert tuple(options[flag]) == CHOICES[key], flag
    for key, valid in CHOICES.items():
        section, _, name = key.partition(".")
        with pytest.raises(ConfigError, match=f"option {key}='nonsense' is not valid; choose one of: {', '.join(valid)}"):
            build_config("synthetic", [{section: {name: "nonsense"}}])
