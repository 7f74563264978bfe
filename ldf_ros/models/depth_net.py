"""Monocular depth networks for one modality (visible or thermal), teacher or student.

Encoder-decoder predicting sigmoid disparity at four scales, mapped to metric depth in
[min_depth, max_depth] meters. The teacher also carries a semantic branch (geometry-semantic
aggregation in the spirit of VFM-Depth): semantic features, from a foundation image encoder
when one is available or learned from class labels otherwise, are fused into the decoder
and predict class logits. The student is the same design without it, and small.

A third input, "rgb_thermal" (RGB and thermal stacked, 4 channels), exists for teachers only:
a teacher that sees both cameras is far better at night and in fog than one that sees the
RGB alone, and its targets can be distilled into a single-camera student (privileged input).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ldf_ros.models.layers import ConvBlock, ResBlock, upsample_to

IN_CHANNELS = {"visible": 3, "thermal": 1, "rgb_thermal": 4}
MODALITIES = tuple(IN_CHANNELS)
ROLES = ("teacher", "student")


@dataclass(frozen=True)
class DepthNetConfig:
    modality: str = "visible"
    role: str = "student"
    widths: tuple[int, ...] = (16, 24, 32, 48, 64)   # encoder channels at 1/2 .. 1/32
    semantic_classes: int = 0                        # > 0: semantic branch (teacher)
    semantic_width: int = 0                          # channels of the semantic features
    min_depth: float = 0.5
    max_depth: float = 80.0
    input_width: int = 160
    input_height: int = 128
    # focal length (pixels, at the input size) of the camera the network learned on; depth from
    # one image is tied to it (apparent sizes, the road's rise), so the runtime rescales depth
    # for other cameras or crops. 0: unknown, no rescaling.
    focal_px: float = 0.0

    def __post_init__(self):
        if self.modality not in MODALITIES:
            raise ValueError(f"depth modality {self.modality!r}: expected one of {MODALITIES}")
        if self.role not in ROLES:
            raise ValueError(f"depth role {self.role!r}: expected one of {ROLES}")
        if self.modality == "rgb_thermal" and self.role != "teacher":
            raise ValueError("rgb_thermal depth networks are teachers only (the runtime runs one camera per branch)")
        if len(self.widths) != 5:
            raise ValueError("depth widths: expected 5 encoder stages")
        if not 0 < self.min_depth < self.max_depth:
            raise ValueError("depth range: expected 0 < min_depth < max_depth")
        if self.input_width % 32 or self.input_height % 32:
            raise ValueError("depth input size must be a multiple of 32")
        if not self.focal_px >= 0:
            raise ValueError(f"depth focal_px must be >= 0 (0: unknown), got {self.focal_px}")

    @property
    def in_channels(self) -> int:
        return IN_CHANNELS[self.modality]

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict) -> "DepthNetConfig":
        return DepthNetConfig(**{**d, "widths": tuple(d["widths"])})


def teacher_config(modality: str) -> DepthNetConfig:
    return DepthNetConfig(modality=modality, role="teacher", widths=(32, 48, 64, 128, 192),
                          semantic_classes=8, semantic_width=32)


def student_config(modality: str) -> DepthNetConfig:
    """The onboard student: 478 k parameters, 23% of the teacher (a quarter at most, to run
    beside the fusion network). Older, smaller students used the dataclass defaults (278 k);
    their checkpoints carry that."""
    return DepthNetConfig(modality=modality, role="student", widths=(16, 32, 48, 64, 80))


class Encoder(nn.Module):
    def __init__(self, cin: int, widths):
        super().__init__()
        stages, prev = [], cin
        for w in widths:
            stages.append(nn.Sequential(ConvBlock(prev, w, stride=2), ResBlock(w)))
            prev = w
        self.stages = nn.ModuleList(stages)

    def forward(self, x) -> list[torch.Tensor]:
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats


class SemanticBranch(nn.Module):
    """Semantic features at 1/8 scale and class logits. Learned from class ids here; a frozen
    foundation encoder's patch features can be passed in `external` (projected and added)."""

    def __init__(self, cin: int, width: int, classes: int, external_dim: int = 0):
        super().__init__()
        self.body = nn.Sequential(ConvBlock(cin, width), ResBlock(width))
        self.external = nn.Conv2d(external_dim, width, 1) if external_dim else None
        self.logits = nn.Conv2d(width, classes, 1)

    def forward(self, feat, external=None):
        s = self.body(feat)
        if external is not None:
            if self.external is None:
                raise ValueError("this depth network was built without external semantic features")
            s = s + upsample_to(self.external(external), s)
        return s, self.logits(s)


