"""The run folder's state: which configuration it holds, what is finished, who is writing.

Semantics of ``skelreid train ... --out RUN`` (see docs/reliability.md):

* ``RUN`` has no ``config.json``: a new run starts there.
* ``RUN`` holds a run of the **same** configuration (every option except the
  run-time ones: ``device``, ``progress``, ``checkpoint_minutes``, ``resume``,
  ``data.root``, ``data.cache``): the run continues. The data may have moved: a new ``--root`` is
  used when the data there is the run's (same content digest, ``RUN/data.json``), and refused
  with the reason when it is not (:func:`check_data`). Encoders whose final weights
  are present, intact and of this configuration and split are skipped; a stage
  that was interrupted continues from its last complete resume checkpoint
  (:mod:`skelreid.training.resume`); a recognition network that finished is
  not trained again. The result equals that of an uninterrupted run.
* ``RUN`` holds a run of a **different** configuration that trained anything
  (encoder or RN weights, resume checkpoints, results): refused with a message
  naming the differing options. ``--resume`` continues that run with its saved
  configuration instead (only the run-time options of the command line apply,
  ``--root`` and ``--cache`` among them);
  a folder whose earlier attempt trained nothing is simply reused.
* ``--resume`` on a folder without ``config.json`` is refused.

A run folder is locked (``RUN/.lock``, a POSIX record lock released when the
process ends, even when killed) while a command works in it: a second command
on the same folder is refused instead of interleaving its writes.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

from .config import (ENCODER_KEYS, REPORT_ONLY_RN, REPORT_ONLY_TOP, RUNTIME_DATA, RUNTIME_TOP,  # noqa: F401
                     RUNTIME_TRAIN, RunConfig, config_differences, encoder_fingerprint, from_dict,
                     run_fingerprint, training_dict)
from .errors import ConfigError, DataError, OutputError, SkelreidError
from .io import json_dumps, read_json, remove_stale_temp_files, sha256_bytes, sha256_file, write_json

_LOCKS: dict[str, int] = {}


def has_trained_anything(run_dir: Path) -> bool:
    """Weights, resume checkpoints or results: something a different run would overwrite."""
    return ((run_dir / "results.json").exists()
            or any(any(True for _ in (run_dir / sub).glob("*.json")) for sub in ("encoders", "rn", "resume")))


def _other_rank() -> bool:
    """A non-main rank of a torchrun process group: the main rank holds the folder for all."""
    from .training import distributed

    return distributed.is_distributed() and not distributed.is_main()


def lock_run_folder(run_dir: Path) -> None:
    """Create ``run_dir`` and hold its lock until this process ends."""
    key = str(Path(run_dir).resolve())
    if key in _LOCKS or _other_rank():
        return
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(run_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise OutputError(run_dir / ".lock", exc) from exc
    try:
        import fcntl
    except ImportError:  # no POSIX locks on this platform: nothing to hold
        os.close(fd)
        return
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        with contextlib.suppress(OSError):
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        os.close(fd)
        who = f" (process {holder})" if holder else ""
        raise ConfigError(f"{run_dir} is in use by another skelreid command{who}; wait for it to end "
                          "or choose another --out folder") from None
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
    _LOCKS[key] = fd


def claim_run_folder(cfg: RunConfig, run_dir: Path) -> RunConfig:
    """Lock ``run_dir`` for a run that trains encoders and decide new / continue / refuse.

    Returns the configuration to run with: ``cfg``, or with ``--resume`` the
    folder's saved configuration (keeping ``cfg``'s run-time options).
    """
    run_dir = Path(run_dir)
    lock_run_folder(run_dir)
    from .training import distributed

    if not distributed.is_distributed():  # ranks of one torchrun job write at the same time
        remove_stale_temp_files(run_dir)  # left by a killed process; we hold the lock
    saved_path = run_dir / "config.json"
    if not saved_path.exists():
        if cfg.resume:
            raise ConfigError(f"--resume: {run_dir} holds no run to continue (no config.json); "
                              "drop --resume to start a new run there")
        return cfg
    try:
        saved = from_dict(read_json(saved_path))
    except SkelreidError as exc:
        if cfg.resume or has_trained_anything(run_dir):
            raise ConfigError(f"{saved_path}: the saved configuration cannot be read ({exc}); "
                              "choose another --out folder") from None
        return cfg
    if cfg.resume:
        for k in RUNTIME_TOP:
            setattr(saved, k, getattr(cfg, k))
        use_runtime_data(saved, cfg)
        saved.resume = False
        diffs = config_differences(saved, cfg)
        if diffs:
            from .console import note

            note(f"--resume: continuing {run_dir} with its saved configuration; the command line's "
                 f"{', '.join(d.split(':')[0] for d in diffs[:4])}{' ...' if len(diffs) > 4 else ''} "
                 "are not used")
        return saved
    diffs = config_differences(saved, cfg)
    if not diffs or not has_trained_anything(run_dir):
        return cfg
    shown = "; ".join(diffs[:3]) + (f"; and {len(diffs) - 3} more" if len(diffs) > 3 else "")
    only_rn = all(d.startswith("rn.") for d in diffs)
    hint = ("retrain only its recognition network with --stages rn,evaluate, " if only_rn else "")
    raise ConfigError(f"{run_dir} already holds a run with a different configuration ({shown}); "
                      f"{hint}continue that run with --resume, or choose another --out folder")


def use_runtime_data(saved: RunConfig, cfg: RunConfig) -> None:
    """The command line's ``--root`` / ``--cache`` (where the data is now) replace the saved ones when
    given; :func:`check_data` then makes sure the data there is the run's."""
    for k in RUNTIME_DATA:
        if getattr(cfg.data, k) is not None:
            setattr(saved.data, k, getattr(cfg.data, k))


