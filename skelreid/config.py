"""Run configuration: dataclasses, YAML presets, command-line overrides.

A run's configuration is built in three layers, later ones winning:
1. the dataclass defaults below (the paper's settings for the CAGE method);
2. the dataset preset ``skelreid/presets/<name>.yaml`` (and its ``age:`` section
   when ``encoder.method`` is ``age``);
3. command-line options and ``--set section.key=value`` overrides.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .data.nan_policy import POLICIES
from .data.splits import PROTOCOLS
from .data.windows import NORMALISATIONS
from .errors import ConfigError
from .evaluation.units import SEQUENCE_FEATURE
from .io import json_dumps, sha256_bytes
from .pretext import MODELS


@dataclass
class DataConfig:
    dataset: str = "synthetic"
    root: str | None = None          # raw data folder (e.g. KGBD Data/)
    cache: str | None = None         # parsed-data cache folder (default: ~/.cache/skelreid)
    length: int = 6                  # window length f
    clip: int = 10                   # frames dropped at each end of a walk
    normalise: str = "none"          # none | root (joint-0 relative) | body (hip-centred, / body size)
    protocol: str = "legacy"         # legacy | probe_gallery
    split_seed: int = 0
    test_walks: int = 1              # legacy protocol
    val_walks: int = 1               # legacy protocol: walks per person held out for RN selection
    gallery_walks: int = 2           # probe/gallery protocol
    probe_walks: int = 1
    persons: int | None = None       # use only the first N persons (quick runs)
    nan_policy: str = "error"        # non-finite coordinates: error | drop-frames | interpolate
    short_walks: str = "skip"        # walks too short for one window: skip (counted, one warning) | error
    source: str = "raw"              # raw (the dataset's own files) | reference_npy (the authors' npy layout)
    view: str | None = None          # None: all views together; "<v>": one view; "all": each view separately
    split_by_view: bool = False      # random splits drawn per (person, view), so every view is tested
    sets: dict = field(default_factory=dict)    # predefined splits: {split: [condition patterns]}
    tests: list = field(default_factory=lambda: ["test"])  # legacy protocol: test splits, first = primary
    pairs: list = field(default_factory=list)   # probe_gallery: [{name, probe, gallery}] ([] = probe vs gallery)
    synthetic: dict = field(default_factory=lambda: {"num_persons": 10, "walks_per_person": 4,
                                                     "frames": [120, 200], "seed": 0, "noise": 0.01})


@dataclass
class EncoderConfig:
    method: str = "cage"             # cage (contrastive) | age (no contrastive, data shuffled once)
    model: str = "rev_rec"           # rev_rec | prediction | sorting | rev_rec_plus
    attention: str = "LA"            # LA | BA
    hidden: int = 256
    layers: int = 2
    epochs: int = 400
    batch_size: int = 128
    lr: float = 5e-4
    grad_clip: float = 5.0           # clip by value
    l2: float = 0.02
    temperature: float = 0.1
    proj_dim: int = 256
    teacher_forcing: bool = False


@dataclass
class RNConfig:
    manner: str = "ap"               # ap (f rows of 3*256 per window) | sc (one row of 3*f*256)
    hidden: int = 256
    epochs: int = 300
    batch_size: int = 128
    lr: float = 5e-4
    select: str = "val"              # val | test (the reference's, labelled) | last
    report_both: bool = False        # also report the test-selected epoch beside the honest one
    paper_like: bool = False         # also the reference's RN: train + val windows, epoch chosen on TEST (labelled)


@dataclass
class RetrievalConfig:
    feature: str = "sc"              # window feature: sc (3*f*256) | ap (mean over steps, 768)
    pooling: str = "mean"            # mean over a walk's windows | none (per window)
    # probe/gallery units (skelreid/evaluation/units.py)
    unit: str = "both"               # both | sequence (per subsequence, the literature's) | walk (mean of windows)
    sequence_feature: str = SEQUENCE_FEATURE   # window feature of the per-subsequence unit: ap | sc
    select_on_test: bool = False     # also the milestone with the best probe Rank-1 (optimistic, labelled)


@dataclass
class TrainConfig:
    """How the encoders' training step executes (speed only; ``bf16`` also changes the numbers)."""

    step: str = "auto"               # auto (graphs on CUDA, eager on CPU) | eager | compiled | graphs
    fused_adam: str = "auto"         # auto (on CUDA) | on | off
    compile_backend: str = "inductor"  # torch.compile backend of the compiled step (tests use aot_eager)
    bf16: bool = False               # bfloat16 autocast of the forward pass (CUDA; changes results)


