"""`ldf-ros eval depth`: depth networks (and the runtime's blend of both branches) against
ground truth, per condition, with a Markdown/CSV/JSON report and error-map panels.

Data: the held-out synthetic test streets (seeds never used in training, rendered and
cached on first use), or folders written by `ldf-ros synth` (`--data`).
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ldf_ros.evaluation.depth_metrics import DEPTH_METRICS, abs_rel_error_map, depth_metrics, mean_metrics


@dataclass
class DepthSample:
    condition: str
    name: str
    rgb: np.ndarray          # (H, W, 3) uint8
    thermal: np.ndarray      # (H, W) raw thermal on the RGB grid
    depth: np.ndarray        # (H, W) meters, NaN invalid


def test_clip_samples(conditions=("day", "night", "fog"), cache_dir: str | Path = "out/data/clips", step: int = 2,
                      hfov_deg: float | None = None):
    """Frames of the held-out test streets (clips.TEST_SEEDS); hfov_deg None: the RGB camera's."""
    from ldf_ros.synthetic.clips import CLIP_HFOV_DEG, TEST_SEEDS, clip_specs, load_or_render

    hfov_deg = CLIP_HFOV_DEG if hfov_deg is None else hfov_deg
    for spec in clip_specs(TEST_SEEDS, conditions=conditions, hfov_deg=hfov_deg):
        clip = load_or_render(spec, Path(cache_dir))
        for i in range(0, clip.rgb.shape[0], step):
            yield DepthSample(spec.condition, f"{spec.name}/{i:03d}", clip.rgb[i], clip.thermal[i], clip.depth[i])


def folder_samples(root: str | Path):
    """Frames of `ldf-ros synth` folders: RGB and thermal rendered from the RGB viewpoint."""
    from ldf_ros.data.paired import DatasetError
    from ldf_ros.data.synthetic import synthetic_sequences

    seqs = synthetic_sequences(Path(root))
    if not seqs:
        raise DatasetError(f"{root}: no synthetic sequences (folders with calibration.yaml and frames.csv)")
    for seq in seqs:
        registered = set(seq.indices("thermal_registered"))
        if not registered:
            raise DatasetError(f"{seq.root}: no thermal_registered views (generate with registered thermal)")
        for i in seq.indices("rgb"):
            if i in registered:
                rgb = seq.frame("rgb", i)
                th = seq.frame("thermal_registered", i)
                yield DepthSample(seq.condition, f"{seq.root.name}/{i:06d}", rgb.image, th.image, rgb.depth)


@dataclass
class RigSample:
    """One instant as the rig's two cameras see it: what the node gets."""

    condition: str
    name: str
    rgb: np.ndarray          # (H, W, 3) uint8, RGB camera
    thermal: np.ndarray      # (h, w) uint16 counts, the thermal camera's own image
    depth: np.ndarray        # (H, W) meters on the RGB grid, NaN invalid
    k_rgb: np.ndarray
    k_thermal: np.ndarray


def test_rig_samples(conditions=("day", "night", "fog"), frames: int = 6, rate_hz: float = 2.0, rig=None,
                     cache_dir: str | Path | None = "out/data/rig", seeds=None):
    """The held-out test streets (or `seeds`: the validation ones, to tune the runtime on)
    through the full rig (synthetic.rig: RGB 640x512 66 deg, thermal 320x256 50 deg, 8 cm
    apart), both cameras at the same instants, rate_hz apart."""
    from ldf_ros.synthetic.clips import TEST_SEEDS, clip_specs
    from ldf_ros.synthetic.render import render_tag
    from ldf_ros.synthetic.rig import Rig

    rig = rig or Rig()
    for spec in clip_specs(TEST_SEEDS if seeds is None else seeds, conditions=conditions):    # the streets (seed, family) of those clips
        name = (f"{spec.family}_s{spec.seed}_{spec.condition}_rig{rig.rgb.width}x{rig.rgb.height}_n{frames}_{rate_hz:g}hz"
                f"{render_tag(spec.condition)}")
        rgb, thermal, depth = _rig_views(name, spec.seed, spec.family, spec.condition, frames, rate_hz, rig, cache_dir)
        for j in range(frames):
            yield RigSample(spec.condition, f"{name}/{j:03d}", rgb[j], thermal[j], depth[j], rig.rgb.k, rig.thermal.k)


