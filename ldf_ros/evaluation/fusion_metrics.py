"""Image fusion metrics on the luminance channel in [0, 255], as the field computes them.

Conventions (so numbers compare with published tables): luminance Y = 0.299R + 0.587G +
0.114B rounded to uint8; histograms of 256 bins in bits; two-source metrics sum over both
sources. Definitions are cited per function.
"""
from __future__ import annotations

import cv2
import numpy as np

from ldf_ros.ops.color import luminance_u8
from ldf_ros.ops.image import sobel, ssim

METRICS = ("EN", "SD", "SF", "AG", "MI", "SCD", "VIF", "Qabf", "SSIM")


def entropy(f: np.ndarray) -> float:
    """EN: Shannon entropy of the 256-bin gray histogram, bits (Roberts et al., J. Appl. Remote Sens. 2008)."""
    hist = np.bincount(np.asarray(f, np.uint8).ravel(), minlength=256).astype(np.float64)
    p = hist[hist > 0] / hist.sum()
    return float(-(p * np.log2(p)).sum())


def standard_deviation(f: np.ndarray) -> float:
    """SD: population standard deviation of intensities (contrast)."""
    return float(np.asarray(f, np.float64).std())


def spatial_frequency(f: np.ndarray) -> float:
    """SF = sqrt(RF^2 + CF^2), RF/CF the RMS of horizontal/vertical first differences (Eskicioglu & Fisher 1995)."""
    f = np.asarray(f, np.float64)
    rf = np.sqrt(np.mean(np.diff(f, axis=1) ** 2))
    cf = np.sqrt(np.mean(np.diff(f, axis=0) ** 2))
    return float(np.sqrt(rf ** 2 + cf ** 2))


def average_gradient(f: np.ndarray) -> float:
    """AG: sum of sqrt((Gx^2 + Gy^2) / 2) over (W-1)(H-1), central-difference gradients
    (Cui et al., Opt. Commun. 2015; the normalization used by the published evaluation code)."""
    f = np.asarray(f, np.float64)
    gy, gx = np.gradient(f)
    h, w = f.shape
    return float(np.sum(np.sqrt((gx ** 2 + gy ** 2) / 2)) / ((w - 1) * (h - 1)))


def mutual_information(a: np.ndarray, b: np.ndarray) -> float:
    """MI(a, b) in bits from the 256x256 joint histogram (Qu et al., Electron. Lett. 2002)."""
    joint = np.bincount(np.asarray(a, np.uint8).ravel().astype(np.int64) * 256 + np.asarray(b, np.uint8).ravel(),
                        minlength=65536).reshape(256, 256).astype(np.float64)
    pab = joint / joint.sum()
    pa, pb = pab.sum(axis=1), pab.sum(axis=0)
    nz = pab > 0
    return float((pab[nz] * np.log2(pab[nz] / (pa[:, None] * pb[None, :])[nz])).sum())


def _corr2(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    den = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / den) if den > 0 else 0.0


def scd(f: np.ndarray, ir: np.ndarray, vi: np.ndarray) -> float:
    """SCD = corr2(F - VI, IR) + corr2(F - IR, VI) (Aslantas & Bendes, AEU 2015)."""
    f, ir, vi = (np.asarray(x, np.float64) for x in (f, ir, vi))
    return _corr2(f - vi, ir) + _corr2(f - ir, vi)


def _gaussian_window(n: int) -> np.ndarray:
    sigma = n / 5.0
    ax = np.arange(n) - (n - 1) / 2
    g = np.exp(-(ax[:, None] ** 2 + ax[None, :] ** 2) / (2 * sigma * sigma))
    return g / g.sum()


def _filter_valid(img: np.ndarray, win: np.ndarray) -> np.ndarray:
    """MATLAB filter2(win, img, 'valid')."""
    full = cv2.filter2D(img, cv2.CV_64F, win, borderType=cv2.BORDER_CONSTANT)
    n = win.shape[0]
    lo = n // 2
    hi = n - 1 - lo
    return full[lo:img.shape[0] - hi, lo:img.shape[1] - hi]


