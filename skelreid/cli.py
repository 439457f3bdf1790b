"""The ``skelreid`` command line.

Errors caused by input (files, options) print one line and exit with status 2.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import SkelreidError


def _add_run_options(ap: argparse.ArgumentParser) -> None:
    from .config import CHOICES

    g = ap.add_argument_group("data")
    g.add_argument("--dataset", default="synthetic", help="dataset preset (default: synthetic)")
    g.add_argument("--root", help="raw data folder (KGBD: the Data/ folder)")
    g.add_argument("--cache", help="parsed-data cache folder (default: ~/.cache/skelreid)")
    g.add_argument("--length", type=int, help="window length f (paper: 4, 6, 8, 10)")
    g.add_argument("--protocol", choices=CHOICES["data.protocol"], help="evaluation protocol")
    g.add_argument("--split-seed", type=int, help="seed of the walk split")
    g.add_argument("--persons", type=int, help="use only the first N persons (quick runs)")
    g.add_argument("--nan-policy", choices=CHOICES["data.nan_policy"],
                   help="non-finite coordinates in the raw files: error (default, names file and line), "
                        "drop-frames, or interpolate (linear per joint and axis)")
    g.add_argument("--view", help="views: one view index (KS20 0-4, CASIA-B 0-10), or 'all' for one run per view")
    g.add_argument("--probe_type", "--probe-type", dest="probe_type",
                   help="probe/gallery pair(s) to evaluate, e.g. nm.nm, or 'all' (default: every pair of the preset)")
    g.add_argument("--short-walks", choices=CHOICES["data.short_walks"],
                   help="walks too short for one window: skip them (default; counted in the reports) or error")
    g.add_argument("--source", choices=CHOICES["data.source"],
                   help="raw dataset files (default), the CAGE authors' preprocessed npy layout, or the successors' "
                        "(SPC-MGR/TranSG/MoCos Preprocess.py: train_npy_data/, test_npy_data/<split>/); "
                        "--root holds Datasets/")
    g.add_argument("--pg-unit", choices=CHOICES["retrieval.unit"],
                   help="probe/gallery scoring unit: sequence (each f-frame subsequence, the literature's protocol), "
                        "walk (mean of a walk's windows), or both (default)")
    g.add_argument("--sequence-feature", choices=CHOICES["retrieval.sequence_feature"],
                   help="window feature of the per-subsequence unit: ap (default; the mean of the context vectors "
                        "over the f steps, measured higher on KGBD over 3 splits) or sc (the vectors concatenated)")
    g.add_argument("--split-seeds", metavar="S1,S2,...",
                   help="probe/gallery: one run per seeded split (OUT/split_<s>/, encoders retrained per split), "
                        "then mean ± std")
    g = ap.add_argument_group("encoder (reference options)")
    g.add_argument("--method", choices=CHOICES["encoder.method"], help="cage (contrastive, default) or age")
    g.add_argument("--model", choices=CHOICES["encoder.model"], help="pretext task")
    g.add_argument("--attention", choices=CHOICES["encoder.attention"],
                   help="locality-aware (LA) or basic (BA) attention; LA's target is the anti-diagonal one for "
                        "every pretext task, also prediction and sorting, as in the reference (docs/model.md)")
    g.add_argument("--t", type=float, dest="temperature", help="contrastive temperature (preset default)")
    g.add_argument("--epochs", type=int, help="encoder epochs (preset default)")
    g = ap.add_argument_group("recognition network")
    g.add_argument("--manner", choices=CHOICES["rn.manner"], help="RN input: ap (per step) or sc (per window)")
    g.add_argument("--rn-epochs", type=int, help="RN epochs (preset default)")
    g.add_argument("--select-on-test", action="store_true",
                   help="choose the RN epoch on TEST accuracy, as the reference code does; probe/gallery: also the "
                        "encoder milestone with the best probe Rank-1, as the successors' code does (labelled "
                        "optimistic in reports)")
    g.add_argument("--report-both", action="store_true", help="report validation- and test-selected epochs")
    g.add_argument("--paper-like", action="store_true",
                   help="also the reference's own RN for a like-for-like row: trained on train + validation walks, "
                        "epoch chosen on TEST, 128-window batches (labelled optimistic)")
    g = ap.add_argument_group("training progress")
    g.add_argument("--milestones", metavar="E1,E2,...",
                   help="encoder epochs at which the encoders are kept and the run's protocol is evaluated "
                        "(results_by_epoch.md; the final epoch is always one)")
    g.add_argument("--monitor-every", type=int, metavar="N",
                   help="every N encoder epochs, nearest-neighbour Rank-1 of validation walks against training "
                        "walks (losses CSV, TensorBoard, progress bar; 0: off; --set monitor_windows=32 windows "
                        "per walk)")
    g = ap.add_argument_group("run")
    g.add_argument("--seed", type=int, help="random seed (default 0)")
    g.add_argument("--seeds", metavar="S1,S2,...",
                   help="several seeds: one run folder each (OUT/seed_<s>/), encoders trained together as one "
                        "batched computation, then a mean ± std table (OUT/results.md)")
    g.add_argument("--device", help="cpu, cuda, cuda:N, or a GPU index like the reference's --gpu")
    g.add_argument("--reference-quirks", action="store_true",
                   help="reproduce the reference code's accidental behaviour (for comparisons only)")
    g.add_argument("--config", help="a YAML file of overrides (same sections as the presets)")
    g.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any option, e.g. --set encoder.hidden=128 (repeatable)")
    g.add_argument("--out", help="run folder (default: runs/<dataset>_<method>_<model>_...)")
    g.add_argument("--resume", action="store_true",
                   help="continue the run in --out with its saved configuration (rerunning the same command "
                        "continues it too; a different configuration is refused without --resume)")
    g.add_argument("--checkpoint-minutes", type=float,
                   help="resume checkpoints at every epoch end and, within an epoch, after this many minutes "
                        "(default 10; 0: epoch ends only)")
    g.add_argument("--threads", type=int,
                   help="CPU threads for torch (default: torch's, usually the core count; where other jobs keep "
                        "cores busy, fewer threads are faster: docs/performance.md, 'Threads beside busy cores')")
    g.add_argument("--no-progress", action="store_true", help="no progress bars")


def _config_from_args(args: argparse.Namespace):
    from .config import build_config, load_yaml_file, parse_set

    named = {
        "data": {"root": args.root, "cache": args.cache, "length": args.length, "protocol": args.protocol,
                 "split_seed": args.split_seed, "persons": args.persons, "view": args.view,
                 "source": args.source, "nan_policy": args.nan_policy, "short_walks": args.short_walks},
        "encoder": {"method": args.method, "model": args.model, "attention": args.attention,
                    "temperature": args.temperature, "epochs": args.epochs},
        "rn": {"manner": args.manner, "epochs": args.rn_epochs},
        "retrieval": {"unit": args.pg_unit, "sequence_feature": args.sequence_feature},
        "seed": args.seed, "device": args.device, "checkpoint_minutes": args.checkpoint_minutes,
        "threads": args.threads, "monitor_every": args.monitor_every,
        "milestones": args.milestones.split(",") if args.milestones else None,
    }
    if args.select_on_test:
        named["rn"]["select"] = "test"
        named["retrieval"]["select_on_test"] = True  # probe/gallery: the best-probe-Rank-1 milestone
    if args.report_both:
        named["rn"]["report_both"] = True
    if args.paper_like:
        named["rn"]["paper_like"] = True
    if args.reference_quirks:
        named["reference_quirks"] = True
    if args.no_progress:
        named["progress"] = False
    if args.resume:
        named["resume"] = True
    clean = {k: ({kk: vv for kk, vv in v.items() if vv is not None} if isinstance(v, dict) else v)
             for k, v in named.items() if v is not None}
    overrides = [load_yaml_file(args.config)] if args.config else []
    overrides += [clean, parse_set(args.set)]
    cfg = build_config(args.dataset, overrides)
    if args.probe_type and args.probe_type != "all":
        _select_pairs(cfg, args.probe_type)
    return cfg


def _select_pairs(cfg, wanted: str) -> None:
    from .errors import ConfigError

    names = [p["name"] for p in cfg.data.pairs]
    keep = [w.strip() for w in wanted.split(",") if w.strip()]
    unknown = [w for w in keep if w not in names]
    if unknown or not names:
        raise ConfigError(f"--probe_type {wanted}: valid pairs for --dataset {cfg.preset}: "
                          f"{', '.join(names) if names else 'none (this preset has no probe/gallery pairs)'}, all")
    cfg.data.pairs = [p for p in cfg.data.pairs if p["name"] in keep]


def _int_list(text: str, option: str) -> list[int]:
    from .errors import ConfigError

    items = [t.strip() for t in str(text).split(",") if t.strip()]
    if not items or not all(t.lstrip("-").isdigit() for t in items):
        raise ConfigError(f"{option} {text}: expected integers separated by commas, e.g. 0,1,2")
    return [int(t) for t in items]


def _default_out(cfg) -> Path:
    e = cfg.encoder
    label = cfg.data.dataset if cfg.preset == cfg.data.dataset.lower() else cfg.preset.upper()
    view = f"_view{cfg.data.view}" if cfg.data.view is not None else ""
    name = (f"{label}{view}_{e.method}_{e.model}_{e.attention}_f{cfg.data.length}_seed{cfg.seed}_"
            f"{cfg.data.protocol}")
    return Path("runs") / name


def cmd_train(args: argparse.Namespace, stages: tuple[str, ...] | None = None) -> int:
    from .pipeline import STAGES, TRAIN_FLAG, run
    from .reports.results import format_summary

    cfg = _config_from_args(args)
    if stages is None:
        stages = STAGES
        if args.train_flag is not None:
            stages = TRAIN_FLAG[args.train_flag]
        if args.stages:
            stages = tuple(s.strip() for s in args.stages.split(",") if s.strip())
    out = Path(args.out) if args.out else _default_out(cfg)
    if getattr(args, "split_seeds", None):  # several seeded probe/gallery splits
        from .multisplit import format_split_summary, run_split_seeds

        result = run_split_seeds(cfg, out, _int_list(args.split_seeds, "--split-seeds"), stages)
        print(format_split_summary(result))
        print(f"run folder: {out}  (results.md; one run per split in split_<s>/)")
        return 0
    if getattr(args, "seeds", None):
        from .pipeline import run_seeds
        from .reports.results import format_seed_summary

        seeds = _int_list(args.seeds, "--seeds")
        if not args.out:
            out = out.with_name(out.name.replace(f"_seed{cfg.seed}_", f"_seeds{'-'.join(map(str, seeds))}_"))
        result = run_seeds(cfg, out, seeds, stages)
        print(format_seed_summary(result))
        print(f"run folder: {out}  (results.md; one run per seed in seed_<s>/)")
        return 0
    result = run(cfg, out, stages)
    print(format_summary(result))
    print(f"run folder: {out}  (results.md, results.json, plots/)")
    return 0


def cmd_train_encoder(args: argparse.Namespace) -> int:
    from .pipeline import apply_cpu_settings, prepare, run_encoders
    from .device import resolve_device
    from .io import write_json

    from .runstate import check_data, claim_run_folder

    cfg = _config_from_args(args)
    out = Path(args.out) if args.out else _default_out(cfg)
    cfg = claim_run_folder(cfg, out)  # refuses a folder that holds another configuration's run
    apply_cpu_settings(cfg)
    write_json(out / "config.json", cfg.to_dict())
    p = prepare(cfg, out / "split.json")
    check_data(out, cfg, p.windows)   # a moved dataset: the same content, or refused
    device = resolve_device(cfg.device)
    for epoch in cfg.milestones[:-1]:  # kept in encoders/epoch_<E>/; `train --stages rn,evaluate` scores them
        run_encoders(cfg, p, out, device, until=epoch)
    info = run_encoders(cfg, p, out, device)
    for tag, i in info.items():
        f = i["final"]
        print(f"{tag}: {i['windows']} windows, {i['seconds']:.1f} s; final epoch: reconstruction "
              f"{f.get('reconstruction', 0):.4g}, attention {f.get('attention', 0):.4g}, "
              f"contrastive {f.get('contrastive', 0):.4g}")
    print(f"encoders saved in {out / 'encoders'}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .errors import ConfigError
    from .pipeline import evaluate_run
    from .reports.results import format_summary
    from .runs import best_run, resolve_run_dir

    if args.best_model:
        if not args.dataset:
            raise ConfigError("--best_model needs --dataset (e.g. --dataset KGBD --best_model rev_rec)")
        info, why = best_run(args.runs, args.dataset, args.best_model)
        run_dir = info.path
        print(f"{run_dir}: {why}")
    elif args.RN_dir:
        run_dir = resolve_run_dir(args.RN_dir, args.runs)
    elif args.run_dir:
        run_dir = Path(args.run_dir)
    else:
        raise ConfigError("give a run folder, --RN_dir NAME, or --dataset D --best_model M")
    result = evaluate_run(run_dir, device=args.device, progress=not args.no_progress, root=args.root,
                          cache=args.cache)
    print(format_summary(result))
    print(f"reports rewritten in {run_dir}")
    return 0


def cmd_make_fixture(args: argparse.Namespace) -> int:
    from .data.fixtures import write_fixture, write_reference_fixture

    if args.reference_npy:
        root = write_reference_fixture(args.dataset, args.out, length=args.length, persons=args.persons,
                                       seed=args.seed, view=args.view)
        print(f"wrote the authors' npy layout of {args.dataset} (f = {args.length}) under {root}")
    else:
        root = write_fixture(args.dataset, args.out, persons=args.persons, seed=args.seed)
        print(f"wrote a {args.persons}-person {args.dataset} fixture in its raw layout: --root {root}")
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    import numpy as np

    from .config import build_config, parse_set
    from .data.datasets import default_cache_dir
    from .io import save_npz
    from .pipeline import prepare

    ov = {"data": {k: v for k, v in {"root": args.root, "cache": args.cache, "length": args.length,
                                     "clip": args.clip, "protocol": args.protocol,
                                     "split_seed": args.split_seed, "short_walks": args.short_walks}.items()
                   if v is not None}}
    cfg = build_config(args.dataset, [ov, parse_set(args.set)])
    cfg.progress = not args.no_progress
    d = cfg.data
    out = Path(args.out) if args.out else default_cache_dir() / d.dataset.lower() / "prepared"
    tag = f"f{d.length}_clip{d.clip}_{d.normalise}"
    p = prepare(cfg, out / f"split_{d.protocol}_seed{d.split_seed}.json")
    w = p.windows
    save_npz(out / f"windows_{tag}.npz", data=w.data, label=w.label, walk=w.walk, position=w.position,
             persons=np.array(w.persons), walks=np.array(w.walks))
    s = p.summary
    print(f"{d.dataset}: {s['persons']} persons, {s['walks']} walks, {s['frames']} frames, "
          f"{s['windows']} windows of {d.length} frames (clip {d.clip})")
    for name in p.manifest["splits"]:
        print(f"  {name:<8} {s['walks_per_split'][name]:>5} walks {s['windows_per_split'][name]:>7} windows")
    if s.get("excluded"):
        ex = s["excluded"]
        print(f"  left out: {ex['short_walks']} short walk(s), {ex['persons_dropped']} person(s) with too few walks")
    print(f"wrote {out / f'windows_{tag}.npz'} and {out / f'split_{d.protocol}_seed{d.split_seed}.json'}")
    return 0


def cmd_pack(args: argparse.Namespace) -> int:
    import time

    from .config import build_config, parse_set
    from .data.datasets import load_sequences
    from .data.pack import SUFFIX, write_pack

    if not args.out.endswith(SUFFIX):
        from .errors import ConfigError

        raise ConfigError(f"--out {args.out}: a pack file name ends in {SUFFIX}")
    ov = {"data": {k: v for k, v in {"root": args.root, "cache": args.cache, "nan_policy": args.nan_policy}.items()
                   if v is not None}}
    cfg = build_config(args.dataset, [ov, parse_set(args.set)])
    t0 = time.perf_counter()
    seqs = load_sequences(cfg.data, progress=not args.no_progress)
    header = write_pack(seqs, args.out, cfg.data.dataset, quantum=args.quantum, root=cfg.data.root,
                        reader=f"skelreid {cfg.data.dataset} reader")
    size = Path(args.out).stat().st_size
    print(f"{cfg.data.dataset}: {header['walks']} walks, {header['frames']} frames packed into {args.out} "
          f"({size / 1e6:.1f} MB, quantum {args.quantum:g}, {header['dtype']} steps, "
          f"{time.perf_counter() - t0:.0f} s); use it as --root {args.out}")
    return 0


def cmd_model_size(args: argparse.Namespace) -> int:
    from .models.size import format_model_size, model_size

    d = model_size(num_joints=args.joints, length=args.length, hidden=args.hidden,
                   contrastive=args.method == "cage", num_models=3 if args.model == "rev_rec_plus" else 1)
    print(format_model_size(d))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    argv = ["train", "--dataset", "synthetic", "--out", args.out, "--report-both"]
    if args.no_progress:
        argv.append("--no-progress")
    print("skelreid demo: CAGE (Rev. Rec., LA) on the embedded synthetic walkers, then the recognition network.")
    return main(argv)


def _load_model(args: argparse.Namespace):
    from .inference import load

    return load(args.run_dir, device=args.device or "cpu")


def _embed_data(args: argparse.Namespace, model, windows: bool = False):
    """The walks of ``--root`` / ``--dataset`` / ``--split``, embedded with ``model``."""
    from .inference import read_walks

    progress = not args.no_progress
    seqs, where = read_walks(model, args.root, args.dataset, args.split, progress=progress)
    return model.embed_sequences(seqs, windows=windows, progress=progress, where=where)


def cmd_embed(args: argparse.Namespace) -> int:
    from .inference import check_output, write_embeddings

    check_output(args.out)
    model = _load_model(args)
    e = _embed_data(args, model, windows=args.windows)
    path = write_embeddings(args.out, e, model)
    print(f"wrote {len(e)} {e.level} embedding(s) of {e.features.shape[1]} values "
          f"({len(set(e.walk.tolist()))} walk(s) of {len(set(e.person.tolist()))} person(s)) to {path}")
    return 0


def cmd_enrol(args: argparse.Namespace) -> int:
    import numpy as np

    from .gallery import Gallery

    model = _load_model(args)
    path = Path(args.gallery)
    gallery = Gallery.load(path) if path.exists() else None
    if gallery is not None:
        model.check_gallery(gallery, path)
    e = _embed_data(args, model)
    base = gallery if gallery is not None else Gallery(np.zeros((0, e.features.shape[1]), np.float32), [], [], [],
                                                      model.fingerprint, model.info)
    merged, added, skipped = base.extend(e.features, e.person, e.walk, e.source)
    if added:
        merged.save(path)
    what = "created" if gallery is None else "extended"
    print(f"{what} {path}: enrolled {added} walk(s); {skipped} already there (same walk id and source) were "
          f"skipped; the gallery holds {merged.describe()}")
    return 0


def cmd_identify(args: argparse.Namespace) -> int:
    from .errors import ConfigError
    from .gallery import Gallery, calibrate_threshold
    from .inference import identify_features, top1_accuracy, write_ranks_csv

    if args.calibrate and args.far is None:
        raise ConfigError("--calibrate needs --far (the false-accept rate to allow, e.g. --far 0.01)")
    if args.far is not None and not args.calibrate:
        raise ConfigError("--far is the target of --calibrate; to identify with a threshold use --threshold")
    model = _load_model(args)
    path = Path(args.gallery)
    gallery = Gallery.load(path)
    model.check_gallery(gallery, path)
    video = None
    if args.video:
        if args.calibrate or args.root or args.split:
            raise ConfigError("--video identifies the people of one clip; it goes with neither --root, --split "
                              "nor --calibrate")
        e, video = _video_embeddings(args, model)
    else:
        e = _embed_data(args, model)
    if args.calibrate:
        info = calibrate_threshold(e.features, e.person, args.far)
        info["data"] = {"root": args.root, "dataset": args.dataset, "split": args.split}
        gallery.calibrated(info).save(path)
        gar = info["genuine_accept_rate"]
        print(f"calibrated on {info['walks']} labelled walk(s) of {info['persons']} person(s): "
              f"{info['genuine_pairs']} genuine and {info['impostor_pairs']} impostor pair(s)")
        print(f"threshold {info['threshold']!r}: false-accept rate {info['false_accept_rate']:.4%} "
              f"(<= {args.far}), genuine-accept rate {'n/a' if gar is None else f'{gar:.2%}'}; stored in {path}")
        return 0
    threshold = args.threshold if args.threshold is not None else gallery.threshold
    if args.threshold is not None:
        print(f"threshold {threshold!r} (--threshold): farther probes are unknown")
    elif threshold is not None:
        print(f"threshold {threshold!r} (calibrated at FAR {gallery.calibration.get('far')}): "
              "farther probes are unknown")
    results = identify_features(e.features, gallery, args.top_k, threshold, walks=e.walk, sources=e.source,
                                persons=e.person)
    width = max((len(r.walk or "") for r in results), default=0)
    for r in results:
        ranks = ", ".join(f"{name} {d:.4g}" for name, d in r.ranks)
        print(f"{r.walk:<{width}}  -> {r.identity:<8}  {ranks}")
    acc, n = top1_accuracy(results)
    if acc is not None:
        print(f"top-1 accuracy: {acc * 100:.2f}% ({n} probes with an enrolled identity)")
    if threshold is not None:
        unknown = sum(not r.known for r in results)
        print(f"{unknown} of {len(results)} probe(s) unknown at threshold {threshold:.6g}")
    if args.out:
        print(f"ranks written to {write_ranks_csv(args.out, results)}")
    if video is not None:
        from .video.extract import walk_sequences

        by_walk = {r.walk: r.identity for r in results}
        labels = {s.meta["track"]: f"t{s.meta['track']} {by_walk.get(s.walk_id, 'too short')}"
                  for s in walk_sequences(video)}
        _video_pictures(args, video, False, labels)
    return 0


def _video_settings(args: argparse.Namespace, layout: str = "mediapipe_33", length: int = 6, clip: int = 10):
    from .video.extract import ExtractSettings

    length = args.length if getattr(args, "length", None) is not None else length
    clip = args.clip if getattr(args, "clip", None) is not None else clip
    return ExtractSettings(detector=args.detector, detect_width=args.detect_width,
                           layout=getattr(args, "layout", None) or layout,
                           start=args.start, frames=args.frames,
                           min_frames=args.min_frames if args.min_frames else length + 2 * clip,
                           min_visible=args.min_visible, track_single=not args.static_pose,
                           followers=args.followers)


def _check_video_pictures(args: argparse.Namespace) -> None:
    """Refuse picture names of the wrong kind before any video is read."""
    from .errors import ConfigError

    if getattr(args, "overlay", None) and Path(args.overlay).suffix.lower() not in (".mp4", ".avi"):
        raise ConfigError(f"--overlay {args.overlay}: the overlay is a video; name it .mp4 (or .avi)")
    if getattr(args, "sheet", None) and Path(args.sheet).suffix.lower() != ".png":
        raise ConfigError(f"--sheet {args.sheet}: the contact sheet is a PNG; name it .png")


def _video_pictures(args: argparse.Namespace, res, several: bool, labels: dict | None = None) -> None:
    """``--overlay`` / ``--sheet`` for one video's result (one file per video when there are several)."""
    from .video.overlay import contact_sheet, write_overlay

    for opt, write in (("overlay", write_overlay), ("sheet", contact_sheet)):
        target = getattr(args, opt, None)
        if not target or not res.items:
            continue
        target = Path(target)
        if several:
            target = target.with_name(f"{target.stem}.{res.entry.rel.replace('/', '_')}{target.suffix}")
        print(f"{opt}: {write(res, target, labels)}")


