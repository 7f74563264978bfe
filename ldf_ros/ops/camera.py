"""Pinhole camera geometry in the ROS optical convention (x right, y down, z forward).

Depth here is always the z coordinate in the camera's optical frame, in meters (REP-118),
never the distance along the ray.
"""
from __future__ import annotations

import numpy as np


def quaternion_to_matrix(q) -> np.ndarray:
    """3x3 rotation of a unit quaternion given as (x, y, z, w), the ROS order."""
    x, y, z, w = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def matrix_to_quaternion(r: np.ndarray) -> np.ndarray:
    """(x, y, z, w) of a rotation matrix (Shepperd's method, stable for all angles)."""
    r = np.asarray(r, dtype=np.float64)
    tr = np.trace(r)
    if tr > 0:
        s = np.sqrt(tr + 1.0) * 2
        q = [(r[2, 1] - r[1, 2]) / s, (r[0, 2] - r[2, 0]) / s, (r[1, 0] - r[0, 1]) / s, 0.25 * s]
    else:
        i = int(np.argmax(np.diag(r)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = np.sqrt(1.0 + r[i, i] - r[j, j] - r[k, k]) * 2
        q = [0.0, 0.0, 0.0, (r[k, j] - r[j, k]) / s]
        q[i] = 0.25 * s
        q[j] = (r[j, i] + r[i, j]) / s
        q[k] = (r[k, i] + r[i, k]) / s
    return np.asarray(q)


def intrinsics(fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


def scale_intrinsics(k: np.ndarray, from_size: tuple[int, int], to_size: tuple[int, int]) -> np.ndarray:
    """K for an image resized from (width, height) to (width, height). Pixel centres sit at
    integer coordinates, so the principal point moves as (c + 0.5) s - 0.5, not c s."""
    sx, sy = to_size[0] / from_size[0], to_size[1] / from_size[1]
    k = np.asarray(k, dtype=np.float64).copy()
    k[0, :2] *= sx                         # fx and skew
    k[1, 1] *= sy
    k[0, 2] = (k[0, 2] + 0.5) * sx - 0.5
    k[1, 2] = (k[1, 2] + 0.5) * sy - 0.5
    return k


def pixel_rays(k: np.ndarray, width: int, height: int) -> np.ndarray:
    """(H, W, 3) rays through pixel centers with z = 1, so a ray's parameter t is the depth."""
    u, v = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
    kinv = np.linalg.inv(k)
    pix = np.stack([u, v, np.ones_like(u)], axis=-1)
    return pix @ kinv.T


def backproject(depth: np.ndarray, k: np.ndarray) -> np.ndarray:
    """(H, W) depth in meters -> (H, W, 3) points in the optical frame (NaN stays NaN)."""
    h, w = depth.shape
    return pixel_rays(k, w, h) * depth[..., None]


def project(points: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(..., 3) optical-frame points -> (..., 2) pixel coordinates and their depth z."""
    z = points[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = (points[..., :2] / z[..., None]) * np.array([k[0, 0], k[1, 1]]) + np.array([k[0, 2], k[1, 2]])
    return uv, z


def transform(points: np.ndarray, rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    """Apply p' = R p + t to (..., 3) points."""
    return points @ np.asarray(rotation).T + np.asarray(translation)


def intrinsics_problem(k) -> str | None:
    """Why a 3x3 K cannot be a pinhole camera (None when it can): non-finite entries,
    non-positive focal lengths or a last row other than (0, 0, 1)."""
    k = np.asarray(k, dtype=np.float64)
    if k.shape != (3, 3):
        return f"K has shape {k.shape}, expected 3x3"
    if not np.isfinite(k).all():
        return f"K has non-finite entries (fx={k[0, 0]}, fy={k[1, 1]}, cx={k[0, 2]}, cy={k[1, 2]})"
    if k[0, 0] <= 0 or k[1, 1] <= 0:
        return f"K has a non-positive focal length (fx={k[0, 0]}, fy={k[1, 1]})"
    if not np.allclose(k[2], (0.0, 0.0, 1.0)):
        return f"K's last row is {k[2].tolist()}, expected [0, 0, 1]"
    return None


def reproject_depth(depth: np.ndarray, k_src: np.ndarray, k_dst: np.ndarray, rotation: np.ndarray,
                    translation: np.ndarray, size: tuple[int, int], *values: np.ndarray) -> tuple[np.ndarray, ...]:
    """Depth seen by one camera as another camera of the rig would see it: every pixel is
    backprojected, moved into the other camera's frame (p_dst = R p_src + t), projected at
    (width, height) `size`, and the nearest surface kept where several land on one pixel.
    `values` (per-pixel maps of the source) travel with their surface. NaN where nothing
    lands; a source coarser than the target leaves holes, so pass one at least as fine."""
    w, h = size
    pts = transform(backproject(depth.astype(np.float64), k_src).reshape(-1, 3), rotation, translation)
    uv, z = project(pts, k_dst)
    with np.errstate(invalid="ignore"):
        u, v = np.floor(uv[:, 0] + 0.5), np.floor(uv[:, 1] + 0.5)
        ok = np.isfinite(z) & (z > 0) & (u >= 0) & (u < w) & (v >= 0) & (v < h)
    pix = (v[ok] * w + u[ok]).astype(np.int64)
    src = np.flatnonzero(ok)
    order = np.lexsort((z[ok], pix))                    # by pixel, nearest first
    first = order[np.r_[True, pix[order][1:] != pix[order][:-1]]] if len(order) else order
    outs = []
    for m in (z.reshape(depth.shape), *values):
        out = np.full(h * w, np.nan, np.float32)
        out[pix[first]] = np.asarray(m, np.float32).reshape(-1)[src[first]]
        outs.append(out.reshape(h, w))
    return tuple(outs)
