"""Depth inference: numpy image in, metric depth (meters, NaN where invalid) out.

The network runs at its trained input size; images are resized to it and the prediction
is resized back in inverse depth (which interpolates across edges far better than depth).
Depth from one image is read off apparent sizes and the road's rise in the image, both
proportional to the focal length, so given the camera's intrinsics the prediction is
rescaled from the camera the network learned on (`DepthNetConfig.focal_px`) to this one;
that also makes a crop (the thermal camera's window in the RGB frame) a valid input.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch

from ldf_ros.models.depth_net import DepthNet, DepthNetConfig
from ldf_ros.ops.image import resize_inverse
from ldf_ros.runtime.thermal import ThermalNormalization, normalize_thermal


def depth_input(image: np.ndarray, modality: str, thermal_norm: ThermalNormalization = ThermalNormalization()) -> np.ndarray:
    """(C, H, W) float32 in [0, 1] as the depth networks expect: RGB uint8 for visible,
    raw or normalized single-channel thermal for thermal (normalized here if not float in [0,1]),
    (H, W, 4) float in [0, 1] for rgb_thermal (`modality_image` makes it)."""
    if modality == "rgb_thermal":
        if image.ndim != 3 or image.shape[2] != 4 or image.dtype != np.float32:
            raise ValueError(f"rgb_thermal depth input must be (H, W, 4) float32, got {image.shape} {image.dtype}")
        return np.ascontiguousarray(image.transpose(2, 0, 1))
    if modality == "visible":
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"visible depth input must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
        return np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32) / 255.0
    if image.dtype == np.float32 and image.ndim == 2 and np.nanmin(image) >= 0 and np.nanmax(image) <= 1:
        return image[None]
    return normalize_thermal(image, thermal_norm)[None]


def modality_image(rgb: np.ndarray, thermal: np.ndarray, modality: str,
                   thermal_norm: ThermalNormalization = ThermalNormalization()) -> np.ndarray:
    """The image a depth network of `modality` takes, from a registered RGB + thermal pair
    (one place for the choice, so training, validation and evaluation agree)."""
    if modality == "visible":
        return rgb
    if modality == "thermal":
        return thermal
    if rgb.shape[:2] != thermal.shape[:2]:
        raise ValueError(f"rgb_thermal: RGB {rgb.shape[:2]} and thermal {thermal.shape[:2]} must be registered")
    return np.dstack([depth_input(rgb, "visible").transpose(1, 2, 0), depth_input(thermal, "thermal", thermal_norm)[0]])


Window = tuple[int, int, int, int]   # x0, y0, x1, y1 (ends exclusive), pixels


def depth_scale_for_camera(cfg: DepthNetConfig, k: np.ndarray | None, width: int, height: int) -> float:
    """Factor from the network's depth to metric depth for an image of width x height pixels
    taken with intrinsics k: the image's focal length at the network's input size over the
    one the network learned with (geometric mean of x and y when the resize is anisotropic)."""
    if k is None or cfg.focal_px <= 0:
        return 1.0
    fx = float(k[0, 0]) * cfg.input_width / width
    fy = float(k[1, 1]) * cfg.input_height / height
    if not (fx > 0 and fy > 0):
        raise ValueError(f"camera intrinsics have a non-positive focal length (fx={k[0, 0]}, fy={k[1, 1]})")
    return float(np.sqrt(fx * fy) / cfg.focal_px)


def largest_window(valid: np.ndarray, aspect: float, min_height: int = 32) -> Window | None:
    """The largest box of width/height = aspect, centred on the valid region, holding only
    valid pixels; None when it would be under min_height pixels high. Where a camera sees only
    part of the frame, its network gets this box instead of a frame with a blank border it
    never saw in training."""
    rows, cols = np.any(valid, 1), np.any(valid, 0)
    if not rows.any():
        return None
    h, w = valid.shape
    y_lo, y_hi = np.argmax(rows), h - np.argmax(rows[::-1])
    x_lo, x_hi = np.argmax(cols), w - np.argmax(cols[::-1])
    cy, cx = (y_lo + y_hi) / 2.0, (x_lo + x_hi) / 2.0
    integral = np.pad(valid.astype(np.int64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))

    def box(half_h: int) -> Window | None:
        half_w = half_h * aspect
        x0, x1 = int(round(cx - half_w)), int(round(cx + half_w))
        y0, y1 = int(round(cy - half_h)), int(round(cy + half_h))
        if x0 < 0 or y0 < 0 or x1 > w or y1 > h or x1 <= x0 or y1 <= y0:
            return None
        count = integral[y1, x1] - integral[y0, x1] - integral[y1, x0] + integral[y0, x0]
        return (x0, y0, x1, y1) if count == (x1 - x0) * (y1 - y0) else None

    lo, hi = 0, h // 2 + 1          # box(lo) fits (or lo == 0), box(hi) does not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if box(mid) else (lo, mid)
    best = box(lo) if lo else None
    return best if best and best[3] - best[1] >= min_height else None


class DepthPredictor:
    """One depth network on one device; call with a numpy image of any size."""

    def __init__(self, model: DepthNet, device: str = "cpu", fp16: bool = False):
        self.model = model.to(device).eval()
        self.device = device
        self.dtype = torch.float16 if (fp16 and device.startswith("cuda")) else torch.float32
        self.model.to(self.dtype)
        self.modality = model.cfg.modality

    @property
    def input_aspect(self) -> float:
        """Width / height of the network's input (the thermal window is cut to it)."""
        return self.model.cfg.input_width / self.model.cfg.input_height

    @property
    def input_size(self) -> tuple[int, int]:
        """(width, height) the network runs at."""
        return self.model.cfg.input_width, self.model.cfg.input_height

    def _net_input(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) in [0, 1] at any size -> the network's input size, dtype and device."""
        cfg = self.model.cfg
        return torch.nn.functional.interpolate(x.to(self.device, self.dtype), size=(cfg.input_height, cfg.input_width),
                                               mode="bilinear", align_corners=False, antialias=True)

    @torch.inference_mode()
    def _net_depth(self, x: torch.Tensor) -> np.ndarray:
        """(B, C, H, W) in [0, 1] at any size -> (B, h, w) depth at the network's input size."""
        return self.model(self._net_input(x))["depth"].float()[:, 0].cpu().numpy()

    @torch.inference_mode()
    def _net_depth_with_spread(self, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """(depth, spread) at the network's input size: the geometric mean of the network's depth
        for the image and for its mirror (mirrored back), and |log ratio| of the two. A network
        that knows the depth gives the same answer both ways; where it guesses, the two passes
        disagree, so the spread tells where to trust the branch (`blend_depths`). Both passes
        run as one batch."""
        inp = self._net_input(x)
        both = self.model(torch.cat([inp, inp.flip(-1)]))["depth"].float()[:, 0].cpu().numpy()
        a, b = both[:x.shape[0]], both[x.shape[0]:, :, ::-1]
        return np.sqrt(a * b), np.abs(np.log(a) - np.log(b))

    def __call__(self, image: np.ndarray, k: np.ndarray | None = None, window: Window | None = None,
                 thermal_norm: ThermalNormalization = ThermalNormalization(), spread: bool = False,
                 grid: tuple[int, int] | None = None):
        """(H, W) depth in meters. k: the image's 3x3 intrinsics (None: the whole image is taken
        to be the camera the network learned on). window: only that box is seen (a zoom,
        rescaled as such), the rest is NaN. spread: return (depth, spread) of the image and its
        mirror (`_net_depth_with_spread`) instead. grid: (width, height) to return the result at
        instead of the image's size (the network's output has no finer detail than its input,
        so the pipeline works on a grid near it and resizes once at the end)."""
        x = depth_input(image, self.modality, thermal_norm)
        h, w = x.shape[-2:]
        cfg = self.model.cfg
        if k is None and cfg.focal_px > 0:
            k = np.diag([cfg.focal_px * w / cfg.input_width, cfg.focal_px * h / cfg.input_height, 1.0])
        x0, y0, x1, y1 = window or (0, 0, w, h)
        if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
            raise ValueError(f"depth window {window} is not inside the {w}x{h} image")
        crop = torch.from_numpy(np.ascontiguousarray(x[:, y0:y1, x0:x1]))[None]
        scale = depth_scale_for_camera(cfg, k, x1 - x0, y1 - y0)
        gw, gh = grid or (w, h)
        box = grid_window(window, (w, h), (gw, gh))
        size = (box[2] - box[0], box[3] - box[1]) if box else (gw, gh)
        if spread:
            depth, spreads = self._net_depth_with_spread(crop)
            spreads = cv2.resize(spreads[0], size, interpolation=cv2.INTER_LINEAR)
        else:
            depth = self._net_depth(crop)
        depth = resize_inverse(depth[0], size) * np.float32(scale)
        depth = _place(depth, box, gw, gh)
        return (depth, _place(spreads, box, gw, gh)) if spread else depth


def grid_window(window: Window | None, size: tuple[int, int], grid: tuple[int, int]) -> Window | None:
    """A window of an image of `size` (width, height) on a `grid` of another size."""
    if window is None:
        return None
    if tuple(grid) == tuple(size):
        return window
    sx, sy = grid[0] / size[0], grid[1] / size[1]
    x0, y0 = min(int(round(window[0] * sx)), grid[0] - 1), min(int(round(window[1] * sy)), grid[1] - 1)
    x1, y1 = min(int(round(window[2] * sx)), grid[0]), min(int(round(window[3] * sy)), grid[1])
    return x0, y0, max(x0 + 1, x1), max(y0 + 1, y1)


def _place(values: np.ndarray, window: Window | None, width: int, height: int) -> np.ndarray:
    """A window's values on the whole (height, width) grid, NaN outside it."""
    if window is None or values.shape == (height, width):
        return values
    x0, y0, x1, y1 = window
    out = np.full((height, width), np.nan, np.float32)
    out[y0:y1, x0:x1] = values
    return out


# Below this, a branch's spread (|log| of the ratio of its depth for the image and for the
# mirror) counts as this: two branches that both agree with themselves weigh about equally.
SPREAD_FLOOR = 0.01

# The visible image's reliability for depth (scripts/tune_blend.py chose them on the validation
# streets through the rig, docs/BENCHMARKS.md): below DARK_LUMA of local mean luma the
# visible branch is not trusted at all, from DARK_LUMA + BRIGHT_SPAN fully; a local luma standard
# deviation of FULL_CONTRAST counts as full texture (fog and glare stay below it).
DARK_LUMA = 0.06
BRIGHT_SPAN = 0.16
FULL_CONTRAST = 0.02


def visible_reliability(visible: np.ndarray, window: int = 15, dark_luma: float = DARK_LUMA,
                        bright_span: float = BRIGHT_SPAN, full_contrast: float = FULL_CONTRAST) -> np.ndarray:
    """(H, W) weight in [0, 1]: how far the visible image can be trusted for depth here.
    Low where it is dark (night) or without local contrast (fog, glare, blown-out)."""
    luma = cv2.cvtColor(visible, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    mean = cv2.blur(luma, (window, window))
    std = np.sqrt(np.maximum(cv2.blur(luma * luma, (window, window)) - mean * mean, 0.0))
    bright = np.clip((mean - dark_luma) / bright_span, 0.0, 1.0)
    contrast = np.clip(std / full_contrast, 0.0, 1.0)
    return cv2.blur(bright * contrast, (window, window))


def spread_weight(spread_visible: np.ndarray, spread_thermal: np.ndarray) -> np.ndarray:
    """Inverse-variance weight of the visible branch, each branch's spread standing for its
    log-depth error: the branch that agrees with itself under mirroring gets the weight."""
    sv = (np.nan_to_num(spread_visible, nan=np.inf) + SPREAD_FLOOR) ** 2
    st = (np.nan_to_num(spread_thermal, nan=np.inf) + SPREAD_FLOOR) ** 2
    with np.errstate(invalid="ignore"):
        w = np.where(np.isinf(st), 1.0, np.where(np.isinf(sv), 0.0, st / (sv + st)))
    return w.astype(np.float32)


# The thermal branch's weight ramps in over this many pixels from the edge of the thermal
# camera's view, so the published depth has no seam where the blend meets visible-only depth.
FEATHER_PX = 24.0

# A published depth whose image-vs-mirror spread is this (|log| ratio) has confidence 1/e.
CONFIDENCE_SPREAD = 0.15


def edge_feather(valid: np.ndarray, ramp_px: float = FEATHER_PX) -> np.ndarray:
    """(H, W) in [0, 1]: 0 outside `valid`, rising to 1 over `ramp_px` pixels inside its edge."""
    inside = cv2.distanceTransform(valid.astype(np.uint8), cv2.DIST_L2, 3)
    return np.clip(inside / ramp_px, 0.0, 1.0).astype(np.float32)


def blend_weight(depth_thermal: np.ndarray, visible: np.ndarray, thermal_valid: np.ndarray | None = None,
                 reliability: np.ndarray | None = None, spreads: tuple[np.ndarray, np.ndarray] | None = None,
                 ramp_px: float = FEATHER_PX) -> np.ndarray:
    """The visible branch's weight in the blend: the visible image's reliability (given, or
    `visible_reliability`), averaged with the branches' `spread_weight` when their spreads
    (visible, thermal) are given; 1 where the thermal camera does not see, feathered over
    `ramp_px` at its edge."""
    w = visible_reliability(visible) if reliability is None else reliability
    if spreads is not None:
        w = 0.5 * (w + spread_weight(*spreads))
    thermal_ok = np.isfinite(depth_thermal) if thermal_valid is None else thermal_valid & np.isfinite(depth_thermal)
    if thermal_ok.all():
        return w.astype(np.float32)
    return (1.0 - (1.0 - w) * edge_feather(thermal_ok, ramp_px)).astype(np.float32)


def blend_depths(depth_visible: np.ndarray, depth_thermal: np.ndarray, visible: np.ndarray,
                 thermal_valid: np.ndarray | None = None, reliability: np.ndarray | None = None,
                 spreads: tuple[np.ndarray, np.ndarray] | None = None, weight: np.ndarray | None = None) -> np.ndarray:
    """Log-depth blend of the two branches with the visible weight `weight` (default
    `blend_weight` of the other arguments); only the visible branch where the thermal camera
    does not see (or its depth is invalid)."""
    w = blend_weight(depth_thermal, visible, thermal_valid, reliability, spreads) if weight is None else weight
    w = np.where(np.isfinite(depth_thermal), w, 1.0)
    depth_thermal = np.where(np.isfinite(depth_thermal), depth_thermal, 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.exp(w * np.log(depth_visible) + (1.0 - w) * np.log(depth_thermal))
    return out.astype(np.float32)


def depth_confidence(spread: np.ndarray) -> np.ndarray:
    """(H, W) in (0, 1] from the published depth's image-vs-mirror spread: 1 where the
    network gives the same depth for the image and its mirror, falling as they disagree."""
    return np.exp(-np.nan_to_num(spread, nan=np.inf) / CONFIDENCE_SPREAD).astype(np.float32)