def _rig_views(name, seed, family, cond, frames, rate_hz, rig, cache_dir):
    """(rgb, thermal, depth) stacks of one street, from the cache or rendered (and cached)."""
    from ldf_ros.synthetic.sequence import SequenceSpec, generate

    path = None if cache_dir is None else Path(cache_dir) / f"{name}.npz"
    if path is not None and path.is_file():
        with np.load(path) as z:
            return z["rgb"], z["thermal"], z["depth"]
    spec = SequenceSpec(frames=frames, conditions=(cond,), seed=seed, family=family, rgb_rate_hz=rate_hz,
                        thermal_rate_hz=rate_hz, rig=rig, registered_thermal=False)
    views = {(v.camera, v.index): v for v in generate(spec, cond)}
    rgb = np.stack([views["rgb", j].image for j in range(frames)])
    depth = np.stack([views["rgb", j].depth for j in range(frames)])
    thermal = np.stack([views["thermal", j].image for j in range(frames)])
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, rgb=rgb, thermal=thermal, depth=depth)
    return rgb, thermal, depth


def rig_pipeline(rig, config: str | Path | None = None, overrides: dict | None = None):
    """The node's pipeline set up for the rig (camera_info registration with its extrinsic),
    depth only: the fusion stage is the classical one, which depth does not depend on."""
    from ldf_ros.config import default_config_path, load_config
    from ldf_ros.runtime.pipeline import FusionPipeline

    cfg = load_config(config or default_config_path(), {
        "model.variant": "classical", "registration.mode": "camera_info", "outputs.points": False,
        "registration.thermal_to_rgb_translation": list(rig.thermal_to_rgb_translation),
        "registration.thermal_to_rgb_rotation": list(rig.thermal_to_rgb_rotation),
        "runtime.depth_source": "blend", "runtime.warmup_runs": 0, **(overrides or {})})
    return FusionPipeline(cfg)


def evaluate_runtime_depth(pipe, samples, progress: bool = True):
    """Per-frame metrics of the depth the runtime computes from the rig's raw images:
    each branch (thermal: where the thermal camera sees), the published blend, the visible
    branch and the blend on the thermal branch's pixels (like-for-like comparisons: outside
    the thermal camera's view the blend is the visible branch alone), and, as the baseline,
    the thermal branch on the whole registered frame with its blank border (what the runtime
    did before it used the thermal window) and its blend."""
    from tqdm import tqdm

    from ldf_ros.runtime.depth import blend_depths

    if pipe.depth_visible is None or pipe.depth_thermal is None:
        raise ValueError("runtime depth evaluation needs both depth branches: " + "; ".join(pipe.problems))
    rows, examples = [], {}
    for sample in tqdm(list(samples), desc="eval runtime depth", disable=not progress):
        res = pipe.process(sample.rgb, sample.thermal, sample.k_rgb, sample.k_thermal)
        full = pipe.depth_thermal(res.thermal_registered, sample.k_rgb)
        full[~res.thermal_valid] = np.nan
        seen = np.isfinite(res.depth_thermal)
        preds = {"visible": res.depth_visible, "thermal": res.depth_thermal, "blend": res.depth,
                 "visible_where_thermal": np.where(seen, res.depth_visible, np.nan),
                 "blend_where_thermal": np.where(seen, res.depth, np.nan),
                 "thermal_full_frame": full,
                 "blend_full_frame": blend_depths(res.depth_visible, full, sample.rgb, res.thermal_valid)}
        for name, d in preds.items():
            rows.append({"condition": sample.condition, "frame": sample.name, "method": name,
                         **{k: v for k, v in depth_metrics(sample.depth, d).items() if k in DEPTH_METRICS}})
        examples.setdefault(sample.condition, (DepthSample(sample.condition, sample.name, sample.rgb,
                                                           res.thermal_registered, sample.depth), preds))
    return rows, examples


