"""One configuration schema for the node and the CLI tools.

`config/fusion.yaml` is a ROS 2 parameters file (``/**/ldf_fusion: ros__parameters: ...``, any namespace).
The node declares every field below as a ROS parameter (nested sections become dotted
names such as ``sync.slop_s``), and the CLI tools read the same file through
:func:`load_config`. Every value is checked here, once: unknown keys, wrong types and
out-of-range values raise :class:`ConfigError` naming the key and what is allowed.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

import yaml

NODE_NAME = "ldf_fusion"


class ConfigError(ValueError):
    """A configuration value is unknown, of the wrong type or out of range."""


def _spec(default, *, doc: str, choices=None, lo=None, hi=None, lo_open=False, length=None):
    """A dataclass field that carries its own validation rule and documentation."""
    meta = {"doc": doc, "choices": choices, "lo": lo, "hi": hi, "lo_open": lo_open, "length": length}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class TopicsConfig:
    rgb_image: str = _spec("rgb/image", doc="RGB image topic (relative, remappable)")
    rgb_info: str = _spec("rgb/camera_info", doc="RGB CameraInfo topic")
    thermal_image: str = _spec("thermal/image", doc="thermal image topic")
    thermal_info: str = _spec("thermal/camera_info", doc="thermal CameraInfo topic")
    use_camera_info: bool = _spec(True, doc="take intrinsics from CameraInfo topics; else from registration.*")


@dataclass(frozen=True)
class SyncConfig:
    slop_s: float = _spec(0.02, doc="max stamp difference of a fused pair (s)", lo=0.0, hi=1.0, lo_open=True)
    queue_size: int = _spec(10, doc="messages kept per input while waiting for a partner", lo=1, hi=1000)
    stall_timeout_s: float = _spec(1.0, doc="input silent this long -> diagnostics WARN (s)", lo=0.0, lo_open=True)


@dataclass(frozen=True)
class ModelConfig:
    variant: str = _spec("student", doc="fusion model variant", choices=["student", "teacher", "classical"])
    fusion_weights: str = _spec("", doc="fusion checkpoint; empty: models/fusion_<variant>.safetensors (relative paths: package share)")
    depth_visible_weights: str = _spec("models/depth_visible_student.safetensors", doc="visible depth checkpoint")
    depth_thermal_weights: str = _spec("models/depth_thermal_student.safetensors", doc="thermal depth checkpoint")
    text_encoder: str = _spec("minilm", doc="caption encoder", choices=["minilm", "open_clip", "words", "none"])
    clip_model: str = _spec("ViT-B-32", doc="open_clip model name (text_encoder=open_clip)")
    clip_checkpoint: str = _spec("", doc="local open_clip checkpoint file (hubs are not used)")
    directive: str = _spec("", doc="what the fusion should favour, added to the caption it is guided by (empty: "
                           "the scene alone)", choices=["", "emphasize warm objects", "keep visible colors"])


@dataclass(frozen=True)
class RuntimeConfig:
    device: str = _spec("auto", doc="inference device", choices=["auto", "cpu", "cuda"])
    fp16: bool = _spec(True, doc="half precision on cuda (ignored on cpu)")
    num_threads: int = _spec(0, doc="torch CPU threads (0: torch default)", lo=0, hi=256)
    warmup_runs: int = _spec(2, doc="inference runs at start-up before the first frame", lo=0, hi=100)
    depth_source: str = _spec("blend", doc="published depth: a branch on its own input, on the fused image, or both blended",
                              choices=["blend", "thermal", "visible", "fused"])
    depth_flip_consistency: bool = _spec(True, doc="run each depth branch on the image and its mirror: publish their "
                                         "geometric mean and weight the blend by how well each branch agrees with "
                                         "itself (twice the depth networks' cost)")
    backend: str = _spec("auto", doc="how the fusion student and the depth checkpoints run: PyTorch, or onnxruntime "
                         "(exported once to runtime.onnx_cache_dir; on this CPU the depth networks run up to 1.5x "
                         "faster); auto: onnxruntime on the CPU when it is installed, else PyTorch; the teacher "
                         "always runs in PyTorch",
                         choices=["auto", "torch", "onnxruntime"])
    onnx_provider: str = _spec("auto", doc="onnxruntime execution provider for ONNX models (auto: TensorRT, CUDA, CPU, "
                               "the first present)", choices=["auto", "cpu", "cuda", "tensorrt"])
    onnx_cache_dir: str = _spec("", doc="folder for exported ONNX files and TensorRT engines (empty: ~/.cache/ldf_ros)")
    depth_min_confidence: float = _spec(0.0, doc="publish NaN depth where its confidence (agreement with itself under "
                                        "mirroring, needs depth_flip_consistency) is below this", lo=0.0, hi=1.0)


@dataclass(frozen=True)
class ThermalConfig:
    normalization: str = _spec("percentile", doc="thermal to [0,1]", choices=["percentile", "range"])
    range_min: float = _spec(0.0, doc="raw value mapped to 0 (normalization=range)")
    range_max: float = _spec(65535.0, doc="raw value mapped to 1 (normalization=range)")
    low_percentile: float = _spec(1.0, doc="AGC low percentile", lo=0.0, hi=100.0)
    high_percentile: float = _spec(99.0, doc="AGC high percentile", lo=0.0, hi=100.0)


@dataclass(frozen=True)
class RegistrationConfig:
    mode: str = _spec("camera_info", doc="thermal->RGB registration", choices=["camera_info", "homography", "identity"])
    homography: list = _spec([1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0], doc="row-major 3x3 thermal->RGB pixels", length=9)
    rgb_k: list = _spec([500.0, 0.0, 320.0, 0.0, 500.0, 256.0, 0.0, 0.0, 1.0], doc="RGB intrinsics when no CameraInfo", length=9)
    thermal_k: list = _spec([400.0, 0.0, 320.0, 0.0, 400.0, 256.0, 0.0, 0.0, 1.0], doc="thermal intrinsics when no CameraInfo", length=9)
    thermal_to_rgb_translation: list = _spec([0.0, 0.0, 0.0], doc="thermal origin in RGB optical frame (m)", length=3)
    thermal_to_rgb_rotation: list = _spec([0.0, 0.0, 0.0, 1.0], doc="quaternion x,y,z,w thermal->RGB", length=4)
    plane_depth_m: float = _spec(10.0, doc="scene depth assumed for parallax (m)", lo=0.0, lo_open=True)


@dataclass(frozen=True)
class PointCloudConfig:
    stride: int = _spec(4, doc="keep every n-th pixel in u and v", lo=1, hi=64)
    min_range_m: float = _spec(0.3, doc="drop points nearer than this (m)", lo=0.0)
    max_range_m: float = _spec(40.0, doc="drop points farther than this (m)", lo=0.0, lo_open=True)


@dataclass(frozen=True)
class FramesConfig:
    rgb_optical_frame: str = _spec("", doc="frame id of outputs; empty: the RGB header's frame_id")


@dataclass(frozen=True)
class OutputsConfig:
    fused: bool = _spec(True, doc="publish ~/fused/image and ~/fused/camera_info")
    depth: bool = _spec(True, doc="publish ~/depth/image and ~/depth/camera_info")
    depth_confidence: bool = _spec(True, doc="publish ~/depth/confidence (32FC1 in [0,1], with depth_flip_consistency)")
    points: bool = _spec(True, doc="publish ~/points")
    caption: bool = _spec(True, doc="publish ~/caption")
    thermal_registered: bool = _spec(False, doc="publish ~/thermal/registered (mono8, thermal on the RGB grid)")
    diagnostics: bool = _spec(True, doc="publish /diagnostics")
    diagnostics_period_s: float = _spec(1.0, doc="diagnostics period (s)", lo=0.0, lo_open=True)


@dataclass(frozen=True)
class OnnxDepthConfig:
    input_width: int = _spec(518, doc="ONNX depth models (a model.depth_*_weights ending in .onnx): input width (pixels)", lo=8, hi=4096)
    input_height: int = _spec(518, doc="ONNX depth models: input height (pixels)", lo=8, hi=4096)
    mean: list = _spec([0.485, 0.456, 0.406], doc="ONNX depth models: per-channel mean subtracted from [0,1] RGB", length=3)
    std: list = _spec([0.229, 0.224, 0.225], doc="ONNX depth models: per-channel std dividing [0,1] RGB", length=3)
    output: str = _spec("inverse_relative", doc="ONNX depth models: what the output is (relative inverse depth is put in "
                        "meters by the road plane and onnx_depth.camera_height_m)", choices=["inverse_relative", "metric"])
    camera_height_m: float = _spec(1.5, doc="camera height above the road (m), for relative ONNX depth", lo=0.0, lo_open=True)
    focal_px: float = _spec(0.0, doc="metric ONNX depth: the focal length at the input size the model assumes (0: no rescaling)", lo=0.0)


@dataclass(frozen=True)
class LimitsConfig:
    max_width: int = _spec(4096, doc="images wider than this are rejected at decode (pixels)", lo=1, hi=65535)
    max_height: int = _spec(4096, doc="images taller than this are rejected at decode (pixels)", lo=1, hi=65535)
    max_aspect: float = _spec(8.0, doc="images with width/height or height/width above this are rejected", lo=1.0)
    max_bytes: int = _spec(67108864, doc="image messages with more data than this are rejected (bytes)", lo=1)


@dataclass(frozen=True)
class FusionConfig:
    """Everything the node and the CLI tools are configured with."""

    topics: TopicsConfig = field(default_factory=TopicsConfig)
    sync: SyncConfig = field(default_factory=SyncConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    thermal: ThermalConfig = field(default_factory=ThermalConfig)
    registration: RegistrationConfig = field(default_factory=RegistrationConfig)
    pointcloud: PointCloudConfig = field(default_factory=PointCloudConfig)
    frames: FramesConfig = field(default_factory=FramesConfig)
    outputs: OutputsConfig = field(default_factory=OutputsConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    onnx_depth: OnnxDepthConfig = field(default_factory=OnnxDepthConfig)

    def __post_init__(self):
        _check_cross_fields(self)


SECTIONS: dict[str, type] = {f.name: f.default_factory().__class__ for f in fields(FusionConfig)}

# What may change while the node runs (`ros2 param set`); everything else is read-only after
# start-up: models, devices, topics, queue sizes and the registration geometry are built once.
LIVE_PARAMETERS = frozenset({
    "model.directive", "sync.slop_s", "sync.stall_timeout_s", "runtime.depth_source", "runtime.depth_min_confidence",
    "thermal.normalization", "thermal.range_min", "thermal.range_max", "thermal.low_percentile",
    "thermal.high_percentile", "pointcloud.stride", "pointcloud.min_range_m", "pointcloud.max_range_m",
    "frames.rgb_optical_frame", "outputs.fused", "outputs.depth", "outputs.depth_confidence", "outputs.points",
    "outputs.caption", "outputs.thermal_registered", "limits.max_width", "limits.max_height", "limits.max_aspect",
    "limits.max_bytes",
})


def parameter_field(key: str) -> dataclasses.Field:
    """The schema field of a dotted parameter name (KeyError if there is none)."""
    section, _, name = key.partition(".")
    return {f.name: f for f in fields(SECTIONS[section])}[name]


def allowed_values(key: str) -> str:
    """What a parameter accepts, in words (as in error messages)."""
    return _allowed(parameter_field(key))


def _allowed(f: dataclasses.Field) -> str:
    m = f.metadata
    if m.get("choices"):
        return "one of " + ", ".join(repr(c) for c in m["choices"])
    if f.type == "bool":
        return "true or false"
    if f.type == "list":
        return f"a list of {m['length']} numbers"
    kind = {"int": "an integer", "float": "a number", "str": "a string"}[f.type]
    lo, hi = m.get("lo"), m.get("hi")
    if lo is None and hi is None:
        return kind
    left = "(" if m.get("lo_open") else "["
    return f"{kind} in {left}{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}]"


def _coerce(key: str, f: dataclasses.Field, value: Any) -> Any:
    """Check one value against its field's type, choices and range; return the typed value."""
    bad = ConfigError(f"{key}: got {value!r}, expected {_allowed(f)}")
    m = f.metadata
    if f.type == "bool":
        if not isinstance(value, bool):
            raise bad
        return value
    if f.type == "str":
        if not isinstance(value, str):
            raise bad
        if m.get("choices") and value not in m["choices"]:
            raise bad
        return value
    if f.type == "list":
        if not isinstance(value, (list, tuple)) or len(value) != m["length"]:
            raise bad
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value):
            raise bad
        return [float(v) for v in value]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise bad
    if f.type == "int":
        if isinstance(value, float) and not value.is_integer():
            raise bad
        value = int(value)
    else:
        value = float(value)
        if not math.isfinite(value):
            raise bad
    lo, hi = m.get("lo"), m.get("hi")
    if lo is not None and (value < lo or (m.get("lo_open") and value == lo)):
        raise bad
    if hi is not None and value > hi:
        raise bad
    return value


