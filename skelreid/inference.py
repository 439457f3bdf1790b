"""Use a trained model: walks -> gait embeddings, enrolment into a gallery, identification.

:func:`load` opens a run folder (``skelreid.load`` is the same function)::

    model = skelreid.load("runs/demo")
    vec = model.embed(frames)                        # one walk [T, J, D] -> feature [F]
    gallery = model.enrol(walks, labels)             # known persons
    result = model.identify([probe], gallery)[0]     # .identity, .ranks

The walk feature is exactly the one the probe/gallery protocol of :mod:`skelreid.pipeline`
evaluates: the walk's ``clip`` end frames dropped, ``data.normalise`` applied, non-overlapping
windows of ``data.length`` frames, the context vectors of every encoder set of the run
(:func:`skelreid.encoders.context_vectors`), the run's window feature
(:func:`skelreid.features.window_vectors`, ``retrieval.feature``) and the mean over the walk's
windows (:func:`skelreid.evaluation.retrieval.sequence_features`). Every setting comes from the
run's ``config.json``. All windows of all walks go through the encoders together, in batches of
the size the pipeline uses (:data:`skelreid.training.encoder.EMBED_BATCH`) and of the same shapes
(on CUDA the last of several batches is padded, as the pipeline pads it), so the features of the
same windows in the same order equal the pipeline's bit for bit, on CPU and on CUDA
(``benchmarks/feature_equality.py`` checks it on a GPU). The same walks embedded in another
order or together with other walks fall into other batches: on CUDA their features then agree
with the pipeline's to float32 rounding (relative 1e-5), not bit for bit. (A run evaluated with
``retrieval.pooling=none`` scores windows; its walk feature here is still the mean.)

Distances are Euclidean (:func:`skelreid.evaluation.retrieval.pairwise_euclidean`); see
:mod:`skelreid.gallery` for the gallery file, the identity ranking and the threshold calibration.
"""
from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ConfigError, DataError
from .gallery import UNKNOWN, Gallery, calibrate_threshold, decide, rank_identities

__all__ = ["GaitModel", "Embeddings", "Identification", "load", "model_fingerprint", "identify_features",
           "top1_accuracy", "Gallery"]

#: More windows than this get a progress bar (unless progress is off).
PROGRESS_WINDOWS = 20_000


def _encoder_batch() -> int:
    """The batch size of :func:`skelreid.training.encoder.embed_windows` (the pipeline's)."""
    from .training.encoder import EMBED_BATCH

    return EMBED_BATCH


def model_fingerprint(cfg, weights: dict[str, str], scale: float | None = None) -> str:
    """SHA-256 over the encoders' ``weights_sha256`` (by tag) and the options that shape the features."""
    from .io import json_dumps, sha256_bytes

    features = {"data.length": cfg.data.length, "data.clip": cfg.data.clip,
                "data.normalise": cfg.data.normalise, "retrieval.feature": cfg.retrieval.feature,
                "encoder.model": cfg.encoder.model, "encoder.attention": cfg.encoder.attention,
                "reference_quirks": cfg.reference_quirks}
    if scale is not None:
        features["data.body_scale"] = scale
    parts = {"encoders": {tag: weights[tag] for tag in sorted(weights)}, "features": features}
    return sha256_bytes(json_dumps(parts).encode("utf-8"))


def _body_scale(run_dir: Path, cfg) -> float | None:
    """``normalise: body`` divides by the dataset scale of the run's training walks (its split.json)."""
    if cfg.data.normalise != "body":
        return None
    from .data.splits import load_manifest
    from .encoders import body_scale_of

    path = Path(run_dir) / "split.json"
    if not path.exists():
        raise ConfigError(f"{run_dir}: no split.json, which holds the body scale of data.normalise=body")
    return body_scale_of(load_manifest(path), "body")