def evaluate_depth(predictors: dict, samples, with_blend: bool = True, progress: bool = True):
    """Rows of per-frame metrics for each model; 'blend' when a visible and a thermal model are given.
    Returns (rows, examples) with examples[condition] = (sample, {method: depth}) for panels."""
    from tqdm import tqdm

    from ldf_ros.runtime.depth import blend_depths, modality_image

    rows, examples = [], {}
    vis = next((n for n, p in predictors.items() if p.modality == "visible"), None)
    th = next((n for n, p in predictors.items() if p.modality == "thermal"), None)
    for sample in tqdm(list(samples), desc="eval depth", disable=not progress):
        preds = {name: p(modality_image(sample.rgb, sample.thermal, p.modality)) for name, p in predictors.items()}
        if with_blend and vis and th:
            preds["blend"] = blend_depths(preds[vis], preds[th], sample.rgb)
        for name, d in preds.items():
            rows.append({"condition": sample.condition, "frame": sample.name, "method": name,
                         **{k: v for k, v in depth_metrics(sample.depth, d).items() if k in DEPTH_METRICS}})
        examples.setdefault(sample.condition, (sample, preds))
    return rows, examples


def _by_condition_and_method(rows) -> dict[str, dict[str, list[dict]]]:
    out: dict = {}
    for r in rows:
        out.setdefault(r["condition"], {}).setdefault(r["method"], []).append(r)
    return out


def summarize_depth(rows) -> dict[str, dict[str, dict[str, float]]]:
    """condition -> method -> mean metrics."""
    return {cond: {method: mean_metrics(sel) for method, sel in methods.items()}
            for cond, methods in _by_condition_and_method(rows).items()}


def worst_frames(rows) -> dict[str, dict[str, dict]]:
    """condition -> method -> {median AbsRel, worst frame, its AbsRel}: a mean over a few
    hundred frames can be decided by one frame the camera cannot see (a blown-out image),
    which the median and the named worst frame make visible."""
    return {cond: {method: {"abs_rel_median": float(np.median([r["abs_rel"] for r in sel])),
                            "worst_frame": (w := max(sel, key=lambda r: r["abs_rel"]))["frame"],
                            "worst_abs_rel": float(w["abs_rel"])}
                   for method, sel in methods.items()}
            for cond, methods in _by_condition_and_method(rows).items()}


def worst_frames_markdown(worst) -> str:
    lines = ["| condition | method | median AbsRel | worst frame | its AbsRel |", "|---|---|---|---|---|"]
    for cond, methods in worst.items():
        for method, w in methods.items():
            lines.append(f"| {cond} | {method} | {w['abs_rel_median']:.3f} | {w['worst_frame']} | {w['worst_abs_rel']:.3f} |")
    return "\n".join(lines)


def depth_markdown(summary) -> str:
    lines = ["| condition | method | " + " | ".join(DEPTH_METRICS) + " |", "|---" * (len(DEPTH_METRICS) + 2) + "|"]
    for cond, methods in summary.items():
        for method, m in methods.items():
            lines.append(f"| {cond} | {method} | " + " | ".join(f"{m[k]:.3f}" for k in DEPTH_METRICS) + " |")
    return "\n".join(lines)


def write_depth_report(rows, examples, out: str | Path) -> tuple[dict, dict]:
    """metrics.csv, summary.json, report.md and panels; returns (means, robust table)."""
    from ldf_ros.ops.visualize import colorize_depth, colorize_error, colorize_gray, label, tile_row, write_rgb_png
    from ldf_ros.runtime.thermal import normalize_thermal

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "metrics.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["condition", "frame", "method", *DEPTH_METRICS])
        w.writeheader()
        w.writerows(rows)
    summary = summarize_depth(rows)
    worst = worst_frames(rows)
    (out / "summary.json").write_text(json.dumps({"mean": summary, "robust": worst}, indent=2))
    for cond, (sample, preds) in examples.items():
        th8 = (normalize_thermal(sample.thermal) * 255).astype(np.uint8)
        tiles = [label(sample.rgb, cond), label(colorize_gray(th8), "thermal"), label(colorize_depth(sample.depth), "ground truth")]
        for name, d in preds.items():
            tiles += [label(colorize_depth(d), name), label(colorize_error(abs_rel_error_map(sample.depth, d)), "AbsRel 0-0.5")]
        write_rgb_png(out / f"panel_{cond}.png", tile_row(tiles))
    (out / "report.md").write_text("# Depth evaluation\n\nMean per frame, valid ground truth 0.5-80 m, metric depth "
                                   "(no median scaling).\n\n" + depth_markdown(summary) +
                                   "\n\nMedian over frames and the worst frame:\n\n" + worst_frames_markdown(worst) +
                                   "\n\nPanels: " + ", ".join(f"panel_{c}.png" for c in examples) + "\n")
    return summary, worst
