"""The DDPM on 4-channel visible+infrared images: noise schedule, UNet denoiser, and the
multi-scale feature extractor the fusion head reads.

Kept apart as in diffusers: the schedule knows only the arithmetic of noising, the denoiser
only predicts noise, and `DiffusionFeatures` runs the denoiser at fixed timesteps with fixed
noise so inference is deterministic.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ldf_ros.models.layers import _groups


class NoiseSchedule:
    """Linear beta schedule (Ho et al., 2020): q(x_t | x_0) = N(sqrt(a_t) x_0, (1 - a_t) I)."""

    def __init__(self, steps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02):
        self.steps = steps
        betas = torch.linspace(beta_start, beta_end, steps, dtype=torch.float64)
        self.alphas_cumprod = torch.cumprod(1.0 - betas, 0).float()

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a = self.alphas_cumprod.to(x0.device)[t].view(-1, 1, 1, 1).to(x0.dtype)
        return a.sqrt() * x0 + (1 - a).sqrt() * noise


@dataclass(frozen=True)
class DenoiserConfig:
    in_channels: int = 4
    base: int = 32
    mults: tuple[int, ...] = (1, 2, 4)
    time_dim: int = 128
    schedule_steps: int = 1000

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict) -> "DenoiserConfig":
        return DenoiserConfig(**{**d, "mults": tuple(d["mults"])})

    @property
    def decoder_channels(self) -> list[int]:
        """Channels of the decoder features, coarsest first (what the fusion head receives)."""
        return [self.base * m for m in reversed(self.mults)]


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=1)


class TimeResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, time_dim: int):
        super().__init__()
        self.n1 = nn.GroupNorm(_groups(cin), cin)
        self.c1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.t = nn.Linear(time_dim, cout)
        self.n2 = nn.GroupNorm(_groups(cout), cout)
        self.c2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x, temb):
        h = self.c1(F.silu(self.n1(x))) + self.t(temb)[:, :, None, None]
        h = self.c2(F.silu(self.n2(h)))
        return h + self.skip(x)


class UNetDenoiser(nn.Module):
    """eps_theta(x_t, t). With `return_features`, also the decoder's feature maps per scale."""

    def __init__(self, cfg: DenoiserConfig):
        super().__init__()
        self.cfg = cfg
        chs = [cfg.base * m for m in cfg.mults]
        self.time = nn.Sequential(nn.Linear(cfg.time_dim, cfg.time_dim), nn.SiLU(), nn.Linear(cfg.time_dim, cfg.time_dim))
        self.inp = nn.Conv2d(cfg.in_channels, chs[0], 3, padding=1)
        self.down = nn.ModuleList()
        prev = chs[0]
        for c in chs:
            self.down.append(TimeResBlock(prev, c, cfg.time_dim))
            prev = c
        self.mid = TimeResBlock(prev, prev, cfg.time_dim)
        self.up = nn.ModuleList()
        for c in reversed(chs):
            self.up.append(TimeResBlock(prev + c, c, cfg.time_dim))
            prev = c
        self.out = nn.Sequential(nn.GroupNorm(_groups(prev), prev), nn.SiLU(), nn.Conv2d(prev, cfg.in_channels, 3, padding=1))

    def forward(self, x, t, return_features: bool = False):
        n = len(self.cfg.mults)
        h, w = x.shape[-2:]
        if h % 2 ** (n - 1) or w % 2 ** (n - 1):
            raise ValueError(f"denoiser input {w}x{h} must be divisible by {2 ** (n - 1)}")
        temb = self.time(timestep_embedding(t, self.cfg.time_dim).to(x.dtype))  # fp16 inference
        x = self.inp(x)
        skips = []
        for i, block in enumerate(self.down):
            x = block(x, temb)
            skips.append(x)
            if i < n - 1:
                x = F.avg_pool2d(x, 2)
        x = self.mid(x, temb)
        feats = []
        for i, block in enumerate(self.up):
            skip = skips[n - 1 - i]
            if x.shape[-2:] != skip.shape[-2:]:
                x = F.interpolate(x, size=skip.shape[-2:], mode="nearest")
            x = block(torch.cat([x, skip], 1), temb)
            feats.append(x)
        eps = self.out(x)
        return (eps, feats) if return_features else eps


class DiffusionFeatures(nn.Module):
    """The denoiser's decoder features at fixed timesteps, with noise fixed by a seed, so the
    same pair always gives the same features. Returns per scale the concatenation over timesteps."""

    def __init__(self, denoiser: UNetDenoiser, timesteps: tuple[int, ...] = (50, 150), noise_seed: int = 0):
        super().__init__()
        self.denoiser = denoiser
        self.schedule = NoiseSchedule(denoiser.cfg.schedule_steps)
        self.timesteps = tuple(timesteps)
        self.noise_seed = noise_seed
        self._noise: dict[tuple, torch.Tensor] = {}

    def noise_like(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """The fixed noise of timestep k for x's size, drawn once per size, device and dtype
        (drawing it on the CPU every frame cost the teacher more than a GPU forward)."""
        key = (tuple(x.shape[1:]), x.device, x.dtype, k)
        if key not in self._noise:
            if len(self._noise) >= 8 * len(self.timesteps):   # a stream changing size often: keep memory bounded
                self._noise.clear()
            g = torch.Generator(device="cpu").manual_seed(self.noise_seed + k)
            self._noise[key] = torch.randn(x.shape[1:], generator=g).to(x)
        return self._noise[key].expand_as(x)

    @property
    def channels(self) -> list[int]:
        return [c * len(self.timesteps) for c in self.denoiser.cfg.decoder_channels]

    def forward(self, x0: torch.Tensor) -> list[torch.Tensor]:
        """x0: (B, 4, H, W) in [-1, 1]."""
        b = x0.shape[0]
        noisy, steps = [], []
        for k, t in enumerate(self.timesteps):
            tt = torch.full((b,), t, device=x0.device, dtype=torch.long)
            noisy.append(self.schedule.add_noise(x0, self.noise_like(x0, k), tt))
            steps.append(tt)
        # all timesteps in one batch: one denoiser pass instead of one per timestep (fewer kernel launches)
        feats = self.denoiser(torch.cat(noisy), torch.cat(steps), return_features=True)[1]
        return [torch.cat(f.split(b), 1) for f in feats]


def load_denoiser(path) -> UNetDenoiser:
    from ldf_ros.models.checkpoint import CheckpointError, load_weights, read_checkpoint

    tensors, config, _ = read_checkpoint(path, "denoiser")
    try:
        cfg = DenoiserConfig.from_dict(config)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: denoiser config in the checkpoint is invalid ({exc})") from exc
    return load_weights(UNetDenoiser(cfg), tensors, path).eval()
