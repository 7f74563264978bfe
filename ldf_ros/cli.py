"""`ldf-ros`: the command line of the package.

Each subcommand imports its implementation lazily so `ldf-ros --help` stays fast and a
missing optional dependency only affects the subcommand that needs it.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

from ldf_ros.config import (ConfigError, config_to_flat, default_config_path, load_config, package_root, parameter_docs,
                             resolve_path)


def comma_list(text: str) -> tuple[str, ...]:
    """'day, night,' -> ('day', 'night'): the form every list flag takes."""
    return tuple(item.strip() for item in text.split(",") if item.strip())


def _add_config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default=None, help="ROS 2 parameters YAML (default: config/fusion.yaml)")


def cmd_config(args: argparse.Namespace) -> int:
    """Validate a config file and print the resolved parameters."""
    cfg = load_config(args.config or default_config_path())
    docs = parameter_docs()
    flat = config_to_flat(cfg)
    if args.markdown:
        print(parameters_markdown(flat, docs))
        return 0
    for key, value in flat.items():
        print(f"{key} = {value!r}" + (f"    # {docs[key]}" if args.verbose else ""))
    return 0


def parameters_markdown(flat: dict, docs: dict) -> str:
    """The README's parameter table, generated so it cannot drift from the schema."""
    rows = ["| parameter | default | meaning (allowed) |", "|---|---|---|"]
    rows += [f"| `{k}` | `{v!r}` | {docs[k]} |" for k, v in flat.items()]
    return "\n".join(rows)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ldf-ros", description="LDFusion RGB-thermal fusion for ROS 2: tools.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, help_text, setup in _REGISTRY:
        p = sub.add_parser(name, help=help_text, description=help_text)
        setup(p)
    return parser


def _setup_config(p: argparse.ArgumentParser) -> None:
    _add_config_arg(p)
    p.add_argument("-v", "--verbose", action="store_true", help="show each parameter's description")
    p.add_argument("--markdown", action="store_true", help="print the parameter table in Markdown")
    p.set_defaults(func=cmd_config)


def cmd_synth(args: argparse.Namespace) -> int:
    """Generate synthetic RGB-thermal-depth sequences as folders and optionally bags."""
    from ldf_ros.synthetic.sequence import SequenceSpec, write_folder

    spec = SequenceSpec(frames=args.frames, conditions=comma_list(args.conditions),
                        seed=args.seed, family=args.family, rgb_rate_hz=args.rgb_rate, thermal_rate_hz=args.thermal_rate,
                        thermal_offset_s=args.thermal_offset)
    for root in write_folder(spec, args.out):
        print(f"wrote {root}")
    if args.contact_sheet:
        from ldf_ros.synthetic.contact_sheet import contact_sheet
        print(f"wrote {contact_sheet(spec, args.contact_sheet)}")
    if args.bag:
        from ldf_ros.synthetic.bag import write_bag
        for cond in spec.conditions:
            path = write_bag(spec, cond, args.out / cond / "bag", storage=args.storage)
            print(f"wrote {path}")
    return 0


def _setup_synth(p: argparse.ArgumentParser) -> None:
    from pathlib import Path
    p.add_argument("--out", type=Path, required=True, help="output folder (one subfolder per condition)")
    p.add_argument("--frames", type=int, default=10, help="RGB frames per condition")
    p.add_argument("--conditions", default="day,night,fog", help="comma list of day,dusk,night,fog,glare,dense_fog,unlit_night")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--family", default="urban", help="scene family: urban, suburban, highway")
    p.add_argument("--rgb-rate", type=float, default=30.0, help="RGB rate (Hz)")
    p.add_argument("--thermal-rate", type=float, default=30.0, help="thermal rate (Hz), e.g. 9")
    p.add_argument("--thermal-offset", type=float, default=0.0, help="thermal stamp offset (s)")
    p.add_argument("--bag", action="store_true", help="also write a ROS 2 bag per condition")
    p.add_argument("--storage", choices=["mcap", "sqlite3"], default="mcap")
    p.add_argument("--contact-sheet", type=Path, default=None, help="also write a PNG contact sheet here")
    p.set_defaults(func=cmd_synth)


def cmd_bench(args: argparse.Namespace) -> int:
    """Print measured timings as Markdown (record them in docs/BENCHMARKS.md with the command)."""
    from ldf_ros.evaluation import benchmarks
    if args.target == "synth":
        print(benchmarks.bench_synth(frames=args.repeats, thermal_size=tuple(args.thermal_size)))
    elif args.target == "models":
        size = tuple(int(v) for v in args.sizes.split(",")[-1].split("x"))
        print(benchmarks.bench_models(variants=tuple(v for v in args.variants.split(",") if v != "classical"), size=size,
                                      device=args.device, precisions=tuple(args.precisions.split(",")),
                                      repeats=args.repeats, threads=args.threads,
                                      backends=tuple(args.backends.split(",")),
                                      onnx_providers=comma_list(args.onnx_providers),
                                      references=dict(_named_command(r) for r in args.reference or [])))
    else:
        sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
        text, _ = benchmarks.bench_pipeline(variants=tuple(args.variants.split(",")), sizes=sizes, repeats=args.repeats,
                                            threads=args.threads, plot=args.plot, device=args.device,
                                            config=args.config)
        print(text)
        if args.plot:
            print(f"wrote {args.plot}")
    return 0


