"""Depth-informed scene captions: a short deterministic text from the depth maps and simple
image statistics, which the fusion model's text guidance embeds.

Grammar (every caption has exactly these three clauses, in this order)::

    caption  := light "; " warm "; " nearest
    light    := "a " ("bright" | "dim" | "dark") " scene" [", hazy"]
    warm     := "no warm objects"
              | N " warm object" ["s"] ", nearest " dist " " side
    nearest  := "nearest obstacle " dist " " side | "no obstacle within 40 m"
    dist     := whole meters rounded to 1 m below 10 m, to 5 m up to 40 m; "far" beyond
    side     := "left" | "ahead" | "right"          (thirds of the image width)

Quantizing distances keeps the set of captions small, so the text embedding cache hits on
consecutive frames and text costs nothing per frame in steady state.

A directive (`model.directive`) is what the user wants the fusion to favour; it is appended
to the caption, and the student was trained so that each one does what it says.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

DARK, DIM = 0.12, 0.30           # mean luminance thresholds (visible in [0, 1])
HAZY_CONTRAST = 0.09             # luminance std below this (and not dark): hazy
WARM_MIN_AREA = 0.0015           # warm blob area as a fraction of the image
WARM_MAX_AREA = 0.08             # larger warm regions are sun-heated ground or walls, not objects
WARM_PERCENTILE, WARM_ABOVE_MEDIAN = 98, 0.12   # warm: in the frame's top 2% and this far above its median
OBSTACLE_EDGE = 0.06             # outer columns left out of the obstacle search (depth is least sure there)
OBSTACLE_ROWS = (0.25, 0.65)     # rows searched for obstacles (above the near road surface)
MAX_OBSTACLE_M = 40.0


DIRECTIVES = ("emphasize warm objects", "keep visible colors")


def guidance_text(caption: str, directive: str = "") -> str:
    """The text the fusion network is guided by: the scene caption and the user's directive."""
    if directive and directive not in DIRECTIVES:
        raise ValueError(f"directive {directive!r}: expected one of {', '.join(DIRECTIVES)} or empty")
    return f"{caption}; {directive}" if directive else caption


@dataclass(frozen=True)
class SceneFacts:
    light: str
    hazy: bool
    warm_count: int
    warm_dist_m: float | None
    warm_side: str | None
    obstacle_dist_m: float | None
    obstacle_side: str | None


def _side(u: float, width: int) -> str:
    return "left" if u < width / 3 else ("right" if u > 2 * width / 3 else "ahead")


def quantize_distance(d: float) -> str:
    if not np.isfinite(d) or d > MAX_OBSTACLE_M:
        return "far"
    return f"{max(1, int(round(d)))} m" if d < 10 else f"{int(5 * round(d / 5))} m"