@dataclass
class Embeddings:
    """Feature rows and what each row is (walk level, or window level when ``window`` is set)."""

    features: np.ndarray              # [R, F] float32
    person: np.ndarray                # [R] unicode
    walk: np.ndarray                  # [R] walk ids
    view: np.ndarray                  # [R] ("" when unknown)
    condition: np.ndarray             # [R] ("" when unknown)
    source: np.ndarray                # [R] source file of the walk
    window: np.ndarray | None = None  # [R] window index within the walk (window level only)

    def __len__(self) -> int:
        return len(self.features)

    @property
    def level(self) -> str:
        return "walk" if self.window is None else "window"

    def columns(self) -> dict[str, np.ndarray]:
        out = {"person": self.person, "walk": self.walk, "view": self.view, "condition": self.condition,
               "source": self.source}
        if self.window is not None:
            out["window"] = self.window
        return out


@dataclass
class Identification:
    """Who a probe walk is: ``ranks`` (identity, distance of its nearest walk), nearest first, and
    the decided ``identity`` (the nearest, or ``"unknown"`` beyond the threshold)."""

    identity: str
    ranks: list[tuple[str, float]]
    threshold: float | None = None
    walk: str | None = None
    source: str | None = None
    person: str | None = None        # the probe's own label, when known
    enrolled: bool | None = None     # the probe's person has a gallery walk (its own walk left out)

    @property
    def distance(self) -> float | None:
        """Distance to the nearest gallery walk."""
        return self.ranks[0][1] if self.ranks else None

    @property
    def known(self) -> bool:
        return self.identity != UNKNOWN


def _strings(values) -> np.ndarray:
    return np.array(["" if v is None else str(v) for v in values], dtype=str)


def _source_key(source: str) -> str:
    """A walk's source as stored in galleries: an existing path made absolute (so another spelling of
    the same ``--root`` names the same file)."""
    if not source:
        return ""
    try:
        p = Path(source)
        return str(p.resolve()) if p.exists() else source
    except (OSError, ValueError):
        return source


def walk_digest(frames: np.ndarray) -> str:
    """The walk id an array walk gets when none is given: a digest of its frames."""
    a = np.ascontiguousarray(frames, dtype=np.float32)
    return "sha256:" + hashlib.sha256(repr(a.shape).encode() + a.tobytes()).hexdigest()[:16]