def _named_command(text: str) -> tuple[str, str]:
    name, sep, command = text.partition("=")
    if not sep or not name.strip() or not command.strip():
        raise ValueError(f"--reference {text!r}: expected NAME=COMMAND")
    return name.strip(), command


def _setup_bench(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", nargs="?", default="pipeline", choices=["pipeline", "models", "synth"],
                   help="pipeline: per-stage latency of the node's work (default); models: the networks alone "
                        "(caption embedding cached; last of --sizes); synth: world generation")
    p.add_argument("--repeats", type=int, default=10, help="measured runs after warm-up")
    p.add_argument("--variants", default="classical,student", help="pipeline: comma list of classical,student,teacher")
    p.add_argument("--sizes", default="320x256,640x512", help="pipeline: comma list of WxH")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    p.add_argument("--precisions", default="fp32", help="models: comma list of fp32,fp16 (fp16 on cuda only)")
    p.add_argument("--backends", default="torch", help="models: comma list of torch,onnxruntime (onnxruntime: the "
                                                       "fusion student and the depth networks)")
    p.add_argument("--onnx-providers", default="cpu", help="models: comma list of cpu,cuda,tensorrt for the "
                   "onnxruntime rows (a missing provider falls back; the row names the one that ran)")
    p.add_argument("--reference", action="append", metavar="NAME=COMMAND",
                   help="models: time a shell command beside the networks ({vi}, {ir}: the pair's PNGs, {out}: a "
                        "folder) and print its ratio to the fastest student row; repeatable")
    p.add_argument("--plot", default=None, help="pipeline: write the stage breakdown as PNG here")
    p.add_argument("--thermal-size", type=int, nargs=2, default=[320, 256], metavar=("W", "H"))
    p.add_argument("--config", default=None, help="pipeline: node parameters file to measure with (default: the "
                                                  "schema's defaults)")
    p.set_defaults(func=cmd_bench)


def cmd_eval(args: argparse.Namespace) -> int:
    """Evaluate fusion methods on a paired folder or on named domains: tables on stdout, files
    under --out."""
    from ldf_ros.data.paired import PairedFolder
    from ldf_ros.evaluation import fusion_report as fr
    from ldf_ros.runtime.classical_fusion import BASELINES

    methods = {}
    for item in comma_list(args.methods):
        name, _, path = item.partition("=")
        if path:
            methods[name] = _checkpoint_fusion_fn(path, args.config)
        elif name in BASELINES:
            methods[name] = BASELINES[name]
        elif name in ("student", "teacher"):
            methods[name] = _learned_fusion_fn(name, args.config)
        else:
            raise ValueError(f"unknown method {name!r}; available: {', '.join(BASELINES)}, student, teacher, NAME=CHECKPOINT")
    references = [item.partition("=") for item in comma_list(args.reference or "")]
    if any(not path for _, _, path in references):
        raise ValueError("--reference: expected NAME=FOLDER of fused outputs")
    if not methods and not references:
        raise ValueError("nothing to evaluate: give --methods or --reference")
    rank_method = list(methods)[-1] if methods else references[-1][0]
    if args.domains:
        domains = fr.load_domains(args.domains)
        if args.only:
            only = comma_list(args.only)
            unknown = set(only) - set(domains)
            if unknown:
                raise ValueError(f"--only: no domain {', '.join(sorted(unknown))} in {args.domains} "
                                 f"(it has {', '.join(domains)})")
            domains = {k: v for k, v in domains.items() if k in only}
        rows, per_domain_methods = {}, {}
        for name, folder in domains.items():
            refs = {r: fr.ReferenceOutputs(Path(p) / name if (Path(p) / name).is_dir() else Path(p))
                    for r, _, p in references}
            per_domain_methods[name] = {**methods, **refs}
            rows[name] = fr.evaluate_folder(folder, per_domain_methods[name], desc=name)
        per_domain = fr.write_domains_report(rows, domains, per_domain_methods, args.out, rank_method)
        print(fr.rank_table(per_domain))
    else:
        if args.vi is None or args.ir is None:
            raise ValueError("give --vi and --ir, or --domains FILE")
        folder = PairedFolder(args.vi, args.ir)
        all_methods = {**methods, **{r: fr.ReferenceOutputs(Path(p)) for r, _, p in references}}
        summary = fr.write_report(fr.evaluate_folder(folder, all_methods), folder, all_methods, args.out, rank_method)
        print(fr.markdown_table(summary))
        if len(summary) > 1:
            print("\nmean rank over the nine metrics: " + ", ".join(
                f"{m} {r:.2f}" for m, r in sorted(fr.mean_ranks(summary).items(), key=lambda kv: kv[1])))
    print(f"wrote {args.out}/report.md, summary.json, metrics and panels")
    return 0


def cmd_eval_directives(args: argparse.Namespace) -> int:
    """Each directive against none, per domain, on what it promises (and what it costs)."""
    from ldf_ros.evaluation.directive_report import evaluate_directives
    from ldf_ros.evaluation.fusion_report import load_domains

    overrides = {"model.fusion_weights": str(Path(args.model).resolve())} if args.model else {}
    pipes = {d: _pair_pipeline("student", args.config, {**overrides, "model.directive": d})
             for d in ("", "emphasize warm objects", "keep visible colors")}
    table = evaluate_directives(load_domains(args.domains), lambda vi, ir, d: pipes[d].process(vi, ir, None, None).fused,
                                args.out)
    print(table)
    print(f"wrote {args.out}/report.md and directives_<domain>.png")
    return 0


