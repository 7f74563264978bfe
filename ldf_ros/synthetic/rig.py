"""The RGB + thermal camera rig: intrinsics, the thermal-to-RGB extrinsic, its motion."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ldf_ros.ops.camera import intrinsics, quaternion_to_matrix

# optical frame (x right, y down, z forward) -> world (x right, y forward, z up)
OPTICAL_TO_WORLD = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])


@dataclass(frozen=True)
class PinholeCamera:
    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float

    @property
    def k(self) -> np.ndarray:
        return intrinsics(self.fx, self.fy, self.cx, self.cy)

    @staticmethod
    def from_hfov(width: int, height: int, hfov_deg: float) -> "PinholeCamera":
        f = 0.5 * width / np.tan(np.radians(hfov_deg) / 2)
        return PinholeCamera(width, height, f, f, (width - 1) / 2, (height - 1) / 2)

    def to_dict(self) -> dict:
        return {"width": self.width, "height": self.height, "k": [float(v) for v in self.k.ravel()]}


@dataclass(frozen=True)
class Rig:
    """Two cameras; the thermal pose is given in the RGB optical frame (p_rgb = R p_th + t)."""

    rgb: PinholeCamera = field(default_factory=lambda: PinholeCamera.from_hfov(640, 512, 66.0))
    thermal: PinholeCamera = field(default_factory=lambda: PinholeCamera.from_hfov(320, 256, 50.0))
    thermal_to_rgb_translation: tuple[float, float, float] = (0.08, 0.01, 0.0)
    thermal_to_rgb_rotation: tuple[float, float, float, float] = (0.0, 0.00873, 0.0, 0.99996)  # ~1 deg yaw
    mount_height_m: float = 1.5
    pitch_deg: float = 3.0      # camera looks slightly down
    speed_mps: float = 8.0

    def rgb_pose(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """RGB camera-to-world rotation and position at time t (s) along the road."""
        sway = 0.4 * np.sin(0.3 * t)
        yaw = np.radians(2.0) * np.sin(0.25 * t)
        pitch = np.radians(self.pitch_deg)
        r_pitch = np.array([[1, 0, 0], [0, np.cos(pitch), -np.sin(pitch)], [0, np.sin(pitch), np.cos(pitch)]])
        r_yaw = np.array([[np.cos(yaw), -np.sin(yaw), 0], [np.sin(yaw), np.cos(yaw), 0], [0, 0, 1]])
        # pitch about the optical x axis (positive looks down), then yaw about world z
        r = r_yaw @ OPTICAL_TO_WORLD @ r_pitch.T
        return r, np.array([sway, self.speed_mps * t, self.mount_height_m])

    def thermal_pose(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        r_rgb, t_rgb = self.rgb_pose(t)
        r_ext = quaternion_to_matrix(self.thermal_to_rgb_rotation)
        return r_rgb @ r_ext, t_rgb + r_rgb @ np.asarray(self.thermal_to_rgb_translation)