class GaitModel:
    """The encoders of a run folder and its feature settings (see the module documentation)."""

    def __init__(self, run_dir: Path, cfg, models: dict, metas: dict, device):
        self.run_dir = Path(run_dir)
        self.cfg = cfg
        self.models = models
        self.device = device
        first = metas[next(iter(metas))]
        kw = first["model"]
        self.num_joints, self.dims, self.length = int(kw["num_joints"]), int(kw["num_axes"]), int(kw["length"])
        self.layout: str | None = first.get("layout")
        if self.length != cfg.data.length:
            raise ConfigError(f"{self.run_dir}: the encoders were trained on windows of {self.length} frames, "
                              f"but config.json says data.length={cfg.data.length}")
        self.scale = _body_scale(self.run_dir, cfg)   # normalise=body: the run's own dataset scale
        self.fingerprint = model_fingerprint(cfg, {tag: m["weights_sha256"] for tag, m in metas.items()},
                                             self.scale)

    def __repr__(self) -> str:
        return f"GaitModel({str(self.run_dir)!r}, {self.describe()}, feature {self.cfg.retrieval.feature})"

    # ------------------------------------------------------------------ what the model accepts
    def describe(self) -> str:
        layout = f"layout {self.layout}" if self.layout else "layout not recorded"
        return f"{self.num_joints} joints in {self.dims}D ({layout})"

    @property
    def info(self) -> dict:
        """What a gallery records about the model."""
        d = self.cfg.data
        return {"run": str(self.run_dir), "feature": self.cfg.retrieval.feature, "pooling": "mean",
                "length": d.length, "clip": d.clip, "normalise": d.normalise, "layout": self.layout,
                "joints": self.num_joints, "dims": self.dims, "encoders": sorted(self.models)}

    def check_layout(self, num_joints: int, dims: int, layout: str | None, where: str) -> str | None:
        """The layout walks of this shape are read in; refuses another joint count, dimensionality or
        named layout. Unnamed (``generic_*``) layouts of the right shape take the model's layout."""
        from .data.layouts import LAYOUTS

        named = layout is not None and layout in LAYOUTS
        model_named = self.layout is not None and self.layout in LAYOUTS
        same_shape = num_joints == self.num_joints and dims == self.dims
        if not same_shape or (named and model_named and layout != self.layout):
            raise DataError(where, f"the walks have {num_joints} joints in {dims}D (layout {layout or 'unnamed'}); "
                                   f"the model in {self.run_dir} was trained on {self.describe()}")
        if self.layout is not None and not named:
            return self.layout
        return layout

    def check_windows(self, windows: np.ndarray, where: str = "windows") -> None:
        if windows.ndim != 4:
            raise DataError(where, f"windows must be [N, f, J, D], got shape {list(windows.shape)}")
        if windows.shape[1] != self.length:
            raise DataError(where, f"the windows have {windows.shape[1]} frames; the model in {self.run_dir} "
                                   f"was trained on windows of {self.length} frames")
        self.check_layout(windows.shape[2], windows.shape[3], None, where)

    def adopt(self, sequences: list, where: str) -> list:
        """``sequences`` checked against the model, unnamed layouts renamed to the model's."""
        out = []
        for s in sequences:
            layout = self.check_layout(s.num_joints, s.dims, s.layout, where)
            out.append(s if layout == s.layout else dataclasses.replace(s, layout=layout))
        return out

    # ------------------------------------------------------------------ embedding
    def encode(self, windows: np.ndarray, progress: bool = True) -> np.ndarray:
        """Window features ``[N, F]`` of pre-cut, already normalised windows ``[N, f, J, D]``.

        All windows go through every encoder in batches of the pipeline's size (a progress bar when
        there are more than :data:`PROGRESS_WINDOWS` and ``progress``).
        """
        from tqdm.auto import tqdm

        from .encoders import context_vectors
        from .features import window_vectors
        from .training.encoder import static_shapes

        windows = np.ascontiguousarray(windows, dtype=np.float32)
        self.check_windows(windows)
        n, step = len(windows), _encoder_batch()
        pad = static_shapes(self.device)
        parts = []
        with tqdm(total=n, unit="window", desc="embedding", leave=False, dynamic_ncols=True,
                  disable=not (progress and n > PROGRESS_WINDOWS)) as bar:
            for i in range(0, n, step):
                chunk = windows[i: i + step]
                if pad and i > 0 and len(chunk) < step:  # the shape the pipeline's last batch has
                    chunk = np.concatenate([chunk, np.zeros((step - len(chunk), *chunk.shape[1:]), chunk.dtype)])
                c = context_vectors(self.cfg, self.models, chunk, self.device, training=False)
                parts.append(window_vectors(c[: min(step, n - i)], self.cfg.retrieval.feature))
                bar.update(min(step, n - i))
        if not parts:
            return np.zeros((0, self.feature_dim), np.float32)
        return np.concatenate(parts)

    @property
    def feature_dim(self) -> int:
        m = next(iter(self.models.values()))
        sets = 3 if (self.cfg.reference_quirks and self.cfg.encoder.model == "rev_rec_plus") else len(self.models)
        per_axis = m.hidden * (self.length if self.cfg.retrieval.feature == "sc" else 1)
        return int(self.dims * sets * per_axis)

    def embed_sequences(self, sequences: list, windows: bool = False, progress: bool = True,
                        where: str = "data") -> Embeddings:
        """Walk-level (or, with ``windows``, window-level) features of :class:`~skelreid.data.records.Sequence`
        walks, in the pipeline's order (person, then walk, natural order). Every walk must be long
        enough for one window (:func:`skelreid.data.filtering.exclude_unusable` leaves out the others)."""
        from .data.records import natural_key
        from .data.windows import make_windows
        from .evaluation.retrieval import sequence_features

        if not sequences:
            raise ConfigError(f"{where}: no walks to embed")
        seqs = self.adopt(sequences, where)
        d = self.cfg.data
        ws = make_windows(seqs, d.length, d.clip, d.normalise, scale=self.scale)
        ordered = sorted(seqs, key=lambda s: (natural_key(s.person), natural_key(s.walk)))  # make_windows' order
        vec = self.encode(ws.data, progress=progress)
        if windows:
            rows, idx, pos = vec, ws.walk, ws.position
        else:
            rows, idx = sequence_features(vec, ws.walk, how="mean")
            pos = None
        meta = [ordered[i] for i in np.asarray(idx).tolist()]
        return Embeddings(rows, _strings(s.person for s in meta), _strings(s.walk_id for s in meta),
                          _strings(s.view for s in meta), _strings(s.condition for s in meta),
                          _strings(_source_key(s.source) for s in meta),
                          None if pos is None else np.asarray(pos, dtype=np.int64))

    def _array_walks(self, frames) -> tuple[list, bool]:
        from .data.layouts import generic_layout
        from .data.records import Sequence
        from .data.windows import too_short

        single = isinstance(frames, np.ndarray) and frames.ndim == 3
        walks = [frames] if single else list(frames)
        d = self.cfg.data
        seqs = []
        for i, f in enumerate(walks):
            a = np.asarray(f)
            where = f"walk {i}"
            if a.ndim != 3 or a.shape[2] not in (2, 3) or a.dtype.kind not in "fiu":
                raise DataError(where, f"frames must be a number array [T, J, 2|3], got {a.dtype} {list(a.shape)}")
            if not np.isfinite(a).all():
                raise DataError(where, "frames hold non-finite coordinates (NaN or inf)")
            layout = self.check_layout(a.shape[1], a.shape[2], generic_layout(a.shape[1], a.shape[2]).name, where)
            s = Sequence(person="_", walk=str(i), frames=a, layout=layout, source="array")
            if too_short(s, d.length, d.clip):
                raise DataError(where, f"{s.num_frames} frames: fewer than one window of {d.length} frames "
                                       f"after dropping {d.clip} at each end")
            seqs.append(s)
        return seqs, single

    def embed(self, frames, progress: bool = True) -> np.ndarray:
        """One walk ``[T, J, D]`` -> its feature ``[F]``; a list of walks -> ``[N, F]``."""
        seqs, single = self._array_walks(frames)
        if not seqs:
            return np.zeros((0, self.feature_dim), np.float32)
        e = self.embed_sequences(seqs, progress=progress, where="walks")
        return e.features[0] if single else e.features

    def embed_windows(self, frames, return_walk_index: bool = False, progress: bool = True):
        """Window features: one walk -> ``[n, F]``; a list -> ``[sum n, F]`` (walk by walk, in order);
        with ``return_walk_index`` also the walk index of each row."""
        seqs, _ = self._array_walks(frames)
        if not seqs:
            empty = np.zeros((0, self.feature_dim), np.float32)
            return (empty, np.zeros(0, np.int64)) if return_walk_index else empty
        e = self.embed_sequences(seqs, windows=True, progress=progress, where="walks")
        index = np.array([int(w.split("/", 1)[1]) for w in e.walk.tolist()], dtype=np.int64)
        return (e.features, index) if return_walk_index else e.features

    # ------------------------------------------------------------------ galleries
    def check_gallery(self, gallery: Gallery, path: str | Path = "the gallery") -> None:
        gallery.check_model(self.fingerprint, path, self.run_dir)

    def new_gallery(self, e: Embeddings, labels=None) -> Gallery:
        return Gallery(e.features, e.person if labels is None else labels, e.walk, e.source, self.fingerprint,
                       self.info)

    def enrol(self, walks, labels, gallery: Gallery | None = None, walk_ids=None, sources=None) -> Gallery:
        """A gallery of ``walks`` (list of ``[T, J, D]``) labelled ``labels``; with ``gallery``, that
        gallery extended (walks already in it, same walk id and source, are skipped). A walk's id
        defaults to a digest of its frames, its source to ``"array"``."""
        walks = [walks] if isinstance(walks, np.ndarray) and walks.ndim == 3 else list(walks)
        labels = [labels] if isinstance(labels, str) else list(labels)
        if len(labels) != len(walks):
            raise ConfigError(f"enrol: {len(walks)} walks but {len(labels)} labels")
        feats = self.embed(walks) if walks else np.zeros((0, self.feature_dim), np.float32)
        ids = list(walk_ids) if walk_ids is not None else [walk_digest(np.asarray(w)) for w in walks]
        srcs = list(sources) if sources is not None else ["array"] * len(walks)
        if gallery is None:
            if not walks:
                raise ConfigError("enrol: no walks")
            return Gallery(feats, labels, ids, srcs, self.fingerprint, self.info)
        self.check_gallery(gallery)
        return gallery.extend(feats, labels, ids, srcs)[0]

    def identify(self, walks, gallery: Gallery, top_k: int = 5, threshold: float | None = None
                 ) -> list[Identification]:
        """For each walk the ``top_k`` nearest identities and the decision (``"unknown"`` when the
        nearest is farther than ``threshold``; default: the gallery's calibrated threshold, if any)."""
        self.check_gallery(gallery)
        walks = [walks] if isinstance(walks, np.ndarray) and walks.ndim == 3 else list(walks)
        feats = self.embed(walks) if walks else np.zeros((0, self.feature_dim), np.float32)
        return identify_features(feats, gallery, top_k, gallery.threshold if threshold is None else threshold)

    def calibrate(self, walks, labels, far: float) -> dict:
        """The distance threshold at false-accept rate ``far`` on the labelled ``walks``
        (see :func:`skelreid.gallery.calibrate_threshold`); store it with ``gallery.calibrated(info)``."""
        walks = [walks] if isinstance(walks, np.ndarray) and walks.ndim == 3 else list(walks)
        return calibrate_threshold(self.embed(walks), [str(v) for v in labels], far)