def cmd_eval_depth(args: argparse.Namespace) -> int:
    """Depth networks per condition on held-out synthetic streets (or synth folders)."""
    from ldf_ros.evaluation.depth_report import (depth_markdown, evaluate_depth, folder_samples, test_clip_samples,
                                                 worst_frames_markdown, write_depth_report)
    from ldf_ros.models.depth_net import load_depth_net
    from ldf_ros.runtime.depth import DepthPredictor

    if args.ordinal:
        return _eval_ordinal(args)
    predictors, paths = {}, {}
    for item in args.models.split(","):
        name, _, path = item.rpartition("=")
        net = load_depth_net(path)
        name = name or f"{net.cfg.modality}_{net.cfg.role}"
        predictors[name], paths[name] = DepthPredictor(net), path
    if args.rig:
        rows, examples = _eval_runtime_depth(args, predictors, paths)
    else:
        samples = (folder_samples(args.data) if args.data
                   else test_clip_samples(comma_list(args.conditions), cache_dir=args.cache_dir, hfov_deg=args.hfov))
        rows, examples = evaluate_depth(predictors, samples)
    summary, worst = write_depth_report(rows, examples, args.out)
    print(depth_markdown(summary))
    print()
    print(worst_frames_markdown(worst))
    print(f"wrote {args.out}/report.md, metrics.csv, summary.json, panel_*.png")
    return 0


def _eval_ordinal(args: argparse.Namespace) -> int:
    """--ordinal: WHDR of each branch and the published depth on human-labelled real pairs."""
    from ldf_ros.evaluation.ordinal import draw_sheets, evaluate_ordinal, load_pairs, summary_markdown

    pairs = load_pairs(args.ordinal)
    root = Path(args.root) if args.root else package_root().parent / "shared" / "datasets"
    if args.draw_only:
        written = draw_sheets(pairs, root, args.out)
        print(f"drew {len(pairs)} pairs on {len(written)} images in {args.out}")
        return 0
    vis, th = (args.models.split(",") + [""])[:2]
    weights = {"model.depth_visible_weights": str(Path(vis).resolve()), "model.depth_thermal_weights": str(Path(th).resolve())}
    import numpy as np
    pipe = _pair_pipeline("classical", args.config, weights, depth=True)
    if not (pipe.depth_visible and pipe.depth_thermal):
        raise ValueError(f"--ordinal needs a visible and a thermal depth model: {'; '.join(pipe.problems)}")

    def depths(rgb, ir):
        r = pipe.process(rgb, ir, None, None)
        out = {"visible branch": r.depth_visible, "thermal branch": r.depth_thermal, "published": r.depth}
        if r.depth_confidence is not None:
            out[f"published, confidence >= {args.min_confidence:g}"] = np.where(r.depth_confidence >= args.min_confidence,
                                                                                 r.depth, np.nan)
        return out

    result = evaluate_ordinal(pairs, root, depths, args.out, panel_method="published")
    print(summary_markdown(result["summary"]))
    print(f"wrote {args.out}/report.md, rows.csv, summary.json, worst_*.png")
    return 0


def _eval_runtime_depth(args: argparse.Namespace, predictors: dict, paths: dict):
    """--rig: the node's pipeline on the rig's raw camera images (one visible, one thermal model)."""
    from ldf_ros.evaluation.depth_report import evaluate_runtime_depth, rig_pipeline, test_rig_samples
    from ldf_ros.synthetic.rig import Rig

    by_modality = {p.modality: p for p in predictors.values()}
    if len(predictors) != 2 or set(by_modality) != {"visible", "thermal"}:
        raise ValueError("--rig evaluates the runtime's two branches: give one visible and one thermal model")
    weights = {f"model.depth_{p.modality}_weights": str(Path(paths[name]).resolve()) for name, p in predictors.items()}
    rig = Rig()
    pipe = rig_pipeline(rig, args.config, weights)
    samples = test_rig_samples(comma_list(args.conditions), frames=args.rig_frames, rig=rig,
                               cache_dir=Path(args.cache_dir).parent / "rig")
    return evaluate_runtime_depth(pipe, samples)


def _pair_pipeline(variant: str, config: str | None, overrides: dict | None = None, depth: bool = False):
    """The node's pipeline for pre-aligned image pairs (registration identity)."""
    from ldf_ros.runtime.pipeline import FusionPipeline
    cfg = load_config(config or default_config_path(),
                      {"model.variant": variant, "registration.mode": "identity", "outputs.depth": depth,
                       "outputs.points": False, "runtime.warmup_runs": 0, **(overrides or {})})
    pipe = FusionPipeline(cfg, log=lambda level, msg: print(f"[{level}] {msg}", file=sys.stderr))
    if pipe.variant != variant:
        raise ValueError(f"fusion variant {variant!r} could not be loaded: {'; '.join(pipe.problems)}")
    return pipe


