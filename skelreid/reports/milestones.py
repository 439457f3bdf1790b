"""How accuracy grows with encoder training: ``results_by_epoch.{md,csv,json}`` and
``plots/accuracy_by_epoch.png``, rewritten after every milestone.

Rows: one per milestone whose evaluation finished (``milestones/epoch_<E>/metrics.json``), then
the run's final epoch from ``results.json`` once the run has finished; both carry the same keys
as ``results.json`` (``metrics``, and ``test_sets`` or ``pairs``), so the last row *is* the final
result. The monitor (``monitor_rank1`` in the encoders' loss CSVs) is added per epoch.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

from ..config import RunConfig
from ..errors import SkelreidError
from ..io import read_json, write_json, write_text
from . import paper, pg_units
from .results import RULE_LABEL, RULE_SHORT, _pct, experiment_name

METRIC_KEYS = ("metrics", "test_sets", "pairs", "selection", "primary_test", "primary_pair")


ORDER = ("val", "last", "test", "paper-like")


def _rules(row: dict, primary: str) -> list[str]:
    """A row's selection rules: the run's primary rule first, then the others in a fixed order."""
    have = list(row["test_sets"][primary])
    first = [row["selection"]] if row.get("selection") in have else []
    return first + sorted((r for r in have if r not in first), key=lambda r: (ORDER + (r,)).index(r))


def milestone_rows(run_dir: Path, cfg: RunConfig) -> list[dict]:
    """Every finished milestone row, in epoch order (the final one only once the run has finished)."""
    rows = []
    for epoch in cfg.milestones[:-1]:
        path = run_dir / "milestones" / f"epoch_{epoch}" / "metrics.json"
        if path.exists():
            try:
                rows.append(read_json(path))
            except SkelreidError:
                continue
    final = run_dir / "results.json"
    if cfg.milestones and final.exists():
        try:
            res = read_json(final)
        except SkelreidError:
            res = None
        if res is not None and "metrics" in res:
            rows.append({"epoch": int(cfg.encoder.epochs), "protocol": res["protocol"],
                         **{k: res[k] for k in METRIC_KEYS if k in res}})
    return rows


def monitor_curves(run_dir: Path) -> dict[str, dict[str, list]]:
    """Per encoder set: ``{"epoch": [...], "rank1": [...], "seconds": [...]}`` from the longest loss CSV."""
    best: dict[str, list[dict]] = {}
    files = sorted((run_dir / "encoders").glob("*_losses.csv")) + \
        sorted((run_dir / "encoders").glob("epoch_*/*_losses.csv"))
    for path in files:
        tag = path.name[: -len("_losses.csv")]
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        if len(rows) > len(best.get(tag, [])):
            best[tag] = rows
    out = {}
    for tag, rows in best.items():
        picked = [r for r in rows if r.get("monitor_rank1") not in (None, "")]
        if picked:
            out[tag] = {"epoch": [int(r["epoch"]) for r in picked],
                        "rank1": [float(r["monitor_rank1"]) for r in picked],
                        "seconds": [float(r.get("monitor_seconds") or "nan") for r in picked],
                        "epoch_seconds": [float(r["seconds"]) for r in picked]}
    return out


def write_milestone_reports(run_dir: Path, cfg: RunConfig) -> dict:
    from . import plots

    run_dir = Path(run_dir)
    rows = milestone_rows(run_dir, cfg)
    monitor = monitor_curves(run_dir)
    protocol = cfg.data.protocol if not rows else rows[0]["protocol"]
    doc = {"experiment": experiment_name(cfg), "protocol": protocol, "milestones": list(cfg.milestones),
           "encoder_epochs": cfg.encoder.epochs, "rows": rows, "monitor": monitor,
           "monitor_windows": getattr(cfg, "monitor_windows", None)}
    write_json(run_dir / "results_by_epoch.json", doc)
    write_text(run_dir / "results_by_epoch.csv", _csv(rows))
    write_text(run_dir / "results_by_epoch.md", _markdown(doc, cfg))
    lines, refs, dashed = _curves(doc, cfg)
    if lines or dashed:
        plots.plot_by_epoch(lines, run_dir / "plots" / "accuracy_by_epoch.png", references=refs, dashed=dashed,
                            title=f"{doc['experiment']}: accuracy against encoder epoch ({protocol})",
                            ylabel="Rank-1 / mAP (%)" if protocol != "legacy" else "Rank-1 (%)")
    return doc


def _csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if rows and rows[0]["protocol"] == "legacy":
        w.writerow(["encoder_epoch", "test", "selection", "rn_epoch", "rank1", "rank5", "rank10", "nauc_roc",
                    "nauc_cmc", "test_windows"])
        for r in rows:
            for test, rules in r["test_sets"].items():
                for rule, m in rules.items():
                    w.writerow([r["epoch"], test, rule, m.get("epoch"), *(_f(m.get(k)) for k in
                                ("rank1", "rank5", "rank10", "nauc_roc", "nauc_cmc")), m.get("test_windows", "")])
    else:
        w.writerow(["encoder_epoch", "pair", "rank1", "rank5", "rank10", "mAP", "num_queries"])
        for r in rows:
            for pair, m in r.get("pairs", {}).items():
                w.writerow([r["epoch"], pair, *(_f(m.get(k)) for k in ("rank1", "rank5", "rank10", "mAP")),
                            m.get("num_queries")])
    return buf.getvalue()


def _f(v) -> str:
    return "" if v is None else f"{float(v):.6f}"


def _monitor_at(monitor: dict, epoch: int) -> float | None:
    for curve in monitor.values():
        if epoch in curve["epoch"]:
            return curve["rank1"][curve["epoch"].index(epoch)]
    return None


def _table(rows: list[dict], monitor: dict, columns: list) -> list[str]:
    """One markdown row per milestone; ``columns`` are ``(heading, pick(row) -> metrics, text(metrics))``."""
    head = ["encoder epoch"] + [c[0] for c in columns] + (["monitor Rank-1"] if monitor else [])
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for r in rows:
        cells = [str(r["epoch"])]
        for _, pick, text in columns:
            m = pick(r)
            cells.append("–" if m is None else text(m))
        if monitor:
            cells.append(_pct(_monitor_at(monitor, r["epoch"])))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _markdown(doc: dict, cfg: RunConfig) -> str:
    rows, monitor = doc["rows"], doc["monitor"]
    title = f"# {doc['experiment']}: accuracy against encoder epoch ({doc['protocol']} protocol)"
    lines = [title, "", f"Milestones {', '.join(map(str, doc['milestones']))} of {doc['encoder_epochs']} encoder "
             f"epochs; {len(rows)} evaluated so far. The last row is the run's `results.json` once it has finished.",
             ""]
    has_monitor = bool(monitor)
    if doc["protocol"] == "legacy" and rows:
        primary = rows[0].get("primary_test", "test")
        rules = _rules(rows[-1], primary)
        lines += _table(rows, monitor, [(f"{RULE_SHORT.get(rule, rule)} Rank-1 / nAUC (ROC) / nAUC (CMC) [RN epoch]",
                                          lambda r, rule=rule: r["test_sets"].get(primary, {}).get(rule),
                                          lambda m: f"{_pct(m['rank1'])} / {_pct(m['nauc_roc'])} / "
                                                    f"{_pct(m['nauc_cmc'])} [{m.get('epoch', '–')}]")
                                         for rule in rules])
        fig = paper.legacy_figures(paper.legacy_key(cfg.data.dataset, primary), cfg.encoder.method,
                                   cfg.encoder.model)
        if fig:
            lines += ["", f"Paper ({cfg.data.dataset}; the reference code chooses the recognition network's epoch "
                      f"on test data): Rank-1 {fig[0]:.1f}, nAUC {fig[1]:.1f}."]
        lines += ["", "Rules: " + "; ".join(f"**{RULE_SHORT.get(r, r)}**: {RULE_LABEL.get(r, r)}" for r in rules)
                  + ". Test-selected and paper-like rows choose the recognition network's epoch on test data and "
                  "are optimistic."]
    elif rows:
        pairs = list(rows[-1].get("pairs", {}))
        lines += _table(rows, monitor, [(f"{p} Rank-1 / Rank-5 / Rank-10 / mAP",
                                          lambda r, p=p: r.get("pairs", {}).get(p),
                                          lambda m: f"{_pct(m['rank1'])} / {_pct(m['rank5'])} / "
                                                    f"{_pct(m['rank10'])} / {_pct(m['mAP'])}")
                                         for p in pairs])

        lines += pg_units.milestone_lines(rows)
        fig = paper.probe_gallery_figures(cfg.data.dataset, cfg.encoder.method)
        if fig:
            lines += ["", f"Published probe/gallery re-evaluation ({cfg.data.dataset}, {cfg.encoder.method}): "
                      f"Rank-1 {fig[0]:.1f}, mAP {fig[1]:.1f}."]
    else:
        lines += ["No milestone has been evaluated yet."]
    if has_monitor:
        lines += ["", "## Monitor", "",
                  "Walk-level nearest-neighbour Rank-1 of the monitored walks ("
                  + ("validation walks against training walks" if doc["protocol"] == "legacy"
                     else "training walks, leave-one-walk-out") + "; labels only score the match; at most "
                  f"{doc.get('monitor_windows') or 32} evenly spaced windows per walk), per epoch:", "",
                  "| encoder | epoch | monitor Rank-1 | monitor seconds | epoch seconds |", "|---|---|---|---|---|"]
        for tag, c in monitor.items():
            for e, r1, sec, esec in zip(c["epoch"], c["rank1"], c["seconds"], c["epoch_seconds"]):
                lines.append(f"| {tag} | {e} | {_pct(r1)} | {sec:.2f} | {esec:.1f} |")
    return "\n".join(lines) + "\n"


def _curves(doc: dict, cfg: RunConfig):
    rows, monitor = doc["rows"], doc["monitor"]
    lines: dict = {}
    refs: dict = {}
    if doc["protocol"] == "legacy" and rows:
        primary = rows[0].get("primary_test", "test")
        for rule in _rules(rows[-1], primary):
            pts = [(r["epoch"], r["test_sets"][primary][rule]["rank1"]) for r in rows
                   if rule in r["test_sets"].get(primary, {})]
            lines[RULE_SHORT.get(rule, rule)] = ([e for e, _ in pts], [v for _, v in pts])
        fig = paper.legacy_figures(paper.legacy_key(cfg.data.dataset, primary), cfg.encoder.method,
                                   cfg.encoder.model)
        if fig:
            refs[f"paper Rank-1, {cfg.data.dataset}"] = fig[0]
    elif rows:
        for pair in rows[-1].get("pairs", {}):
            for key, label in (("rank1", "Rank-1"), ("mAP", "mAP")):
                pts = [(r["epoch"], r["pairs"][pair][key]) for r in rows if pair in r.get("pairs", {})]
                lines[f"{pair} {label}"] = ([e for e, _ in pts], [v for _, v in pts])

        lines.update(pg_units.milestone_curves(rows))
        fig = paper.probe_gallery_figures(cfg.data.dataset, cfg.encoder.method)
        if fig:
            refs["published Rank-1"], refs["published mAP"] = fig
    dashed = {f"monitor ({tag})": (c["epoch"], c["rank1"]) for tag, c in monitor.items()}
    return lines, refs, dashed


def write_optimistic(run_dir: Path, cfg) -> dict | None:
    """``--select-on-test`` on a probe/gallery run: add the optimistic row to results.json
    (``select_on_test``) and results.md, from the milestone rows (the final epoch included)."""
    run_dir = Path(run_dir)
    rows = milestone_rows(run_dir, cfg) if cfg.milestones else []
    if not rows:
        res = read_json(run_dir / "results.json")
        rows = [{"epoch": int(cfg.encoder.epochs), "pairs": res.get("pairs", {})}]
    chosen = pg_units.select_on_test(rows)
    if not chosen:
        return None
    epochs = [int(r["epoch"]) for r in rows]
    res = read_json(run_dir / "results.json")
    res["select_on_test"] = {"label": pg_units.OPTIMISTIC, "optimistic": True, "milestones": epochs, "pairs": chosen}
    write_json(run_dir / "results.json", res)
    md = (run_dir / "results.md").read_text(encoding="utf-8").rstrip("\n").split("\n")
    extra = pg_units.optimistic_markdown(chosen, epochs)
    if len(epochs) == 1:
        extra += ["", "Only one encoder epoch was evaluated, so the optimistic row equals the final one; add "
                  "`--milestones` to choose among several."]
    write_text(run_dir / "results.md", "\n".join(md + extra) + "\n")
    return res["select_on_test"]
