"""Run reports: ``results.json`` (everything), ``results.md`` (tables beside the paper) and plots."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import faults
from ..config import RunConfig, load_preset
from ..data.splits import manifest_hash
from ..data.windows import describe_normalisation
from ..errors import ConfigError
from ..io import write_json, write_text
from ..losses import la_objective
from ..determinism import thread_settings
from ..machine import cpu_summary
from ..version import versions
from . import paper

RULE_LABEL = {
    "val": "selected on validation walks",
    "last": "last epoch",
    "test": "selected on TEST data (the reference code's rule; optimistic)",
    "paper-like": "paper-like: RN on train + val walks, epoch chosen on TEST, reference 128-window batches (optimistic)",
}

#: Short names for narrow tables.
RULE_SHORT = {"val": "validation-selected", "last": "last epoch", "test": "test-selected (optimistic)",
              "paper-like": "paper-like (optimistic)"}


def public_metrics(results: dict) -> dict:
    """What ``results.json`` reports of an evaluation: legacy ``metrics`` (primary test split, by rule)
    and ``test_sets``; probe/gallery ``metrics`` and ``pairs``. Milestone rows use the same keys."""
    if results["protocol"] == "legacy":
        sets = {t: {rule: _legacy_public(rep) for rule, rep in e["by_selection"].items()}
                for t, e in results["tests"].items()}
        return {"metrics": sets[results["primary_test"]], "test_sets": sets, "selection": results["selection"],
                "primary_test": results["primary_test"]}
    return {"metrics": {"probe_gallery": results["retrieval"]}, "pairs": dict(results["pairs"]),
            "primary_pair": results["primary_pair"]}


def experiment_name(cfg: RunConfig) -> str:
    return cfg.name or cfg.data.dataset


def write_reports(run_dir: Path, cfg: RunConfig, p, results: dict, attention: dict) -> dict:
    from . import plots

    plot_dir = run_dir / "plots"
    plot_dir.mkdir(parents=True, exist_ok=True)
    protocol = results["protocol"]
    out = {
        "dataset": cfg.data.dataset, "experiment": experiment_name(cfg), "preset": cfg.preset,
        "view": cfg.data.view, "source": cfg.data.source, "protocol": protocol, "method": cfg.encoder.method,
        "model": cfg.encoder.model, "attention": cfg.encoder.attention, "length": cfg.data.length,
        "seed": cfg.seed, "reference_quirks": cfg.reference_quirks, "device": cfg.device,
        "split": {"sha256": manifest_hash(p.manifest), "file": "split.json", **p.summary},
        "config": cfg.to_dict(), "versions": versions(), "stages": results.get("stages", {}),
        "wall_time_s": results.get("wall_time_s"), "threads": thread_settings(), "machine": cpu_summary(),
        "normalisation": {"mode": cfg.data.normalise, **_scale(p.manifest),
                          "description": describe_normalisation(cfg.data.normalise,
                                                                _scale(p.manifest).get("scale"))},
    }
    name = experiment_name(cfg)
    out.update(public_metrics(results))
    if protocol == "legacy":
        primary = results["primary_test"]
        views = {t: e["per_view"] for t, e in results["tests"].items() if "per_view" in e}
        if views:
            out["per_view"] = views
        out["validation_rank1"] = _validation_rank1(run_dir, out["metrics"][out["selection"]].get("epoch"))
        many = len(results["tests"]) > 1
        figures = {f"{t + ': ' if many else ''}{RULE_LABEL[r]}": np.asarray(rep["cmc"])
                   for t, e in results["tests"].items() for r, rep in e["by_selection"].items()}
        plots.plot_cmc(figures, plot_dir / "cmc.png", title=f"{name} CMC (test walks)")
        rep = results["by_selection"][results["selection"]]
        plots.plot_confusion(np.asarray(rep["confusion"]), plot_dir / "confusion.png",
                             class_names=p.windows.persons,
                             title=f"Confusion, {primary} ({RULE_LABEL[results['selection']]})")
    else:
        from . import pg_units  # both units, labelled

        curves = pg_units.cmc_curves(results["pairs"]) or {k: np.asarray(v["cmc"]) for k, v in results["pairs"].items()}
        plots.plot_cmc(curves, plot_dir / "cmc.png", title=f"{name} probe/gallery CMC")
        if len(results["pairs"]) > 1:
            ref = [_pair_figure(out, k) for k in results["pairs"]]
            plots.plot_groups({k: v["rank1"] for k, v in results["pairs"].items()}, plot_dir / "pairs.png",
                              reference=ref if any(r is not None for r in ref) else None,
                              title=f"{name}: Rank-1 per probe/gallery pair")
    plots.plot_attention(attention, la_objective(cfg.data.length).numpy(), plot_dir / "attention.png")
    faults.point("report.file")
    plots.plot_embedding(results["test_features"], results["test_labels"], plot_dir / "embedding.png",
                         title=f"{name} {'test' if protocol == 'legacy' else 'probe'} features (PCA)")
    _plot_losses(run_dir, plots)
    write_json(run_dir / "results.json", out)
    faults.point("report.file")
    write_text(run_dir / "results.md", results_markdown(out))
    faults.point("report.file")
    return out


def _scale(manifest: dict) -> dict:
    scale = manifest.get("normalisation", {}).get("scale")
    return {"scale": scale} if scale else {}


def _validation_rank1(run_dir: Path, epoch) -> float | None:
    """Validation Rank-1 of the selected RN epoch (from rn/history.csv), if there was a validation split."""
    import csv

    path = run_dir / "rn" / "history.csv"
    if epoch is None or not path.exists():
        return None
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            if row.get("epoch") == str(epoch) and row.get("val_rank1") not in (None, ""):
                return float(row["val_rank1"])
    return None


def _pair_published(r: dict, pair: str) -> tuple[float, float | None] | None:
    """Published (Rank-1, mAP) of a probe/gallery pair: the CAGE paper's CME Rank-1, or the later
    re-evaluation's figures (a pair named after its test set, or the dataset's single pair)."""
    if r["dataset"].upper() == "CASIA_B" and pair in paper.CME and r["method"] != "age":
        return paper.CME[pair], None
    return paper.probe_gallery_figures(pair, r["method"]) or (
        paper.probe_gallery_figures(r["dataset"], r["method"]) if pair == "probe_gallery" else None)


def _pair_figure(r: dict, pair: str) -> float | None:
    fig = _pair_published(r, pair)
    return fig[0] if fig else None


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


MODEL_NAMES = {"rev_rec": "CAGE (Rev. Rec.)", "rev_rec_plus": "CAGE (Rev. Rec. Plus)",
               "prediction": "CAGE (Prediction)", "sorting": "CAGE (Sorting)"}


def model_name(r: dict) -> str:
    return "AGE" if r["method"] == "age" else MODEL_NAMES[r["model"]]


def _title(r: dict) -> str:
    view = f", view {r['view']}" if r.get("view") is not None else ""
    return (f"# {r.get('experiment', r['dataset'])}{view}: {model_name(r)}, {r['attention']}, "
            f"f = {r['length']}, seed {r['seed']}")


def results_markdown(r: dict) -> str:
    name = r["dataset"]
    model = model_name(r)
    lines = [_title(r), ""]
    s = r["split"]
    source = " from the authors' npy files" if r.get("source") == "reference_npy" else ""
    lines += [f"Protocol `{r['protocol']}`{source}; split `{s['file']}` (sha256 {s['sha256'][:12]}…): "
              f"{s['persons']} persons, {s['walks']} walks, {s['windows']} windows "
              f"({', '.join(f'{k} {v}' for k, v in s['windows_per_split'].items())}).", ""]
    ex = s.get("excluded")
    if ex:
        lines += [f"Left out: {ex['short_walks']} walk(s) too short for one window, {ex['persons_dropped']} "
                  "person(s) with too few usable walks (named in `results.json` → `split.excluded` and in the "
                  "split manifest).", ""]
    if r.get("normalisation"):
        lines += [f"Coordinates: `{r['normalisation']['mode']}`, {r['normalisation']['description']}.", ""]
    if r["reference_quirks"]:
        lines += ["**reference_quirks is on**: the reference code's accidental behaviour is reproduced.", ""]
    if r["protocol"] == "legacy":
        for test, metrics in r.get("test_sets", {r.get("primary_test", "test"): r["metrics"]}).items():
            if len(r.get("test_sets", {})) > 1:
                lines += [f"## Test split `{test}`", ""]
            lines += ["| model | selection | epoch | Rank-1 | Rank-5 | Rank-10 | nAUC (ROC, reference) | nAUC (CMC area) |",
                      "|---|---|---|---|---|---|---|---|"]
            for rule, m in metrics.items():
                lines.append(f"| skelreid {model} | {RULE_LABEL[rule]} | {m.get('epoch', '–')} | {_pct(m['rank1'])} | "
                             f"{_pct(m.get('rank5'))} | {_pct(m.get('rank10'))} | {_pct(m['nauc_roc'])} | "
                             f"{_pct(m['nauc_cmc'])} |")
            key = paper.legacy_key(name, test)
            fig = paper.legacy_figures(key, r["method"], r["model"]) if r.get("view") is None else None
            if fig:
                lines.append(f"| paper {model} ({key}) | test data (reference code) | – | {fig[0]:.1f} | – | – | "
                             f"{fig[1]:.1f} | – |")
            lines.append("")
            views = r.get("per_view", {}).get(test)
            if views:
                lines += [f"Rank-1 per view ({RULE_LABEL[r['selection']]}):", "",
                          "| view | " + " | ".join(views) + " |", "|---|" + "---|" * len(views),
                          "| test windows | " + " | ".join(str(v["windows"]) for v in views.values()) + " |",
                          "| Rank-1 | " + " | ".join(_pct(v["rank1"]) for v in views.values()) + " |", ""]
        lines += ["Rank-k: window-level closed-set classification by the recognition network, raw logits averaged "
                  "over the window's rows (`ap`). nAUC (ROC) is the reference code's definition (micro-averaged ROC AUC "
                  "of the logits); nAUC (CMC area) is the normalised area under the CMC curve."]
    else:
        pairs = r.get("pairs") or {"probe_gallery": r["metrics"]["probe_gallery"]}
        if len(pairs) > 1:
            names = list(pairs)
            figs = [_pair_figure(r, k) for k in names]
            lines += ["| | " + " | ".join(names) + " |", "|---|" + "---|" * len(names),
                      f"| skelreid {model} Rank-1 | " + " | ".join(_pct(pairs[k]["rank1"]) for k in names) + " |",
                      f"| skelreid {model} mAP | " + " | ".join(_pct(pairs[k]["mAP"]) for k in names) + " |"]
            if any(f is not None for f in figs):
                lines.append("| paper Rank-1 | " + " | ".join("–" if f is None else f"{f:.1f}" for f in figs) + " |")
            lines.append("")
        lines += ["| pair (probe → gallery) | model | Rank-1 | Rank-5 | Rank-10 | mAP | queries |",
                  "|---|---|---|---|---|---|---|"]
        for k, m in pairs.items():
            what = f"{k} ({m['probe']} → {m['gallery']})" if "probe" in m else k
            lines.append(f"| {what} | skelreid {model} | {_pct(m['rank1'])} | {_pct(m['rank5'])} | "
                         f"{_pct(m['rank10'])} | {_pct(m['mAP'])} | {m['num_queries']} |")
            fig = _pair_published(r, k)
            if fig and fig[1] is not None:
                lines.append(f"| {k} | published re-evaluation | {fig[0]:.1f} | – | – | {fig[1]:.1f} | – |")
        feat = next(iter(pairs.values())).get("features", {})
        unit = "windows" if feat.get("pooling") == "none" else "walk-level features (mean of window features)"
        lines += ["", f"Probe/gallery retrieval: {unit}, Euclidean distance, "
                  "same-walk matches excluded by walk id, probes without a gallery match skipped."]
        from . import pg_units

        lines += pg_units.markdown(pairs)
    if r.get("wall_time_s") is not None:
        lines += ["", f"Wall time {r['wall_time_s']:.1f} s on `{r['device']}`."]
    return "\n".join(lines) + "\n"


def view_metric(r: dict) -> dict:
    """The headline numbers of one view's run."""
    if r["protocol"] == "legacy":
        m = r["metrics"][r["selection"]]
        return {"rank1": m["rank1"], "nauc_roc": m["nauc_roc"], "epoch": m.get("epoch")}
    m = r["metrics"]["probe_gallery"]
    return {"rank1": m["rank1"], "mAP": m["mAP"]}