def _learned_fusion_fn(variant: str, config: str | None, overrides: dict | None = None):
    pipe = _pair_pipeline(variant, config, overrides)
    return lambda vi, ir: pipe.process(vi, ir, None, None).fused


def _checkpoint_fusion_fn(path: str, config: str | None):
    """Any fusion checkpoint (a run's snapshot, an ablation): its role and text encoder come
    from the checkpoint itself, everything else from the parameters file."""
    from ldf_ros.models.checkpoint import read_checkpoint
    _, net_cfg, _ = read_checkpoint(path, "fusion")
    return _learned_fusion_fn(net_cfg["role"], config, {"model.fusion_weights": str(Path(path).resolve()),
                                                         "model.text_encoder": net_cfg["text"]["encoder"]})


def cmd_fuse(args: argparse.Namespace) -> int:
    """Fuse every pair of two folders; one color PNG per pair under the same file name."""
    import numpy as np
    from tqdm import tqdm

    from ldf_ros.data.paired import PairedFolder
    from ldf_ros.ops.visualize import colorize_depth, write_rgb_png

    folder = PairedFolder(args.vi, args.ir)
    pipe = _pair_pipeline(args.variant, args.config, {"model.directive": args.directive} if args.directive else None,
                          depth=args.depth)
    args.out.mkdir(parents=True, exist_ok=True)
    for i in tqdm(range(len(folder)), desc="fuse"):
        pair = folder.pairs[i]
        vi, ir = folder.load(i)
        res = pipe.process(vi, ir, None, None)
        write_rgb_png(args.out / f"{pair.name}.png", res.fused)
        if args.depth and res.depth is not None:
            np.save(args.out / f"{pair.name}_depth.npy", res.depth)
            write_rgb_png(args.out / f"{pair.name}_depth.png", colorize_depth(res.depth))
        if args.caption:
            (args.out / f"{pair.name}_caption.txt").write_text(res.caption + "\n")
    print(f"wrote {len(folder)} fused images to {args.out} (variant {pipe.variant})")
    return 0


def _setup_fuse(p: argparse.ArgumentParser) -> None:
    from pathlib import Path
    p.add_argument("--vi", type=Path, required=True, help="folder of visible images")
    p.add_argument("--ir", type=Path, required=True, help="folder of infrared images (same file names)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--variant", choices=["student", "teacher", "classical"], default="student")
    p.add_argument("--config", default=None, help="parameters file (model files, text encoder)")
    p.add_argument("--depth", action="store_true", help="also write depth (.npy meters and a colored .png)")
    p.add_argument("--caption", action="store_true", help="also write the caption (.txt)")
    p.add_argument("--directive", choices=["emphasize warm objects", "keep visible colors"],
                   help="what the fusion should favour (model.directive)")
    p.set_defaults(func=cmd_fuse)


def _setup_eval(p: argparse.ArgumentParser) -> None:
    from pathlib import Path
    sub = p.add_subparsers(dest="what", metavar="WHAT")
    sub.required = True
    f = sub.add_parser("fusion", help="fusion metrics of methods over paired vi/ir folders")
    f.add_argument("--vi", type=Path, help="folder of visible images")
    f.add_argument("--ir", type=Path, help="folder of infrared images (same file names)")
    f.add_argument("--domains", type=Path, help="YAML of named domains instead of --vi/--ir "
                   "(e.g. config/fusion_domains.yaml): a table per domain and the mean-rank view")
    f.add_argument("--only", help="with --domains: comma list of the domains to evaluate (default: all)")
    f.add_argument("--reference", help="comma list of NAME=FOLDER: another method's fused outputs, named "
                   "like the pairs (with --domains, FOLDER/<domain>/ when it exists)")
    f.add_argument("--out", type=Path, default=Path("out/eval_fusion"), help="report folder")
    f.add_argument("--methods", default="average,max,laplacian", help="comma list (may be empty) of average, max, laplacian, student, teacher, NAME=CHECKPOINT")
    f.add_argument("--config", default=None, help="parameters file for student/teacher (model files)")
    f.set_defaults(func=cmd_eval)
    r = sub.add_parser("directives", help="each directive against none, per domain (warm contrast, visible error)")
    r.add_argument("--domains", type=Path, default=Path("config/fusion_domains.yaml"), help="YAML of named domains")
    r.add_argument("--model", help="fusion student checkpoint (default: the configured one)")
    r.add_argument("--config", default=None, help="parameters file")
    r.add_argument("--out", type=Path, default=Path("out/eval_directives"), help="report folder")
    r.set_defaults(func=cmd_eval_directives)
    d = sub.add_parser("depth", help="depth metrics per condition (AbsRel, SqRel, RMSE, RMSE log, deltas)")
    d.add_argument("--models", default="models/depth_visible_student.safetensors,models/depth_thermal_student.safetensors",
                   help="comma list of [name=]checkpoint; a visible and a thermal model also give 'blend'")
    d.add_argument("--data", type=Path, default=None, help="folder written by `ldf-ros synth` (default: held-out test streets)")
    d.add_argument("--cache-dir", default="out/data/clips", help="where test streets are cached")
    d.add_argument("--conditions", default="day,night,fog",
                   help="conditions of the test streets (day,dusk,night,fog,glare; dense_fog and unlit_night are never trained on)")
    d.add_argument("--hfov", type=float, default=None,
                   help="test streets seen with this horizontal field of view (default: the RGB camera's 66; "
                        "the thermal camera's: 50)")
    d.add_argument("--rig", action="store_true",
                   help="the runtime path instead: the rig's raw RGB and thermal images through the node's pipeline "
                        "(registration, thermal window, blend) on the test streets")
    d.add_argument("--rig-frames", type=int, default=6, help="--rig: frames per street and condition (0.5 s apart)")
    d.add_argument("--config", default=None, help="--rig: parameters file of the node (default config/fusion.yaml)")
    d.add_argument("--ordinal", type=Path, default=None,
                   help="real images instead: WHDR on human ordinal pairs (e.g. data/ordinal_depth/pairs.csv) for the "
                        "visible branch, the thermal branch and the published depth (--models VIS,THERMAL), beside the "
                        "prior 'lower is nearer'")
    d.add_argument("--root", default=None, help="--ordinal: dataset root the image paths are relative to "
                                                "(default: ../shared/datasets beside the repo)")
    d.add_argument("--draw-only", action="store_true", help="--ordinal: only draw the pairs on their images (to check labels)")
    d.add_argument("--min-confidence", type=float, default=0.5,
                   help="--ordinal: also score the published depth kept where its confidence is at least this")
    d.add_argument("--out", type=Path, default=Path("out/eval_depth"), help="report folder")
    d.set_defaults(func=cmd_eval_depth)


