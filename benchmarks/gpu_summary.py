#!/usr/bin/env python
"""Gather what benchmarks/gpu_check.sh measured under OUT_DIR into ``summary.json`` and ``summary.md``.

Usage: ``python benchmarks/gpu_summary.py OUT_DIR`` (prints the markdown table). Only figures that were
measured appear; a step that failed, timed out or was skipped is listed as such.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

HARNESS = ("eager", "compiled", "graphs", "bf16", "seeds3")
RUNS = ("kgbd_pipeline", "kgbd_pg", "kgbd_rev_rec_plus", "kgbd_age", "kgbd_seeds3")   # gpu_check.sh's order
TARGETS = {"ratio": 20.0, "ms_per_step": 4.0, "pipeline_s": 300.0, "embed_windows_per_s": 100_000.0}


def _load(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def summarise(out: Path) -> dict:
    s: dict = {"environment": _load(out / "environment.json"), "steps": [], "harness": {}, "kgbd": None,
               "feature_equality": _load(out / "feature_equality.json")}
    if (out / "steps.tsv").exists():
        for line in (out / "steps.tsv").read_text().splitlines():
            name, status, seconds, limit = (line.split("\t") + ["", "", "", ""])[:4]
            s["steps"].append({"step": name, "status": status, "seconds": seconds, "limit": limit})
    for name in HARNESS:
        h = _load(out / f"harness_{name}.json")
        if not h:
            continue
        r = h["results"]
        row = {"options": r.get("encoder_optimised", {}).get("options")}
        if "encoder_optimised" in r:
            row.update(ms_per_step=r["encoder_optimised"]["ms_per_step"],
                       windows_per_s=r["encoder_optimised"]["windows_per_s"],
                       peak_memory_mib=r["encoder_optimised"]["peak_memory_mib"])
        if "encoder_baseline" in r:
            row["baseline_ms_per_step"] = r["encoder_baseline"]["ms_per_step"]
        if "encoder_paired" in r:
            row["ratio_paired_median"] = r["encoder_paired"]["ratio_median"]
        if "embedding" in r:
            row.update(embed_windows_per_s=r["embedding"]["windows_per_s"],
                       embed_on_device_windows_per_s=r["embedding"]["on_device_windows_per_s"],
                       embed_peak_memory_mib=r["embedding"]["peak_memory_mib"])
        if "rn_training" in r:
            row["rn_samples_per_s"] = r["rn_training"]["samples_per_s"]
        s["harness"][name] = row
    g, three = s["harness"].get("graphs", {}), s["harness"].get("seeds3", {})
    if g.get("ms_per_step") and three.get("ms_per_step"):
        s["three_seeds_vs_one"] = three["ms_per_step"] / g["ms_per_step"]
    base = s["harness"].get("eager", {}).get("baseline_ms_per_step")
    if base and g.get("ms_per_step"):
        s["baseline_vs_graphs"] = base / g["ms_per_step"]
    s["kgbd"] = _run_summary(out / "kgbd_pipeline")
    s["runs"] = {name: r for name in RUNS[1:] if (r := _run_summary(out / name))}
    return s


def _run_summary(run: Path) -> dict | None:
    """One KGBD run folder: finished or not, its headline metric per rule, its milestones."""
    res = _load(run / "results.json")
    by_epoch = _load(run / "results_by_epoch.json")
    if not (res or by_epoch or (run / "config.json").exists()):
        return None
    k: dict = {"finished": bool(res)}
    if res:
        k["wall_time_s"] = res.get("wall_time_s")
        m = res.get("metrics") or {}
        if "probe_gallery" in m:
            k.update(rank1={"probe_gallery": m["probe_gallery"]["rank1"]},
                     map={"probe_gallery": m["probe_gallery"].get("map")})
        elif m:
            k.update(encoder_epochs=res["config"]["encoder"]["epochs"],
                     rank1={rule: v["rank1"] for rule, v in m.items()},
                     nauc_roc={rule: v["nauc_roc"] for rule, v in m.items()})
        elif "mean_std" in res:   # several seeds: mean ± std per rule and metric
            k["seeds"] = res.get("seeds")
            k["rank1"] = {key[:-len(" rank1")]: v["mean"] for key, v in res["mean_std"].items()
                          if key.endswith(" rank1")}
            k["rank1_std"] = {key[:-len(" rank1")]: v["std"] for key, v in res["mean_std"].items()
                              if key.endswith(" rank1")}
    if by_epoch:
        k["milestones"] = [{"epoch": r["epoch"], **{rule: v["rank1"] for rule, v in r["metrics"].items()}}
                           for r in by_epoch["rows"]]
    return k


def markdown(s: dict) -> str:
    env = s.get("environment") or {}
    dry = " (dry run on CPU: toy sizes, the figures mean nothing)" if env.get("dry_run") else ""
    lines = [f"# GPU check{dry}", "",
             f"Machine: {', '.join(env.get('gpus', [])) or env.get('device', '?')}; torch {env.get('torch', '?')}, "
             f"CUDA {env.get('cuda', '–')}; driver {env.get('nvidia_smi', '–')}.", "",
             "| step | status | seconds | limit |", "|---|---|---|---|"]
    lines += [f"| {r['step']} | {r['status']} | {r['seconds']} | {r['limit']} |" for r in s["steps"]]
    if s["harness"]:
        lines += ["", "| train step | ms/step | windows/s | peak MiB | baseline ms/step | ratio (paired) | "
                  "embed windows/s | RN samples/s |", "|---|---|---|---|---|---|---|---|"]
        for name, r in s["harness"].items():
            def f(key, fmt="{:.2f}"):
                return fmt.format(r[key]) if r.get(key) is not None else "–"
            lines.append(f"| {name} ({', '.join(f'{k}={v}' for k, v in (r.get('options') or {}).items())}) | "
                         f"{f('ms_per_step')} | {f('windows_per_s', '{:,.0f}')} | {f('peak_memory_mib', '{}')} | "
                         f"{f('baseline_ms_per_step')} | {f('ratio_paired_median')} | "
                         f"{f('embed_windows_per_s', '{:,.0f}')} | {f('rn_samples_per_s', '{:,.0f}')} |")
        if s.get("baseline_vs_graphs"):
            lines += ["", f"Baseline (eager run) / graphs step: {s['baseline_vs_graphs']:.1f}x."]
        if s.get("three_seeds_vs_one"):
            lines += ["", f"Three seeds in one model / one seed (graphs step): {s['three_seeds_vs_one']:.2f}x the time "
                      "per step."]
        lines += ["", f"Targets: baseline/optimised >= {TARGETS['ratio']:.0f}x, <= {TARGETS['ms_per_step']:.0f} ms per "
                  f"step, embedding >= {TARGETS['embed_windows_per_s']:,.0f} windows/s."]
    fe = s.get("feature_equality")
    if fe:
        lines += ["", f"Inference API vs pipeline features ({fe['device']}, {max(r['windows'] for r in fe['splits'].values())} "
                  f"windows, batches of {fe['embed_batch']}): "
                  + ("bit for bit equal." if fe["bit_equal"] else
                     f"not bit for bit; largest relative difference {fe['max_rel_diff']:.2g} "
                     f"(tolerance {fe['tolerance']:.0e}).")]
    k = s.get("kgbd")
    if k:
        what = "a 4-person fixture, toy model" if env.get("dry_run") else "paper settings"
        lines += ["", f"KGBD pipeline (rev_rec, LA, {what}): "
                  + (f"finished ({k['wall_time_s']:.0f} s in the call that ended it); Rank-1 "
                     + ", ".join(f"{rule} {100 * v:.1f}" for rule, v in k["rank1"].items())
                     if k["finished"] else "not finished yet (the next call continues it)") + "."]
        for row in k.get("milestones", []):
            lines.append(f"- encoder epoch {row['epoch']}: "
                         + ", ".join(f"{rule} {100 * v:.1f}" for rule, v in row.items() if rule != "epoch"))
    for name, r in (s.get("runs") or {}).items():
        std = r.get("rank1_std", {})
        lines.append(f"\n{name}: " + ("finished; Rank-1 " + ", ".join(
            f"{rule} {100 * v:.1f}" + (f" ± {100 * std[rule]:.1f} over seeds {r['seeds']}" if rule in std else "")
            for rule, v in r.get("rank1", {}).items())
                                      if r["finished"] else "not finished yet (the next call continues it)"))
    return "\n".join(lines) + "\n"


def main() -> None:
    out = Path(sys.argv[1])
    s = summarise(out)
    (out / "summary.json").write_text(json.dumps(s, indent=2, sort_keys=True))
    text = markdown(s)
    (out / "summary.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