def vif(ref: np.ndarray, dist: np.ndarray, sigma_nsq: float = 2.0) -> float:
    """Pixel-domain multi-scale VIF of `dist` given `ref` (Sheikh & Bovik, IEEE TIP 2006; vifp_mscale):
    4 scales with Gaussian windows 17, 9, 5, 3 (sigma N/5), noise variance 2."""
    ref = np.asarray(ref, np.float64)
    dist = np.asarray(dist, np.float64)
    num = den = 0.0
    eps = 1e-10
    for scale in range(1, 5):
        n = 2 ** (4 - scale + 1) + 1
        win = _gaussian_window(n)
        if scale > 1:
            ref = _filter_valid(ref, win)[::2, ::2]
            dist = _filter_valid(dist, win)[::2, ::2]
        mu1, mu2 = _filter_valid(ref, win), _filter_valid(dist, win)
        s1 = np.maximum(_filter_valid(ref * ref, win) - mu1 * mu1, 0)
        s2 = np.maximum(_filter_valid(dist * dist, win) - mu2 * mu2, 0)
        s12 = _filter_valid(ref * dist, win) - mu1 * mu2
        g = s12 / (s1 + eps)
        sv = s2 - g * s12
        low1 = s1 < eps
        g[low1] = 0
        sv[low1] = s2[low1]
        s1[low1] = 0
        low2 = s2 < eps
        g[low2] = 0
        sv[low2] = 0
        neg = g < 0
        sv[neg] = s2[neg]
        g[neg] = 0
        sv = np.maximum(sv, eps)
        num += np.sum(np.log10(1 + g * g * s1 / (sv + sigma_nsq)))
        den += np.sum(np.log10(1 + s1 / sigma_nsq))
    return float(num / den) if den > 0 else 0.0


def _edge_strength_orientation(img):
    gx, gy = sobel(img, border=cv2.BORDER_CONSTANT)  # zero padding, as the reference code's conv2 'same'
    g = np.sqrt(gx * gx + gy * gy)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(gx == 0, np.pi / 2, np.arctan(gy / gx))
    return g, a


# Xydeas & Petrovic's constants: strength (Tg, kg, Dg) and orientation (Ta, ka, Da) sigmoids
QABF_CONSTANTS = {"tg": 0.9994, "kg": -15.0, "dg": 0.5, "ta": 0.9879, "ka": -22.0, "da": 0.8}


def _edge_preservation(ga, aa, gf, af, tg, kg, dg, ta, ka, da):
    with np.errstate(divide="ignore", invalid="ignore"):
        g = np.where(ga > gf, gf / ga, np.where(ga == gf, np.where(ga > 0, 1.0, 0.0), ga / gf))
    g = np.nan_to_num(g)
    a = 1 - np.abs(aa - af) / (np.pi / 2)
    qg = tg / (1 + np.exp(kg * (g - dg)))
    qa = ta / (1 + np.exp(ka * (a - da)))
    return qg * qa


def qabf(a: np.ndarray, b: np.ndarray, f: np.ndarray) -> float:
    """Q^{AB/F}: gradient-based edge preservation (Xydeas & Petrovic, Electron. Lett. 2000),
    Sobel gradients, Tg 0.9994, kg -15, Dg 0.5, Ta 0.9879, ka -22, Da 0.8, weights g^1."""
    ga, aa = _edge_strength_orientation(a)
    gb, ab = _edge_strength_orientation(b)
    gf, af = _edge_strength_orientation(f)
    qaf = _edge_preservation(ga, aa, gf, af, **QABF_CONSTANTS)
    qbf = _edge_preservation(gb, ab, gf, af, **QABF_CONSTANTS)
    den = (ga + gb).sum()
    return float((qaf * ga + qbf * gb).sum() / den) if den > 0 else 0.0


def fusion_metrics(fused: np.ndarray, visible: np.ndarray, infrared: np.ndarray) -> dict[str, float]:
    """All nine metrics of a fused image (RGB or gray) given its visible and infrared sources."""
    f, vi, ir = luminance_u8(fused), luminance_u8(visible), luminance_u8(infrared)
    if not (f.shape == vi.shape == ir.shape):
        raise ValueError(f"fused {f.shape}, visible {vi.shape} and infrared {ir.shape} must have one size")
    return {
        "EN": entropy(f),
        "SD": standard_deviation(f),
        "SF": spatial_frequency(f),
        "AG": average_gradient(f),
        "MI": mutual_information(f, ir) + mutual_information(f, vi),
        "SCD": scd(f, ir, vi),
        "VIF": vif(ir, f) + vif(vi, f),
        "Qabf": qabf(ir, vi, f),
        "SSIM": ssim(f, ir) + ssim(f, vi),
    }