def cmd_extract(args: argparse.Namespace) -> int:
    from .console import note
    from .video.extract import extract, find_videos

    settings = _video_settings(args)
    settings.check()
    _check_video_pictures(args)
    several = len(find_videos(args.source)) > 1
    summary = extract(args.source, args.out, settings, progress=not args.no_progress, log=note,
                      on_result=lambda res: _video_pictures(args, res, several), pose_threads=args.pose_threads)
    rate = summary["frames"] / summary["seconds"] if summary["seconds"] else 0.0
    per_person = summary["person_frames"] / summary["seconds"] if summary["seconds"] else 0.0
    print(f"{summary['videos']} video(s): {summary['walks']} walk(s) written to {args.out}"
          + (f", {summary['done_before']} already done" if summary["done_before"] else "")
          + (f", {summary['without_walks']} without a walk" if summary["without_walks"] else "")
          + (f"; {summary['frames']} frames at {rate:.1f} frames/s ({per_person:.1f} person-frames/s)"
             if summary["frames"] else ""))
    if summary["frames"]:
        from .video.extract import format_stages

        print(format_stages(summary["stage_seconds"], summary["frames"]))
    if summary["walks"] or summary["done_before"]:
        print(f"use them with --dataset generic --root {args.out} (layout {settings.layout})")
    return 0