def _check_cross_fields(cfg: FusionConfig) -> None:
    if cfg.thermal.low_percentile >= cfg.thermal.high_percentile:
        raise ConfigError("thermal.low_percentile: must be below thermal.high_percentile "
                          f"({cfg.thermal.low_percentile} >= {cfg.thermal.high_percentile})")
    if cfg.thermal.range_min >= cfg.thermal.range_max:
        raise ConfigError(f"thermal.range_min: must be below thermal.range_max ({cfg.thermal.range_min} >= {cfg.thermal.range_max})")
    if cfg.pointcloud.min_range_m >= cfg.pointcloud.max_range_m:
        raise ConfigError("pointcloud.min_range_m: must be below pointcloud.max_range_m")


def config_from_dict(data: Mapping[str, Any]) -> FusionConfig:
    """Build a validated config from nested sections (missing keys take their defaults)."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"parameters: expected a mapping of sections, got {type(data).__name__}")
    unknown = set(data) - set(SECTIONS)
    if unknown:
        raise ConfigError(f"{sorted(unknown)[0]}: unknown section, expected one of {', '.join(SECTIONS)}")
    return FusionConfig(**{name: build_section(name, cls, data.get(name)) for name, cls in SECTIONS.items()})


def build_section(name: str, cls: type, values: Mapping[str, Any] | None):
    """One validated section (a dataclass of `_spec` fields) from a mapping; missing keys take defaults."""
    values = values or {}
    if not isinstance(values, Mapping):
        raise ConfigError(f"{name}: expected a mapping, got {values!r}")
    known = {f.name: f for f in fields(cls)}
    for key in values:
        if key not in known:
            raise ConfigError(f"{name}.{key}: unknown key, expected one of {', '.join(known)}")
    return cls(**{k: _coerce(f"{name}.{k}", known[k], v) for k, v in values.items()})


def config_from_flat(params: Mapping[str, Any]) -> FusionConfig:
    """Build a config from dotted names (``sync.slop_s``), as ROS parameters arrive."""
    nested: dict[str, dict[str, Any]] = {}
    for key, value in params.items():
        section, _, name = key.partition(".")
        if not name:
            raise ConfigError(f"{key}: unknown key, expected '<section>.<name>' with section one of {', '.join(SECTIONS)}")
        nested.setdefault(section, {})[name] = value
    return config_from_dict(nested)


def config_to_flat(cfg: FusionConfig) -> dict[str, Any]:
    """Dotted name -> value, for declaring ROS parameters."""
    return {f"{s}.{k}": v for s, sec in dataclasses.asdict(cfg).items() for k, v in sec.items()}


def parameter_docs() -> dict[str, str]:
    """Dotted name -> description with the allowed values (README table, ROS descriptors)."""
    return {f"{s}.{f.name}": f"{f.metadata['doc']} ({_allowed(f)})"
            for s, cls in SECTIONS.items() for f in fields(cls)}


def read_yaml(path: str | Path) -> Any:
    """A YAML file's contents; missing or unparsable files raise ConfigError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path}: not found")
    try:
        return yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path}: not valid YAML ({exc})") from exc


