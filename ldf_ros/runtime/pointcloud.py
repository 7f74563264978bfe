"""Depth image -> colored point cloud in the camera's optical frame.

Depth is REP-118: meters along the optical z axis, NaN (or 0 / inf) where invalid. The
cloud is decimated by `stride` (Nav2 costmaps need a few thousand points, not 300k) and
limited to [min_range, max_range] of Euclidean distance from the camera.
"""
from __future__ import annotations

import numpy as np


def depth_to_pointcloud(depth: np.ndarray, k: np.ndarray, colors: np.ndarray | None = None, stride: int = 1,
                        min_range_m: float = 0.0, max_range_m: float = np.inf) -> tuple[np.ndarray, np.ndarray]:
    """(N, 3) float32 xyz and (N, 3) uint8 rgb (gray 128 without colors) of valid pixels.

    Pixels are sampled at u, v = 0, stride, 2*stride, ...; their coordinates go through the
    full-resolution intrinsics, so decimation never shifts points.
    """
    if depth.ndim != 2:
        raise ValueError(f"depth must be (H, W), got {depth.shape}")
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    if colors is not None and colors.shape[:2] != depth.shape:
        raise ValueError(f"colors {colors.shape[:2]} and depth {depth.shape} differ in size")
    d = depth[::stride, ::stride].astype(np.float32)
    v, u = np.mgrid[0:depth.shape[0]:stride, 0:depth.shape[1]:stride].astype(np.float32)
    fx, fy, cx, cy = float(k[0, 0]), float(k[1, 1]), float(k[0, 2]), float(k[1, 2])
    x = (u - cx) / fx * d
    y = (v - cy) / fy * d
    with np.errstate(invalid="ignore"):
        rng = np.sqrt(x * x + y * y + d * d)
        keep = np.isfinite(d) & (d > 0) & (rng >= min_range_m) & (rng <= max_range_m)
    xyz = np.stack([x[keep], y[keep], d[keep]], axis=-1).astype(np.float32)
    if colors is None:
        rgb = np.full((xyz.shape[0], 3), 128, np.uint8)
    else:
        rgb = colors[::stride, ::stride][keep].reshape(-1, 3).astype(np.uint8)
    return xyz, rgb


def write_ply(path, xyz: np.ndarray, rgb: np.ndarray) -> None:
    """Binary little-endian PLY with float xyz and uchar rgb (opens in MeshLab, CloudCompare, Open3D)."""
    n = xyz.shape[0]
    header = ("ply\nformat binary_little_endian 1.0\n"
              f"element vertex {n}\nproperty float x\nproperty float y\nproperty float z\n"
              "property uchar red\nproperty uchar green\nproperty uchar blue\nend_header\n")
    rec = np.empty(n, dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("r", "u1"), ("g", "u1"), ("b", "u1")])
    rec["x"], rec["y"], rec["z"] = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    rec["r"], rec["g"], rec["b"] = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    with open(path, "wb") as fh:
        fh.write(header.encode("ascii"))
        fh.write(rec.tobytes())
