"""Report rows of the probe/gallery units: results.md, the terminal summary, the milestone
table, the CMC plot, and the optimistic ``--select-on-test`` row.

Every probe/gallery report shows both units in separate, labelled rows: "per subsequence (the
literature's protocol)" and "per walk (mean of windows)", each with its probe and gallery counts and
the number of probes without a correct match (counted as misses).
"""
from __future__ import annotations


UNIT_ORDER = ("sequence", "walk")
OPTIMISTIC = ("selected on TEST: the encoder milestone with the best probe Rank-1, as the successors' code "
              "chooses its epoch (optimistic)")

NOTE = ("Per subsequence (the literature's protocol, SPC-MGR/TranSG/MoCos code): walks lose the clip frames at "
        "each end and are cut into non-overlapping f-frame windows (remainder dropped); every probe window is "
        "ranked against every gallery window by Euclidean distance; Rank-k counts every probe window, one "
        "without a correct match is a miss; AP per query is scikit-learn's `average_precision_score` over the "
        "whole gallery (queries without a positive are left out of the mean, as in TranSG's `mean_ap`). "
        "Per walk: the same rules on the mean of each walk's window features; it answers a practical question "
        "(which enrolled person is this walk?) but is not the published task, and averaging all of a walk's "
        "windows (about 100 on KGBD) removes most per-window noise, so it is much higher.")


def _pct(v) -> str:
    return "–" if v is None else f"{100.0 * float(v):.1f}"


def units_of(pairs: dict) -> bool:
    return any("units" in m for m in pairs.values())


def markdown(pairs: dict) -> list[str]:
    """The units table of results.md (empty when the run has no unit figures)."""
    if not units_of(pairs):
        return []
    lines = ["", "### Probe/gallery by scoring unit", "",
             "| pair (probe → gallery) | unit | window feature | probes | gallery | Rank-1 | Rank-5 | Rank-10 | mAP "
             "| probes without a match (misses) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for k, m in pairs.items():
        what = f"{k} ({m['probe']} → {m['gallery']})" if "probe" in m else k
        for u in UNIT_ORDER:
            x = m.get("units", {}).get(u)
            if x is None:
                continue
            lines.append(f"| {what} | {x['label']} | `{x['feature']}` | {x['num_probes']} | {x['num_gallery']} | "
                         f"{_pct(x['rank1'])} | {_pct(x['rank5'])} | {_pct(x['rank10'])} | {_pct(x['mAP'])} | "
                         f"{x['num_without_match']} |")
    return lines + ["", NOTE]


def summary(pairs: dict) -> list[str]:
    rows = []
    for k, m in pairs.items():
        for u in UNIT_ORDER:
            x = m.get("units", {}).get(u)
            if x is not None:
                rows.append(f"{k + ' ' + u:<22} {_pct(x['rank1']):>7} {_pct(x['rank5']):>7} {_pct(x['rank10']):>7} "
                            f"{_pct(x['mAP']):>6} {x['num_probes']:>7} (vs {x['num_gallery']}, "
                            f"{x['num_without_match']} without a match; {x['label']})")
    return rows


def cmc_curves(pairs: dict) -> dict:
    """CMC curves of the units, labelled, for ``plots.plot_cmc``."""
    many = len(pairs) > 1
    return {f"{k + ': ' if many else ''}{x['label']}": x["cmc"]
            for k, m in pairs.items() for u in UNIT_ORDER if (x := m.get("units", {}).get(u)) is not None}


def milestone_lines(rows: list[dict]) -> list[str]:
    """The milestone table's unit rows: one column per (pair, unit)."""
    cols = [(p, u) for p, m in (rows[-1].get("pairs", {}) if rows else {}).items()
            for u in UNIT_ORDER if u in m.get("units", {})]
    if not cols:
        return []
    head = ["encoder epoch"] + [f"{p} {m_label(u)} Rank-1 / mAP" for p, u in cols]
    lines = ["", "By scoring unit:", "", "| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for r in rows:
        cells = [str(r["epoch"])]
        for p, u in cols:
            x = r.get("pairs", {}).get(p, {}).get("units", {}).get(u)
            cells.append("–" if x is None else f"{_pct(x['rank1'])} / {_pct(x['mAP'])}")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def m_label(unit: str) -> str:
    return {"sequence": "per subsequence", "walk": "per walk"}[unit]


def milestone_curves(rows: list[dict]) -> dict:
    lines = {}
    for pair, m in (rows[-1].get("pairs", {}) if rows else {}).items():
        for u in UNIT_ORDER:
            if u not in m.get("units", {}):
                continue
            for key, label in (("rank1", "Rank-1"), ("mAP", "mAP")):
                pts = [(r["epoch"], r["pairs"][pair]["units"][u][key]) for r in rows
                       if u in r.get("pairs", {}).get(pair, {}).get("units", {})]
                lines[f"{pair} {m_label(u)} {label}"] = ([e for e, _ in pts], [v for _, v in pts])
    return lines


def select_on_test(rows: list[dict]) -> dict:
    """Per pair and unit, the milestone row with the best probe Rank-1 (the first on ties, as the
    successors' strict ``top_1 > best``): ``{pair: {unit: {**figures, "epoch": E}}}``."""
    out: dict = {}
    for r in rows:
        for pair, m in r.get("pairs", {}).items():
            for u, x in m.get("units", {}).items():
                best = out.setdefault(pair, {}).get(u)
                if best is None or x["rank1"] > best["rank1"]:
                    out[pair][u] = {k: v for k, v in x.items() if k != "cmc"} | {"epoch": int(r["epoch"])}
    return out


def optimistic_markdown(chosen: dict, epochs: list[int]) -> list[str]:
    lines = ["", f"### Optimistic: {OPTIMISTIC}", "",
             f"Milestones compared: {', '.join(map(str, epochs))}. These figures chose the encoder epoch on the "
             "probe set itself; they are comparable with the successors' published rows (which do the same), "
             "not with an honestly selected model.", "",
             "| pair | unit | chosen epoch | Rank-1 | Rank-5 | Rank-10 | mAP |", "|---|---|---|---|---|---|---|"]
    for pair, units in chosen.items():
        for u in UNIT_ORDER:
            if u in units:
                x = units[u]
                lines.append(f"| {pair} | {x['label']} (optimistic) | {x['epoch']} | {_pct(x['rank1'])} | "
                             f"{_pct(x['rank5'])} | {_pct(x['rank10'])} | {_pct(x['mAP'])} |")
    return lines
