"""Classical, color-preserving fusion baselines: fuse luminance, keep the visible chroma.

They are the yardsticks of every fusion report and the `classical` variant of the node
(no weights needed). Inputs: visible RGB uint8 (H, W, 3) and infrared uint8 (H, W).
"""
from __future__ import annotations

import cv2
import numpy as np

from ldf_ros.ops.color import rgb_to_ycbcr, ycbcr_to_rgb


def _check(visible: np.ndarray, infrared: np.ndarray) -> None:
    if visible.ndim != 3 or visible.shape[2] != 3:
        raise ValueError(f"visible must be (H, W, 3), got {visible.shape}")
    if infrared.ndim != 2:
        raise ValueError(f"infrared must be (H, W), got {infrared.shape}")
    if visible.shape[:2] != infrared.shape:
        raise ValueError(f"visible {visible.shape[:2]} and infrared {infrared.shape} differ in size")


def _with_visible_chroma(y: np.ndarray, visible: np.ndarray) -> np.ndarray:
    ycc = rgb_to_ycbcr(visible)
    ycc[..., 0] = y
    return np.clip(np.round(ycbcr_to_rgb(ycc)), 0, 255).astype(np.uint8)


def average_fusion(visible: np.ndarray, infrared: np.ndarray) -> np.ndarray:
    _check(visible, infrared)
    y = rgb_to_ycbcr(visible)[..., 0]
    return _with_visible_chroma((y + infrared) / 2.0, visible)


def max_fusion(visible: np.ndarray, infrared: np.ndarray) -> np.ndarray:
    """Per-pixel maximum luminance: copies whichever source is brighter."""
    _check(visible, infrared)
    y = rgb_to_ycbcr(visible)[..., 0]
    return _with_visible_chroma(np.maximum(y, infrared.astype(np.float64)), visible)


def _laplacian_pyramid(img: np.ndarray, levels: int) -> list[np.ndarray]:
    pyr, cur = [], img
    for _ in range(levels):
        down = cv2.pyrDown(cur)
        up = cv2.pyrUp(down, dstsize=(cur.shape[1], cur.shape[0]))
        pyr.append(cur - up)
        cur = down
    pyr.append(cur)
    return pyr


def laplacian_pyramid_fusion(visible: np.ndarray, infrared: np.ndarray, levels: int = 4) -> np.ndarray:
    """Burt & Adelson style multi-scale fusion: max-abs detail coefficients, averaged base."""
    _check(visible, infrared)
    y = rgb_to_ycbcr(visible)[..., 0]
    pa = _laplacian_pyramid(y, levels)
    pb = _laplacian_pyramid(infrared.astype(np.float64), levels)
    fused = [np.where(np.abs(a) >= np.abs(b), a, b) for a, b in zip(pa[:-1], pb[:-1])]
    cur = (pa[-1] + pb[-1]) / 2.0
    for detail in reversed(fused):
        cur = cv2.pyrUp(cur, dstsize=(detail.shape[1], detail.shape[0])) + detail
    return _with_visible_chroma(np.clip(cur, 0, 255), visible)


BASELINES = {"average": average_fusion, "max": max_fusion, "laplacian": laplacian_pyramid_fusion}
