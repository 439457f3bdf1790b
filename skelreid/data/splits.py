"""Seeded, saved train/val/test and probe/gallery splits, listed by walk id.

A split is a JSON manifest. The same walks, protocol and seed always give a
byte-identical manifest, so a run can be re-created and audited.

Protocols
---------
``legacy`` (the CAGE / AGE papers): per person, ``test_walks`` walks are held out
for testing; ``val_walks`` more are held out for model selection of the
recognition network (never the test walks); the rest train. The encoders, which
use no labels, train on train + val walks.

``probe_gallery`` (papers since 2022): per person ``gallery_walks`` walks form
the gallery, ``probe_walks`` the probe, the rest train. A person with exactly
three walks (KGBD's Person015) gets one walk each.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError
from ..io import json_dumps, read_json, sha256_bytes, write_text
from .records import natural_key

PROTOCOLS = ("legacy", "probe_gallery")
SPLIT_NAMES = {"legacy": ("train", "val", "test"), "probe_gallery": ("train", "gallery", "probe")}


def _rng_for(seed: int, person: str) -> np.random.Generator:
    # One stream per person, derived from the seed and the person's name, so a
    # person's draw does not depend on which other persons exist.
    digest = int(sha256_bytes(person.encode("utf-8"))[:16], 16)
    return np.random.default_rng(np.random.SeedSequence([int(seed), digest]))


def legacy_split(walks: dict[str, list[str]], seed: int = 0, test_walks: int = 1,
                 val_walks: int = 1) -> dict[str, list[str]]:
    """Per person: ``test_walks`` test, up to ``val_walks`` val, at least one train."""
    out = {"train": [], "val": [], "test": []}
    for person, ids in walks.items():
        ids = sorted(ids, key=natural_key)
        if len(ids) < test_walks + 1:
            raise ConfigError(
                f"person {person} has {len(ids)} walk(s): at least {test_walks + 1} are needed "
                f"for {test_walks} test walk(s) and one training walk"
            )
        order = _rng_for(seed, person).permutation(len(ids))
        picked = [ids[i] for i in order]
        n_val = min(val_walks, len(ids) - test_walks - 1)
        out["test"] += picked[:test_walks]
        out["val"] += picked[test_walks: test_walks + n_val]
        out["train"] += picked[test_walks + n_val:]
    return {k: sorted(v, key=natural_key) for k, v in out.items()}


def probe_gallery_split(walks: dict[str, list[str]], seed: int = 0, gallery_walks: int = 2,
                        probe_walks: int = 1) -> dict[str, list[str]]:
    """Per person: gallery and probe walks drawn at random, the rest train."""
    out = {"train": [], "gallery": [], "probe": []}
    for person, ids in walks.items():
        ids = sorted(ids, key=natural_key)
        n = len(ids)
        if n < 3:
            raise ConfigError(f"person {person} has {n} walk(s): the probe/gallery protocol needs at least 3")
        n_gal = gallery_walks if n >= gallery_walks + probe_walks + 1 else 1
        n_probe = probe_walks if n >= n_gal + probe_walks + 1 else 1
        order = _rng_for(seed, person).permutation(n)
        picked = [ids[i] for i in order]
        out["gallery"] += picked[:n_gal]
        out["probe"] += picked[n_gal: n_gal + n_probe]
        out["train"] += picked[n_gal + n_probe:]
    return {k: sorted(v, key=natural_key) for k, v in out.items()}


def set_keys(seq) -> list[str]:
    """What a predefined-split pattern is matched against: the walk's condition
    (e.g. ``Testing/Walking``), its sequence name (e.g. ``nm-05``) and its walk name."""
    keys = [seq.condition, seq.meta.get("sequence") if isinstance(seq.meta, dict) else None, seq.walk]
    return [str(k) for k in keys if k is not None]


def assign_sets(sequences, sets: dict[str, list[str]]) -> dict[str, list[str]]:
    """Walk ids per predefined split: a walk goes to the first split with a matching pattern
    (``fnmatch`` on :func:`set_keys`); walks that match no split are not used."""
    from fnmatch import fnmatchcase

    out: dict[str, list[str]] = {name: [] for name in sets}
    for seq in sequences:
        keys = set_keys(seq)
        for name, patterns in sets.items():
            if any(fnmatchcase(k, str(p)) for k in keys for p in patterns):
                out[name].append(seq.walk_id)
                break
    empty = [name for name, ids in out.items() if not ids]
    if empty:
        seen = sorted({k for s in sequences for k in set_keys(s)[:2]})
        raise ConfigError(f"no walk matches the split(s) {', '.join(empty)}; the data has conditions "
                          f"{', '.join(seen[:12])}{' ...' if len(seen) > 12 else ''}")
    return {k: sorted(v, key=natural_key) for k, v in out.items()}


def predefined_split(sets: dict[str, list[str]], walk_person: dict[str, str], seed: int = 0,
                     val_walks: int = 1) -> dict[str, list[str]]:
    """The dataset's own splits; per person, ``val_walks`` training walks (never the last
    one) are held out as ``val`` for selecting the recognition network's epoch."""
    out = {k: list(v) for k, v in sets.items()}
    if val_walks <= 0:
        return out
    by_person: dict[str, list[str]] = {}
    for w in out["train"]:
        by_person.setdefault(walk_person[w], []).append(w)
    val: list[str] = []
    for person, ids in by_person.items():
        n_val = min(val_walks, len(ids) - 1)
        if n_val > 0:
            order = _rng_for(seed, person).permutation(len(ids))
            val += [ids[i] for i in order[:n_val]]
    if val:
        out["train"] = [w for w in out["train"] if w not in set(val)]
        out["val"] = sorted(val, key=natural_key)
    return out


