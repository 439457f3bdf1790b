"""Report figures: CMC curves, confusion matrices, attention maps, embeddings, losses.

Every function draws one figure and writes one PNG atomically (temporary file
in the destination folder, then rename; see :func:`skelreid.io.atomic_write`).

Figures are built with ``matplotlib.figure.Figure`` on an explicit Agg canvas,
never through ``pyplot``: rendering works without a display, the process-wide
backend is left as it is (importing this module does not change it for a
notebook or another library), and no figure is kept in a global registry, so
nothing stays open after a call.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..io import atomic_write

__all__ = [
    "plot_cmc",
    "plot_confusion",
    "plot_attention",
    "plot_embedding",
    "plot_loss_curves",
    "plot_groups",
    "plot_by_epoch",
    "pca_2d",
]

_DPI = 110


def _new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=_DPI)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    try:
        with atomic_write(path, "wb") as fh:
            fig.savefig(fh, format="png")
    finally:
        fig.clear()
    return path


def plot_cmc(curves: Mapping[str, Sequence[float]], path: str | Path, title: str = "") -> Path:
    """Several CMC curves on one plot; x = rank, y = accuracy in %.

    ``curves`` maps a name (e.g. "test-selected", "val-selected") to a CMC
    given as fractions in [0, 1], ``curve[k-1]`` being the Rank-k accuracy.
    """
    if not curves:
        raise ValueError("no CMC curve to plot")
    arrays = {}
    for name, curve in curves.items():
        c = np.asarray(curve, dtype=np.float64).reshape(-1)
        if c.size == 0:
            raise ValueError(f"CMC curve {name!r} is empty")
        if np.nanmax(c) > 1.0 + 1e-9 or np.nanmin(c) < -1e-9:
            raise ValueError(f"CMC curve {name!r} must hold fractions in [0, 1]")
        arrays[str(name)] = c
    fig = _new_figure(6.4, 4.6)
    ax = fig.add_subplot()
    longest = max(len(c) for c in arrays.values())
    for name, c in arrays.items():
        ranks = np.arange(1, len(c) + 1)
        marker = "o" if len(c) <= 30 else None
        ax.plot(ranks, 100.0 * c, marker=marker, markersize=3, linewidth=1.5,
                label=f"{name} (Rank-1 {100.0 * c[0]:.1f}%)")
    ax.set_xlim(1, max(longest, 2))
    ax.set_ylim(0, 101)
    ax.set_xlabel("rank")
    ax.set_ylabel("accuracy (%)")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return _save(fig, path)


def plot_confusion(matrix, path: str | Path, class_names: Sequence[str] | None = None,
                   title: str = "") -> Path:
    """Confusion-matrix heatmap (rows = true class, columns = predicted) with a colorbar.

    Tick labels (``class_names`` or indices) are drawn only when C <= 30, so
    164-class matrices stay readable as a picture.
    """
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] == 0:
        raise ValueError(f"matrix must be square [C, C], got shape {m.shape}")
    c = m.shape[0]
    if class_names is not None and len(class_names) != c:
        raise ValueError(f"{len(class_names)} class names for {c} classes")
    size = 6.0 if c <= 30 else 8.0
    fig = _new_figure(size + 1.2, size)
    ax = fig.add_subplot()
    im = ax.imshow(m, cmap="viridis", interpolation="nearest", aspect="equal")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="count")
    if c <= 30:
        names = [str(n) for n in class_names] if class_names is not None else [str(i) for i in range(c)]
        ax.set_xticks(range(c), names, rotation=90, fontsize="small")
        ax.set_yticks(range(c), names, fontsize="small")
    else:
        ax.set_xticks([])
        ax.set_yticks([])
    ax.set_xlabel(f"predicted class ({c})")
    ax.set_ylabel(f"true class ({c})")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return _save(fig, path)


def _heatmap_panel(fig: Figure, ax, a: np.ndarray, name: str, vmax: float) -> None:
    f_dec, f_enc = a.shape
    im = ax.imshow(a, cmap="magma", vmin=0.0, vmax=vmax, interpolation="nearest", aspect="equal")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    ax.set_title(name)
    ax.set_xlabel("encoder position")
    ax.set_ylabel("decoder step")
    if max(f_dec, f_enc) <= 10:
        ax.set_xticks(range(f_enc))
        ax.set_yticks(range(f_dec))
        for t in range(f_dec):
            for s in range(f_enc):
                v = a[t, s]
                # inside the axes: left out of tight_layout's measuring (drawn once, at save time)
                ax.text(s, t, f"{v:.2f}", ha="center", va="center", fontsize=7,
                        color="black" if v > 0.6 * vmax else "white", in_layout=False)


def plot_attention(attention, objective, path: str | Path, title: str = "") -> Path:
    """Learned attention matrices next to the locality-aware objective O.

    ``attention`` is a dict axis name -> mean attention matrix ``[f, f]`` (e.g.
    ``{"x": A_x, "y": A_y, "z": A_z}``) or a single ``[f, f]`` array;
    ``objective`` is O ``[f, f]``. Rows are decoder steps, columns encoder
    positions. One panel per axis plus one for O; cell values are written on
    the panels when f <= 10. Attention panels share one colour scale.
    """
    if not isinstance(attention, Mapping):
        attention = {"attention": attention}
    if not attention:
        raise ValueError("no attention matrix to plot")
    mats = {}
    for name, a in attention.items():
        a = np.asarray(a, dtype=np.float64)
        if a.ndim != 2:
            raise ValueError(f"attention {name!r} must be 2-D [f, f], got shape {a.shape}")
        mats[str(name)] = a
    obj = np.asarray(objective, dtype=np.float64)
    if obj.ndim != 2:
        raise ValueError(f"objective must be 2-D [f, f], got shape {obj.shape}")
    n = len(mats) + 1
    fig = _new_figure(3.6 * n, 3.8)
    axes = fig.subplots(1, n, squeeze=False)[0]
    att_max = max(float(np.nanmax(a)) for a in mats.values()) if mats else 1.0
    att_max = att_max if att_max > 0 else 1.0
    for ax, (name, a) in zip(axes, mats.items()):
        _heatmap_panel(fig, ax, a, f"attention {name}", att_max)
    obj_max = float(np.nanmax(obj)) if obj.size else 1.0
    _heatmap_panel(fig, axes[-1], obj, "objective O", obj_max if obj_max > 0 else 1.0)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


def pca_2d(features) -> np.ndarray:
    """Deterministic 2-D PCA projection ``[N, 2]`` (numpy SVD, fixed signs)."""
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"features must be 2-D [N, D], got shape {x.shape}")
    x = x - x.mean(axis=0, keepdims=True)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    comps = vt[:2]
    # Sign convention: the largest-magnitude loading of each component is positive.
    signs = np.sign(comps[np.arange(len(comps)), np.argmax(np.abs(comps), axis=1)])
    signs[signs == 0] = 1.0
    proj = x @ (comps * signs[:, None]).T
    if proj.shape[1] < 2:  # one feature, or a single point
        proj = np.column_stack([proj, np.zeros((len(x), 2 - proj.shape[1]))])
    return proj


def plot_embedding(features, labels, path: str | Path, max_points: int = 3000, seed: int = 0,
                   title: str = "", method: str = "pca") -> Path:
    """2-D projection of features ``[N, D]`` coloured by person ``labels [N]``.

    At most ``max_points`` points are drawn (a seeded random subset).
    ``method="pca"`` (default, deterministic) or ``"tsne"`` (sklearn t-SNE,
    seeded; slower). Colours cycle through a 20-colour categorical map; a
    legend is drawn only for <= 20 persons.
    """
    x = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels)
    if x.ndim != 2 or len(x) == 0:
        raise ValueError(f"features must be a non-empty [N, D] array, got shape {x.shape}")
    if labels.shape != (len(x),):
        raise ValueError(f"labels must have shape ({len(x)},), got {labels.shape}")
    if len(x) > max_points:
        keep = np.sort(np.random.default_rng(seed).choice(len(x), size=max_points, replace=False))
        x, labels = x[keep], labels[keep]
    if method == "pca":
        xy = pca_2d(x)
    elif method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = float(min(30.0, max(1.0, (len(x) - 1) / 3.0)))
        xy = TSNE(n_components=2, init="pca", random_state=seed, perplexity=perplexity).fit_transform(x)
    else:
        raise ValueError(f"method must be 'pca' or 'tsne', got {method!r}")
    persons, inverse = np.unique(labels, return_inverse=True)
    inverse = inverse.reshape(-1)
    cmap = colormaps["tab20"]
    colors = cmap(inverse % cmap.N)
    fig = _new_figure(6.8, 5.6)
    ax = fig.add_subplot()
    if len(persons) <= 20:
        for k, person in enumerate(persons):
            sel = inverse == k
            ax.scatter(xy[sel, 0], xy[sel, 1], s=10, color=colors[sel][0], label=str(person),
                       alpha=0.8, linewidths=0)
        ax.legend(fontsize="x-small", markerscale=1.5, loc="best", ncol=2)
    else:
        ax.scatter(xy[:, 0], xy[:, 1], s=6, c=colors, alpha=0.8, linewidths=0)
    ax.set_xlabel("component 1")
    ax.set_ylabel("component 2")
    ax.set_title(title or f"{method.upper()} of {len(x)} features, {len(persons)} persons")
    fig.tight_layout()
    return _save(fig, path)


def plot_loss_curves(table: Mapping[str, Sequence[float]], path: str | Path, title: str = "") -> Path:
    """One line per loss term over epochs (x = epoch, starting at 1).

    The y axis is logarithmic when every finite value is positive. NaN values
    leave gaps.
    """
    if not table:
        raise ValueError("no loss curve to plot")
    series = {str(k): np.asarray(v, dtype=np.float64).reshape(-1) for k, v in table.items()}
    finite = np.concatenate([v[np.isfinite(v)] for v in series.values()])
    fig = _new_figure(6.4, 4.6)
    ax = fig.add_subplot()
    for name, v in series.items():
        epochs = np.arange(1, len(v) + 1)
        ax.plot(epochs, v, marker="o" if len(v) <= 30 else None, markersize=3, linewidth=1.5,
                label=name)
    if finite.size and np.all(finite > 0):
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.grid(True, alpha=0.3, which="both")
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return _save(fig, path)


def plot_groups(values: Mapping[str, float], path: str | Path, reference: Sequence[float] | None = None,
                title: str = "", ylabel: str = "Rank-1 (%)", reference_label: str = "paper") -> Path:
    """One bar per group (views, probe/gallery pairs), in %, with an optional
    published figure per group drawn as a marker beside each bar."""
    if not values:
        raise ValueError("no value to plot")
    names = list(values)
    y = np.array([100.0 * float(values[n]) for n in names])
    fig = _new_figure(max(4.5, 0.6 * len(names) + 2.0), 3.6)
    ax = fig.add_subplot(1, 1, 1)
    x = np.arange(len(names))
    ax.bar(x, y, width=0.6, color="#4C72B0", label="skelreid")
    if reference is not None:
        ref = np.array([np.nan if r is None else float(r) for r in reference], dtype=float)
        ax.plot(x[: len(ref)], ref[: len(x)], "D", color="#DD8452", label=reference_label)
        ax.legend(loc="lower right", fontsize=8)
    for xi, yi in zip(x, y):
        ax.text(xi, yi + 1, f"{yi:.1f}", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(x)
    ax.set_xticklabels(names, rotation=45 if len(names) > 6 else 0, ha="right" if len(names) > 6 else "center",
                       fontsize=8)
    ax.set_ylim(0, 105)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def plot_by_epoch(lines: Mapping[str, tuple[Sequence[float], Sequence[float]]], path: str | Path,
                  references: Mapping[str, float] | None = None, dashed: Mapping[str, tuple] | None = None,
                  title: str = "", ylabel: str = "Rank-1 (%)") -> Path:
    """Metrics against encoder epoch: ``lines`` maps a name to ``(epochs, fractions)``, drawn with
    markers; ``dashed`` the same, drawn thin (a per-epoch monitor); ``references`` maps a label
    to a published figure in %, drawn as a horizontal line."""
    if not lines and not dashed:
        raise ValueError("no curve to plot")
    fig = _new_figure(6.8, 4.6)
    ax = fig.add_subplot()
    for name, (x, y) in lines.items():
        ax.plot(np.asarray(x, float), 100.0 * np.asarray(y, float), marker="o", markersize=4, linewidth=1.6,
                label=name)
    for name, (x, y) in (dashed or {}).items():
        ax.plot(np.asarray(x, float), 100.0 * np.asarray(y, float), linestyle="--", linewidth=1.0, alpha=0.8,
                label=name)
    colours = ("#C44E52", "#8172B2", "#937860", "#DA8BC3")
    for i, (name, value) in enumerate((references or {}).items()):
        ax.axhline(float(value), color=colours[i % len(colours)], linestyle=":", linewidth=1.4,
                   label=f"{name} ({float(value):.1f})")
    ax.set_xlabel("encoder epoch")
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 101)
    ax.set_xlim(left=0)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small", loc="lower right")
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)