def identify_features(features: np.ndarray, gallery: Gallery, top_k: int | None = 5,
                      threshold: float | None = None, walks=None, sources=None, persons=None
                      ) -> list[Identification]:
    """Rank the gallery's identities for each probe feature row (see :func:`skelreid.gallery.rank_identities`).

    With ``walks`` and ``sources``, a probe that is itself enrolled (same walk id and source) is not
    matched against its own gallery walk. ``persons`` (the probes' labels) fill ``person`` and
    ``enrolled`` for :func:`top1_accuracy`.
    """
    from .evaluation.retrieval import pairwise_euclidean

    if top_k is not None and int(top_k) < 1:
        raise ConfigError(f"--top-k {top_k}: must be at least 1")
    features = np.asarray(features)
    if features.ndim != 2 or (len(gallery) and features.shape[1] != gallery.embeddings.shape[1]):
        raise ConfigError(f"probe features {list(features.shape)} do not fit the gallery's "
                          f"{list(gallery.embeddings.shape)}")
    if not len(features):
        return []
    dist = pairwise_euclidean(features, gallery.embeddings)
    out = []
    for i in range(len(features)):
        keep = None
        if walks is not None:
            keep = ~((gallery.walks == str(walks[i])) & (gallery.sources == str(sources[i])))
        ranks = rank_identities(dist[i], gallery.labels, top_k, keep)
        person = None if persons is None else str(persons[i])
        enrolled = None
        if person is not None:
            enrolled = bool(np.any((gallery.labels == person) & (True if keep is None else keep)))
        out.append(Identification(decide(ranks, threshold), ranks, threshold,
                                  None if walks is None else str(walks[i]),
                                  None if sources is None else str(sources[i]), person, enrolled))
    return out


