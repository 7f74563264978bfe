"""LDFusion fusion networks: a head decoding diffusion features into a color fused image,
guided by a caption embedding through per-channel modulation, and the single-pass student.

- teacher: `DiffusionFeatures` (frozen DDPM denoiser at fixed timesteps) -> a head: `guided`
  (`GuidedFusionHead`: the features alone predict the guided coefficients, so the output cannot
  bypass them) or `residual` (`FusionHead`: features plus the raw pair at full resolution).
  `teacher_features: inputs` replaces the features by the pair itself at each feature scale:
  the ablation that shows what the diffusion features add.
- student: one forward pass with the same text modulation, for onboard use (exportable):
  `guided`, a small network on the image at half or quarter resolution (`guided_downscale`)
  and below that predicts the coefficients of a
  per-pixel linear model applied to the full-resolution sources (fast: the full resolution
  sees only a few multiply-adds), or `unet`, an encoder-decoder run at full resolution.

Inputs: visible RGB and infrared in [0, 1] on the same grid, (B, 3, H, W) and (B, 1, H, W).
Output: fused RGB in [0, 1], same size as the visible input. Both networks predict the fused
luminance and a bounded correction of the visible image's chroma (zero at initialization), so
the thermal contribution brightens and sharpens without recoloring the scene.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

import torch
import torch.nn.functional as F
from torch import nn

from ldf_ros.models.diffusion import DenoiserConfig, DiffusionFeatures, UNetDenoiser
from ldf_ros.models.layers import ConvBlock, ResBlock, chroma, luma, luma_chroma_to_rgb


# default widths per student architecture (guided: half, quarter, eighth, sixteenth resolution)
STUDENT_WIDTHS = {"unet": (16, 32, 64), "guided": (24, 32, 48, 64)}


@dataclass(frozen=True)
class FusionNetConfig:
    role: str = "student"                    # "teacher" (diffusion features) or "student" (single pass)
    width: int = 32
    text_dim: int = 384
    text_encoder: str = "minilm"             # identity of the encoder it was trained with
    denoiser: dict = field(default_factory=lambda: DenoiserConfig().to_dict())
    timesteps: tuple[int, ...] = (50, 150)
    student_widths: tuple[int, ...] = (16, 32, 64)
    student_arch: str = "unet"               # "guided" or "unet" (see the module docstring)
    guided_downscale: int = 2                # guided: the coefficient network's input is 1/this of the image
    teacher_head: str = "residual"           # teacher: "guided" (coefficients from the features) or "residual"
    teacher_features: str = "diffusion"      # teacher: "diffusion" or "inputs" (ablation: no denoiser)
    guided_basis: str = "linear"             # guided student: "linear" or "max" (adds max(Y_v, T), see apply_guided)

    def __post_init__(self):
        if self.role not in ("teacher", "student"):
            raise ValueError(f"fusion role {self.role!r}: expected teacher or student")
        if self.student_arch not in STUDENT_WIDTHS:
            raise ValueError(f"student_arch {self.student_arch!r}: expected one of {', '.join(STUDENT_WIDTHS)}")
        if self.teacher_head not in ("guided", "residual"):
            raise ValueError(f"teacher_head {self.teacher_head!r}: expected guided or residual")
        if self.teacher_features not in ("diffusion", "inputs"):
            raise ValueError(f"teacher_features {self.teacher_features!r}: expected diffusion or inputs")
        if self.teacher_features == "inputs" and self.teacher_head != "guided":
            raise ValueError("teacher_features: inputs needs teacher_head: guided (the residual head "
                             "already sees the inputs)")
        if self.guided_basis not in GUIDED_BASES:
            raise ValueError(f"guided_basis {self.guided_basis!r}: expected one of {', '.join(GUIDED_BASES)}")
        if self.guided_downscale not in (2, 4):
            raise ValueError(f"guided_downscale {self.guided_downscale}: expected 2 or 4")
        n = len(self.student_widths)
        if self.role == "student" and (n != 4 if self.student_arch == "guided" else n < 2):
            raise ValueError(f"student_widths {self.student_widths}: the {self.student_arch} student takes "
                             + ("4 widths" if self.student_arch == "guided" else "at least 2 widths"))

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict) -> "FusionNetConfig":
        return FusionNetConfig(**{**d, "timesteps": tuple(d["timesteps"]), "student_widths": tuple(d["student_widths"])})


class TextModulation(nn.Module):
    """MLP: caption embedding -> per-channel (scale, shift) for each modulated stage.
    Zero-initialized output, so an untrained modulation is the identity."""

    def __init__(self, text_dim: int, channels: list[int], hidden: int = 128):
        super().__init__()
        self.channels = channels
        self.mlp = nn.Sequential(nn.Linear(text_dim, hidden), nn.SiLU(), nn.Linear(hidden, 2 * sum(channels)))
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, text: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        out, i = [], 0
        params = self.mlp(text)
        for c in self.channels:
            scale, shift = params[:, i:i + c], params[:, i + c:i + 2 * c]
            out.append((scale[:, :, None, None], shift[:, :, None, None]))
            i += 2 * c
        return out


def modulate(x: torch.Tensor, film: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    scale, shift = film
    return x * (1 + scale) + shift


MAX_CHROMA_CORRECTION = 0.25


def color_output(channels: int) -> nn.Conv2d:
    """The last layer: (luminance logit, Cb and Cr corrections), corrections zero-initialized."""
    conv = nn.Conv2d(channels, 3, 3, padding=1)
    with torch.no_grad():
        conv.weight[1:].zero_()
        conv.bias[1:].zero_()
    return conv


def to_fused_rgb(out: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
    """Output layer activations -> fused RGB: predicted luminance, visible chroma + correction."""
    y = torch.sigmoid(out[:, :1])
    cbcr = chroma(visible) + MAX_CHROMA_CORRECTION * torch.tanh(out[:, 1:])
    return luma_chroma_to_rgb(y, cbcr).clamp(0, 1)


def decode_scales(feats: list[torch.Tensor], projs, blocks, films) -> torch.Tensor:
    """Coarse to fine: each scale's projected features plus the upsampled coarser result,
    through that scale's text-modulated block. Returns the finest scale's activations."""
    x = None
    for proj, block, film, f in zip(projs, blocks, films, feats):
        y = proj(f)
        x = y if x is None else F.interpolate(x, size=y.shape[-2:], mode="bilinear", align_corners=False) + y
        x = block(modulate(x, film))
    return x


class FusionHead(nn.Module):
    """Multi-scale diffusion features (coarsest first) + the input pair -> fused RGB."""

    def __init__(self, feature_channels: list[int], width: int, text_dim: int):
        super().__init__()
        self.proj = nn.ModuleList([nn.Conv2d(c, width, 1) for c in feature_channels])
        self.blocks = nn.ModuleList([ResBlock(width) for _ in feature_channels])
        self.film = TextModulation(text_dim, [width] * len(feature_channels))
        self.out = nn.Sequential(ConvBlock(width + 4, width), color_output(width))

    def forward(self, feats: list[torch.Tensor], visible, infrared, text) -> torch.Tensor:
        x = decode_scales(feats, self.proj, self.blocks, self.film(text))
        x = F.interpolate(x, size=visible.shape[-2:], mode="bilinear", align_corners=False)
        return to_fused_rgb(self.out(torch.cat([x, visible, infrared], 1)), visible)


class StudentFusionNet(nn.Module):
    """Single-pass fusion: encoder-decoder on (RGB, IR) with text modulation at every decoder stage."""

    def __init__(self, widths: tuple[int, ...], text_dim: int):
        super().__init__()
        self.enc = nn.ModuleList()
        prev = 4
        for i, w in enumerate(widths):
            self.enc.append(nn.Sequential(ConvBlock(prev, w, stride=1 if i == 0 else 2), ResBlock(w)))
            prev = w
        self.dec = nn.ModuleList()
        for w in reversed(widths[:-1]):
            self.dec.append(ConvBlock(prev + w, w))
            prev = w
        self.film = TextModulation(text_dim, [widths[-1]] + list(reversed(widths[:-1])))
        self.out = color_output(prev + 4)

    def forward(self, visible, infrared, text):
        x0 = torch.cat([visible, infrared], 1)
        films = self.film(text)
        skips, x = [], x0
        for block in self.enc:
            x = block(x)
            skips.append(x)
        x = modulate(x, films[0])
        for i, block in enumerate(self.dec):
            skip = skips[-2 - i]
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = modulate(block(torch.cat([x, skip], 1)), films[i + 1])
        return to_fused_rgb(self.out(torch.cat([x, x0], 1)), visible)


def conv_silu(cin: int, cout: int, stride: int = 1, kernel: int = 3) -> nn.Sequential:
    """Convolution and SiLU without normalization: group norm costs as much as the convolution
    in onnxruntime on CPU at these widths, and the guided student trains without it."""
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, kernel // 2), nn.SiLU())


class PlainResBlock(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.a, self.b = nn.Conv2d(ch, ch, 3, padding=1), nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x):
        return F.silu(x + self.b(F.silu(self.a(x))))


# coefficient maps per basis: visible, infrared, offset, visible detail, infrared detail, Cb, Cr,
# and with "max" the per-pixel stronger source max(Y_v, T)
GUIDED_BASES = {"linear": 7, "max": 8}


def local_detail(y: torch.Tensor) -> torch.Tensor:
    """The 3x3 high-pass of a luminance image: what a detail coefficient sharpens with."""
    return y - F.avg_pool2d(y, 3, 1, 1, count_include_pad=False)


def guided_coefficients_head(channels: int, basis: str = "linear") -> nn.Conv2d:
    """The last layer of a guided network: its coefficients start as the average of the sources."""
    n = GUIDED_BASES[basis]
    head = nn.Conv2d(channels, n, 3, padding=1)
    with torch.no_grad():
        head.weight.zero_()
        head.bias.copy_(torch.tensor([0.5, 0.5] + [0.0] * (n - 2)))
    return head


def apply_guided(c: torch.Tensor, visible: torch.Tensor, infrared: torch.Tensor) -> torch.Tensor:
    """Coefficient maps (B, 7 or 8, h, w) -> fused RGB at the sources' resolution (formula in
    GuidedStudentFusionNet). The eighth map weighs max(Y_v, T): a blend of the sources' luminance
    cannot pick the stronger source per pixel on a coarse grid, and that choice is what keeps both
    sources' intensities (the intensity target is the stronger source)."""
    c = F.interpolate(c, size=visible.shape[-2:], mode="bilinear", align_corners=False)
    yv = luma(visible)
    y = (c[:, 0:1] * yv + c[:, 1:2] * infrared + c[:, 2:3]
         + c[:, 3:4] * local_detail(yv) + c[:, 4:5] * local_detail(infrared))
    if c.shape[1] == GUIDED_BASES["max"]:
        y = y + c[:, 7:8] * torch.maximum(yv, infrared)
    cbcr = chroma(visible) + MAX_CHROMA_CORRECTION * torch.tanh(c[:, 5:7])
    return luma_chroma_to_rgb(y.clamp(0, 1), cbcr).clamp(0, 1)


