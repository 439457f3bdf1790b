"""Run reports: ``results.json`` (everything), ``results.md`` (tables beside the paper) and plots."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..config import RunConfig
from ..data.splits import manifest_hash
from ..io import write_json, write_text
from ..losses import la_objective
from ..training.checkpoint import versions
from . import paper

RULE_LABEL = {
    "val": "selected on validation walks",
    "last": "last epoch",
    "test": "selected on TEST data (the reference code's rule; optimistic)",
}


def write_reports(run_dir: Path, cfg: RunConfig, p, results: dict, attention: dict, models, device) -> dict:
    from . import plots

    plot_dir = run_dir / "plots"
    plot_dir.mkdir(parents=True, exist_ok=True)
    protocol = results["protocol"]
    out = {
        "dataset": cfg.data.dataset, "protocol": protocol, "method": cfg.encoder.method,
        "model": cfg.encoder.model, "attention": cfg.encoder.attention, "length": cfg.data.length,
        "seed": cfg.seed, "reference_quirks": cfg.reference_quirks, "device": cfg.device,
        "split": {"sha256": manifest_hash(p.manifest), "file": "split.json", **p.summary},
        "config": cfg.to_dict(), "versions": versions(), "stages": results.get("stages", {}),
        "wall_time_s": results.get("wall_time_s"),
    }
    if protocol == "legacy":
        out["selection"] = results["selection"]
        out["metrics"] = {rule: _legacy_public(rep) for rule, rep in results["by_selection"].items()}
        figures = {f"{RULE_LABEL[r]}": np.asarray(rep["cmc"]) for r, rep in results["by_selection"].items()}
        plots.plot_cmc(figures, plot_dir / "cmc.png", title=f"{cfg.data.dataset} CMC (test walks)")
        primary = results["by_selection"][results["selection"]]
        plots.plot_confusion(np.asarray(primary["confusion"]), plot_dir / "confusion.png",
                             class_names=p.windows.persons, title=f"Confusion ({RULE_LABEL[results['selection']]})")
    else:
        rep = results["retrieval"]
        out["metrics"] = {"probe_gallery": {k: v for k, v in rep.items()}}
        plots.plot_cmc({"probe vs gallery": np.asarray(rep["cmc"])}, plot_dir / "cmc.png",
                       title=f"{cfg.data.dataset} probe/gallery CMC")
    plots.plot_attention(attention, la_objective(cfg.data.length).numpy(), plot_dir / "attention.png")
    plots.plot_embedding(results["test_features"], results["test_labels"], plot_dir / "embedding.png",
                         title=f"{cfg.data.dataset} {'test' if protocol == 'legacy' else 'probe'} features (PCA)")
    _plot_losses(run_dir, plots)
    write_json(run_dir / "results.json", out)
    write_text(run_dir / "results.md", results_markdown(out))
    return out


def _legacy_public(rep: dict) -> dict:
    keep = {k: v for k, v in rep.items() if k != "confusion"}
    return keep


def _plot_losses(run_dir: Path, plots) -> None:
    import csv

    for path in sorted((run_dir / "encoders").glob("*_losses.csv")):
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh))
        if not rows:
            continue
        table = {k: [float(r[k]) for r in rows] for k in ("reconstruction", "attention", "contrastive", "l2", "total")
                 if any(float(r[k]) != 0 for r in rows)}
        plots.plot_loss_curves(table, run_dir / "plots" / f"losses_{path.name[:-len('_losses.csv')]}.png",
                               title=f"encoder {path.name[:-len('_losses.csv')]} (sum over axes)")


def _pct(v) -> str:
    return "–" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{100 * v:.1f}"


def results_markdown(r: dict) -> str:
    name = r["dataset"]
    model = "AGE" if r["method"] == "age" else {"rev_rec": "CAGE (Rev. Rec.)", "rev_rec_plus": "CAGE (Rev. Rec. Plus)",
                                                "prediction": "CAGE (Prediction)", "sorting": "CAGE (Sorting)"}[r["model"]]
    lines = [f"# {name}: {model}, {r['attention']}, f = {r['length']}, seed {r['seed']}", ""]
    s = r["split"]
    lines += [f"Protocol `{r['protocol']}`; split `{s['file']}` (sha256 {s['sha256'][:12]}…): "
              f"{s['persons']} persons, {s['walks']} walks, {s['windows']} windows "
              f"({', '.join(f'{k} {v}' for k, v in s['windows_per_split'].items())}).", ""]
    if r["reference_quirks"]:
        lines += ["**reference_quirks is on**: the reference code's accidental behaviour is reproduced.", ""]
    if r["protocol"] == "legacy":
        lines += ["| model | selection | epoch | Rank-1 | Rank-5 | Rank-10 | nAUC (ROC, reference) | nAUC (CMC area) |",
                  "|---|---|---|---|---|---|---|---|"]
        for rule, m in r["metrics"].items():
            lines.append(f"| skelreid {model} | {RULE_LABEL[rule]} | {m.get('epoch', '–')} | {_pct(m['rank1'])} | "
                         f"{_pct(m.get('rank5'))} | {_pct(m.get('rank10'))} | {_pct(m['nauc_roc'])} | {_pct(m['nauc_cmc'])} |")
        fig = paper.legacy_figures(name, r["method"], r["model"])
        if fig:
            lines.append(f"| paper {model} | test data (reference code) | – | {fig[0]:.1f} | – | – | {fig[1]:.1f} | – |")
        lines += ["", "Rank-k: window-level closed-set classification by the recognition network, raw logits averaged "
                  "over the window's rows (`ap`). nAUC (ROC) is the reference code's definition (micro-averaged ROC AUC "
                  "of the logits); nAUC (CMC area) is the normalised area under the CMC curve."]
    else:
        m = r["metrics"]["probe_gallery"]
        lines += ["| model | Rank-1 | Rank-5 | Rank-10 | mAP | queries |", "|---|---|---|---|---|---|",
                  f"| skelreid {model} | {_pct(m['rank1'])} | {_pct(m['rank5'])} | {_pct(m['rank10'])} | "
                  f"{_pct(m['mAP'])} | {m['num_queries']} |"]
        fig = paper.probe_gallery_figures(name, r["method"])
        if fig:
            lines.append(f"| published re-evaluation | {fig[0]:.1f} | – | – | {fig[1]:.1f} | – |")
        lines += ["", "Probe/gallery retrieval: walk-level features (mean of window features), Euclidean distance, "
                  "same-walk matches excluded by walk id, probes without a gallery match skipped."]
    if r.get("wall_time_s") is not None:
        lines += ["", f"Wall time {r['wall_time_s']:.1f} s on `{r['device']}`."]
    return "\n".join(lines) + "\n"


def print_summary(r: dict) -> str:
    """A compact plain-text table for the terminal."""
    rows = []
    if "metrics" not in r:
        return f"stages finished: {', '.join(k for k in r.get('stages', {}) if k != 'prepare')}; no evaluation requested"
    if r["protocol"] == "legacy":
        rows.append(f"{'selection':<44} {'epoch':>5} {'Rank-1':>7} {'Rank-5':>7} {'nAUC':>6} {'nAUC-CMC':>8}")
        for rule, m in r["metrics"].items():
            rows.append(f"{RULE_LABEL[rule]:<44} {m.get('epoch', 0):>5} {_pct(m['rank1']):>7} "
                        f"{_pct(m.get('rank5')):>7} {_pct(m['nauc_roc']):>6} {_pct(m['nauc_cmc']):>8}")
    else:
        m = r["metrics"]["probe_gallery"]
        rows.append(f"{'Rank-1':>7} {'Rank-5':>7} {'Rank-10':>7} {'mAP':>6} {'queries':>7}")
        rows.append(f"{_pct(m['rank1']):>7} {_pct(m['rank5']):>7} {_pct(m['rank10']):>7} {_pct(m['mAP']):>6} "
                    f"{m['num_queries']:>7}")
    return "\n".join(rows)