def top1_accuracy(results: list[Identification]) -> tuple[float | None, int]:
    """Rank-1 over the probes whose person is enrolled (its own walk left out), as the probe/gallery
    evaluation counts it (probes without a match are skipped): ``(accuracy, probes counted)``. The
    nearest identity counts, whatever the threshold."""
    hits = [r.ranks[0][0] == r.person for r in results if r.enrolled and r.ranks]
    if not hits:
        return None, 0
    return float(np.mean(np.asarray(hits))), len(hits)


def load(run_dir: str | Path, device: str = "cpu") -> GaitModel:
    """The trained model of a run folder (its encoders and its saved configuration) on ``device``
    (``cpu``, ``cuda``, ``cuda:N``)."""
    from .config import from_dict
    from .device import resolve_device
    from .io import read_json
    from .encoders import load_encoders
    from .training.checkpoint import read_checkpoint_meta

    run_dir = Path(run_dir)
    if not (run_dir / "config.json").exists():
        raise ConfigError(f"{run_dir}: not a skelreid run folder (no config.json)")
    cfg = from_dict(read_json(run_dir / "config.json"))
    if cfg.data.view == "all":
        views = sorted(p.parent.name for p in run_dir.glob("view_*/config.json"))
        raise ConfigError(f"{run_dir} holds one run per view; give one of them"
                          f"{': ' + ', '.join(str(run_dir / v) for v in views) if views else ''}")
    dev = resolve_device(device)
    if dev.type == "cpu":  # as the pipeline's evaluation does (apply_cpu_settings)
        from .determinism import flush_denormals

        flush_denormals()
    models = load_encoders(cfg, run_dir, dev)
    metas = {tag: read_checkpoint_meta(run_dir / "encoders" / tag) for tag in models}
    return GaitModel(run_dir, cfg, models, metas, dev)


