"""Resume checkpoints of a training stage: survive a kill, continue bit-identically.

A stage (one encoder set, or the recognition network) keeps two checkpoints in
the run's ``resume/`` folder, each a safetensors file plus a checked JSON
sidecar written through :mod:`skelreid.training.checkpoint` (no pickle)::

    resume/<name>.safetensors       resume/<name>.json          the latest
    resume/<name>_prev.safetensors  resume/<name>_prev.json     the one before

A checkpoint holds everything the rest of the stage depends on: the model
weights, the optimizer state flattened into named tensors (Adam's moments and
step) plus its hyper-parameters as JSON, the random number generator states
(torch CPU and CUDA, numpy's and Python's global generators), the number of
epochs completed and of batches done in the current epoch, the history rows so
far, and stage-specific tensors and values (the running loss sums, the RN's
best-so-far states). It is written at the end of every epoch and, when
``checkpoint_minutes`` is positive, also inside an epoch once that many minutes
have passed since the last one.

Writing a new checkpoint first makes ``_prev`` a copy of the latest (hard
links, so no data is copied where the file system allows it), then removes the
latest sidecar and writes the new weights and sidecar, each atomically: at
every moment at least one complete checkpoint exists. On load the latest is
tried first; one whose checksums do not match is refused with a one-line
warning naming the file, and the previous one is used. A checkpoint of a
different configuration (its ``fingerprint`` differs) is ignored with a note.
The stage deletes both when it completes.
"""
from __future__ import annotations

import contextlib
import os
import random
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..console import note, warn
from ..errors import DataError
from ..io import fsync_dir, remove_file, write_bytes
from .checkpoint import checkpoint_paths, delete_checkpoint, load_checkpoint, save_checkpoint

FORMAT = "skelreid-resume/1"


# --------------------------------------------------------------------------- optimizer state


def optimizer_to_flat(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """An optimizer's state as named tensors (``optim.<param>.<key>``) and JSON values."""
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict] = {}
    for pid, st in sd["state"].items():
        for key, value in st.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{pid}.{key}"] = value.detach().cpu().clone()  # a snapshot, never an alias
            else:
                scalars.setdefault(str(pid), {})[key] = value
    groups = []
    for g in sd["param_groups"]:
        groups.append({k: (list(v) if isinstance(v, tuple) else
                           float(v) if isinstance(v, torch.Tensor) else v) for k, v in g.items()})
    return tensors, {"groups": groups, "scalars": scalars}


