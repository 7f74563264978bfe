"""A depth branch from an ONNX file, run with onnxruntime: for users who have a pretrained
monocular depth network (e.g. Depth Anything V2 exported by its authors' tools, or a metric
depth network), in place of a shipped student.

The model takes one (1, C, H, W) float image at `onnx_depth.input_width x input_height`,
normalized with `mean` / `std`, and returns (1, H, W) or (1, 1, H, W). Its output is either
metric depth (meters) or relative inverse depth (affine-invariant disparity, as Depth Anything
gives), which is brought to meters with the road plane: for a level camera at height h, a road
pixel v rows below the principal point is at depth fy * h / (v - cy), so inverse depth on the
road is linear in v, and a robust fit of the model's disparity there gives its scale and shift.
A thermal branch feeds its single channel three times when the model wants three.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ldf_ros.runtime.thermal import ThermalNormalization, normalize_thermal

PROVIDERS = {"tensorrt": "TensorrtExecutionProvider", "cuda": "CUDAExecutionProvider", "cpu": "CPUExecutionProvider"}


class OnnxDepthError(ValueError):
    """An ONNX depth model cannot be used; the message says why."""


@dataclass(frozen=True)
class OnnxDepthSettings:
    input_width: int = 518
    input_height: int = 518
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    output: str = "inverse_relative"        # or "metric"
    camera_height_m: float = 1.5
    focal_px: float = 0.0                   # metric models: focal length at the input size they assume (0: none)
    provider: str = "auto"                  # auto | cpu | cuda | tensorrt
    engine_cache_dir: str = ""
    fp16: bool = True
    min_depth: float = 0.5
    max_depth: float = 80.0

    @staticmethod
    def from_config(cfg) -> "OnnxDepthSettings":
        """From the `onnx_depth` and `runtime` sections of a `ldf_ros.config.FusionConfig`."""
        o, r = cfg.onnx_depth, cfg.runtime
        return OnnxDepthSettings(o.input_width, o.input_height, tuple(o.mean), tuple(o.std), o.output, o.camera_height_m,
                                 o.focal_px, r.onnx_provider, str(onnx_cache_dir(cfg) / "tensorrt"), r.fp16)


def onnx_cache_dir(cfg) -> Path:
    """Where exported ONNX files and TensorRT engines live (runtime.onnx_cache_dir)."""
    return Path(cfg.runtime.onnx_cache_dir).expanduser() if cfg.runtime.onnx_cache_dir else Path.home() / ".cache" / "ldf_ros"


def cached_export(checkpoint: str | Path, stem: str, export, cfg) -> Path:
    """The ONNX file of a checkpoint in the cache, named by the checkpoint's hash (a new
    checkpoint exports again); `export(path)` writes it the first time, under a temporary name
    so that processes exporting at once never read a half-written file."""
    import hashlib
    import os

    from ldf_ros.models.onnx_export import EXPORT_VERSION

    digest = hashlib.sha256(Path(checkpoint).read_bytes()).hexdigest()[:16]
    path = onnx_cache_dir(cfg) / f"{stem}-{digest}-v{EXPORT_VERSION}.onnx"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        export(path.with_name(f"{path.stem}.{os.getpid()}.tmp.onnx")).replace(path)
    return path


def choose_providers(requested: str, available: list[str], settings: OnnxDepthSettings) -> tuple[list, str | None]:
    """(providers for the session, a problem line or None). 'auto' takes the fastest present;
    a named provider that is missing falls back to the CPU with the reason."""
    order = {"auto": ["tensorrt", "cuda", "cpu"], "tensorrt": ["tensorrt", "cuda", "cpu"], "cuda": ["cuda", "cpu"],
             "cpu": ["cpu"]}[requested]
    chosen = [name for name in order if PROVIDERS[name] in available] or ["cpu"]
    problem = None
    if requested != "auto" and chosen[0] != requested:
        problem = (f"runtime.onnx_provider {requested!r}: {PROVIDERS[requested]} is not available "
                   f"(onnxruntime has {', '.join(available)}); using {PROVIDERS[chosen[0]]}")
    out = []
    for name in chosen:
        if name == "tensorrt":
            opts = {"trt_fp16_enable": settings.fp16}
            if settings.engine_cache_dir:
                Path(settings.engine_cache_dir).mkdir(parents=True, exist_ok=True)
                opts.update(trt_engine_cache_enable=True, trt_engine_cache_path=settings.engine_cache_dir)
            out.append((PROVIDERS[name], opts))
        else:
            out.append(PROVIDERS[name])
    return out, problem


def open_session(path: str | Path, settings: OnnxDepthSettings, threads: int = 0):
    """(onnxruntime session, a provider problem line or None) for any ONNX model of the
    package, with the providers `settings.provider` asks for (falling back as it says)."""
    import onnxruntime as ort

    providers, problem = choose_providers(settings.provider, ort.get_available_providers(), settings)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    # no busy-waiting between runs: the pipeline runs PyTorch stages right after, on the same cores
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads:
        opts.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), sess_options=opts, providers=providers), problem


def _fixed(dim) -> int | None:
    return dim if isinstance(dim, int) and dim > 0 else None


class OnnxDepthPredictor:
    """Same call as `DepthPredictor`: (image, k, window, spread) -> depth in meters."""

    def __init__(self, path: str | Path, modality: str, settings: OnnxDepthSettings = OnnxDepthSettings()):
        try:
            import onnxruntime  # noqa: F401
        except ImportError as exc:
            raise OnnxDepthError(f"{path}: onnxruntime is not installed (pip install onnxruntime)") from exc
        path = Path(path)
        if not path.is_file():
            raise OnnxDepthError(f"{path}: no such ONNX file")
        if settings.output not in ("metric", "inverse_relative"):
            raise OnnxDepthError(f"onnx_depth.output {settings.output!r}: expected metric or inverse_relative")
        self.modality, self.settings, self.path = modality, settings, path
        try:
            self.session, self.problem = open_session(path, settings)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise OnnxDepthError(f"{path}: not a usable ONNX model ({type(exc).__name__}: {str(exc)[:300]})") from exc
        self.providers = self.session.get_providers()
        self._check_io()

    def _check_io(self) -> None:
        s = self.settings
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4:
            shapes = [i.shape for i in inputs]
            raise OnnxDepthError(f"{self.path}: expected one (1, C, H, W) image input, the model has {shapes}")
        self.input_name = inputs[0].name
        _, c, h, w = inputs[0].shape
        self.channels = _fixed(c) or 3
        if self.channels not in (1, 3):
            raise OnnxDepthError(f"{self.path}: the image input has {c} channels, expected 1 or 3")
        if (_fixed(h) and h != s.input_height) or (_fixed(w) and w != s.input_width):
            raise OnnxDepthError(f"{self.path}: the model's input is fixed at {w}x{h} but onnx_depth.input_width x "
                                 f"input_height is {s.input_width}x{s.input_height}; set them to the model's size")
        if not outputs or len(outputs[0].shape) not in (3, 4):
            raise OnnxDepthError(f"{self.path}: expected a (1, H, W) or (1, 1, H, W) output, the model has "
                                 f"{[o.shape for o in outputs]}")
        if "float16" in inputs[0].type:
            self.dtype = np.float16
        elif "float" in inputs[0].type:
            self.dtype = np.float32
        else:
            raise OnnxDepthError(f"{self.path}: the image input is {inputs[0].type}, expected float")

    @property
    def input_aspect(self) -> float:
        return self.settings.input_width / self.settings.input_height

    def _input(self, image: np.ndarray, thermal_norm: ThermalNormalization) -> np.ndarray:
        """(H, W, 3) float32 in [0, 1] from RGB uint8 or any thermal image."""
        if image.ndim == 3:
            if image.shape[2] != 3 or image.dtype != np.uint8:
                raise ValueError(f"visible depth input must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
            return image.astype(np.float32) / 255.0
        if not (image.dtype == np.float32 and np.nanmin(image) >= 0 and np.nanmax(image) <= 1):
            image = normalize_thermal(image, thermal_norm)
        return np.repeat(np.nan_to_num(image)[..., None], 3, axis=2).astype(np.float32)

    def _raw(self, rgb01: np.ndarray) -> np.ndarray:
        """The model's output for one (h, w, 3) [0, 1] image, resized back to (h, w)."""
        s = self.settings
        h, w = rgb01.shape[:2]
        x = cv2.resize(rgb01, (s.input_width, s.input_height), interpolation=cv2.INTER_AREA)
        x = (x - np.asarray(s.mean, np.float32)) / np.asarray(s.std, np.float32)
        x = x.transpose(2, 0, 1)[None]
        if self.channels == 1:
            x = x.mean(axis=1, keepdims=True)
        try:
            y = self.session.run(None, {self.input_name: np.ascontiguousarray(x, dtype=self.dtype)})[0]
        except Exception as exc:  # noqa: BLE001
            raise OnnxDepthError(f"{self.path}: inference failed ({type(exc).__name__}: {str(exc)[:300]})") from exc
        y = np.asarray(y, np.float32).reshape(y.shape[-2:])
        return cv2.resize(y, (w, h), interpolation=cv2.INTER_LINEAR)

    def _metric(self, raw: np.ndarray, k: np.ndarray | None, w: int, h: int) -> np.ndarray:
        s = self.settings
        if s.output == "metric":
            depth = raw
            if s.focal_px > 0 and k is not None:
                fx = float(k[0, 0]) * s.input_width / w
                fy = float(k[1, 1]) * s.input_height / h
                depth = depth * (np.sqrt(fx * fy) / s.focal_px)
        else:
            fy, cy = (float(k[1, 1]), float(k[1, 2])) if k is not None else (0.5 * w / np.tan(np.radians(33.0)), h / 2)
            depth = road_plane_depth(raw, fy, cy, s.camera_height_m, s.max_depth)
        return np.clip(depth, s.min_depth, s.max_depth).astype(np.float32)

    @property
    def input_size(self) -> tuple[int, int]:
        return self.settings.input_width, self.settings.input_height

    def __call__(self, image: np.ndarray, k: np.ndarray | None = None, window=None,
                 thermal_norm: ThermalNormalization = ThermalNormalization(), spread: bool = False,
                 grid: tuple[int, int] | None = None):
        from ldf_ros.ops.image import resize_inverse
        from ldf_ros.runtime.depth import _place, grid_window
        x = self._input(image, thermal_norm)
        h, w = x.shape[:2]
        x0, y0, x1, y1 = window or (0, 0, w, h)
        if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
            raise ValueError(f"depth window {window} is not inside the {w}x{h} image")
        crop = x[y0:y1, x0:x1]
        kc = None
        if k is not None:
            kc = np.array(k, dtype=np.float64)
            kc[0, 2] -= x0
            kc[1, 2] -= y0
        gw, gh = grid or (w, h)
        box = grid_window(window, (w, h), (gw, gh))
        size = (box[2] - box[0], box[3] - box[1]) if box else (gw, gh)
        a = resize_inverse(self._metric(self._raw(crop), kc, x1 - x0, y1 - y0), size)
        if not spread:
            return _place(a, box, gw, gh)
        b = resize_inverse(self._metric(self._raw(crop[:, ::-1].copy())[:, ::-1], kc, x1 - x0, y1 - y0), size)
        depth = np.sqrt(a * b).astype(np.float32)
        return _place(depth, box, gw, gh), _place(np.abs(np.log(a) - np.log(b)).astype(np.float32), box, gw, gh)