def _video_embeddings(args: argparse.Namespace, model):
    """``identify --video``: the clip's tracks extracted, embedded; the overlay labelled afterwards."""
    from .data.filtering import exclude_unusable
    from .errors import DataError
    from .console import note
    from .video.extract import extract_video, find_videos, walk_sequences

    d = model.cfg.data
    layout = "casia_b_14" if model.layout == "casia_b_14" else "mediapipe_33"
    settings = _video_settings(args, layout, d.length, d.clip)
    settings.check()
    _check_video_pictures(args)
    entries = find_videos(args.video)
    if len(entries) != 1:
        raise DataError(args.video, f"--video takes one video file; this folder holds {len(entries)}")
    res = extract_video(entries[0], settings, progress=not args.no_progress, pose_threads=args.pose_threads)
    note(f"{args.video}: {res.frames} frames at {res.fps:.1f} frames/s, {res.tracks} track(s) -> "
         f"{len(res.walks)} walk(s) of at least {settings.min_frames} frames")
    seqs = walk_sequences(res)
    if not seqs:
        _video_pictures(args, res, False)
        raise DataError(args.video, f"no person tracked for {settings.min_frames} frames in a row "
                                    f"({res.frames} frames read, {res.detections} person-frames)")
    seqs = model.adopt(seqs, str(args.video))
    seqs, _ = exclude_unusable(seqs, d.length, d.clip, "skip", needed=1)
    e = model.embed_sequences(seqs, progress=not args.no_progress, where=str(args.video))
    return e, res


