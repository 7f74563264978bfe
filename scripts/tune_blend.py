"""Choose the published depth blend's reliability constants (runtime.depth: DARK_LUMA,
BRIGHT_SPAN, FULL_CONTRAST) on the validation streets through the rig, never the test ones.

Each branch's depth (and, with runtime.depth_flip_consistency, its spread) is computed once
per frame by the node's pipeline (shipped models, the rig's camera_info registration); then
every candidate is scored by the blend's mean AbsRel on the pixels both branches see, per
condition, as the runtime blends (with the spreads where the pipeline has them), and the
original (0.04, 0.16, 0.06) and current constants also without the spreads. Prints the table (best first) and
writes it to <out>/blend_sweep.csv.
Usage: .venv/bin/python scripts/tune_blend.py [--conditions day,night,...] [--frames 6] [--out out/tune_blend]
"""
from __future__ import annotations

import argparse
import csv
import itertools
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ldf_ros.evaluation.depth_metrics import depth_metrics
from ldf_ros.evaluation.depth_report import rig_pipeline, test_rig_samples
from ldf_ros.runtime.depth import BRIGHT_SPAN, DARK_LUMA, FULL_CONTRAST, blend_depths, visible_reliability
from ldf_ros.synthetic.clips import VAL_SEEDS
from ldf_ros.synthetic.rig import Rig

GRID = {"dark_luma": (0.04, 0.06, 0.08, 0.1), "bright_span": (0.16, 0.3, 0.5),
        "full_contrast": (0.02, 0.03, 0.045, 0.06)}


def branch_depths(conditions, frames: int):
    """{condition: [(rgb, depth_visible, depth_thermal where it sees else NaN, ground truth,
    (spread_visible, spread_thermal) or None)]}."""
    rig = Rig()
    pipe = rig_pipeline(rig)
    out: dict[str, list] = {}
    for s in tqdm(list(test_rig_samples(conditions, frames=frames, rig=rig, seeds=VAL_SEEDS)), desc="branches"):
        res = pipe.process(s.rgb, s.thermal, s.k_rgb, s.k_thermal)
        seen = res.thermal_valid & np.isfinite(res.depth_thermal)
        out.setdefault(s.condition, []).append((s.rgb, res.depth_visible, np.where(seen, res.depth_thermal, np.nan),
                                                s.depth, res.depth_spreads))
    return out


def score(frames, use_spreads: bool = True, **params) -> float:
    """Mean AbsRel of the blend over the frames, on the thermal branch's pixels."""
    rows = []
    for rgb, dv, dt, gt, spreads in frames:
        blend = blend_depths(dv, dt, rgb, reliability=visible_reliability(rgb, **params),
                             spreads=spreads if use_spreads else None)
        rows.append(depth_metrics(gt, np.where(np.isfinite(dt), blend, np.nan))["abs_rel"])
    return float(np.mean(rows))


def error_correlations(frames) -> tuple[float, float]:
    """Mean over frames of the pixel correlation of the visible branch's relative error with
    its spread and with the image reliability, on the pixels both branches see: how well
    each tells where the visible depth is wrong (NaN without spreads)."""
    with_spread, with_image = [], []
    for rgb, dv, dt, gt, spreads in frames:
        ok = np.isfinite(dt) & np.isfinite(gt) & (gt > 0)
        err = np.abs(dv[ok] - gt[ok]) / gt[ok]
        with_image.append(np.corrcoef(visible_reliability(rgb)[ok], err)[0, 1])
        if spreads is not None:
            with_spread.append(np.corrcoef(spreads[0][ok], err)[0, 1])
    return float(np.mean(with_spread)) if with_spread else float("nan"), float(np.mean(with_image))


def _label(params: dict) -> str:
    return " ".join(f"{k}={v:g}" for k, v in params.items())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--conditions", default="day,dusk,night,fog,glare,unlit_night,dense_fog")
    ap.add_argument("--frames", type=int, default=6, help="instants per street and condition")
    ap.add_argument("--out", type=Path, default=Path("out/tune_blend"))
    args = ap.parse_args()
    data = branch_depths(args.conditions.split(","), args.frames)
    conds = list(data)
    reference = [[name] + [float(np.mean([depth_metrics(f[3], np.where(np.isfinite(f[2]), f[k], np.nan))["abs_rel"]
                                          for f in data[c]])) for c in conds]
                 for name, k in (("visible only", 1), ("thermal only", 2))]
    current = {"dark_luma": DARK_LUMA, "bright_span": BRIGHT_SPAN, "full_contrast": FULL_CONTRAST}
    if any(f[4] is not None for frames in data.values() for f in frames):
        for p in (current, {"dark_luma": 0.04, "bright_span": 0.16, "full_contrast": 0.06}):
            reference.append([_label(p) + " no spreads"] + [score(data[c], use_spreads=False, **p) for c in conds])
    swept = [[_label(p)] + [score(data[c], **p) for c in conds]
             for p in tqdm([dict(zip(GRID, v)) for v in itertools.product(*GRID.values())], desc="candidates")]
    for row in reference + swept:
        row.append(float(np.mean(row[1:])))
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "blend_sweep.csv", "w", newline="") as f:
        csv.writer(f).writerows([["blend"] + conds + ["mean"]] + reference + swept)
    print(f"{'blend (validation streets, AbsRel)':46s}" + "".join(f"{c:>12s}" for c in conds + ["mean"]))
    for row in reference + sorted(swept, key=lambda r: r[-1]):
        mark = "  <- runtime.depth now" if row[0] == _label(current) else ""
        print(f"{row[0]:46s}" + "".join(f"{v:12.4f}" for v in row[1:]) + mark)
    print("\npixel correlation with the visible branch's relative error (mean over frames): its spread / the image reliability")
    for c in conds:
        print(f"{c:12s} " + " / ".join(f"{v:.2f}" for v in error_correlations(data[c])))


if __name__ == "__main__":
    main()