@dataclass
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    rn: RNConfig = field(default_factory=RNConfig)
    retrieval: RetrievalConfig = field(default_factory=RetrievalConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    preset: str = "synthetic"        # the preset the run was built from (set by build_config)
    name: str = ""                   # display name of the experiment (e.g. "CASIA-B CVE")
    seed: int = 0
    device: str = "cpu"
    reference_quirks: bool = False   # reproduce the reference code's accidental behaviour (spec §7)
    progress: bool = True
    checkpoint_minutes: float = 10.0  # resume checkpoints: every epoch end, and within an epoch after this (0: never)
    resume: bool = False             # continue the run in the output folder with its saved configuration
    threads: int | None = None       # torch CPU threads (None: torch's default); recorded in results.json
    milestones: list = field(default_factory=list)  # encoder epochs at which the run is also evaluated
    monitor_every: int = 0           # every N encoder epochs: validation-walk NN Rank-1 (0: off)
    monitor_windows: int = 32        # windows per walk the monitor embeds (evenly spaced)

    def to_dict(self) -> dict:
        return asdict(self)


#: The train step's modes (``train.step``; :mod:`skelreid.training.step`).
STEP_MODES = ("auto", "eager", "compiled", "graphs")

#: Every option with a fixed set of values, and those values: the one list the configuration's
#: validation and the command line's ``choices`` both read. Each comes from where its values are
#: implemented (the NaN policies from the readers' policy module, the normalisations from the windows,
#: the protocols from the splits, the models from the pretext tasks).
CHOICES: dict[str, tuple[str, ...]] = {
    "encoder.method": ("cage", "age"),
    "encoder.model": MODELS,
    "encoder.attention": ("LA", "BA"),
    "rn.manner": ("ap", "sc"),
    "rn.select": ("val", "test", "last"),
    "data.protocol": PROTOCOLS,
    "data.normalise": NORMALISATIONS,
    "data.nan_policy": POLICIES,
    "data.short_walks": ("skip", "error"),
    "data.source": ("raw", "reference_npy", "successors_npy"),
    "train.step": STEP_MODES,
    "train.fused_adam": ("auto", "on", "off"),
    "retrieval.feature": ("sc", "ap"),
    "retrieval.pooling": ("mean", "none"),
    "retrieval.unit": ("both", "sequence", "walk"),
    "retrieval.sequence_feature": ("ap", "sc"),
}

SECTIONS = {"data": DataConfig, "encoder": EncoderConfig, "rn": RNConfig, "retrieval": RetrievalConfig,
            "train": TrainConfig}
TOP_LEVEL = {"preset", "name", "seed", "device", "reference_quirks", "progress", "checkpoint_minutes", "resume",
             "threads", "milestones", "monitor_every", "monitor_windows"}


def preset_names() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files("skelreid.presets").iterdir() if p.name.endswith(".yaml"))


def preset_key(name: str) -> str:
    """``"CASIA-B-CVE"`` -> ``"casia_b_cve"``: preset names are case- and dash-insensitive."""
    return name.strip().lower().replace("-", "_")


def load_preset(name: str) -> dict:
    """The preset for a dataset name (case-insensitive; ``-`` and ``_`` are the same)."""
    key = preset_key(name)
    path = resources.files("skelreid.presets") / f"{key}.yaml"
    if not path.is_file():
        raise ConfigError(f"unknown dataset {name!r}; valid names: {', '.join(preset_names())}")
    return _safe_yaml(path.read_text(encoding="utf-8"), f"preset {key}.yaml")


def _safe_yaml(text: str, where: str) -> dict:
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{where}{line}: invalid YAML") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping at the top level")
    return data


