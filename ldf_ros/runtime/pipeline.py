"""The ROS-free fusion pipeline: numpy images in, fused image, depth, point cloud and
caption out, with the time each stage took.

    normalize -> register -> depth (both branches) -> caption -> fusion -> point cloud

The node (`ldf_ros.ros.fusion_node`) only converts messages and calls :meth:`FusionPipeline.process`;
`ldf-ros` tools call it the same way, so what is evaluated is what runs on the robot.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable

import cv2
import numpy as np

from ldf_ros.config import FusionConfig, resolve_path
from ldf_ros.ops.camera import intrinsics_problem
from ldf_ros.ops.color import is_gray
from ldf_ros.ops.image import resize_inverse
from ldf_ros.runtime.caption import guidance_text, make_caption
from ldf_ros.runtime.pointcloud import depth_to_pointcloud
from ldf_ros.runtime.registration import Extrinsic, ThermalRegistration
from ldf_ros.runtime.thermal import ThermalNormalization, normalize_thermal

STAGES = ("register", "normalize", "depth", "caption", "fusion", "pointcloud")


class InputError(ValueError):
    """An input pair cannot be processed (shape, dtype, size); the message says why."""


@dataclass
class FusionResult:
    fused: np.ndarray | None               # (H, W, 3) uint8 rgb, RGB camera grid
    depth: np.ndarray | None               # (H, W) float32 meters, NaN invalid
    points_xyz: np.ndarray | None          # (N, 3) float32, RGB optical frame
    points_rgb: np.ndarray | None          # (N, 3) uint8
    caption: str
    thermal_registered: np.ndarray         # (H, W) float32 in [0, 1]
    timings_ms: dict[str, float] = field(default_factory=dict)
    thermal_valid: np.ndarray | None = None      # (H, W) bool: RGB pixels the thermal camera sees
    depth_visible: np.ndarray | None = None      # each branch on its own input, before `depth`
    depth_thermal: np.ndarray | None = None      # is chosen or blended from them (NaN unseen)
    depth_spreads: tuple | None = None           # (visible, thermal) |log| image-vs-mirror spreads, when measured
    depth_confidence: np.ndarray | None = None   # (H, W) float32 in (0, 1] of the published depth, when measured


def select_device(requested: str) -> str:
    """'auto' -> cuda when torch sees a GPU, else cpu; 'cuda' without a GPU is an error."""
    import torch
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise ValueError("runtime.device is 'cuda' but torch sees no CUDA device (use 'auto' or 'cpu')")
    return requested


def check_pair(rgb: np.ndarray, thermal: np.ndarray) -> None:
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise InputError(f"RGB image must be (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}")
    if thermal.ndim != 2:
        raise InputError(f"thermal image must be single channel, got shape {thermal.shape}")
    if rgb.size == 0 or thermal.size == 0:
        raise InputError("empty image")


def gray_like(rgb: np.ndarray) -> np.ndarray:
    """The luminance of an RGB uint8 image in all three channels."""
    import cv2
    y = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return np.repeat(y[..., None], 3, axis=2)


def check_intrinsics(name: str, k: np.ndarray | None) -> None:
    """InputError naming the camera when its K is not a pinhole camera (None is allowed: config)."""
    if k is not None and (problem := intrinsics_problem(k)):
        raise InputError(f"{name} intrinsics: {problem}")


class FusionPipeline:
    """Holds the models and the per-geometry caches; one instance per node."""

    def __init__(self, cfg: FusionConfig, log: Callable[[str, str], None] | None = None):
        self.cfg = cfg
        self.log = log or (lambda level, msg: None)
        self.thermal_norm = ThermalNormalization.from_config(cfg.thermal)
        reg = cfg.registration
        self.registration = ThermalRegistration(reg.mode, np.asarray(reg.homography).reshape(3, 3),
                                                Extrinsic(tuple(reg.thermal_to_rgb_rotation), tuple(reg.thermal_to_rgb_translation)),
                                                reg.plane_depth_m)
        self.device = "cpu"
        self.depth_visible = self.depth_thermal = None
        self.fusion = None
        self._depth_pool = None                 # see _side_by_side_pool
        self.variant = cfg.model.variant
        self.problems: list[str] = []       # load-time problems, for diagnostics
        self._window, self._window_for = None, None   # thermal depth window, and the mask it is for
        self._load_models()

    # --- loading ---------------------------------------------------------------------------
    def _load_models(self) -> None:
        """Load what the config names. A missing or broken file is logged and its output
        disabled (depth) or replaced (fusion -> classical); the pipeline still runs."""
        from ldf_ros.models.checkpoint import CheckpointError
        from ldf_ros.runtime.fusion import load_fusion_backend

        needs_torch = self.cfg.outputs.depth or self.cfg.outputs.points or self.variant != "classical"
        if needs_torch:
            import torch
            self.device = select_device(self.cfg.runtime.device)
            if self.cfg.runtime.num_threads:
                torch.set_num_threads(self.cfg.runtime.num_threads)
        for modality in ("visible", "thermal"):
            path = resolve_path(getattr(self.cfg.model, f"depth_{modality}_weights"))
            try:
                setattr(self, f"depth_{modality}", self._depth_predictor(path, modality))
                if not str(path).endswith(".onnx"):       # ONNX models log their provider themselves
                    self.log("info", f"{modality} depth: {path}")
            except CheckpointError as exc:
                self._problem(f"{modality} depth disabled: {exc}")
        self.fusion, problem = load_fusion_backend(self.cfg, self.device)
        if problem:
            self._problem(problem)
        self.variant = self.fusion.name
        self._depth_pool = self._side_by_side_pool()
        if self.variant != "classical":
            runner = "onnxruntime" if type(self.fusion).__name__ == "OrtFusion" else f"PyTorch on {self.device}"
            self.log("info", f"fusion: {self.variant} ({runner})")

    def _side_by_side_pool(self):
        """A one-thread pool for the thermal branch when both branches are onnxruntime sessions
        on the CPU, each then reopened with one thread: the two tiny networks run at once, one
        per core, instead of each waking two threads for every small operator (about 12 against
        18-22 ms for the pair of them on 2 cores); None otherwise."""
        import weakref
        from concurrent.futures import ThreadPoolExecutor

        from ldf_ros.runtime.onnx_depth import ExportedDepthNet
        branches = [getattr(p, "model", None) for p in (self.depth_visible, self.depth_thermal)]
        if self.device != "cpu" or not all(isinstance(b, ExportedDepthNet) for b in branches):
            return None
        for branch in branches:
            branch.set_threads(1)
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ldf_thermal_depth")
        weakref.finalize(self, pool.shutdown, wait=False)
        return pool

    def update_config(self, cfg: FusionConfig) -> None:
        """Take a new config whose models, device and registration are unchanged (the node's
        live parameters: point cloud, thermal normalization, depth source and floor, outputs)."""
        from ldf_ros.config import LIVE_PARAMETERS, config_to_flat
        old, new = config_to_flat(self.cfg), config_to_flat(cfg)
        fixed = [k for k in new if new[k] != old[k] and k not in LIVE_PARAMETERS]
        if fixed:
            raise ValueError(f"{fixed[0]} cannot change while the pipeline runs")
        self.thermal_norm = ThermalNormalization.from_config(cfg.thermal)
        self.cfg = cfg

    def _depth_predictor(self, path, modality: str):
        """A shipped-style checkpoint, or an ONNX model (`onnx_depth` settings) for a .onnx file."""
        from ldf_ros.models.checkpoint import CheckpointError
        if str(path).endswith(".onnx"):
            from ldf_ros.runtime.onnx_depth import OnnxDepthError, OnnxDepthPredictor, OnnxDepthSettings
            try:
                settings = OnnxDepthSettings.from_config(self.cfg)
                predictor = OnnxDepthPredictor(path, modality, settings)
            except OnnxDepthError as exc:
                raise CheckpointError(str(exc)) from exc
            if predictor.problem:
                self._problem(f"{modality} depth: {predictor.problem}")
            self.log("info", f"{modality} depth: ONNX model {path} on {predictor.providers[0]}")
            return predictor
        from ldf_ros.models.depth_net import load_depth_net
        from ldf_ros.runtime.depth import DepthPredictor
        from ldf_ros.runtime.fusion import onnxruntime_wanted
        net = load_depth_net(path, modality)
        if onnxruntime_wanted(self.cfg, self.device):
            from ldf_ros.runtime.onnx_depth import ExportedDepthNet
            try:
                exported = ExportedDepthNet(net, path, self.cfg)
            except Exception as exc:  # noqa: BLE001 - any export or session failure: PyTorch runs it
                self._problem(f"{modality} depth: onnxruntime unavailable ({type(exc).__name__}: {exc}); PyTorch runs it")
            else:
                if exported.problem:
                    self._problem(f"{modality} depth: {exported.problem}")
                return DepthPredictor(exported, self.device, fp16=False)
        return DepthPredictor(net, self.device, self.cfg.runtime.fp16)

    def _problem(self, msg: str) -> None:
        self.problems.append(msg)
        self.log("error", msg)

    @property
    def has_depth(self) -> bool:
        return self.depth_visible is not None or self.depth_thermal is not None

    def warmup(self, width: int, height: int) -> None:
        """Run once per configured warm-up so the first real frame is not slow (allocators, kernels)."""
        rgb = np.zeros((height, width, 3), np.uint8)
        thermal = np.zeros((height, width), np.uint16)
        for _ in range(self.cfg.runtime.warmup_runs):
            self.process(rgb, thermal, None, None, warmup=True)

    # --- processing -----------------------------------------------------------------------
    def process(self, rgb: np.ndarray, thermal: np.ndarray, k_rgb: np.ndarray | None,
                k_thermal: np.ndarray | None, warmup: bool = False) -> FusionResult:
        """One synchronized pair -> outputs. k_* are 3x3 intrinsics (None: from config for the
        registration; the depth networks then take the RGB camera to be the one they learned on,
        as a configured placeholder must not rescale depth)."""
        check_pair(rgb, thermal)
        check_intrinsics("RGB", k_rgb)
        check_intrinsics("thermal", k_thermal)
        k_depth = k_rgb
        if k_rgb is None:
            k_rgb = np.asarray(self.cfg.registration.rgb_k, dtype=np.float64).reshape(3, 3)
        if k_thermal is None:
            k_thermal = np.asarray(self.cfg.registration.thermal_k, dtype=np.float64).reshape(3, 3)
        timings: dict[str, float] = {}
        h, w = rgb.shape[:2]
        # normalize on the camera's own pixels first: after registration, the area the thermal
        # camera does not see is zero-filled and would drag the AGC percentiles down
        with _timed(timings, "normalize"):
            try:
                normalized = normalize_thermal(thermal, self.thermal_norm)
            except ValueError as exc:
                raise InputError(str(exc)) from exc
        with _timed(timings, "register"):
            try:
                thermal01, valid = self.registration(normalized, (w, h), k_rgb, k_thermal)
            except ValueError as exc:
                raise InputError(f"registration failed: {exc}") from exc
            thermal01 = np.where(valid, thermal01, np.float32(0.0)).astype(np.float32, copy=False)
        with _timed(timings, "depth"):
            grid = self.depth_grid(w, h)
            pool = self._depth_pool
            thermal_job = pool.submit(self._thermal_depth, thermal01, valid, k_depth, grid) if pool else None
            d_vis, s_vis = self._visible_depth(rgb, k_depth, grid)
            d_th, s_th = thermal_job.result() if thermal_job else self._thermal_depth(thermal01, valid, k_depth, grid)
        with _timed(timings, "caption"):
            caption = make_caption(rgb, thermal01, d_vis, d_th)
        with _timed(timings, "fusion"):
            fused = self.fusion(rgb, thermal01, guidance_text(caption, self.cfg.model.directive))
            if is_gray(rgb):        # a gray camera gets a gray fused image: no colour the scene did not show
                fused = gray_like(fused)
        spreads = (s_vis, s_th) if s_vis is not None and s_th is not None else None
        with _timed(timings, "depth"):
            depth, confidence = self._published_depth(d_vis, d_th, rgb, fused, valid, k_depth, grid, spreads)
            depth, d_vis, d_th = (None if d is None else resize_inverse(d, (w, h)) for d in (depth, d_vis, d_th))
            if confidence is not None:          # in [0, 1], 0 where unmeasured: plain bilinear
                confidence = cv2.resize(confidence, (w, h), interpolation=cv2.INTER_LINEAR)
            if spreads is not None:
                spreads = tuple(cv2.resize(s, (w, h), interpolation=cv2.INTER_LINEAR) for s in spreads)
            floor = self.cfg.runtime.depth_min_confidence
            if confidence is not None and floor > 0:
                depth = np.where(confidence >= floor, depth, np.float32(np.nan)).astype(np.float32)
        xyz = colors = None
        if depth is not None and self.cfg.outputs.points:
            with _timed(timings, "pointcloud"):
                pc = self.cfg.pointcloud
                xyz, colors = depth_to_pointcloud(depth, k_rgb, fused, pc.stride, pc.min_range_m, pc.max_range_m)
        return FusionResult(fused, depth, xyz, colors, caption, thermal01, timings, valid, d_vis, d_th, spreads, confidence)

    def depth_grid(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) the depth stage works at: the image divided by the largest whole
        factor that keeps it at least the depth network's input size. The networks see no finer
        detail than their input, so blending at full resolution would only cost time; the
        results are resized to the image once, at the end."""
        predictor = self.depth_visible or self.depth_thermal
        if predictor is None:
            return width, height
        iw, ih = predictor.input_size
        f = max(1, min(width // iw, height // ih))
        return width // f, height // f

    def _visible_depth(self, rgb: np.ndarray, k_rgb: np.ndarray | None, grid):
        """(depth, spread or None) of the visible branch on the depth grid (None, None without one)."""
        if self.depth_visible is None:
            return None, None
        return self._branch(self.depth_visible, rgb, k_rgb, None, grid)

    def _branch(self, predictor, image, k, window, grid):
        """(depth, spread): with runtime.depth_flip_consistency, the mean over the image and its
        mirror and their spread; otherwise one pass and no spread."""
        if self.cfg.runtime.depth_flip_consistency:
            return predictor(image, k, window, spread=True, grid=grid)
        return predictor(image, k, window, grid=grid), None

    def _thermal_depth(self, thermal01: np.ndarray, valid: np.ndarray, k_rgb: np.ndarray | None, grid):
        """(depth, spread or None) of the thermal branch on the depth grid, NaN where the thermal
        camera does not see. Where it sees only part of the frame, the network gets the largest
        window of its view (the frame with a blank border is not what it learned on) and depth
        is rescaled for the crop."""
        if self.depth_thermal is None:
            return None, None
        if valid.all():
            return self._branch(self.depth_thermal, thermal01, k_rgb, None, grid)
        if self._window_for is not valid:      # the registration reuses its mask per geometry
            from ldf_ros.runtime.depth import largest_window
            self._window = largest_window(valid, self.depth_thermal.input_aspect)
            self._window_for = valid
            if self._window is None:
                self.log("warn", "thermal depth skipped: the thermal camera's view of the RGB frame is too small "
                                 f"({int(valid.sum())} pixels); check registration and intrinsics")
        if self._window is None:
            return None, None
        return self._branch(self.depth_thermal, thermal01, k_rgb, self._window, grid)

    def _published_depth(self, d_vis, d_th, rgb, fused, thermal_valid, k_rgb, grid, spreads=None):
        """(depth, confidence or None) on the depth grid: the depth the node publishes, per
        runtime.depth_source (falls back to what exists). With the branches' spreads, the
        confidence says how well the published value agrees with itself under mirroring (the
        caller blanks depth below runtime.depth_min_confidence, so a costmap never sees a value
        the network could not repeat)."""
        from ldf_ros.runtime.depth import FEATHER_PX, blend_depths, blend_weight, depth_confidence, visible_reliability

        source = self.cfg.runtime.depth_source
        if d_vis is None and d_th is None:
            return None, None
        spread = None
        if source == "fused" and self.depth_visible is not None:
            depth = self.depth_visible(fused, k_rgb, grid=grid)
        elif source == "visible" and d_vis is not None:
            depth, spread = d_vis, spreads and spreads[0]
        elif source == "thermal" and d_th is not None:
            depth, spread = d_th, spreads and spreads[1]
        elif d_vis is not None and d_th is not None:
            # the reliability's constants were tuned on full-resolution images: measured there, then shrunk
            reliability = cv2.resize(visible_reliability(rgb), grid, interpolation=cv2.INTER_AREA)
            seen = cv2.resize(thermal_valid.astype(np.float32), grid, interpolation=cv2.INTER_AREA) > 0.999
            w = blend_weight(d_th, rgb, seen, reliability, spreads, ramp_px=FEATHER_PX * grid[0] / rgb.shape[1])
            depth = blend_depths(d_vis, d_th, rgb, weight=w)
            if spreads is not None:
                sv, st = spreads
                spread = np.where(np.isfinite(st), w * sv + (1.0 - w) * np.nan_to_num(st), sv)
        else:
            depth = d_vis if d_vis is not None else d_th
        return depth, None if spread is None else depth_confidence(spread)


@contextmanager
def _timed(timings: dict[str, float], stage: str):
    t0 = time.perf_counter()
    try:
        yield
    finally:
        timings[stage] = timings.get(stage, 0.0) + (time.perf_counter() - t0) * 1e3