#: The run folder's record of the data its windows came from (``check_data``).
DATA_RECORD = "data.json"


def data_digest(ws) -> str:
    """SHA-256 of a run's windows (a :class:`~skelreid.data.windows.WindowSet`): coordinates, walk ids,
    persons, labels and positions -- the data's content, wherever it is read from."""
    import numpy as np

    h = hashlib.sha256()
    h.update(json_dumps({"walks": list(ws.walks), "persons": list(ws.persons)}).encode("utf-8"))
    for arr in (ws.data, ws.label, ws.walk, ws.position):
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


def check_data(run_dir: Path, cfg: RunConfig, ws) -> None:
    """Record which data a run's windows came from (``RUN/data.json``: its folder and content digest),
    and refuse data that is not the run's: a run whose data moved (another ``--root``) continues from
    the new folder when the content is the same, and is refused with the reason when it is not."""
    path = Path(run_dir) / DATA_RECORD
    here = {"root": cfg.data.root, "sha256": data_digest(ws), "walks": len(ws.walks), "windows": len(ws)}
    try:
        rec = read_json(path) if path.exists() else None
    except SkelreidError:
        rec = None
    if rec is not None and rec.get("sha256") != here["sha256"]:
        if rec.get("walks") != here["walks"] or rec.get("windows") != here["windows"]:
            why = (f"it gives {here['windows']} windows of {here['walks']} walks, the run's data gave "
                   f"{rec.get('windows')} windows of {rec.get('walks')} walks")
        else:
            why = f"it gives the same {here['windows']} windows of {here['walks']} walks, but other values"
        if rec.get("root") != here["root"]:
            raise ConfigError(f"--root {here['root']}: the data there is not the data the run in {run_dir} was "
                              f"trained on (read from {rec.get('root')}): {why}; give the folder that holds the "
                              "run's data, or choose another --out folder for a new run")
        from .console import warn

        warn(f"the data in {here['root']} changed since the run in {run_dir} read it ({why}); "
             "results from here on are of the changed data")
    if rec != here:
        if rec is not None and rec.get("root") != here["root"]:
            from .console import note

            note(f"the run's data moved from {rec.get('root')} to {here['root']} (same content)")
        write_json(path, here)


def verified_checkpoint_meta(prefix: Path, what: str) -> dict | None:
    """The sidecar of a finished checkpoint whose weights are intact, else ``None``.

    A damaged file is reported (one line) and treated as absent, so the stage
    that wrote it runs again.
    """
    from .training.checkpoint import checkpoint_paths, read_checkpoint_meta
    from .console import warn

    wpath, mpath = checkpoint_paths(prefix)
    if not mpath.exists():
        return None
    try:
        meta = read_checkpoint_meta(prefix)
        if not wpath.exists():
            raise DataError(wpath, "checkpoint weights not found")
        if sha256_file(wpath) != meta.get("weights_sha256"):
            raise DataError(wpath, "checksum mismatch: the weights file is damaged or was changed")
    except DataError as exc:
        warn(f"{exc}; {what} is trained again")
        return None
    return meta


def final_history_row(csv_path: Path) -> dict:
    """The last row of a ``*_losses.csv`` / ``history.csv`` file, numbers as floats (``{}`` if none)."""
    import csv

    try:
        with open(csv_path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except OSError:
        return {}
    if not rows:
        return {}
    out = {}
    for k, v in rows[-1].items():
        try:
            out[k] = float(v)
        except (TypeError, ValueError):
            out[k] = v
    return out


def rn_fingerprint(cfg: RunConfig, split_sha: str, encoder_dir: Path, tags: list[str]) -> str:
    """What the recognition network depends on: the whole configuration, the split and the
    exact encoder weights it reads features from (a retrained encoder invalidates it)."""
    from .training.checkpoint import read_checkpoint_meta

    weights = ",".join(read_checkpoint_meta(encoder_dir / t)["weights_sha256"] for t in sorted(tags))
    return f"{run_fingerprint(cfg)}/{split_sha}/{sha256_bytes(weights.encode('ascii'))[:16]}"