def scene_facts(visible: np.ndarray, thermal01: np.ndarray, depth_visible: np.ndarray | None,
                depth_thermal: np.ndarray | None) -> SceneFacts:
    """Measure what the caption says. visible: (H, W, 3) uint8; thermal01: (H, W) in [0, 1]
    on the same grid; depths in meters (NaN invalid), either may be None."""
    visible, thermal01, depth_visible, depth_thermal = _downsample(visible, thermal01, depth_visible, depth_thermal)
    luma = cv2.cvtColor(visible, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    mean = float(luma.mean())
    light = "dark" if mean < DARK else ("dim" if mean < DIM else "bright")
    hazy = light != "dark" and float(luma.std()) < HAZY_CONTRAST
    depth = _combined_depth(depth_visible, depth_thermal)
    warm = _warm_objects(thermal01, depth_thermal if depth_thermal is not None else depth)
    obstacle = _nearest_obstacle(depth) if depth is not None else None
    w = visible.shape[1]   # (downsampled) width: sides are thirds of it
    return SceneFacts(light, hazy, len(warm),
                      warm[0][0] if warm else None, _side(warm[0][1], w) if warm else None,
                      obstacle[0] if obstacle else None, _side(obstacle[1], w) if obstacle else None)


CAPTION_WIDTH = 160   # captions are coarse: measuring them on 160 px wide images costs ~1/16 of full size


def _downsample(visible, thermal01, depth_visible, depth_thermal):
    h, w = visible.shape[:2]
    if w <= CAPTION_WIDTH:
        return visible, thermal01, depth_visible, depth_thermal
    size = (CAPTION_WIDTH, max(1, round(h * CAPTION_WIDTH / w)))
    near = lambda d: None if d is None else cv2.resize(d, size, interpolation=cv2.INTER_NEAREST)  # noqa: E731
    return (cv2.resize(visible, size, interpolation=cv2.INTER_AREA), cv2.resize(thermal01, size, interpolation=cv2.INTER_AREA),
            near(depth_visible), near(depth_thermal))


def _combined_depth(a, b):
    """Both branches' geometric mean where both see a surface, else whichever does: the nearer
    of the two would carry either branch's worst error into the caption."""
    if a is None or b is None:
        return a if b is None else b
    with np.errstate(invalid="ignore"):
        both = np.sqrt(a * b)
    return np.where(np.isfinite(a) & np.isfinite(b), both, np.fmin(a, b))


def _warm_objects(thermal01: np.ndarray, depth: np.ndarray | None) -> list[tuple[float, float]]:
    """(distance, centroid u) of warm blobs, nearest first. Warm is relative to the frame:
    cameras with automatic gain put people anywhere in the range (0.2 on a dark MSRS night,
    0.9 on a RoadScene day), but always in the frame's top few percent and clearly above its
    common level."""
    thr = max(float(np.percentile(thermal01, WARM_PERCENTILE)), float(np.median(thermal01)) + WARM_ABOVE_MEDIAN)
    mask = (thermal01 >= thr).astype(np.uint8)
    n, labels, stats, cents = cv2.connectedComponentsWithStats(mask, connectivity=8)
    blobs = []
    for i in range(1, n):
        if not WARM_MIN_AREA * thermal01.size <= stats[i, cv2.CC_STAT_AREA] <= WARM_MAX_AREA * thermal01.size:
            continue
        d = np.nan
        if depth is not None:
            vals = depth[labels == i]
            vals = vals[np.isfinite(vals)]
            d = float(np.median(vals)) if vals.size else np.nan
        blobs.append((d, float(cents[i][0])))
    return sorted(blobs, key=lambda b: (not np.isfinite(b[0]), b[0]))


def _nearest_obstacle(depth: np.ndarray) -> tuple[float, float] | None:
    """(distance, column) of the nearest surface in the band above the near road: per column
    the 5th percentile, smoothed over 5% of the width so that one column's error is not an
    obstacle, the outer columns left out."""
    h, w = depth.shape
    band = depth[int(OBSTACLE_ROWS[0] * h):int(OBSTACLE_ROWS[1] * h)]
    if not np.isfinite(band).any():
        return None
    col = column_percentile(band, 5)
    from scipy.ndimage import median_filter
    smooth = median_filter(np.where(np.isfinite(col), col, np.inf), size=max(1, int(0.05 * w)) | 1, mode="nearest")
    smooth = np.where(np.isfinite(smooth), smooth, np.nan)
    edge = int(OBSTACLE_EDGE * w) if w > 2 * int(OBSTACLE_EDGE * w) else 0
    inner = smooth[edge:w - edge]
    if not np.isfinite(inner).any():
        return None
    u = int(np.nanargmin(inner)) + edge
    d = float(smooth[u])
    return (d, float(u)) if d <= MAX_OBSTACLE_M else None


def column_percentile(values: np.ndarray, q: float) -> np.ndarray:
    """Per column, the q-th percentile of the finite values (linear interpolation, as
    `np.nanpercentile`), NaN where a column has none; one sort for all columns instead of
    numpy's loop over them."""
    finite = np.isfinite(values)
    ordered = np.sort(np.where(finite, values, np.inf), axis=0)
    n = finite.sum(0)
    pos = q / 100.0 * np.maximum(n - 1, 0)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, np.maximum(n - 1, 0))
    cols = np.arange(values.shape[1])
    a, b = ordered[lo, cols], ordered[hi, cols]
    with np.errstate(invalid="ignore"):
        out = a + (pos - lo) * (b - a)
    return np.where(n > 0, out, np.nan)


def caption_from_facts(f: SceneFacts) -> str:
    light = f"a {f.light} scene" + (", hazy" if f.hazy else "")
    if f.warm_count == 0:
        warm = "no warm objects"
    else:
        s = "s" if f.warm_count > 1 else ""
        dist = quantize_distance(f.warm_dist_m) if f.warm_dist_m is not None else "far"
        warm = f"{f.warm_count} warm object{s}, nearest {dist} {f.warm_side}"
    if f.obstacle_dist_m is None:
        nearest = "no obstacle within 40 m"
    else:
        nearest = f"nearest obstacle {quantize_distance(f.obstacle_dist_m)} {f.obstacle_side}"
    return f"{light}; {warm}; {nearest}"


def make_caption(visible, thermal01, depth_visible=None, depth_thermal=None) -> str:
    return caption_from_facts(scene_facts(visible, thermal01, depth_visible, depth_thermal))
