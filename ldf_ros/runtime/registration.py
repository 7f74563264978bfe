"""Registration of the thermal image onto the RGB camera's pixel grid.

Three ways, as rigs differ:
- camera_info: both intrinsics plus the thermal->RGB extrinsic. Pixels are mapped through the
  plane z = plane_depth_m in front of the RGB camera (the induced homography
  H = K_th R^T (I - t n^T / d) K_rgb^-1). Exact for the plane, parallax error elsewhere
  shrinks as baseline / depth (8 cm at 10 m: under a pixel at 640 px beyond ~5 m).
- homography: a fixed 3x3 thermal->RGB pixel map from config, for pre-aligned rigs.
- identity: the cameras are already aligned; the thermal image is only resized.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ldf_ros.ops.camera import quaternion_to_matrix


@dataclass(frozen=True)
class Extrinsic:
    """Thermal pose in the RGB optical frame: p_rgb = R p_thermal + t."""

    rotation_xyzw: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 1.0)
    translation: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @property
    def r(self) -> np.ndarray:
        return quaternion_to_matrix(self.rotation_xyzw)

    @property
    def t(self) -> np.ndarray:
        return np.asarray(self.translation, dtype=np.float64)


def plane_homography(k_rgb: np.ndarray, k_thermal: np.ndarray, extrinsic: Extrinsic, plane_depth_m: float) -> np.ndarray:
    """3x3 map from RGB pixels to thermal pixels for points on the plane z_rgb = plane_depth_m."""
    if plane_depth_m <= 0:
        raise ValueError(f"plane depth must be positive, got {plane_depth_m}")
    n = np.array([[0.0, 0.0, 1.0]])
    r_t = extrinsic.r.T
    h = k_thermal @ r_t @ (np.eye(3) - extrinsic.t.reshape(3, 1) @ n / plane_depth_m) @ np.linalg.inv(k_rgb)
    return h / h[2, 2]


class ThermalRegistration:
    """Warps thermal images into the RGB grid; the pixel maps are built once per geometry and
    reused, so a frame costs one `cv2.remap`."""

    def __init__(self, mode: str, homography: np.ndarray | None = None, extrinsic: Extrinsic = Extrinsic(),
                 plane_depth_m: float = 10.0):
        if mode not in ("camera_info", "homography", "identity"):
            raise ValueError(f"registration mode {mode!r}: expected camera_info, homography or identity")
        self.mode = mode
        self.homography = None if homography is None else np.asarray(homography, dtype=np.float64).reshape(3, 3)
        if mode == "homography" and (self.homography is None or abs(np.linalg.det(self.homography)) < 1e-12):
            raise ValueError("registration.homography must be an invertible 3x3 matrix")
        self.extrinsic = extrinsic
        self.plane_depth_m = plane_depth_m
        self._key = None
        self._maps = None

    def rgb_to_thermal(self, k_rgb: np.ndarray | None, k_thermal: np.ndarray | None) -> np.ndarray:
        """The 3x3 RGB-pixel -> thermal-pixel map used for the current geometry."""
        if self.mode == "homography":
            return np.linalg.inv(self.homography)
        if k_rgb is None or k_thermal is None:
            raise ValueError("camera_info registration needs both intrinsics")
        return plane_homography(k_rgb, k_thermal, self.extrinsic, self.plane_depth_m)

    def __call__(self, thermal: np.ndarray, rgb_size: tuple[int, int], k_rgb: np.ndarray | None = None,
                 k_thermal: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(registered thermal at rgb_size=(W, H), valid mask: pixels the thermal camera sees)."""
        w, h = rgb_size
        if self.mode == "identity":
            if thermal.shape[:2] == (h, w):
                return thermal, np.ones((h, w), bool)
            return cv2.resize(thermal, (w, h), interpolation=cv2.INTER_LINEAR), np.ones((h, w), bool)
        key = (w, h, thermal.shape[:2], None if k_rgb is None else k_rgb.tobytes(),
               None if k_thermal is None else k_thermal.tobytes())
        if key != self._key:
            self._maps = self._build_maps(self.rgb_to_thermal(k_rgb, k_thermal), w, h, thermal.shape[1], thermal.shape[0])
            self._key = key
        map_x, map_y, valid = self._maps
        out = cv2.remap(thermal, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        return out, valid

    @staticmethod
    def _build_maps(h_rgb_to_th: np.ndarray, w: int, h: int, tw: int, th: int):
        u, v = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
        pix = np.stack([u, v, np.ones_like(u)], -1) @ h_rgb_to_th.T
        with np.errstate(divide="ignore", invalid="ignore"):
            mx = (pix[..., 0] / pix[..., 2]).astype(np.float32)
            my = (pix[..., 1] / pix[..., 2]).astype(np.float32)
        valid = (pix[..., 2] > 0) & (mx >= 0) & (mx <= tw - 1) & (my >= 0) & (my <= th - 1)
        mx[~valid], my[~valid] = -1.0, -1.0
        return mx, my, valid