def load_yaml_file(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    return _safe_yaml(path.read_text(encoding="utf-8"), str(path))


def _coerce(value: Any, current: Any, where: str) -> Any:
    if isinstance(value, str) and not isinstance(current, str):
        try:
            value = yaml.safe_load(value)
        except yaml.YAMLError:
            raise ConfigError(f"{where}: cannot parse value {value!r}") from None
    if current is None or value is None:
        return value
    if isinstance(current, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if isinstance(current, (int, float)) and not isinstance(current, bool):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        if isinstance(current, int) and isinstance(value, float) and not value.is_integer():
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return type(current)(value)
    if isinstance(current, str):
        return str(value)
    if isinstance(current, (dict, list)) and not isinstance(value, type(current)):
        raise ConfigError(f"{where}: expected a {type(current).__name__}, got {value!r}")
    return value


def apply(cfg: RunConfig, overrides: dict, where: str = "config") -> RunConfig:
    """Merge a nested dict of overrides into ``cfg`` (in place), checking every key."""
    for key, value in overrides.items():
        if key in SECTIONS:
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: section {key!r} must be a mapping")
            section = getattr(cfg, key)
            valid = {f.name for f in fields(section)}
            for k, v in value.items():
                if k not in valid:
                    raise ConfigError(f"{where}: unknown option {key}.{k}; valid: {', '.join(sorted(valid))}")
                cur = getattr(section, k)
                if isinstance(cur, dict) and isinstance(v, dict):
                    v = {**cur, **{kk: _coerce(vv, cur.get(kk), f"{where}: {key}.{k}.{kk}")
                                   for kk, vv in v.items()}}
                setattr(section, k, _coerce(v, cur, f"{where}: {key}.{k}"))
        elif key in TOP_LEVEL:
            setattr(cfg, key, _coerce(value, getattr(cfg, key), f"{where}: {key}"))
        elif key == "age":
            continue  # method-specific section, applied by build_config
        else:
            valid = sorted([*SECTIONS, *TOP_LEVEL])
            raise ConfigError(f"{where}: unknown option {key!r}; valid: {', '.join(valid)}")
    return cfg


def parse_set(items: list[str]) -> dict:
    """``["encoder.epochs=3", "seed=1"]`` -> nested dict."""
    out: dict = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        key, value = item.split("=", 1)
        parts = key.strip().split(".")
        if not all(parts):
            raise ConfigError(f"--set key must be 'section.option' or 'option', got {key!r}")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {key!r} conflicts with another --set of {part!r}")
        node[parts[-1]] = value
    return out


def build_config(dataset: str = "synthetic", overrides: list[dict] | None = None) -> RunConfig:
    """Defaults, then the dataset preset, then each override dict in order."""
    cfg = RunConfig()
    preset = load_preset(dataset)
    cfg.preset = preset_key(dataset)
    apply(cfg, preset, f"preset {cfg.preset}.yaml")
    for ov in overrides or []:
        apply(cfg, ov, "command line")
    if cfg.encoder.method == "age" and "age" in preset:
        apply(cfg, preset["age"], f"preset {cfg.preset}.yaml (age)")
        for ov in overrides or []:  # explicit options still win
            apply(cfg, ov, "command line")
    validate(cfg)
    return cfg


def validate(cfg: RunConfig) -> None:
    for name, valid in CHOICES.items():
        section, _, key = name.rpartition(".")
        value = getattr(getattr(cfg, section) if section else cfg, key)
        if value not in valid:
            raise ConfigError(f"option {name}={value!r} is not valid; choose one of: {', '.join(valid)}")
    positive = {"data.length": cfg.data.length, "encoder.epochs": cfg.encoder.epochs + 1,
                "encoder.batch_size": cfg.encoder.batch_size, "rn.epochs": cfg.rn.epochs + 1,
                "rn.batch_size": cfg.rn.batch_size, "encoder.hidden": cfg.encoder.hidden,
                "encoder.temperature": cfg.encoder.temperature}
    for name, value in positive.items():
        if value <= 0:
            raise ConfigError(f"option {name} must be positive")
    if not 0 <= cfg.checkpoint_minutes < float("inf"):
        raise ConfigError("option checkpoint_minutes must be >= 0 (0: checkpoint at epoch ends only)")
    if cfg.data.length < 2:
        raise ConfigError("option data.length (--length) must be at least 2")
    if cfg.threads is not None and cfg.threads < 1:
        raise ConfigError("option threads (--threads) must be at least 1")
    if cfg.monitor_every < 0:
        raise ConfigError("option monitor_every (--monitor-every) must be >= 0 (0: no monitor)")
    if cfg.monitor_windows < 1:
        raise ConfigError("option monitor_windows must be at least 1")
    cfg.milestones = milestone_list(cfg.milestones, cfg.encoder.epochs)
    if cfg.encoder.method == "age" and cfg.encoder.model != "rev_rec":
        raise ConfigError("AGE uses the rev_rec pretext task only; drop --model or use --method cage")
    _validate_splits(cfg.data)


def milestone_list(value, epochs: int) -> list[int]:
    """Sorted, distinct encoder epochs in ``1..epochs`` (a list, or ``"1,2,4"``); ``[]`` stays ``[]``.

    The final epoch is added to any non-empty list: a run's last milestone is the run itself.
    """
    if value in (None, "", []):
        return []
    items = value.split(",") if isinstance(value, str) else value if isinstance(value, list) else [value]
    out = set()
    for item in items:
        text = str(item).strip()
        if not text.isdigit() or not 1 <= int(text) <= epochs:
            raise ConfigError(f"option milestones (--milestones): {text!r} is not an encoder epoch "
                              f"between 1 and {epochs}")
        out.add(int(text))
    return sorted(out | {int(epochs)})


def _validate_splits(d: DataConfig) -> None:
    """Predefined splits (``sets``), legacy test splits and probe/gallery pairs must agree."""
    if d.view is not None:
        d.view = str(d.view)
    if not isinstance(d.sets, dict) or not all(isinstance(v, list) and v for v in d.sets.values()):
        raise ConfigError("option data.sets must map split names to non-empty lists of condition patterns")
    if d.sets and "train" not in d.sets:
        raise ConfigError("option data.sets must define a 'train' split")
    if not isinstance(d.tests, list) or not d.tests or not all(isinstance(t, str) for t in d.tests):
        raise ConfigError("option data.tests must be a non-empty list of split names")
    if not isinstance(d.pairs, list):
        raise ConfigError("option data.pairs must be a list of {name, probe, gallery}")
    for p in d.pairs:
        if not isinstance(p, dict) or set(p) != {"name", "probe", "gallery"}:
            raise ConfigError(f"option data.pairs: each pair needs exactly name, probe, gallery; got {p!r}")
    names = set(d.sets) if d.sets else None
    if names is not None:
        wanted = d.tests if d.protocol == "legacy" else [s for p in d.pairs for s in (p["probe"], p["gallery"])]
        missing = sorted({w for w in wanted if w not in names})
        if missing:
            raise ConfigError(f"split(s) {', '.join(missing)} are not defined in data.sets "
                              f"(defined: {', '.join(sorted(names))})")


def from_dict(d: dict) -> RunConfig:
    """Rebuild a config saved with :meth:`RunConfig.to_dict`."""
    cfg = RunConfig()
    apply(cfg, d, "saved config")
    if cfg.data.view is not None:
        cfg.data.view = str(cfg.data.view)
    return cfg


# --------------------------------------------------------------------------- differences, fingerprints

#: Options that change how a run executes, never what it computes.
RUNTIME_TOP = ("device", "progress", "checkpoint_minutes", "resume", "threads")
RUNTIME_DATA = ("root", "cache")
#: How the training step executes: it changes speed, not what is computed (bf16 excepted, which stays).
RUNTIME_TRAIN = ("step", "fused_adam", "compile_backend")
#: Sections (besides ``data``) and top-level options the encoders depend on.
ENCODER_KEYS = ("encoder", "seed", "reference_quirks")


def training_dict(cfg: RunConfig) -> dict:
    """The configuration without its run-time options: what defines a run's results."""
    d = cfg.to_dict()
    for k in RUNTIME_TOP:
        d.pop(k, None)
    d["data"] = {k: v for k, v in d["data"].items() if k not in RUNTIME_DATA}
    d["train"] = {k: v for k, v in d.get("train", {}).items() if k not in RUNTIME_TRAIN}
    return d


#: Options that add reports (milestone rows, the monitor, the paper-like RN) without changing the
#: run's final encoders or its recognition network under the other rules.
REPORT_ONLY_TOP = ("milestones", "monitor_every", "monitor_windows")
REPORT_ONLY_RN = ("paper_like",)


def run_fingerprint(cfg: RunConfig) -> str:
    d = training_dict(cfg)
    for k in REPORT_ONLY_TOP:
        d.pop(k, None)
    d["rn"] = {k: v for k, v in d["rn"].items() if k not in REPORT_ONLY_RN}
    return sha256_bytes(json_dumps(d).encode("utf-8"))


def encoder_fingerprint(cfg: RunConfig) -> str:
    """What the encoders depend on: data options, encoder options, seed, reference quirks."""
    d = training_dict(cfg)
    extra = {"bf16": True} if d["train"].get("bf16") else {}   # (absent when off: older fingerprints stay valid)
    return sha256_bytes(json_dumps({"data": d["data"], **{k: d.get(k) for k in ENCODER_KEYS}, **extra})
                        .encode("utf-8"))


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and v and k != "synthetic":
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def config_differences(a: RunConfig, b: RunConfig) -> list[str]:
    """``["encoder.epochs: 4 -> 5", ...]`` for the options that define the results."""
    fa, fb = _flat(training_dict(a)), _flat(training_dict(b))
    return [f"{k}: {fa.get(k)!r} -> {fb.get(k)!r}" for k in sorted(set(fa) | set(fb)) if fa.get(k) != fb.get(k)]
