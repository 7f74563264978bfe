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


def test_clip_samples(conditions=("day", "night", "fog"), cache_dir: str | Path = "out/data/clips", step: int = 2):
    """Frames of the held-out test streets (clips.TEST_SEEDS)."""
    from ldf_ros.synthetic.clips import TEST_SEEDS, clip_specs, load_or_render

    for spec in clip_specs(TEST_SEEDS, conditions=conditions):
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


def evaluate_depth(predictors: dict, samples, with_blend: bool = True, progress: bool = True):
    """Rows of per-frame metrics for each model; 'blend' when a visible and a thermal model are given.
    Returns (rows, examples) with examples[condition] = (sample, {method: depth}) for panels."""
    from tqdm import tqdm

    from ldf_ros.runtime.depth import blend_depths

    rows, examples = [], {}
    vis = next((n for n, p in predictors.items() if p.modality == "visible"), None)
    th = next((n for n, p in predictors.items() if p.modality == "thermal"), None)
    for sample in tqdm(list(samples), desc="eval depth", disable=not progress):
        preds = {name: p(sample.rgb if p.modality == "visible" else sample.thermal) for name, p in predictors.items()}
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