def _views_named_by(cfg: RunConfig) -> str:
    """Whose view names a run uses: its dataset's, or, for walks read by the generic reader under a
    benchmark preset (``--dataset casia_b_cve --set data.dataset=generic``, e.g. walks extracted from a
    CASIA-B video tree, which carry CASIA-B's view indices), the preset's dataset's. The published
    per-view figures are shown only beside the dataset itself."""
    if cfg.data.dataset.lower() != "generic":
        return cfg.data.dataset
    try:
        return str(load_preset(cfg.preset).get("data", {}).get("dataset", cfg.data.dataset))
    except ConfigError:   # a preset this version does not know: the views keep their indices
        return cfg.data.dataset


def write_view_reports(run_dir: Path, cfg: RunConfig, per_view: dict, seconds: float) -> dict:
    """``results.json`` / ``results.md`` / ``plots/views.png`` of a run over every view."""
    from . import plots

    first = next(iter(per_view.values()))
    rows = {v: view_metric(r) for v, r in per_view.items()}
    figs = paper.view_figures(cfg.data.dataset, cfg.encoder.method, cfg.encoder.model)
    names = paper.view_labels(_views_named_by(cfg))
    labels = {v: (names[int(v)] if names and v.isdigit() and int(v) < len(names) else v) for v in rows}
    ref = [figs[1][int(v)] if figs and v.isdigit() and int(v) < len(figs[1]) else None for v in rows]
    mean = {k: float(np.mean([row[k] for row in rows.values()])) for k in ("rank1", "nauc_roc", "mAP")
            if all(k in row for row in rows.values())}
    val = [r.get("validation_rank1") for r in per_view.values()]
    out = {key: first[key] for key in ("dataset", "experiment", "preset", "protocol", "method", "model",
                                       "attention", "length", "seed", "reference_quirks", "device")}
    out.update({"view": "all", "views": {v: {**rows[v], "label": labels[v], "run": f"view_{v}/results.json"}
                                         for v in rows},
                "mean": mean, "selection": first.get("selection"),
                "validation_rank1": float(np.mean(val)) if all(v is not None for v in val) else None,
                "paper": {labels[v]: f for v, f in zip(rows, ref) if f is not None} or None,
                "wall_time_s": seconds, "versions": versions(), "config": cfg.to_dict()})
    plots.plot_groups({labels[v]: rows[v]["rank1"] for v in rows}, run_dir / "plots" / "views.png",
                      reference=ref if any(f is not None for f in ref) else None,
                      title=f"{out['experiment']}: Rank-1 per view")
    write_json(run_dir / "results.json", out)
    write_text(run_dir / "results.md", view_markdown(out))
    return out