# ---------------------------------------------------------------------- reading walks (command line)
def resolve_dataset(name: str) -> str:
    """A dataset reader name (``KGBD``, ``generic``, ...); a preset name gives its preset's dataset."""
    from .config import load_preset
    from .data.datasets import DATASETS

    if name in DATASETS:
        return name
    try:
        preset = load_preset(name)
    except ConfigError:
        raise ConfigError(f"--dataset {name}: unknown dataset; valid: {', '.join(DATASETS.names())}") from None
    return str((preset.get("data") or {}).get("dataset", name))


def keep_split(run_dir: str | Path, sequences: list, split: str, where: str = "the data") -> list:
    """The walks listed under the split(s) ``split`` (``"gallery"``, or ``"gallery,probe"``) of
    ``run_dir/split.json``."""
    from .io import read_json

    path = Path(run_dir) / "split.json"
    if not path.exists():
        raise ConfigError(f"--split {split}: {run_dir} has no split.json")
    splits = read_json(path).get("splits") or {}
    wanted = [n.strip() for n in str(split).split(",") if n.strip()]
    unknown = [n for n in wanted if n not in splits]
    if unknown or not wanted:
        raise ConfigError(f"--split {split}: {path} has no split {', '.join(unknown) or repr(split)}; "
                          f"its splits are {', '.join(splits) or 'none'}")
    ids = {w for n in wanted for w in splits[n]}
    kept = [s for s in sequences if s.walk_id in ids]
    if not kept:
        raise ConfigError(f"--split {split}: none of the {len(ids)} walks of that split is in {where}")
    return kept


