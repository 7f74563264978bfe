"""Image operations shared by fusion, training and evaluation: gradients, local statistics, SSIM."""
from __future__ import annotations

import cv2
import numpy as np


def sobel(img: np.ndarray, border: int = cv2.BORDER_REPLICATE) -> tuple[np.ndarray, np.ndarray]:
    """3x3 Sobel derivatives (x, y) of a float image; `border` is an OpenCV border mode."""
    img = np.asarray(img, dtype=np.float64)
    gx = cv2.Sobel(img, cv2.CV_64F, 1, 0, ksize=3, borderType=border)
    gy = cv2.Sobel(img, cv2.CV_64F, 0, 1, ksize=3, borderType=border)
    return gx, gy


def box_mean(img: np.ndarray, size: int) -> np.ndarray:
    """Mean over a size x size window centered on each pixel (reflected borders)."""
    return cv2.blur(np.asarray(img, dtype=np.float64), (size, size), borderType=cv2.BORDER_REFLECT)


def ssim(a: np.ndarray, b: np.ndarray, win: int = 7, data_range: float = 255.0,
         k1: float = 0.01, k2: float = 0.03) -> float:
    """Mean SSIM (Wang et al., IEEE TIP 2004) with a uniform win x win window.

    Follows the common convention (as scikit-image's default): sample covariances
    (N / (N - 1) correction) and the mean taken away from a border of (win - 1) / 2 pixels.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"ssim: shapes differ {a.shape} vs {b.shape}")
    n = win * win
    cov_norm = n / (n - 1)
    ux, uy = box_mean(a, win), box_mean(b, win)
    vx = cov_norm * (box_mean(a * a, win) - ux * ux)
    vy = cov_norm * (box_mean(b * b, win) - uy * uy)
    vxy = cov_norm * (box_mean(a * b, win) - ux * uy)
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    pad = (win - 1) // 2
    return float(s[pad:-pad, pad:-pad].mean())


def resize_inverse(depth: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Depth resized to (width, height) bilinearly in inverse depth, which interpolates across
    edges far better than depth; NaN stays NaN (and so do its neighbours)."""
    if depth.shape[::-1] == tuple(size):
        return depth.astype(np.float32, copy=False)
    with np.errstate(divide="ignore"):
        inv = cv2.resize((1.0 / depth).astype(np.float32), size, interpolation=cv2.INTER_LINEAR)
        return (1.0 / inv).astype(np.float32)