def road_plane_depth(disparity: np.ndarray, fy: float, cy: float, camera_height_m: float,
                     max_depth: float = 80.0) -> np.ndarray:
    """Relative inverse depth -> meters: fit inverse depth = scale * disparity + shift on the
    road in front of the camera (the lower middle of the image, where a level camera at
    `camera_height_m` sees the road at fy * h / (v - cy)), robustly (the worst 40% of the band,
    cars and kerbs, are dropped and the fit repeated)."""
    h, w = disparity.shape
    top = int(np.clip(cy + 0.45 * (h - cy), 0, h - 2))
    band = disparity[top:, w // 4: 3 * w // 4]
    v = np.arange(top, h, dtype=np.float64)[:, None] + 0.5
    target = np.broadcast_to((v - cy) / (fy * camera_height_m), band.shape)
    d, g = band.ravel().astype(np.float64), target.ravel()
    ok = np.isfinite(d) & (g > 0)
    d, g = d[ok], g[ok]
    scale, shift = 0.0, 0.0
    for _ in range(2):
        if d.size < 10 or np.ptp(d) <= 0:
            break
        scale, shift = np.polyfit(d, g, 1)
        resid = np.abs(scale * d + shift - g)
        keep = resid <= np.quantile(resid, 0.6)
        d, g = d[keep], g[keep]
    if not scale > 0:                       # degenerate fit: scale only, through the band's medians
        med = np.median(band[np.isfinite(band)]) if np.isfinite(band).any() else 0.0
        scale, shift = (float(np.median(g)) / med if med > 0 else 1.0 / max_depth), 0.0
    inv = scale * disparity + shift
    return 1.0 / np.maximum(inv, 1.0 / max_depth)


class ExportedDepthNet:
    """A shipped-style depth checkpoint run by onnxruntime, behind the network's own call
    (`net(x)["depth"]`), so `DepthPredictor` keeps its resizing, flip consistency and focal
    rescaling and only the forward pass changes. Exported once into the cache (file named by
    the checkpoint's hash)."""

    def __init__(self, net, checkpoint: str | Path, cfg, threads: int | None = None):
        """threads: onnxruntime's intra-op threads (default runtime.num_threads; 0 its own choice)."""
        from ldf_ros.models.onnx_export import export_depth_onnx

        self.cfg = net.cfg
        path = cached_export(checkpoint, f"depth_{net.cfg.modality}", lambda out: export_depth_onnx(net, out), cfg)
        settings = OnnxDepthSettings(provider=cfg.runtime.onnx_provider, fp16=cfg.runtime.fp16,
                                     engine_cache_dir=str(onnx_cache_dir(cfg) / "tensorrt"))
        self.path, self.settings = path, settings
        self.set_threads(cfg.runtime.num_threads if threads is None else threads)

    def set_threads(self, threads: int) -> None:
        """(Re)open the session with this many intra-op threads (0: onnxruntime's choice)."""
        self.threads = threads
        self.session, self.problem = open_session(self.path, self.settings, threads)
        self.providers = self.session.get_providers()

    # the torch module interface DepthPredictor uses
    def to(self, *args, **kwargs):
        return self

    def eval(self):
        return self

    def __call__(self, x):
        import torch
        out = self.session.run(None, {"image": x.float().cpu().numpy()})[0]
        return {"depth": torch.from_numpy(out).to(x.device)}
