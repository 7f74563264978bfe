"""Images for people: depth, thermal and error maps as color, labelled tiles."""
from __future__ import annotations

import cv2
import numpy as np


def colorize_depth(depth: np.ndarray, max_m: float = 60.0) -> np.ndarray:
    """Depth in meters as RGB (near bright, far dark, no surface black)."""
    d = np.clip(np.nan_to_num(depth, nan=max_m) / max_m, 0, 1)
    rgb = cv2.applyColorMap((255 * (1 - d)).astype(np.uint8), cv2.COLORMAP_MAGMA)[..., ::-1].copy()
    rgb[~np.isfinite(depth)] = 0
    return rgb


def colorize_gray(img8: np.ndarray, colormap: int = cv2.COLORMAP_INFERNO) -> np.ndarray:
    return cv2.applyColorMap(img8, colormap)[..., ::-1].copy()


def colorize_error(rel_error: np.ndarray, max_error: float = 0.5) -> np.ndarray:
    """Relative error map (0 black .. max_error and above white-hot), NaN gray."""
    e = np.clip(np.nan_to_num(rel_error, nan=0.0) / max_error, 0, 1)
    rgb = cv2.applyColorMap((255 * e).astype(np.uint8), cv2.COLORMAP_HOT)[..., ::-1].copy()
    rgb[~np.isfinite(rel_error)] = 64
    return rgb


def label(img: np.ndarray, text: str) -> np.ndarray:
    img = np.ascontiguousarray(img).copy()
    cv2.putText(img, text, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 0, 0), 4, cv2.LINE_AA)
    cv2.putText(img, text, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 1, cv2.LINE_AA)
    return img


def tile_row(tiles: list[np.ndarray], height: int | None = None) -> np.ndarray:
    """Tiles side by side at a common height (gray tiles become RGB)."""
    height = height or tiles[0].shape[0]
    out = []
    for t in tiles:
        if t.ndim == 2:
            t = np.repeat(t[..., None], 3, axis=2)
        if t.shape[0] != height:
            t = cv2.resize(t, (round(t.shape[1] * height / t.shape[0]), height), interpolation=cv2.INTER_AREA)
        out.append(t)
    return np.concatenate(out, axis=1)


def write_rgb_png(path, rgb: np.ndarray) -> None:
    cv2.imwrite(str(path), cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR))