def view_markdown(r: dict) -> str:
    views = r["views"]
    lines = [_title({**r, "view": None}) + ", one run per view", "",
             "Each view is a separate run (encoders, recognition network and test on that view's walks); "
             "its full report is in `view_<v>/results.md`.", ""]
    names = [views[v]["label"] for v in views] + ["mean"]
    lines += ["| | " + " | ".join(names) + " |", "|---|" + "---|" * len(names),
              f"| skelreid {model_name(r)} Rank-1 | " + " | ".join(_pct(views[v]["rank1"]) for v in views)
              + f" | {_pct(r['mean'].get('rank1'))} |"]
    if "nauc_roc" in r["mean"]:
        lines.append("| skelreid nAUC (ROC) | " + " | ".join(_pct(views[v].get("nauc_roc")) for v in views)
                     + f" | {_pct(r['mean']['nauc_roc'])} |")
    if "mAP" in r["mean"]:
        lines.append("| skelreid mAP | " + " | ".join(_pct(views[v].get("mAP")) for v in views)
                     + f" | {_pct(r['mean']['mAP'])} |")
    if r.get("paper"):
        vals = [r["paper"].get(views[v]["label"]) for v in views]
        known = [v for v in vals if v is not None]
        lines.append("| paper Rank-1 (test-selected) | " + " | ".join("–" if v is None else f"{v:.1f}" for v in vals)
                     + f" | {np.mean(known):.1f} |")
    if r.get("selection"):
        lines += ["", f"Recognition network: {RULE_LABEL[r['selection']]}."]
    lines += ["", f"Wall time {r['wall_time_s']:.1f} s on `{r['device']}`."]
    return "\n".join(lines) + "\n"