def cmd_train(args: argparse.Namespace) -> int:
    """Train a model; the run folder holds checkpoints (resumable) and log.csv."""
    from ldf_ros.config import DepthTrainConfig, DiffusionTrainConfig, FusionTrainConfig, load_section_yaml
    if args.what == "diffusion":
        from ldf_ros.training.fusion import train_diffusion
        cfg = load_section_yaml(args.config, "diffusion", DiffusionTrainConfig,
                                {"steps": args.steps, "seed": args.seed, "out": args.out, "threads": args.threads,
                                 "data": args.data, "lr": args.lr})
        print(f"wrote {train_diffusion(cfg, resume=not args.restart)}")
    elif args.what == "fusion":
        from ldf_ros.training.fusion import train_fusion
        cfg = load_section_yaml(args.config, "fusion", FusionTrainConfig,
                                {"role": args.role, "steps": args.steps, "seed": args.seed, "out": args.out,
                                 "threads": args.threads, "data": args.data, "teacher": args.teacher,
                                 "denoiser": args.denoiser, "text_encoder": args.text_encoder,
                                 "depth_weight": args.depth_weight, "init": args.init, "lr": args.lr,
                                 "teacher_features": args.teacher_features, "guided_basis": args.guided_basis})
        print(f"wrote {train_fusion(cfg, resume=not args.restart)}")
    if args.what == "recipe":
        from ldf_ros.training.recipe import load_recipe, run_recipe
        recipe = load_recipe(args.recipe)
        root = args.out or f"out/recipes/{Path(args.recipe).stem}"
        final = run_recipe(recipe, root, dry_run=args.dry_run, ship=args.ship, threads=args.threads)
        print(f"{'would write' if args.dry_run else 'wrote'} {final}" + (f" (ships as {recipe.ships})" if recipe.ships else ""))
        return 0
    if args.what == "depth" and args.bag:
        return _train_depth_bag(args)
    if args.what == "depth":
        from ldf_ros.training.depth import train_depth
        overrides = {"modality": args.modality, "role": args.role, "teacher": args.teacher, "steps": args.steps,
                     "seed": args.seed, "out": args.out, "threads": args.threads, "lr": args.lr,
                     "unlabeled_streets": args.unlabeled_streets, "unlabeled_batch_size": args.unlabeled_batch_size,
                     "init": args.init,
                     "distill_gate": args.distill_gate, "teacher_flip": args.teacher_flip,
                     "distill_unlabeled_only": args.distill_unlabeled_only, "camera_hfov_deg": args.camera_hfov_deg}
        cfg = load_section_yaml(args.config, "depth", DepthTrainConfig, overrides)
        path = train_depth(cfg, resume=not args.restart)
        print(f"wrote {path}")
    return 0


def _train_depth_bag(args: argparse.Namespace) -> int:
    """train depth --bag: both branches adapted to a recording, before/after on its held-out end."""
    from ldf_ros.training.depth_bag import CAMERA_HEIGHT_WEIGHT, BagAdaptConfig, adapt_to_bag, adaptation_markdown

    height = {} if args.camera_height is None else {"camera_height_m": args.camera_height,
                                                     "camera_height_weight": CAMERA_HEIGHT_WEIGHT}
    cfg = BagAdaptConfig(**height, **{k: v for k, v in {"steps": args.steps, "lr": args.lr, "seed": args.seed,
                                              "threads": args.threads,
                                              "holdout": args.holdout, "cross_weight": args.cross_weight}.items()
                                  if v is not None})
    modalities = (args.modality,) if args.modality in ("visible", "thermal") else None
    inits = {m: str(resolve_path(getattr(args, f"init_{m}"))) for m in ("visible", "thermal")}
    topics = {"visible": (args.rgb_topic, args.rgb_topic.rsplit("/", 1)[0] + "/camera_info"),
              "thermal": (args.thermal_topic, args.thermal_topic.rsplit("/", 1)[0] + "/camera_info")}
    report = adapt_to_bag(args.bag, args.out or "out/train/depth_bag", inits, topics, cfg, train=modalities)
    print(adaptation_markdown(report))
    return 0