def optimizer_from_flat(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        if name.startswith("optim."):
            _, pid, key = name.split(".", 2)
            state.setdefault(int(pid), {})[key] = value
    for pid, values in meta.get("scalars", {}).items():
        state.setdefault(int(pid), {}).update(values)
    groups = [{k: (tuple(v) if k == "betas" and isinstance(v, list) else v) for k, v in g.items()}
              for g in meta["groups"]]
    opt.load_state_dict({"state": state, "param_groups": groups})


# --------------------------------------------------------------------------- random number generators


def rng_to_flat() -> tuple[dict[str, torch.Tensor], dict]:
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    tensors["rng.numpy"] = torch.from_numpy(np.asarray(keys, dtype=np.int64))
    version, py_state, py_gauss = random.getstate()
    tensors["rng.python"] = torch.tensor(py_state, dtype=torch.int64)
    meta = {"numpy": [kind, int(pos), int(has_gauss), float(gauss)], "python": [version, py_gauss]}
    return tensors, meta


def rng_from_flat(tensors: dict[str, torch.Tensor], meta: dict) -> None:
    torch.set_rng_state(tensors["rng.torch"])
    cuda = [tensors[k] for k in sorted((k for k in tensors if k.startswith("rng.cuda.")),
                                       key=lambda k: int(k.rsplit(".", 1)[1]))]
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    kind, pos, has_gauss, gauss = meta["numpy"]
    np.random.set_state((kind, tensors["rng.numpy"].numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, py_gauss = meta["python"]
    random.setstate((version, tuple(int(v) for v in tensors["rng.python"].tolist()), py_gauss))


# --------------------------------------------------------------------------- checkpoints


@dataclass
class ResumePoint:
    """What a loaded checkpoint says: where training stopped and the stage's own state."""

    epoch: int                      # epochs completed
    batch: int                      # batches already done in epoch ``epoch`` (0-based)
    history: list[dict]
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)   # stage extras ("extra.*" stripped)
    meta: dict = field(default_factory=dict)                         # stage extras (JSON)
    source: Path | None = None


def _is_main() -> bool:
    from . import distributed

    return distributed.is_main()


class ResumeFile:
    """The two resume checkpoints of one stage (see the module documentation)."""

    def __init__(self, folder: str | Path, name: str, fingerprint: str, minutes: float = 10.0,
                 inputs: str | None = None):
        self.folder = Path(folder)
        #: SHA-256 of the stage's input arrays (the RN's features): recorded in every checkpoint and
        #: compared on resume, so that inputs recomputed differently are reported, never silently used.
        self.inputs = inputs
        self.name = name
        self.last = self.folder / name
        self.prev = self.folder / f"{name}_prev"
        self.fingerprint = fingerprint
        self.minutes = float(minutes)
        self._last_ok = False          # the latest checkpoint on disk is known to be complete and valid
        self._saved_at = time.monotonic()

    # -- loading
    def exists(self) -> bool:
        return any(checkpoint_paths(p)[1].exists() for p in (self.last, self.prev))

    def load(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> ResumePoint | None:
        """Restore ``model``, ``optimizer`` and the RNGs from the newest valid checkpoint."""
        self._saved_at = time.monotonic()
        candidates = [p for p in (self.last, self.prev) if checkpoint_paths(p)[1].exists()]
        for i, prefix in enumerate(candidates):
            mpath = checkpoint_paths(prefix)[1]
            try:
                tensors, meta = load_checkpoint(prefix)
            except DataError as exc:
                other = ("using the previous checkpoint" if i + 1 < len(candidates)
                         else "no checkpoint is left: starting the stage over")
                warn(f"{exc}; {other}")
                continue
            if meta.get("format") != FORMAT or meta.get("fingerprint") != self.fingerprint:
                note(f"{mpath} was written by a different configuration or version; not resumed from it")
                continue
            problem = _incompatible(model, tensors)
            if problem:
                warn(f"{mpath}: {problem}; not resumed from it")
                continue
            try:
                model.load_state_dict({k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")})
                optimizer_from_flat(optimizer, tensors, meta["optimizer"])
                rng_from_flat(tensors, meta["rng"])
            except (KeyError, ValueError, TypeError, RuntimeError) as exc:
                # The model may be half restored: never train on from here.
                raise DataError(mpath, f"cannot resume from this checkpoint ({type(exc).__name__}: {exc}); "
                                f"delete {self.folder} to start the stage over") from None
            self._last_ok = prefix == self.last
            saved_inputs = meta.get("inputs_sha256")
            if self.inputs and saved_inputs and saved_inputs != self.inputs:
                warn(f"{mpath}: the {self.name} stage's inputs differ from those of the interrupted attempt "
                     f"(sha256 {saved_inputs[:12]}... then, {self.inputs[:12]}... now); the resumed result "
                     "will not be bit-identical to an uninterrupted run (see docs/reliability.md, Determinism)")
            extras = {k[len("extra."):]: v for k, v in tensors.items() if k.startswith("extra.")}
            return ResumePoint(int(meta["epoch"]), int(meta["batch"]), list(meta["history"]), extras,
                               dict(meta.get("extra", {})), prefix)
        return None

    # -- saving
    def due(self) -> bool:
        """True when ``minutes`` (> 0) have passed since the last checkpoint."""
        return self.minutes > 0 and time.monotonic() - self._saved_at >= 60.0 * self.minutes

    def save(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, *, epoch: int, batch: int,
             history: list[dict], tensors: dict[str, torch.Tensor] | None = None, meta: dict | None = None) -> None:
        if not _is_main():
            return
        out = {f"model.{k}": v for k, v in model.state_dict().items()}
        opt_t, opt_meta = optimizer_to_flat(optimizer)
        rng_t, rng_meta = rng_to_flat()
        out.update(opt_t)
        out.update(rng_t)
        out.update({f"extra.{k}": v for k, v in (tensors or {}).items()})
        info = {"format": FORMAT, "kind": "resume", "stage": self.name, "fingerprint": self.fingerprint,
                "epoch": int(epoch), "batch": int(batch), "history": history, "optimizer": opt_meta,
                "rng": rng_meta, "extra": meta or {}, "inputs_sha256": self.inputs}
        self._rotate()
        save_checkpoint(self.last, out, info)
        self._last_ok = True
        self._saved_at = time.monotonic()
        from .. import faults

        faults.point("resume.save")

    def _rotate(self) -> None:
        """Make ``_prev`` a copy of the latest checkpoint, then invalidate the latest."""
        lw, lm = checkpoint_paths(self.last)
        pw, pm = checkpoint_paths(self.prev)
        if self._last_ok and lm.exists():
            remove_file(pm, durable=False)    # the sidecar goes first: prev is never half valid
            _link_or_copy(lw, pw)             # replaces the old prev weights
            _link_or_copy(lm, pm)             # prev is complete again (a copy of the latest)
        remove_file(lm, durable=False)        # the latest is incomplete until its new sidecar lands
        fsync_dir(self.folder)                # the rotation is on disk before new data is written
        self._last_ok = False

    def clear(self) -> None:
        """Delete both checkpoints (the stage is complete)."""
        if not _is_main():
            return
        delete_checkpoint(self.last)
        delete_checkpoint(self.prev)
        with contextlib.suppress(OSError):
            self.folder.rmdir()           # only when empty


def _incompatible(model: torch.nn.Module, tensors: dict[str, torch.Tensor]) -> str:
    want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    have = {k[len("model."):]: tuple(v.shape) for k, v in tensors.items() if k.startswith("model.")}
    if set(want) != set(have):
        return "its model has different parameters"
    bad = [k for k in want if want[k] != have[k]]
    return f"parameter {bad[0]} has shape {have[bad[0]]}, the model {want[bad[0]]}" if bad else ""


def _link_or_copy(src: Path, dst: Path) -> None:
    """Give ``dst`` the content of ``src`` atomically (a hard link where possible)."""
    from ..errors import OutputError

    tmp = dst.with_name(f".{dst.name}.{secrets.token_hex(4)}.tmp")
    try:
        os.link(src, tmp)
    except OSError:  # no hard links here: copy
        try:
            data = src.read_bytes()
        except OSError as exc:
            raise OutputError(dst, exc) from exc
        write_bytes(dst, data)
        return
    try:
        os.replace(tmp, dst)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise OutputError(dst, exc) from exc


def restore(resume: ResumeFile | None, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
            history: list[dict]) -> tuple[int, int, dict[str, torch.Tensor]]:
    """Load ``resume``'s newest valid checkpoint into ``model``, ``optimizer``, the RNGs and ``history``.

    Returns ``(epochs completed, batches done in the next epoch, extra tensors)``;
    ``(0, 0, {})`` when there is nothing to resume from.
    """
    point = resume.load(model, optimizer) if resume is not None else None
    if point is None:
        return 0, 0, {}
    history[:] = point.history
    note(f"{resume.name}: resuming after epoch {point.epoch}"
         + (f" and {point.batch} batches" if point.batch else "") + f" ({point.source})")
    return point.epoch, point.batch, point.tensors