class GuidedFusionHead(nn.Module):
    """Multi-scale features (coarsest first) -> guided coefficients -> fused RGB. The sources
    enter only through the coefficients' linear model, never as an input of the head, so what
    the head decides per region comes from the features. Full-resolution features are pooled to
    half resolution: the coefficients are smooth, and the head costs a quarter as much."""

    def __init__(self, feature_channels: list[int], width: int, text_dim: int):
        super().__init__()
        self.proj = nn.ModuleList([nn.Conv2d(c, width, 1) for c in feature_channels])
        self.blocks = nn.ModuleList([PlainResBlock(width) for _ in feature_channels])
        self.film = TextModulation(text_dim, [width] * len(feature_channels))
        self.head = guided_coefficients_head(width)

    def forward(self, feats: list[torch.Tensor], visible, infrared, text) -> torch.Tensor:
        feats = [F.avg_pool2d(f, 2) if f.shape[-2:] == visible.shape[-2:] else f for f in feats]
        return apply_guided(self.head(decode_scales(feats, self.proj, self.blocks, self.film(text))), visible, infrared)


class InputPyramid(nn.Module):
    """The ablation's stand-in for the diffusion features: the pair itself, average-pooled to
    each scale of the denoiser's decoder (coarsest first)."""

    def __init__(self, levels: int):
        super().__init__()
        self.levels = levels

    @property
    def channels(self) -> list[int]:
        return [4] * self.levels

    def forward(self, x0: torch.Tensor) -> list[torch.Tensor]:
        return [F.avg_pool2d(x0, 2 ** k) if k else x0 for k in reversed(range(self.levels))]