def _train_parser(sub, name: str, help_text: str) -> argparse.ArgumentParser:
    """A `train` subcommand with the flags every training run shares (they override the YAML)."""
    p = sub.add_parser(name, help=help_text)
    p.add_argument("--config", default=None, help=f"training YAML (config/train_{name}.yaml)")
    p.add_argument("--steps", type=int)
    p.add_argument("--lr", type=float, help="learning rate")
    p.add_argument("--seed", type=int)
    p.add_argument("--threads", type=int)
    p.add_argument("--out", help="run folder")
    p.add_argument("--restart", action="store_true", help="ignore a saved training state in the run folder")
    p.set_defaults(func=cmd_train)
    return p


def _setup_train(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="what", metavar="WHAT")
    sub.required = True
    r = sub.add_parser("recipe", help="train a shipped model by its recipe (config/recipes/*.yaml): every stage in order")
    r.add_argument("recipe", help="recipe YAML, e.g. config/recipes/depth_visible_student.yaml")
    r.add_argument("--out", default=None, help="run folder root (default out/recipes/<recipe>)")
    r.add_argument("--dry-run", action="store_true", help="print the stages and stop")
    r.add_argument("--ship", action="store_true", help="copy the result over the shipped file")
    r.add_argument("--threads", type=int, default=None, help="torch CPU threads per run")
    r.set_defaults(func=cmd_train)
    d = _train_parser(sub, "depth", "train a visible or thermal depth network (teacher or student)")
    d.add_argument("--modality", choices=["visible", "thermal", "rgb_thermal"],
                   help="rgb_thermal: RGB + thermal stacked (teachers only; distilled into one-camera students)")
    d.add_argument("--role", choices=["teacher", "student"])
    d.add_argument("--teacher", help="teacher checkpoint to distil from (students): same modality or rgb_thermal")
    d.add_argument("--bag", type=Path, default=None,
                   help="self-supervised adaptation to a recording (mcap or sqlite3): fine-tunes the branches from "
                        "the video alone; the last --holdout share is held out and reported before/after")
    d.add_argument("--camera-height", type=float, default=None,
                   help="--bag: camera height above the road (m): also pull the depth's scale to it (for a start "
                        "without metric scale; the shipped students have one)")
    d.add_argument("--holdout", type=float, default=None, help="--bag: share of the recording held out (0.2)")
    d.add_argument("--cross-weight", type=float, default=None,
                   help="--bag: weight of each branch learning the other's depth where the blend trusts the other "
                        "more (3.0; 0: off)")
    d.add_argument("--rgb-topic", default="/rgb/image", help="--bag: RGB images (CameraInfo beside it)")
    d.add_argument("--thermal-topic", default="/thermal/image", help="--bag: thermal images (CameraInfo beside it)")
    d.add_argument("--init-visible", default="models/depth_visible_student.safetensors", help="--bag: visible start")
    d.add_argument("--init-thermal", default="models/depth_thermal_student.safetensors", help="--bag: thermal start")
    d.add_argument("--unlabeled-streets", type=int, help="distillation: extra streets seen without ground truth")
    d.add_argument("--unlabeled-batch", dest="unlabeled_batch_size", type=int,
                   help="unlabeled frames added to every step on top of the labeled batch (0: mixed into it)")
    d.add_argument("--distill-gate", action="store_const", const=True,
                   help="imitate the teacher only where it beats the student (ground truth or reprojection)")
    d.add_argument("--teacher-flip", action="store_const", const=True,
                   help="teacher targets: mean of its passes on the frame and the mirrored frame")
    d.add_argument("--distill-unlabeled-only", action="store_const", const=True,
                   help="imitate the teacher only on the unlabeled streets (labeled frames: ground truth only)")
    d.add_argument("--init", help="start from this depth checkpoint of the same modality and role (fine-tuning)")
    d.add_argument("--camera-hfov", dest="camera_hfov_deg", type=float,
                   help="training camera's horizontal field of view, degrees (rig: RGB 66, thermal 50)")
    for name, help_text in (("diffusion", "train the 4-channel DDPM denoiser (self-supervised)"),
                            ("fusion", "train the fusion head (teacher) or the single-pass student")):
        f = _train_parser(sub, name, help_text)
        f.add_argument("--data", help="paired training folder(s) (vi/ + ir/), comma-separated")
        if name == "fusion":
            f.add_argument("--role", choices=["teacher", "student"])
            f.add_argument("--teacher", help="fusion teacher checkpoint (student distillation)")
            f.add_argument("--denoiser", help="denoiser checkpoint (teacher)")
            f.add_argument("--init", help="start from this fusion checkpoint of the same role (fine-tuning)")
            f.add_argument("--text-encoder", choices=["minilm", "open_clip", "none"],
                           help="caption encoder (none: the no-text-guidance ablation)")
            f.add_argument("--depth-weight", type=float, help="depth-driven loss weight (0: its ablation)")
            f.add_argument("--teacher-features", choices=["diffusion", "inputs"],
                           help="teacher: inputs trains the same head on the pair itself (the diffusion-feature ablation)")
            f.add_argument("--guided-basis", choices=["linear", "max"],
                           help="guided student: max adds the per-pixel stronger source to its blend")
        else:
            f.set_defaults(role=None, teacher=None, denoiser=None)