def format_summary(r: dict) -> str:
    """A compact plain-text table for the terminal."""
    rows = []
    if "views" in r:
        rows.append(f"{'view':<8} {'Rank-1':>7}")
        for v in r["views"].values():
            rows.append(f"{v['label']:<8} {_pct(v['rank1']):>7}")
        rows.append(f"{'mean':<8} {_pct(r['mean'].get('rank1')):>7}")
        return "\n".join(rows)
    if "metrics" not in r:
        return f"stages finished: {', '.join(k for k in r.get('stages', {}) if k != 'prepare')}; no evaluation requested"
    if r["protocol"] == "legacy":
        sets = r.get("test_sets") or {"test": r["metrics"]}
        rows.append(f"{'test':<10} {'selection':<44} {'epoch':>5} {'Rank-1':>7} {'Rank-5':>7} {'nAUC':>6} {'nAUC-CMC':>8}")
        for test, metrics in sets.items():
            for rule, m in metrics.items():
                rows.append(f"{test:<10} {RULE_LABEL[rule]:<44} {m.get('epoch', 0):>5} {_pct(m['rank1']):>7} "
                            f"{_pct(m.get('rank5')):>7} {_pct(m['nauc_roc']):>6} {_pct(m['nauc_cmc']):>8}")
    else:
        pairs = r.get("pairs") or {"probe_gallery": r["metrics"]["probe_gallery"]}
        rows.append(f"{'pair':<14} {'Rank-1':>7} {'Rank-5':>7} {'Rank-10':>7} {'mAP':>6} {'queries':>7}")
        for k, m in pairs.items():
            rows.append(f"{k:<14} {_pct(m['rank1']):>7} {_pct(m['rank5']):>7} {_pct(m['rank10']):>7} "
                        f"{_pct(m['mAP']):>6} {m['num_queries']:>7}")
        from . import pg_units

        rows += pg_units.summary(pairs)
    return "\n".join(rows)


