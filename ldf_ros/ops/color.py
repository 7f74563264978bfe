"""Color conversions shared by fusion, baselines and metrics (ITU-R BT.601, full range)."""
from __future__ import annotations

import numpy as np

LUMA_WEIGHTS = (0.299, 0.587, 0.114)
CB_SCALE, CR_SCALE = 0.564, 0.713        # Cb = (B - Y) * CB_SCALE, Cr = (R - Y) * CR_SCALE


def rgb_to_ycbcr(rgb: np.ndarray, scale: float = 255.0) -> np.ndarray:
    """(..., 3) RGB in [0, scale] -> YCbCr in the same scale, chroma centered at half scale.

    `scale` is 255 for 8-bit values or 1 for normalized ones; it only sets the chroma center.
    """
    rgb = np.asarray(rgb, dtype=np.float64)
    half = 128.0 if scale > 1.0 else 0.5
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = LUMA_WEIGHTS[0] * r + LUMA_WEIGHTS[1] * g + LUMA_WEIGHTS[2] * b
    cb = (b - y) * CB_SCALE + half
    cr = (r - y) * CR_SCALE + half
    return np.stack([y, cb, cr], axis=-1)


def ycbcr_to_rgb(ycc: np.ndarray, scale: float = 255.0) -> np.ndarray:
    """Inverse of :func:`rgb_to_ycbcr`; `scale` is 255 or 1 (sets the chroma center)."""
    half = 128.0 if scale > 1.0 else 0.5
    y, cb, cr = ycc[..., 0], ycc[..., 1] - half, ycc[..., 2] - half
    r = y + cr / CR_SCALE
    b = y + cb / CB_SCALE
    g = (y - LUMA_WEIGHTS[0] * r - LUMA_WEIGHTS[2] * b) / LUMA_WEIGHTS[1]
    return np.stack([r, g, b], axis=-1)


def luminance_u8(rgb: np.ndarray) -> np.ndarray:
    """Y = 0.299R + 0.587G + 0.114B rounded to uint8: the luminance fusion metrics use."""
    rgb = np.asarray(rgb, dtype=np.float64)
    if rgb.ndim == 2:
        return np.clip(np.round(rgb), 0, 255).astype(np.uint8)
    y = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
    return np.clip(np.round(y), 0, 255).astype(np.uint8)


def is_gray(rgb: np.ndarray, tolerance: float = 1.5) -> bool:
    """True for a gray visible image stored as RGB: the channels' mean absolute deviation from
    their mean, on a subsample, is at most `tolerance` levels (JPEG leaves about one level of
    chroma noise on a gray image; colour scenes are above five). Many thermal rigs pair a
    monochrome camera, and mono8 input arrives so."""
    sample = rgb[::4, ::4].astype(np.float32)
    return float(np.abs(sample - sample.mean(2, keepdims=True)).mean()) <= tolerance