def load_config(path: str | Path | None = None, overrides: Mapping[str, Any] | None = None) -> FusionConfig:
    """Read a ROS 2 parameters YAML (or plain sections) and apply dotted overrides."""
    data: dict[str, Any] = {}
    if path is not None:
        data = _unwrap_ros_parameters(read_yaml(path), Path(path))
    flat = config_to_flat(config_from_dict(data))
    for key, value in (overrides or {}).items():
        if key not in flat:
            raise ConfigError(f"{key}: unknown key, expected one of {', '.join(flat)}")
        flat[key] = value
    return config_from_flat(flat)


def _unwrap_ros_parameters(raw: Any, path: Path) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {path}: expected a mapping at the top level")
    for node_key in (f"/**/{NODE_NAME}", NODE_NAME, f"/{NODE_NAME}", "/**"):
        node = raw.get(node_key)
        if isinstance(node, dict) and "ros__parameters" in node:
            return node["ros__parameters"] or {}
    if any(k.endswith(NODE_NAME) or k == "/**" for k in raw):
        raise ConfigError(f"config file {path}: node entry without 'ros__parameters'")
    return raw


def default_config_path() -> Path:
    """config/fusion.yaml from the source tree or the installed share directory."""
    here = Path(__file__).resolve().parent.parent / "config" / "fusion.yaml"
    if here.is_file():
        return here
    try:
        from ament_index_python.packages import get_package_share_directory  # type: ignore
        return Path(get_package_share_directory("ldf_ros")) / "config" / "fusion.yaml"
    except Exception:  # noqa: BLE001 - no ament index without a distro
        return here