def seed_metrics(r: dict) -> dict[str, float]:
    """The headline figures of one run, flat: ``"<rule> rank1"`` ... (legacy) or ``"<pair> mAP"`` ..."""
    out = {}
    if r.get("protocol") == "legacy":
        for rule, m in r["metrics"].items():
            for k in ("rank1", "rank5", "nauc_roc", "nauc_cmc"):
                if m.get(k) is not None:
                    out[f"{rule} {k}"] = float(m[k])
    else:
        for pair, m in (r.get("pairs") or r["metrics"]).items():
            for k in ("rank1", "rank5", "rank10", "mAP"):
                out[f"{pair} {k}"] = float(m[k])
    return out


def write_seed_reports(run_dir: Path, cfg: RunConfig, per_seed: dict) -> dict:
    """``results.json`` / ``results.md`` of a ``--seeds`` run: every seed's figures, mean and std."""
    rows = {s: seed_metrics(r) for s, r in per_seed.items() if "metrics" in r}
    keys = list(dict.fromkeys(k for row in rows.values() for k in row))
    stats = {}
    for k in keys:
        vals = np.array([row[k] for row in rows.values() if k in row])
        stats[k] = {"mean": float(vals.mean()), "std": float(vals.std(ddof=1)) if len(vals) > 1 else 0.0,
                    "n": int(len(vals))}
    out = {"experiment": experiment_name(cfg), "dataset": cfg.data.dataset, "protocol": cfg.data.protocol,
           "seeds": list(per_seed), "runs": {str(s): f"seed_{s}/results.json" for s in per_seed},
           "per_seed": {str(s): row for s, row in rows.items()}, "mean_std": stats, "config": cfg.to_dict(),
           "versions": versions()}
    write_json(run_dir / "results.json", out)
    lines = [f"# {experiment_name(cfg)}: {model_name({'method': cfg.encoder.method, 'model': cfg.encoder.model})}, "
             f"{len(per_seed)} seeds trained together", "",
             "Each seed is a complete run in `seed_<s>/` (its encoders trained in one batched computation with "
             "the other seeds', each with its own initial weights and data order). Mean ± standard deviation "
             "(n − 1) over the seeds:", "",
             "| figure | " + " | ".join(f"seed {s}" for s in rows) + " | mean ± std |",
             "|---|" + "---|" * (len(rows) + 1)]
    for k in keys:
        label = k
        for rule, text in RULE_SHORT.items():
            if k.startswith(rule + " "):
                label = f"{text} {k[len(rule) + 1:]}"
        lines.append(f"| {label} | " + " | ".join(_pct(row.get(k)) for row in rows.values())
                     + f" | {_pct(stats[k]['mean'])} ± {100 * stats[k]['std']:.1f} |")
    write_text(run_dir / "results.md", "\n".join(lines) + "\n")
    return out


def format_mean_std(mean_std: dict, label=str, width: int = 40) -> str:
    """A terminal table of ``{figure: {"mean", "std"}}`` (fractions), figures named by ``label``."""
    rows = [f"{'figure':<{width}} {'mean':>7} {'std':>6}"]
    for k, v in mean_std.items():
        rows.append(f"{label(k):<{width}} {_pct(v['mean']):>7} {100 * v['std']:>6.1f}")
    return "\n".join(rows)


def format_seed_summary(r: dict) -> str:
    return format_mean_std(r["mean_std"])