def cmd_replay(args: argparse.Namespace) -> int:
    """Publish a bag over DDS with its timing and /clock (like `ros2 bag play`)."""
    from ldf_ros.ros.bag_replay import replay_main
    return replay_main(str(args.bag), args.rate, args.loop, not args.no_clock, lockstep_topic=args.lockstep,
                       slop_s=args.slop, timeout_s=args.pair_timeout)


def _setup_replay(p: argparse.ArgumentParser) -> None:
    from pathlib import Path
    p.add_argument("bag", type=Path, help="bag folder (mcap or sqlite3)")
    p.add_argument("--rate", type=float, default=1.0, help="playback speed factor")
    p.add_argument("--loop", action="store_true", help="start over at the end")
    p.add_argument("--no-clock", action="store_true", help="do not publish /clock")
    p.add_argument("--lockstep", metavar="TOPIC", default=None,
                   help="after each RGB-thermal pair, wait for the node's answer on this Image topic "
                        "(e.g. /ldf_fusion/fused/image) instead of following the bag's timing")
    p.add_argument("--slop", type=float, default=0.02, help="--lockstep: the node's sync.slop_s (s)")
    p.add_argument("--pair-timeout", type=float, default=60.0, help="--lockstep: give up waiting for an answer (s)")
    p.set_defaults(func=cmd_replay)


def cmd_eval_bag(args: argparse.Namespace) -> int:
    """Run the node on a bag; write an output bag, report, panels and a PLY under --out."""
    from ldf_ros.ros.bag_eval import evaluate_bag, markdown_report
    summary = evaluate_bag(args.bag, args.out, config=args.config, variant=args.variant, rate=args.rate,
                           lockstep=not args.realtime, pair_timeout_s=args.pair_timeout)
    print(markdown_report(summary))
    print(f"wrote {args.out}")
    return 0


def _setup_eval_bag(p: argparse.ArgumentParser) -> None:
    from pathlib import Path
    p.add_argument("bag", type=Path, help="input bag with /rgb/image, /thermal/image (+ camera_info, /tf_static, /rgb/depth_gt)")
    p.add_argument("--out", type=Path, required=True, help="report folder")
    p.add_argument("--config", type=Path, default=None, help="node parameters file (default: config/fusion.yaml)")
    p.add_argument("--variant", choices=["student", "teacher", "classical"], default=None)
    p.add_argument("--realtime", action="store_true",
                   help="replay with the bag's timing (scaled by --rate) instead of lockstep: measures drops and latency")
    p.add_argument("--rate", type=float, default=1.0, help="--realtime: replay speed")
    p.add_argument("--pair-timeout", type=float, default=60.0, help="lockstep: give up waiting for an answer (s)")
    p.set_defaults(func=cmd_eval_bag)


def cmd_demo(args: argparse.Namespace) -> int:
    """Synthetic bags (day, night, fog) through the real node over DDS, with reports."""
    from ldf_ros.ros.bag_eval import run_demo
    run_demo(args.out, frames=args.frames, conditions=comma_list(args.conditions),
             rate=args.rate, variant=args.variant, config=args.config, lockstep=not args.realtime)
    print((args.out / "report.md").read_text())
    return 0


def _setup_demo(p: argparse.ArgumentParser) -> None:
    from pathlib import Path
    p.add_argument("--out", type=Path, default=Path("out/demo"))
    p.add_argument("--frames", type=int, default=30, help="RGB frames per condition (30 Hz)")
    p.add_argument("--conditions", default="day,night,fog")
    p.add_argument("--realtime", action="store_true", help="replay with the bags' timing instead of lockstep")
    p.add_argument("--rate", type=float, default=0.5, help="--realtime: replay speed")
    p.add_argument("--variant", choices=["student", "teacher", "classical"], default=None)
    p.add_argument("--config", type=Path, default=None)
    p.set_defaults(func=cmd_demo)


def cmd_export(args: argparse.Namespace) -> int:
    """Depth and fusion-student checkpoints -> ONNX files, each checked with onnxruntime against
    PyTorch on a real pair when one is at hand (else a random image)."""
    from ldf_ros.models.checkpoint import checkpoint_kind

    for item in comma_list(args.models):
        path = resolve_path(item)
        out = args.out / (Path(item).stem + ("-fp16" if args.fp16 else "") + ".onnx")
        print(_export_fusion(path, out, args) if checkpoint_kind(path) == "fusion" else _export_depth(path, out, args))
    return 0


def _export_check_pair(args):
    """(RGB uint8, thermal in [0, 1]) of --check-pair VI,IR or random noise: what the export is checked on."""
    import cv2
    import numpy as np

    if args.check_pair:
        from ldf_ros.data.paired import read_infrared, read_visible
        vi_path, _, ir_path = args.check_pair.partition(",")
        vi, ir = read_visible(Path(vi_path)), read_infrared(Path(ir_path))
        ir = cv2.resize(ir, (vi.shape[1], vi.shape[0]), interpolation=cv2.INTER_AREA)
        return vi, ir.astype(np.float32) / (255.0 if ir.dtype == np.uint8 else 65535.0), Path(vi_path).name
    rng = np.random.default_rng(0)
    return (rng.integers(0, 255, (240, 320, 3), dtype=np.uint8), rng.random((240, 320), dtype=np.float32),
            "a random 320x240 image")


