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
