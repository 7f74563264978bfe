"""Monocular depth metrics (Eigen et al., NeurIPS 2014), as the depth literature reports them.

Inputs are depth maps in meters; a pixel counts only where ground truth is finite and inside
[min_depth, max_depth] and the prediction is finite and positive. With median scaling the
prediction is multiplied by median(gt) / median(pred) first (for scale-ambiguous models).
"""
from __future__ import annotations

import numpy as np

DEPTH_METRICS = ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3")


def valid_mask(gt: np.ndarray, pred: np.ndarray, min_depth: float = 0.5, max_depth: float = 80.0) -> np.ndarray:
    gt = np.asarray(gt, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.isfinite(gt) & (gt >= min_depth) & (gt <= max_depth) & np.isfinite(pred) & (pred > 0)


def depth_metrics(gt: np.ndarray, pred: np.ndarray, min_depth: float = 0.5, max_depth: float = 80.0,
                  median_scaling: bool = False) -> dict[str, float]:
    """AbsRel, SqRel, RMSE, RMSE log and the delta < 1.25^k accuracies over valid pixels;
    also `scale` (the median-scaling factor, 1 without it) and `valid` (pixel count)."""
    if gt.shape != pred.shape:
        raise ValueError(f"depth metrics: ground truth {gt.shape} and prediction {pred.shape} differ in size")
    mask = valid_mask(gt, pred, min_depth, max_depth)
    if not mask.any():
        raise ValueError("depth metrics: no valid pixels (ground truth empty or out of range)")
    g = np.asarray(gt, dtype=np.float64)[mask]
    p = np.asarray(pred, dtype=np.float64)[mask]
    scale = float(np.median(g) / np.median(p)) if median_scaling else 1.0
    p = np.clip(p * scale, min_depth, max_depth)
    ratio = np.maximum(g / p, p / g)
    return {
        "abs_rel": float(np.mean(np.abs(g - p) / g)),
        "sq_rel": float(np.mean((g - p) ** 2 / g)),
        "rmse": float(np.sqrt(np.mean((g - p) ** 2))),
        "rmse_log": float(np.sqrt(np.mean((np.log(g) - np.log(p)) ** 2))),
        "a1": float(np.mean(ratio < 1.25)),
        "a2": float(np.mean(ratio < 1.25 ** 2)),
        "a3": float(np.mean(ratio < 1.25 ** 3)),
        "scale": scale,
        "valid": int(mask.sum()),
    }


def mean_metrics(rows: list[dict[str, float]]) -> dict[str, float]:
    """Per-image metrics averaged (each image weighs the same, as in the literature)."""
    return {k: float(np.mean([r[k] for r in rows])) for k in DEPTH_METRICS}


def abs_rel_error_map(gt: np.ndarray, pred: np.ndarray, min_depth: float = 0.5, max_depth: float = 80.0) -> np.ndarray:
    """|pred - gt| / gt per pixel, NaN where invalid (for error-map panels)."""
    mask = valid_mask(gt, pred, min_depth, max_depth)
    out = np.full(gt.shape, np.nan, dtype=np.float32)
    out[mask] = np.abs(pred[mask] - gt[mask]) / gt[mask]
    return out