def _export_fusion(path: Path, out: Path, args) -> str:
    import numpy as np
    import torch

    from ldf_ros.models.onnx_export import export_fusion_onnx
    from ldf_ros.runtime.learned_fusion import _padded_inputs, load_fusion_net

    net = load_fusion_net(path, None)
    export_fusion_onnx(net, out, fp16=args.fp16)
    import onnxruntime as ort
    rgb, thermal01, what = _export_check_pair(args)
    vis, ir, (h, w) = _padded_inputs(rgb, thermal01)
    text = torch.nn.functional.normalize(torch.randn(1, net.cfg.text_dim, generator=torch.Generator().manual_seed(0)), dim=1)
    with torch.no_grad():
        ref = net(vis, ir, text)[0, :, :h, :w].numpy()
    dtype = np.float16 if args.fp16 else np.float32
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"visible": vis.numpy().astype(dtype), "infrared": ir.numpy().astype(dtype),
                          "text": text.numpy().astype(dtype)})[0][0, :, :h, :w].astype(np.float32)
    return (f"{out}: fusion {net.cfg.role} ({net.cfg.student_arch}), inputs visible 1x3xHxW and infrared 1x1xHxW in "
            f"[0,1] (H, W multiples of 8), text 1x{net.cfg.text_dim}, output fused 1x3xHxW; "
            f"{'fp16' if args.fp16 else 'fp32'}; onnxruntime vs torch fp32 on {what}: max |diff| "
            f"{float(np.abs(got - ref).max()) * 255:.2f} gray levels")


def _export_depth(path: Path, out: Path, args) -> str:
    import numpy as np
    import torch

    from ldf_ros.models.depth_net import load_depth_net
    from ldf_ros.models.onnx_export import export_depth_onnx
    from ldf_ros.runtime.depth import DepthPredictor
    from ldf_ros.runtime.onnx_depth import OnnxDepthPredictor, OnnxDepthSettings

    net = load_depth_net(path)
    export_depth_onnx(net, out, fp16=args.fp16)
    cfg = net.cfg
    settings = OnnxDepthSettings(cfg.input_width, cfg.input_height, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), "metric",
                                 provider="cpu", min_depth=cfg.min_depth, max_depth=cfg.max_depth)
    import cv2
    rgb, thermal01, what = _export_check_pair(args)
    image = rgb if cfg.modality == "visible" else thermal01      # at the network's input size: the network is compared, not two resizers
    image = cv2.resize(image, (cfg.input_width, cfg.input_height), interpolation=cv2.INTER_AREA)
    with torch.no_grad():
        ref = DepthPredictor(net)(image)
    got = OnnxDepthPredictor(out, cfg.modality, settings)(image)
    return (f"{out}: {cfg.modality} depth, input 1x{cfg.in_channels}xHxW in [0,1] (dynamic H, W), output meters; "
            f"{'fp16' if args.fp16 else 'fp32'}; onnxruntime vs torch fp32 on {what}: max |diff| "
            f"{float(np.max(np.abs(got - ref))):.2e} m; use it with onnx_depth.output: metric, mean [0,0,0], "
            f"std [1,1,1], input {cfg.input_width}x{cfg.input_height}, focal_px {cfg.focal_px:g}")


def _setup_export(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=["onnx"], default="onnx")
    p.add_argument("--models", default="models/fusion_student.safetensors,models/depth_visible_student.safetensors,"
                   "models/depth_thermal_student.safetensors", help="comma list of depth or fusion-student checkpoints")
    p.add_argument("--fp16", action="store_true", help="half-precision files (for the CUDA provider; TensorRT builds "
                   "fp16 engines from the fp32 files with runtime.fp16)")
    p.add_argument("--check-pair", help="VI,IR: a real pair to compare onnxruntime with PyTorch on (default: random)")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.set_defaults(func=cmd_export)


_REGISTRY: list[tuple[str, str, Callable[[argparse.ArgumentParser], None]]] = [
    ("config", "validate a config file and print its parameters", _setup_config),
    ("synth", "generate synthetic RGB-thermal-depth sequences (folders, bags)", _setup_synth),
    ("eval", "evaluate fusion or depth (metrics tables, CSV/JSON, panels)", _setup_eval),
    ("train", "train models (depth, diffusion, fusion)", _setup_train),
    ("fuse", "fuse folders of visible/infrared pairs into color PNGs", _setup_fuse),
    ("replay", "publish a bag over DDS with /clock (like ros2 bag play)", _setup_replay),
    ("eval-bag", "run the node on a bag: output bag, report, panels, PLY", _setup_eval_bag),
    ("demo", "the main job: synthetic day/night/fog bags through the node over DDS", _setup_demo),
    ("export", "export the depth networks to ONNX (checked with onnxruntime)", _setup_export),
    ("bench", "measure speed: per-stage pipeline latency (default) or synthetic world generation", _setup_bench),
]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"ldf-ros: config error: {exc}", file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError, FileExistsError, RuntimeError) as exc:
        print(f"ldf-ros {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