def _add_inference_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", metavar="RUN_DIR", help="a trained run folder")
    p.add_argument("--root", help="the walks' folder (not needed for the embedded synthetic dataset)")
    p.add_argument("--dataset", help="the reader of --root (default: the run's own dataset), e.g. generic, KGBD")
    p.add_argument("--split", help="keep only the walks of this split of RUN_DIR/split.json (e.g. gallery, "
                                   "probe; several: gallery,probe)")
    p.add_argument("--device", help="cpu (default), cuda or cuda:N")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _add_video_options(p: argparse.ArgumentParser, extract: bool) -> None:
    from .video.detect import DETECTORS, DetectorSettings
    from .video.extract import LAYOUTS_OUT

    g = p.add_argument_group("video")
    g.add_argument("--detector", default="background", choices=DETECTORS,
                   help="people finder: background (MOG2 background subtraction, fixed camera; default) or hog "
                        "(OpenCV's HOG people detector, moving cameras)")
    g.add_argument("--detect-width", type=int, default=DetectorSettings.detect_width, metavar="PIXELS",
                   help="background subtraction on the frame shrunk by a whole factor to at most this width, "
                        "faster for some loss of walk frames (docs/video.md; default 0: full size); boxes and "
                        "poses stay at full size")
    g.add_argument("--static-pose", action="store_true",
                   help="pose every crop afresh, also when the frame holds one person (default: MediaPipe's "
                        "tracking mode follows a lone person, about twice as fast)")
    g.add_argument("--followers", type=int, default=2, choices=[1, 2],
                   help="tracking-mode estimators that take a lone person's frames in turn (default 2: two frames "
                        "posed at once, each estimator following every other frame; 1: one sees every frame)")
    g.add_argument("--pose-threads", type=int, metavar="N",
                   help="threads posing the people of a frame side by side (default: one per core, at most 4); "
                        "the walks do not depend on it")
    g.add_argument("--start", type=int, default=0, help="first frame to read (default 0)")
    g.add_argument("--frames", type=int, help="read at most this many frames per video (default: all)")
    if extract:
        g.add_argument("--layout", default=LAYOUTS_OUT[0], choices=LAYOUTS_OUT,
                       help="joints written: mediapipe_33 (default, 33 landmarks) or casia_b_14 (for the CASIA-B "
                            "presets; neck = shoulder midpoint)")
        g.add_argument("--length", type=int, help="window length the walks are for (default 6)")
        g.add_argument("--clip", type=int, help="frames dropped at each end of a walk (default 10)")
    g.add_argument("--min-frames", type=int, help="frames a track needs to become a walk (default: length + 2 x clip)")
    g.add_argument("--min-visible", type=float, default=0.5,
                   help="reject a pose with fewer landmarks visible than this fraction (default 0.5)")
    g.add_argument("--overlay", metavar="FILE.mp4", help="also write the video with each track's box, id"
                   + ("" if extract else ", identity") + " and skeleton drawn")
    g.add_argument("--sheet", metavar="FILE.png", help="also write a PNG contact sheet of 6 sampled frames, drawn")
    if extract:
        g.add_argument("--no-progress", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    from .config import CHOICES
    from .version import __version__

    ap = argparse.ArgumentParser(prog="skelreid", description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--version", action="version", version=f"skelreid {__version__}")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="the whole pipeline: encoders -> features -> RN -> evaluation -> reports")
    _add_run_options(p)
    p.add_argument("--train_flag", "--train-flag", type=int, choices=[0, 1, 2],
                   help="reference-style stages: 1 all, 0 RN + evaluation on existing encoders, 2 evaluation only")
    p.add_argument("--stages", help="comma-separated subset of encoder,rn,evaluate")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("train-encoder", help="train only the self-supervised encoders")
    _add_run_options(p)
    p.set_defaults(func=cmd_train_encoder)

    p = sub.add_parser("evaluate", help="re-print and re-plot a finished run from its saved weights")
    p.add_argument("run_dir", nargs="?", help="a run folder")
    p.add_argument("--dataset", help="with --best_model: the dataset preset")
    p.add_argument("--best_model", "--best-model", dest="best_model",
                   choices=[*CHOICES["encoder.model"], "age"],
                   help="evaluate the best finished run of --dataset with this pretext task (chosen on validation)")
    p.add_argument("--RN_dir", "--rn-dir", dest="RN_dir", help="evaluate the run folder of this name (under --runs)")
    p.add_argument("--runs", default="runs", help="where run folders are (default: runs)")
    p.add_argument("--device")
    p.add_argument("--root", help="where the run's data is now, if it moved (its content must be the run's)")
    p.add_argument("--cache", help="parsed-data cache folder, if it moved")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("prepare", help="read a raw dataset, write windows and split manifests to a cache folder")
    p.add_argument("--dataset", required=True)
    p.add_argument("--root")
    p.add_argument("--cache")
    p.add_argument("--length", type=int)
    p.add_argument("--clip", type=int)
    p.add_argument("--protocol", choices=CHOICES["data.protocol"])
    p.add_argument("--split-seed", type=int)
    p.add_argument("--short-walks", choices=CHOICES["data.short_walks"], help="walks too short for one window: skip or error")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--out", help="output folder (default: <cache>/<dataset>/prepared)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser("pack", help="write a dataset's parsed walks into one compact file that --root accepts")
    p.add_argument("--dataset", required=True)
    p.add_argument("--root", help="the raw data folder (as for train)")
    p.add_argument("--cache")
    p.add_argument("--out", required=True, help="the pack file (name ends in .skpack)")
    p.add_argument("--quantum", type=float, default=1e-3,
                   help="coordinate step in the data's unit (default 0.001: 1 mm for metres)")
    p.add_argument("--nan-policy", choices=CHOICES["data.nan_policy"])
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_pack)

    p = sub.add_parser("make-fixture", help="write a small generated dataset in a real on-disk layout (for trying presets)")
    p.add_argument("dataset", help="BIWI, IAS, KS20, CASIA_B, KGBD (with --reference-npy also CASIA_B_match)")
    p.add_argument("out", help="output folder")
    p.add_argument("--persons", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--reference-npy", action="store_true", help="write the authors' preprocessed npy layout instead")
    p.add_argument("--length", type=int, default=6, help="window length of the npy layout")
    p.add_argument("--view", type=int, help="view folder of the npy layout (KS20 0-4 optional, CASIA_B 0-10)")
    p.set_defaults(func=cmd_make_fixture)

    p = sub.add_parser("model-size", help="parameters and FLOPs per window, beside the paper's")
    p.add_argument("--joints", type=int, default=20)
    p.add_argument("--length", type=int, default=6)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--method", choices=CHOICES["encoder.method"], default="cage")
    p.add_argument("--model", choices=["rev_rec", "rev_rec_plus"], default="rev_rec")
    p.set_defaults(func=cmd_model_size)

    p = sub.add_parser("demo", help="the whole pipeline on the embedded synthetic walkers (about a minute)")
    p.add_argument("--out", default="runs/demo")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("embed", help="walk-level (or --windows: window-level) gait embeddings of walks, to .npz/.parquet")
    _add_inference_options(p)
    p.add_argument("--out", required=True, help="output file: .npz, or .parquet (needs pyarrow)")
    p.add_argument("--windows", action="store_true", help="one row per window instead of one per walk")
    p.set_defaults(func=cmd_embed)

    p = sub.add_parser("enrol", help="add the walks of known persons to a gallery file (created if missing)")
    _add_inference_options(p)
    p.add_argument("--gallery", required=True, help="the gallery file (.npz)")
    p.set_defaults(func=cmd_enrol)

    p = sub.add_parser("identify", help="who is each walk: nearest enrolled identities, or 'unknown' "
                                        "(--calibrate: choose the threshold instead)")
    _add_inference_options(p)
    p.add_argument("--gallery", required=True, help="a gallery file made by `skelreid enrol` with this model")
    p.add_argument("--top-k", type=int, default=5, help="identities listed per probe (default 5)")
    p.add_argument("--threshold", type=float, help="distance beyond which a probe is unknown "
                                                   "(default: the gallery's calibrated threshold, if any)")
    p.add_argument("--out", help="also write the ranks to this CSV file")
    p.add_argument("--calibrate", action="store_true",
                   help="do not identify: choose the threshold at --far on labelled walks and store it in the gallery")
    p.add_argument("--far", type=float, help="with --calibrate: the false-accept rate to allow, e.g. 0.01")
    p.add_argument("--video", metavar="CLIP", help="identify every person tracked in this video (extracted as by "
                                                   "`skelreid extract`, windows of the run's length)")
    _add_video_options(p, extract=False)
    p.set_defaults(func=cmd_identify)

    p = sub.add_parser("extract", help="video(s) -> one 3D skeleton walk per tracked person (generic format; "
                                       'needs pip install "skelreid[video]")')
    p.add_argument("source", metavar="VIDEO|FOLDER", help="a video, or a folder of them: <person>/<walk>.avi "
                                                          "labels walks; a CASIA-B tree keeps person, condition "
                                                          "and view; other videos give one identity per track")
    p.add_argument("--out", required=True, help="the walks folder (train/embed/enrol/identify read it with "
                                                "--dataset generic --root OUT)")
    _add_video_options(p, extract=True)
    p.set_defaults(func=cmd_extract)
    return ap


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except SkelreidError as exc:
        print(f"skelreid: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("skelreid: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
