"""Depth inference: numpy image in, metric depth (meters, NaN where invalid) out.

The network runs at its trained input size; images are resized to it and the prediction
is resized back in inverse depth (which interpolates across edges far better than depth).
"""
from __future__ import annotations

import cv2
import numpy as np
import torch

from ldf_ros.models.depth_net import DepthNet
from ldf_ros.runtime.thermal import ThermalNormalization, normalize_thermal


def depth_input(image: np.ndarray, modality: str, thermal_norm: ThermalNormalization = ThermalNormalization()) -> np.ndarray:
    """(C, H, W) float32 in [0, 1] as the depth networks expect: RGB uint8 for visible,
    raw or normalized single-channel thermal for thermal (normalized here if not float in [0,1])."""
    if modality == "visible":
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"visible depth input must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
        return np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32) / 255.0
    if image.dtype == np.float32 and image.ndim == 2 and np.nanmin(image) >= 0 and np.nanmax(image) <= 1:
        return image[None]
    return normalize_thermal(image, thermal_norm)[None]


class DepthPredictor:
    """One depth network on one device; call with a numpy image of any size."""

    def __init__(self, model: DepthNet, device: str = "cpu", fp16: bool = False):
        self.model = model.to(device).eval()
        self.device = device
        self.dtype = torch.float16 if (fp16 and device.startswith("cuda")) else torch.float32
        self.model.to(self.dtype)
        self.modality = model.cfg.modality

    @torch.inference_mode()
    def predict_tensor(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) in [0, 1] at any size -> (B, 1, H, W) depth in meters."""
        cfg = self.model.cfg
        h, w = x.shape[-2:]
        inp = torch.nn.functional.interpolate(x.to(self.device, self.dtype), size=(cfg.input_height, cfg.input_width),
                                              mode="bilinear", align_corners=False, antialias=True)
        depth = self.model(inp)["depth"].float()
        inv = torch.nn.functional.interpolate(1.0 / depth, size=(h, w), mode="bilinear", align_corners=False)
        return 1.0 / inv

    def __call__(self, image: np.ndarray, thermal_norm: ThermalNormalization = ThermalNormalization()) -> np.ndarray:
        x = torch.from_numpy(depth_input(image, self.modality, thermal_norm))[None]
        return self.predict_tensor(x)[0, 0].cpu().numpy().astype(np.float32)


def resize_depth(depth: np.ndarray, width: int, height: int) -> np.ndarray:
    """Nearest-neighbour resize that never invents depths between surfaces."""
    return cv2.resize(depth, (width, height), interpolation=cv2.INTER_NEAREST)


def visible_reliability(visible: np.ndarray, window: int = 15) -> np.ndarray:
    """(H, W) weight in [0, 1]: how far the visible image can be trusted for depth here.
    Low where it is dark (night) or without local contrast (fog, glare, blown-out)."""
    luma = cv2.cvtColor(visible, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    mean = cv2.blur(luma, (window, window))
    std = np.sqrt(np.maximum(cv2.blur(luma * luma, (window, window)) - mean * mean, 0.0))
    bright = np.clip((mean - 0.04) / 0.16, 0.0, 1.0)
    contrast = np.clip(std / 0.06, 0.0, 1.0)
    return cv2.blur(bright * contrast, (window, window))


def blend_depths(depth_visible: np.ndarray, depth_thermal: np.ndarray, visible: np.ndarray,
                 thermal_valid: np.ndarray | None = None) -> np.ndarray:
    """Log-depth blend of the two branches weighted by the visible image's reliability;
    only the visible branch where the thermal camera does not see (or its depth is invalid)."""
    w = visible_reliability(visible)
    thermal_ok = np.isfinite(depth_thermal) if thermal_valid is None else thermal_valid & np.isfinite(depth_thermal)
    w = np.where(thermal_ok, w, 1.0)
    depth_thermal = np.where(thermal_ok, depth_thermal, 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.exp(w * np.log(depth_visible) + (1.0 - w) * np.log(depth_thermal))
    return out.astype(np.float32)