class DepthNet(nn.Module):
    """Image (B, C, H, W) in [0, 1] -> dict(disp=[4 scales, finest first], depth, features, semantics)."""

    def __init__(self, cfg: DepthNetConfig):
        super().__init__()
        self.cfg = cfg
        w = cfg.widths
        self.encoder = Encoder(cfg.in_channels, w)
        self.semantic = (SemanticBranch(w[2], cfg.semantic_width, cfg.semantic_classes)
                         if cfg.semantic_classes else None)
        dec = [w[4] // 2, w[3] // 2, w[2] // 2, w[1] // 2, w[0] // 2]
        self.up = nn.ModuleList()
        self.fuse = nn.ModuleList()
        prev = w[4]
        skips = [w[3], w[2], w[1], w[0], 0]
        for i in range(5):
            extra = cfg.semantic_width if (self.semantic is not None and i == 2) else 0
            self.up.append(ConvBlock(prev, dec[i]))
            self.fuse.append(ConvBlock(dec[i] + skips[i] + extra, dec[i]))
            prev = dec[i]
        self.heads = nn.ModuleList([nn.Conv2d(dec[i], 1, 3, padding=1) for i in (1, 2, 3, 4)])

    def forward(self, image: torch.Tensor, external_semantics: torch.Tensor | None = None) -> dict:
        feats = self.encoder(image)
        sem, logits = (None, None)
        if self.semantic is not None:
            sem, logits = self.semantic(feats[2], external_semantics)
        x = feats[4]
        skips = [feats[3], feats[2], feats[1], feats[0], None]
        disps = []
        for i in range(5):
            x = F.interpolate(self.up[i](x), scale_factor=2, mode="nearest")
            parts = [x] + ([skips[i]] if skips[i] is not None else [])
            if sem is not None and i == 2:
                parts.append(upsample_to(sem, x))
            x = self.fuse[i](torch.cat(parts, 1))
            if i >= 1:
                disps.append(torch.sigmoid(self.heads[i - 1](x)))
        disps = disps[::-1]  # finest first
        return {"disp": disps, "depth": self.disp_to_depth(disps[0]), "features": feats[4], "semantics": logits}

    def disp_to_depth(self, disp: torch.Tensor) -> torch.Tensor:
        """Sigmoid disparity -> depth in meters in [min_depth, max_depth]."""
        lo, hi = 1.0 / self.cfg.max_depth, 1.0 / self.cfg.min_depth
        return 1.0 / (lo + (hi - lo) * disp)


class PoseNet(nn.Module):
    """Two frames -> relative pose (axis-angle, translation) target->source; training only."""

    def __init__(self, in_channels: int, width: int = 32):
        super().__init__()
        self.body = nn.Sequential(ConvBlock(2 * in_channels, width, 2), ConvBlock(width, width, 2),
                                  ConvBlock(width, 2 * width, 2), ConvBlock(2 * width, 2 * width, 2),
                                  ConvBlock(2 * width, 2 * width, 2))
        self.out = nn.Conv2d(2 * width, 6, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, target, source):
        p = self.out(self.body(torch.cat([target, source], 1))).mean((2, 3)) * 0.01
        return p[:, :3], p[:, 3:]


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def load_depth_net(path, modality: str | None = None) -> DepthNet:
    """A depth network from its checkpoint (eval mode); `modality` guards against swapped files."""
    from ldf_ros.models.checkpoint import CheckpointError, load_weights, read_checkpoint

    tensors, config, _ = read_checkpoint(path, "depth")
    try:
        cfg = DepthNetConfig.from_dict(config)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: depth config in the checkpoint is invalid ({exc})") from exc
    if modality is not None and cfg.modality != modality:
        raise CheckpointError(f"{path}: is a {cfg.modality} depth checkpoint, expected {modality}")
    return load_weights(DepthNet(cfg), tensors, path).eval()
