"""`ldf-ros eval fusion`: metrics of fusion methods over a paired folder, as tables and panels."""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
from tqdm import tqdm

from ldf_ros.data.paired import DatasetError, PairedFolder
from ldf_ros.evaluation.fusion_metrics import METRICS, fusion_metrics

FuseFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


def evaluate_folder(folder: PairedFolder, methods: dict[str, FuseFn], progress: bool = True):
    """Per image and method, the nine metrics. A broken pair raises naming its file."""
    rows = []
    for i in tqdm(range(len(folder)), desc="eval fusion", disable=not progress):
        pair = folder.pairs[i]
        vi, ir = folder.load(i)
        if ir.dtype != np.uint8:
            raise DatasetError(f"{pair.infrared}: fusion metrics need 8-bit infrared, got {ir.dtype}")
        for name, fuse in methods.items():
            try:
                fused = fuse(vi, ir)
            except Exception as exc:  # noqa: BLE001 - report which pair broke which method
                raise DatasetError(f"{pair.name}: method {name} failed: {exc}") from exc
            rows.append({"image": pair.name, "method": name, **fusion_metrics(fused, vi, ir)})
    return rows


def summarize(rows: list[dict]) -> dict[str, dict[str, float]]:
    """Mean of each metric per method, in the order methods first appear."""
    out: dict[str, dict[str, float]] = {}
    for method in dict.fromkeys(r["method"] for r in rows):
        sel = [r for r in rows if r["method"] == method]
        out[method] = {m: float(np.mean([r[m] for r in sel])) for m in METRICS}
    return out


def markdown_table(summary: dict[str, dict[str, float]], reference: dict[str, dict[str, float]] | None = None) -> str:
    lines = ["| method | " + " | ".join(METRICS) + " |", "|---" * (len(METRICS) + 1) + "|"]
    for name, vals in {**(reference or {}), **summary}.items():
        lines.append(f"| {name} | " + " | ".join(f"{vals[m]:.4g}" for m in METRICS) + " |")
    return "\n".join(lines)


def _panel(folder: PairedFolder, i: int, fused: np.ndarray, title: str) -> np.ndarray:
    vi, ir = folder.load(i)
    tiles = [vi, np.repeat(ir[..., None], 3, axis=2), fused]
    panel = np.concatenate(tiles, axis=1).copy()
    cv2.putText(panel, title, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 0), 2, cv2.LINE_AA)
    return panel


def write_report(rows: list[dict], folder: PairedFolder, methods: dict[str, FuseFn], out: Path,
                 rank_method: str, rank_metric: str = "Qabf") -> dict[str, dict[str, float]]:
    """metrics.csv (per image), summary.json, report.md, and worst/median/best panels of `rank_method`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "metrics.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["image", "method", *METRICS])
        writer.writeheader()
        writer.writerows(rows)
    summary = summarize(rows)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    ranked = sorted((r for r in rows if r["method"] == rank_method), key=lambda r: r[rank_metric])
    names = [p.name for p in folder.pairs]
    picks = {"worst": ranked[0], "median": ranked[len(ranked) // 2], "best": ranked[-1]}
    for label, row in picks.items():
        i = names.index(row["image"])
        vi, ir = folder.load(i)
        panel = _panel(folder, i, methods[rank_method](vi, ir),
                       f"{label} {rank_metric}={row[rank_metric]:.3f} {row['image']}: visible | infrared | {rank_method}")
        cv2.imwrite(str(out / f"panel_{label}.png"), cv2.cvtColor(panel, cv2.COLOR_RGB2BGR))
    (out / "report.md").write_text(
        f"# Fusion evaluation\n\n{len(folder)} pairs, mean per method (luminance metrics, see "
        f"ldf_ros/evaluation/fusion_metrics.py).\n\n{markdown_table(summary)}\n\n"
        f"Panels (ranked by {rank_metric} of {rank_method}): panel_worst.png, panel_median.png, panel_best.png\n")
    return summary