def package_root() -> Path:
    """Directory that relative model paths in the config are resolved against."""
    return default_config_path().parent.parent


def resolve_path(path: str) -> Path:
    """Resolve a config path: absolute as is, relative against the package root."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else package_root() / p


# --- training configurations (same YAML conventions; read by `ldf-ros train ...`) ---


@dataclass(frozen=True)
class DepthTrainConfig:
    """`ldf-ros train depth`: one depth network (modality x role) on synthetic clips."""

    modality: str = _spec("visible", doc="input camera (rgb_thermal: both stacked, teachers only, to distil into "
                          "a single-camera student)", choices=["visible", "thermal", "rgb_thermal"])
    role: str = _spec("student", doc="network size", choices=["teacher", "student"])
    teacher: str = _spec("", doc="teacher checkpoint to distil from (student only; empty: no distillation)")
    distill_gate: bool = _spec(False, doc="imitate the teacher only where it is closer to the ground truth than the "
                               "student (labeled frames) or reprojects the neighbours better than the student and "
                               "than no motion at all (unlabeled frames)")
    distill_unlabeled_only: bool = _spec(False, doc="imitate the teacher only on frames without ground truth "
                                         "(unlabeled streets): labeled frames train exactly as without a teacher, "
                                         "so the teacher only adds what the labels cannot give")
    teacher_flip: bool = _spec(False, doc="the teacher's targets average its pass on the frame and on the mirrored "
                               "frame (a better teacher for a second forward pass; student only)")
    init: str = _spec("", doc="depth checkpoint of the same modality and role to start from (fine-tuning; "
                      "empty: fresh weights)")
    steps: int = _spec(1000, doc="optimizer steps", lo=1)
    batch_size: int = _spec(8, doc="clips frames per step", lo=1, hi=256)
    lr: float = _spec(1e-3, doc="AdamW learning rate (cosine decay)", lo=0.0, lo_open=True)
    seed: int = _spec(0, doc="torch/numpy seed", lo=0)
    threads: int = _spec(0, doc="torch CPU threads (0: default)", lo=0, hi=256)
    train_streets: int = _spec(60, doc="training streets (seeds from clips.TRAIN_SEEDS)", lo=1, hi=60)
    unlabeled_streets: int = _spec(0, doc="distillation: extra streets (clips.UNLABELED_SEEDS) seen without ground "
                                   "truth, supervised by the teacher and the photometric loss only", lo=0, hi=60)
    unlabeled_batch_size: int = _spec(0, doc="distillation: frames of the unlabeled streets added to every step on "
                                      "top of batch_size labeled ones, which then come in the order a run without "
                                      "unlabeled streets sees them (0: the unlabeled frames are shuffled in among "
                                      "the batch_size frames, taking their place)", lo=0, hi=256)
    camera_height_weight: float = _spec(0.0, doc="frames without ground truth: log error of the camera height above "
                                        "the road fitted to the predicted depth (metric scale without labels)", lo=0.0)
    camera_height_m: float = _spec(1.5, doc="mounting height of the camera above the road (synthetic rig: 1.5)",
                                   lo=0.0, lo_open=True)
    clip_frames: int = _spec(24, doc="frames per clip", lo=3)
    camera_hfov_deg: float = _spec(66.0, doc="horizontal field of view of the training camera (rig: RGB 66, "
                                             "thermal 50); recorded in the checkpoint as focal_px", lo=10.0, hi=150.0)
    cache_dir: str = _spec("out/data/clips", doc="where rendered clips are cached")
    supervised_weight: float = _spec(1.0, doc="log-depth L1 against synthetic ground truth (0: off)", lo=0.0)
    photometric_weight: float = _spec(1.0, doc="self-supervised min reprojection loss (0: off)", lo=0.0)
    photometric_scales: int = _spec(1, doc="decoder scales the photometric loss uses, finest first (CPU cost)", lo=1, hi=4)
    smoothness_weight: float = _spec(1e-3, doc="edge-aware disparity smoothness", lo=0.0)
    semantic_weight: float = _spec(0.2, doc="class cross-entropy of the teacher's semantic branch", lo=0.0)
    distill_depth_weight: float = _spec(1.0, doc="student: log-depth imitation of the teacher", lo=0.0)
    distill_feature_weight: float = _spec(0.5, doc="student: bottleneck feature imitation", lo=0.0)
    distill_bins_weight: float = _spec(0.05, doc="student: distance-category (binned depth) alignment", lo=0.0)
    ordinal_pairs: str = _spec("", doc="CSV of human-labelled point pairs on real frames (data/ordinal_depth "
                               "format): a ranking term teaches the order of real scenes (empty: off)")
    ordinal_root: str = _spec("../shared/datasets", doc="folder the pairs' image paths are relative to")
    ordinal_weight: float = _spec(0.5, doc="weight of the ranking term on the real frames", lo=0.0)
    ordinal_batch_size: int = _spec(4, doc="real frames per step for the ranking term", lo=1, hi=256)
    val_every: int = _spec(250, doc="validation every n steps", lo=1)
    out: str = _spec("out/train/depth", doc="run folder (checkpoints, log.csv)")


def load_section_yaml(path: str | Path | None, name: str, cls: type, overrides: Mapping[str, Any] | None = None):
    """A training config from YAML (top-level keys of `cls`) plus overrides, validated."""
    data = read_yaml(path) if path is not None else {}
    return build_section(name, cls, {**data, **{k: v for k, v in (overrides or {}).items() if v is not None}})


@dataclass(frozen=True)
class DiffusionTrainConfig:
    """`ldf-ros train diffusion`: the 4-channel DDPM denoiser, self-supervised on pairs."""

    data: str = _spec("../shared/datasets/roadscene/train", doc="paired folder(s) (vi/ + ir/), comma-separated, drawn in turn")
    steps: int = _spec(3000, doc="optimizer steps", lo=1)
    batch_size: int = _spec(8, doc="crops per step and process", lo=1, hi=256)
    crop: int = _spec(96, doc="square crop size (multiple of 4)", lo=16, hi=1024)
    lr: float = _spec(2e-4, doc="AdamW learning rate", lo=0.0, lo_open=True)
    base: int = _spec(32, doc="UNet base channels", lo=4, hi=256)
    seed: int = _spec(0, doc="seed", lo=0)
    threads: int = _spec(0, doc="torch CPU threads (0: default)", lo=0, hi=256)
    checkpoint_every: int = _spec(500, doc="checkpoint every n steps", lo=1)
    out: str = _spec("out/train/diffusion", doc="run folder")


@dataclass(frozen=True)
class FusionTrainConfig:
    """`ldf-ros train fusion`: the fusion head (teacher) or the single-pass student."""

    role: str = _spec("teacher", doc="teacher: head on diffusion features; student: single pass", choices=["teacher", "student"])
    data: str = _spec("../shared/datasets/roadscene/train", doc="paired folder(s) (vi/ + ir/), comma-separated; drawn per data_sampling")
    data_sampling: str = _spec("equal", doc="how often each `data` folder is drawn: equal (in turn), sqrt (in "
                               "proportion to the square root of its pair count), pairs (in proportion to it)",
                               choices=["equal", "sqrt", "pairs"])
    val_data: str = _spec("../shared/datasets/roadscene/val", doc="paired folder(s), comma-separated, validated every val_every steps (val.csv); empty: none")
    denoiser: str = _spec("out/train/diffusion/model.safetensors", doc="trained denoiser (teacher)")
    teacher: str = _spec("", doc="fusion teacher to distil from (student; empty: train on the losses alone)")
    init: str = _spec("", doc="fusion checkpoint of the same role to start from (fine-tuning; empty: fresh weights)")
    depth_visible: str = _spec("models/depth_visible_student.safetensors", doc="visible depth branch (captions, depth loss)")
    depth_thermal: str = _spec("models/depth_thermal_student.safetensors", doc="thermal depth branch (captions, depth loss)")
    text_encoder: str = _spec("minilm", doc="caption encoder", choices=["minilm", "open_clip", "words", "none"])
    clip_model: str = _spec("ViT-B-32", doc="open_clip model name")
    clip_checkpoint: str = _spec("", doc="local open_clip checkpoint")
    teacher_head: str = _spec("residual", doc="teacher head: guided (the diffusion features alone predict the "
                              "guided coefficients) or residual (features plus the raw pair)", choices=["guided", "residual"])
    teacher_features: str = _spec("diffusion", doc="teacher: diffusion (the denoiser's features) or inputs "
                                  "(ablation: the pair itself at each feature scale; no denoiser)",
                                  choices=["diffusion", "inputs"])
    student_arch: str = _spec("guided", doc="student network (ldf_ros/models/fusion_net.py)", choices=["guided", "unet"])
    guided_downscale: int = _spec(2, doc="guided student: its coefficient network sees the image at 1/this "
                                  "(4: about 3x faster, coefficients on a coarser grid)", choices=[2, 4])
    guided_basis: str = _spec("linear", doc="guided student: linear (a blend of the sources and their detail) or max "
                              "(also the per-pixel stronger source, which a coarse blend cannot pick)",
                              choices=["linear", "max"])
    gray_prob: float = _spec(0.0, doc="share of crops whose visible image is made gray (gray visible cameras)", lo=0.0, hi=1.0)
    steps: int = _spec(2000, doc="optimizer steps", lo=1)
    batch_size: int = _spec(4, doc="crops per step and process", lo=1, hi=256)
    crop: int = _spec(128, doc="square crop size (multiple of 4)", lo=16, hi=1024)
    lr: float = _spec(5e-4, doc="AdamW learning rate", lo=0.0, lo_open=True)
    seed: int = _spec(0, doc="seed", lo=0)
    threads: int = _spec(0, doc="torch CPU threads (0: default)", lo=0, hi=256)
    intensity_weight: float = _spec(1.0, doc="L1 of luminance towards the stronger source", lo=0.0)
    thermal_contrast: float = _spec(0.0, doc="the intensity target adds this share of the thermal image's own "
                                    "contrast (T minus its mean) to the stronger source: thermal structure enters "
                                    "where the visible image is already bright", lo=0.0, hi=1.0)
    gradient_weight: float = _spec(1.0, doc="L1 of the Sobel gradient of Y towards the stronger source's", lo=0.0)
    ssim_weight: float = _spec(0.5, doc="1 - SSIM to both sources", lo=0.0)
    edge_weight: float = _spec(0.0, doc="1 - differentiable Qabf: both sources' edges kept (strength, orientation)", lo=0.0)
    color_weight: float = _spec(1.0, doc="L1 of CbCr towards the visible chroma", lo=0.0)
    depth_weight: float = _spec(0.2, doc="depth-driven loss through both depth branches (0: ablation)", lo=0.0)
    distill_weight: float = _spec(1.0, doc="student: L1 towards the teacher's output", lo=0.0)
    distill_data: str = _spec("", doc="folder(s) of `data`, comma-separated, whose crops get the distillation term "
                              "(a teacher that is right on one domain only; empty: all crops)")
    directive_prob: float = _spec(0.0, doc="share of crops guided by a directive (model.directive), split evenly "
                                  "among them; their loss favours what the directive says", lo=0.0, hi=1.0)
    directive_weight: float = _spec(2.0, doc="weight of a directive's own loss term", lo=0.0)
    val_every: int = _spec(250, doc="validation every n steps", lo=1)
    out: str = _spec("out/train/fusion", doc="run folder")