class GuidedStudentFusionNet(nn.Module):
    """Coefficients at 1/downscale of the resolution (2 or 4), the fused image at full resolution:

        Y = a_v Y_v + a_t T + b + g_v hp(Y_v) + g_t hp(T) [+ a_m max(Y_v, T)],  CbCr = CbCr_v + 0.25 tanh(c)

    with every coefficient map predicted by a text-modulated encoder-decoder on the
    space-to-depth input and upsampled bilinearly. The network decides per region how much of
    each source to keep and how much to sharpen; the full-resolution edges come from the sources
    themselves, so they stay sharp however small the network. Starts as the average of the sources."""

    def __init__(self, widths: tuple[int, ...], text_dim: int, downscale: int = 2, basis: str = "linear"):
        super().__init__()
        w1, w2, w3, w4 = widths
        self.downscale = downscale
        self.stem = nn.Sequential(conv_silu(4 * downscale ** 2, w1, kernel=1), conv_silu(w1, w1))   # 1/downscale
        self.down2 = conv_silu(w1, w2, stride=2)                                      # 1/4
        self.down3 = nn.Sequential(conv_silu(w2, w3, stride=2), PlainResBlock(w3))     # 1/8
        self.down4 = nn.Sequential(conv_silu(w3, w4, stride=2), PlainResBlock(w4))     # 1/16
        self.up3, self.up2, self.up1 = conv_silu(w4 + w3, w3), conv_silu(w3 + w2, w2), conv_silu(w2 + w1, w1)
        self.film = TextModulation(text_dim, [w4, w3, w2, w1])
        self.head = guided_coefficients_head(w1, basis)

    def forward(self, visible, infrared, text):
        films = self.film(text)
        x1 = self.stem(F.pixel_unshuffle(torch.cat([visible, infrared], 1), self.downscale))
        x2 = self.down2(x1)
        x3 = self.down3(x2)
        x = modulate(self.down4(x3), films[0])
        for block, skip, film in ((self.up3, x3, films[1]), (self.up2, x2, films[2]), (self.up1, x1, films[3])):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = modulate(block(torch.cat([x, skip], 1)), film)
        return apply_guided(self.head(x), visible, infrared)