def canonical_splits(splits: dict[str, list[str]], protocol: str) -> dict[str, list[str]]:
    """The splits in one fixed order (the protocol's own names first, then the others in natural
    order), whether the manifest was just drawn or read back from its sorted-key JSON file: every
    report lists them the same way in a fresh and in a resumed run."""
    own = [n for n in SPLIT_NAMES.get(protocol, ()) if n in splits]
    rest = sorted((n for n in splits if n not in own), key=natural_key)
    return {n: splits[n] for n in own + rest}


def make_manifest(dataset: str, walks: dict[str, list[str]], protocol: str = "legacy",
                  seed: int = 0, **params) -> dict:
    """Build a split manifest (a plain dict, see :func:`manifest_bytes`)."""
    if protocol == "legacy":
        splits = legacy_split(walks, seed, **params)
    elif protocol == "probe_gallery":
        splits = probe_gallery_split(walks, seed, **params)
    else:
        raise ConfigError(f"unknown protocol {protocol!r}; valid: {', '.join(PROTOCOLS)}")
    return {
        "format": "skelreid-split/1",
        "dataset": dataset,
        "protocol": protocol,
        "seed": int(seed),
        "params": {k: int(v) for k, v in params.items()},
        "persons": len(walks),
        "walks": sum(len(v) for v in walks.values()),
        "splits": canonical_splits(splits, protocol),
    }


def make_predefined_manifest(dataset: str, splits: dict[str, list[str]], protocol: str, seed: int = 0,
                             **params) -> dict:
    """A manifest of the dataset's own splits (see :func:`assign_sets`, :func:`predefined_split`)."""
    listed = [w for v in splits.values() for w in v]
    return {
        "format": "skelreid-split/1",
        "dataset": dataset,
        "protocol": protocol,
        "predefined": True,
        "seed": int(seed),
        "params": {k: v for k, v in params.items()},
        "persons": len({w.split("/", 1)[0] for w in listed}),
        "walks": len(set(listed)),
        "splits": canonical_splits({k: sorted(v, key=natural_key) for k, v in splits.items()}, protocol),
    }


def manifest_bytes(manifest: dict) -> bytes:
    return json_dumps(manifest).encode("utf-8")


def manifest_hash(manifest: dict) -> str:
    return sha256_bytes(manifest_bytes(manifest))


def save_manifest(path: str | Path, manifest: dict) -> None:
    write_text(path, manifest_bytes(manifest).decode("utf-8"))


def load_manifest(path: str | Path, known_walks: list[str] | None = None) -> dict:
    """Read a manifest and check it against the dataset's walks (when given)."""
    m = read_json(path)
    if not isinstance(m, dict) or m.get("format") != "skelreid-split/1" or "splits" not in m:
        raise DataError(path, "not a skelreid split manifest")
    if m.get("protocol") not in PROTOCOLS:
        raise DataError(path, f"manifest protocol must be one of {', '.join(PROTOCOLS)}")
    if m.get("predefined"):
        if "train" not in m["splits"]:
            raise DataError(path, "manifest of predefined splits has no 'train' split")
    elif set(m["splits"]) != set(SPLIT_NAMES[m["protocol"]]):
        raise DataError(path, f"manifest splits must be {SPLIT_NAMES[m['protocol']]}")
    if known_walks is not None:
        known = set(known_walks)
        listed = [w for v in m["splits"].values() for w in v]
        missing = sorted(set(listed) - known)
        if missing:
            raise DataError(path, f"manifest lists walks the dataset does not have: {missing[:5]}")
        if len(listed) != len(set(listed)):
            raise DataError(path, "a walk appears in more than one split")
    m["splits"] = canonical_splits(m["splits"], m["protocol"])
    return m


def check_persons_covered(manifest: dict, walk_person: dict[str, str], train_split: str = "train") -> None:
    """Every person evaluated must have at least one training walk."""
    train_persons = {walk_person[w] for w in manifest["splits"][train_split]}
    for name, ids in manifest["splits"].items():
        missing = sorted({walk_person[w] for w in ids} - train_persons)
        if missing and name != train_split:
            raise ConfigError(
                f"split {name!r} has persons with no training walk: {missing[:5]}; "
                "the recognition network cannot learn them: give each a training walk in the split "
                "manifest (split.json in the run folder), or delete it to draw a new split"
            )
