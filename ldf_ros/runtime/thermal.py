"""Thermal image normalization: raw camera values -> float32 in [0, 1].

Thermal cameras publish 8-bit AGC output (mono8), 16-bit raw counts (mono16/16UC1) or
temperatures (32FC1). Raw counts shown as-is look black (a 16-bit image with values
around 29000 of 65535), which is the most common "mono16 thermal shown wrong" report; every
consumer in this package normalizes here, once, with the same rule in training and at run time.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ThermalNormalization:
    mode: str = "percentile"        # "percentile": per-frame AGC; "range": fixed [range_min, range_max]
    range_min: float = 0.0
    range_max: float = 65535.0
    low_percentile: float = 1.0
    high_percentile: float = 99.0

    def __post_init__(self):
        if self.mode not in ("percentile", "range"):
            raise ValueError(f"thermal normalization mode {self.mode!r}: expected 'percentile' or 'range'")
        if self.mode == "range" and not self.range_min < self.range_max:
            raise ValueError("thermal range_min must be below range_max")
        if not 0 <= self.low_percentile < self.high_percentile <= 100:
            raise ValueError("thermal percentiles must satisfy 0 <= low < high <= 100")

    @staticmethod
    def from_config(cfg) -> "ThermalNormalization":
        """From the `thermal` section of `ldf_ros.config.FusionConfig`."""
        return ThermalNormalization(cfg.normalization, cfg.range_min, cfg.range_max, cfg.low_percentile,
                                    cfg.high_percentile)


_SUBSAMPLE = 4  # percentiles from every 4th pixel in u and v: same result to <1 count, 16x cheaper


def normalize_thermal(image: np.ndarray, norm: ThermalNormalization = ThermalNormalization()) -> np.ndarray:
    """(H, W) uint8, uint16 or float32 -> (H, W) float32 in [0, 1]. NaN/inf pixels become 0.

    mono8 images are already gain-controlled by the camera and are only scaled by 1/255
    in percentile mode; everything else is stretched between percentiles or the fixed range.
    """
    if image.ndim != 2:
        raise ValueError(f"thermal image must be single channel (H, W), got shape {image.shape}")
    if image.dtype not in (np.uint8, np.uint16, np.float32, np.float64):
        raise ValueError(f"thermal image dtype {image.dtype} not supported (uint8, uint16, float32)")
    if image.size == 0:
        raise ValueError("thermal image is empty")
    img = image.astype(np.float32)
    finite = np.isfinite(img)
    if norm.mode == "range":
        lo, hi = norm.range_min, norm.range_max
    elif image.dtype == np.uint8:
        lo, hi = 0.0, 255.0
    else:
        sample = img[::_SUBSAMPLE, ::_SUBSAMPLE]
        sample = sample[np.isfinite(sample)]
        if sample.size == 0:
            return np.zeros(img.shape, np.float32)
        lo, hi = np.percentile(sample, [norm.low_percentile, norm.high_percentile])
    out = (img - np.float32(lo)) / np.float32(max(hi - lo, 1e-6))
    out = np.clip(out, 0.0, 1.0)
    out[~finite] = 0.0
    return out