class FusionNet(nn.Module):
    """One interface for both roles: (visible, infrared, text embedding) -> fused RGB."""

    def __init__(self, cfg: FusionNetConfig, denoiser: UNetDenoiser | None = None):
        super().__init__()
        self.cfg = cfg
        if cfg.role == "teacher":
            if cfg.teacher_features == "inputs":
                self.features = InputPyramid(len(DenoiserConfig.from_dict(cfg.denoiser).mults))
            else:
                denoiser = denoiser or UNetDenoiser(DenoiserConfig.from_dict(cfg.denoiser))
                self.features = DiffusionFeatures(denoiser, cfg.timesteps)
            for p in self.features.parameters():
                p.requires_grad_(False)
            head = GuidedFusionHead if cfg.teacher_head == "guided" else FusionHead
            self.head = head(self.features.channels, cfg.width, cfg.text_dim)
        elif cfg.student_arch == "guided":
            self.student = GuidedStudentFusionNet(cfg.student_widths, cfg.text_dim, cfg.guided_downscale,
                                                  cfg.guided_basis)
        else:
            self.student = StudentFusionNet(cfg.student_widths, cfg.text_dim)

    def forward(self, visible: torch.Tensor, infrared: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        check_fusion_inputs(visible, infrared, text, self.cfg.text_dim)
        s = self.cfg.guided_downscale
        if self.cfg.role == "student" and self.cfg.student_arch == "guided" and (visible.shape[-1] % s or visible.shape[-2] % s):
            raise ValueError(f"the guided student needs a height and width divisible by {s}, got {tuple(visible.shape[-2:])}")
        if self.cfg.role == "student":
            return self.student(visible, infrared, text)
        with torch.no_grad():
            feats = self.features(torch.cat([visible, infrared], 1) * 2 - 1)
        return self.head(feats, visible, infrared, text)


def with_max_basis(net: FusionNet) -> FusionNet:
    """The same guided student with the max(Y_v, T) basis added at weight zero: its output is
    unchanged, so fine-tuning starts from what the linear student had learned."""
    if net.cfg.role != "student" or net.cfg.student_arch != "guided":
        raise ValueError("only a guided student has a basis to extend")
    if net.cfg.guided_basis == "max":
        return net
    out = FusionNet(replace(net.cfg, guided_basis="max"))
    state = dict(net.state_dict())
    for name in ("student.head.weight", "student.head.bias"):
        old = state[name]
        state[name] = torch.cat([old, old.new_zeros((1,) + old.shape[1:])])
    out.load_state_dict(state)
    return out.train(net.training)


def check_fusion_inputs(visible, infrared, text, text_dim: int) -> None:
    if visible.ndim != 4 or visible.shape[1] != 3:
        raise ValueError(f"visible must be (B, 3, H, W), got {tuple(visible.shape)}")
    if infrared.ndim != 4 or infrared.shape[1] != 1:
        raise ValueError(f"infrared must be (B, 1, H, W), got {tuple(infrared.shape)}")
    if visible.shape[-2:] != infrared.shape[-2:] or visible.shape[0] != infrared.shape[0]:
        raise ValueError(f"visible {tuple(visible.shape)} and infrared {tuple(infrared.shape)} differ in batch or size")
    if text.ndim != 2 or text.shape != (visible.shape[0], text_dim):
        raise ValueError(f"text embedding must be (B, {text_dim}), got {tuple(text.shape)}")
