"""Published figures to print beside ours (Rank-1 / nAUC in %, f = 6).

Legacy protocol figures are from the reference README tables (spec §6.6);
probe/gallery figures from the later re-evaluation (field notes §2.2).
"""
from __future__ import annotations

LEGACY = {
    # dataset -> model -> (Rank-1, nAUC)
    "KGBD": {"age": (87.7, 96.3), "rev_rec": (86.9, 97.1), "rev_rec_plus": (90.6, 98.1)},
    "BIWI": {"age": (59.1, 86.5), "rev_rec": (62.9, 86.8), "rev_rec_plus": (63.3, 88.3)},
    "IAS-A": {"age": (56.1, 81.7), "rev_rec": (60.1, 82.9), "rev_rec_plus": (59.1, 81.5)},
    "IAS-B": {"age": (58.2, 85.3), "rev_rec": (62.5, 86.9), "rev_rec_plus": (62.2, 86.2)},
    "KS20": {"age": (86.9, 94.9), "rev_rec": (86.9, 94.9), "rev_rec_plus": (92.0, 94.9)},
}

PROBE_GALLERY = {
    # dataset -> method -> (Rank-1, mAP)
    "KGBD": {"age": (2.9, 0.9), "cage": (38.1, 4.5)},
    "KS20": {"age": (43.2, 8.9), "cage": (45.0, 21.2)},
    "IAS-A": {"age": (31.1, 13.4), "cage": (16.7, 13.2)},
    "IAS-B": {"age": (31.1, 12.8), "cage": (22.2, 14.0)},
}


def paper_key(method: str, model: str) -> str:
    return "age" if method == "age" else model


def legacy_figures(dataset: str, method: str, model: str) -> tuple[float, float] | None:
    return LEGACY.get(dataset.upper() if dataset.upper() in LEGACY else dataset, {}).get(paper_key(method, model))


def probe_gallery_figures(dataset: str, method: str) -> tuple[float, float] | None:
    return PROBE_GALLERY.get(dataset.upper(), {}).get(method)

#: Probe/gallery pairs whose published name differs from the probe split's name.
PROBE_GALLERY.update({
    "BIWI-S": {"age": (25.1, 8.9), "cage": (25.8, 15.1)},
    "BIWI-W": {"age": (11.7, 12.6), "cage": (11.7, 19.0)},
})

#: Cross-view Rank-1 (%) per view of the CAGE paper (field notes §2.1).
VIEWS = {
    "CASIA_B": {"labels": [f"{18 * v}°" for v in range(11)],
                "cage": [35.5, 78.5, 79.5, 58.0, 66.1, 76.0, 64.4, 66.9, 68.4, 49.9, 46.3]},
    "KS20": {"labels": ["0°", "30°", "90°", "130°", "180°"],
             "rev_rec": [44.4, 54.9, 55.0, 41.9, 53.4], "rev_rec_plus": [48.8, 53.6, 54.9, 44.5, 57.5]},
}

#: CASIA-B condition-based matching, Rank-1 (%) of the CAGE paper (f = 50).
CME = {"nm.nm": 54.3, "bg.bg": 37.5, "cl.cl": 31.9, "cl.nm": 27.0, "bg.nm": 36.3}


def legacy_key(dataset: str, test: str) -> str:
    """The published table column of a legacy test split (BIWI's is its Walking set)."""
    if test in LEGACY:
        return test
    if dataset.upper() == "BIWI" and test in ("Walking", "test"):
        return "BIWI"
    return dataset


def view_labels(dataset: str) -> list[str] | None:
    """The names of ``dataset``'s views by index (``"90°"`` for CASIA-B view 5), or ``None``."""
    entry = VIEWS.get(dataset.upper())
    return list(entry["labels"]) if entry else None


def view_figures(dataset: str, method: str, model: str) -> tuple[list[str], list[float]] | None:
    """Per-view labels and figures, for ``dataset``'s cross-view table."""
    entry = VIEWS.get(dataset.upper())
    if not entry or method == "age":
        return None
    values = entry.get(model) or entry.get("cage")
    return (entry["labels"], values) if values else None