def read_walks(model: GaitModel, root: str | Path | None = None, dataset: str | None = None,
               split: str | None = None, progress: bool = True) -> tuple[list, str]:
    """The walks of ``root`` read with the reader of ``dataset`` (default: the run's own dataset; the
    embedded ``synthetic`` one with the run's settings needs no root), checked against the model,
    kept to ``split`` of the run, walks too short for one window left out (one warning line).
    Returns ``(sequences, where)``, ``where`` naming the data in messages."""
    import copy

    from .data.datasets import load_sequences
    from .data.filtering import exclude_unusable
    from .console import warn

    d = copy.deepcopy(model.cfg.data)
    if dataset:
        d.dataset = resolve_dataset(dataset)
    d.root = None if root is None else str(root)
    where = str(root) if root is not None else f"--dataset {d.dataset}"
    seqs = load_sequences(d, persons=None, progress=progress)
    if not seqs:
        raise DataError(where, "no walks found")
    seqs = model.adopt(seqs, where)
    if split:
        seqs = keep_split(model.run_dir, seqs, split, where)
    seqs, ex = exclude_unusable(seqs, d.length, d.clip, "skip", needed=1)
    if ex:
        warn(ex.warning(d.length, d.clip))
    if not seqs:
        raise DataError(where, f"no walk is long enough for one window of {d.length} frames after dropping "
                               f"{d.clip} at each end")
    return seqs, where


# ---------------------------------------------------------------------- output files
def _parquet():
    try:
        import pyarrow
        import pyarrow.parquet as pq
    except ImportError:
        raise ConfigError("writing .parquet needs pyarrow: pip install pyarrow, or write .npz instead") from None
    return pyarrow, pq


def check_output(path: str | Path) -> None:
    """Fail before any work when ``path`` cannot be written in its format."""
    if Path(path).suffix.lower() == ".parquet":
        _parquet()


def write_embeddings(path: str | Path, e: Embeddings, model: GaitModel) -> Path:
    """``.npz`` (numpy; strings as unicode arrays, the metadata as a JSON 0-d string ``meta``) or,
    for a ``.parquet`` name, Parquet (one row per embedding, the vector in ``embedding``)."""
    import json

    from .io import atomic_write, save_npz

    path = Path(path)
    meta = json.dumps({"format": "skelreid-embeddings/1", "level": e.level, "fingerprint": model.fingerprint,
                       "model": model.info, "rows": len(e), "dim": int(e.features.shape[1])}, sort_keys=True)
    if path.suffix.lower() == ".parquet":
        pa, pq = _parquet()
        cols = {k: pa.array(v.tolist(), type=pa.int64() if k == "window" else pa.string())
                for k, v in e.columns().items()}
        flat = pa.array(np.ascontiguousarray(e.features, dtype=np.float32).reshape(-1), type=pa.float32())
        cols["embedding"] = pa.FixedSizeListArray.from_arrays(flat, int(e.features.shape[1]))
        table = pa.table(cols).replace_schema_metadata({"skelreid": meta})
        with atomic_write(path, "wb") as fh:
            pq.write_table(table, fh)
        return path
    save_npz(path, embeddings=np.ascontiguousarray(e.features, dtype=np.float32), **e.columns(),
             meta=np.array(meta, dtype=str))
    return path


def write_ranks_csv(path: str | Path, results: list[Identification]) -> Path:
    """One row per probe and ranked identity: probe, source, person, decision, rank, identity,
    distance (shortest exact decimal), threshold."""
    import csv
    import io

    from .io import write_text

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["probe", "source", "person", "decision", "rank", "identity", "distance", "threshold"])
    for r in results:
        common = [r.walk or "", r.source or "", r.person or "", r.identity]
        thr = "" if r.threshold is None else repr(float(r.threshold))
        if not r.ranks:
            w.writerow([*common, "", "", "", thr])
        for k, (name, d) in enumerate(r.ranks, 1):
            w.writerow([*common, k, name, repr(float(d)), thr])
    write_text(path, buf.getvalue())
    return Path(path)
