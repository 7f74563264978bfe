"""Short synthetic clips as arrays, for training and testing the learned models.

Each clip is one street (seed, family) under one condition, seen by the RGB camera at a
reduced resolution, with the thermal image rendered from the RGB camera's viewpoint (the
geometry the runtime produces after registration), ground-truth depth and class ids.
Clips are cached as .npz so generation is paid once.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ldf_ros.synthetic.render import CONDITIONS, ThermalSensor, render_tag
from ldf_ros.synthetic.rig import PinholeCamera, Rig
from ldf_ros.synthetic.sequence import SequenceSpec, render_view, scene_for


CLIP_HFOV_DEG = 66.0   # the RGB camera of the rig (synthetic.rig)


@dataclass(frozen=True)
class ClipSpec:
    seed: int
    family: str
    condition: str
    frames: int = 24
    width: int = 160
    height: int = 128
    rate_hz: float = 15.0     # 8 m/s -> 0.53 m between frames: enough parallax to learn from
    hfov_deg: float = CLIP_HFOV_DEG   # the thermal branch learns with the thermal camera's (50)

    @property
    def name(self) -> str:
        fov = "" if self.hfov_deg == CLIP_HFOV_DEG else f"_fov{self.hfov_deg:g}"
        size = f"{self.width}x{self.height}_n{self.frames}"
        return f"{self.family}_s{self.seed}_{self.condition}_{size}{fov}{render_tag(self.condition)}"


@dataclass
class Clip:
    spec: ClipSpec
    rgb: np.ndarray        # (N, H, W, 3) uint8
    thermal: np.ndarray    # (N, H, W) uint16 counts, registered to the RGB camera
    depth: np.ndarray      # (N, H, W) float32 meters, NaN = sky
    classes: np.ndarray    # (N, H, W) uint8
    k: np.ndarray          # (3, 3) RGB intrinsics at this resolution


def clip_camera(width: int, height: int, hfov_deg: float = CLIP_HFOV_DEG) -> PinholeCamera:
    """The camera clips are rendered with (and depth networks learn on)."""
    return PinholeCamera.from_hfov(width, height, hfov_deg)


def render_clip(spec: ClipSpec) -> Clip:
    """Render a clip (deterministic in its spec). The camera sits at the RGB camera's pose
    with the spec's field of view: the geometry the runtime produces after registration."""
    rig = Rig(rgb=clip_camera(spec.width, spec.height, spec.hfov_deg))
    seq = SequenceSpec(frames=spec.frames, conditions=(spec.condition,), seed=spec.seed, family=spec.family,
                       rgb_rate_hz=spec.rate_hz, rig=rig)
    scene = scene_for(seq)
    sensor = ThermalSensor(seed=spec.seed + 1)
    cond_idx = list(CONDITIONS).index(spec.condition)
    out = {"visible": [], "thermal": [], "depth": [], "classes": []}
    for i in range(spec.frames):
        rngs = {m: np.random.default_rng([spec.seed, cond_idx, j, i]) for j, m in enumerate(("visible", "thermal"))}
        views = render_view(scene, rig.rgb, rig.rgb_pose(i / spec.rate_hz), spec.condition, ("visible", "thermal"),
                            sensor, rngs)
        out["visible"].append(views["visible"][0])
        out["thermal"].append(views["thermal"][0])
        out["depth"].append(views["visible"][1])
        out["classes"].append(views["visible"][2])
    return Clip(spec, np.stack(out["visible"]), np.stack(out["thermal"]), np.stack(out["depth"]),
                np.stack(out["classes"]), rig.rgb.k)


def load_or_render(spec: ClipSpec, cache_dir: Path | None) -> Clip:
    """A clip from the cache folder, rendering and storing it on a miss."""
    if cache_dir is None:
        return render_clip(spec)
    path = Path(cache_dir) / f"{spec.name}.npz"
    if path.is_file():
        with np.load(path) as z:
            return Clip(spec, z["rgb"], z["thermal"], z["depth"], z["classes"], z["k"])
    clip = render_clip(spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, rgb=clip.rgb, thermal=clip.thermal, depth=clip.depth, classes=clip.classes, k=clip.k)
    tmp.replace(path)
    return clip


# What the depth networks train on; CONDITIONS also holds test-only ones (dense_fog, unlit_night).
TRAINING_CONDITIONS = ("day", "dusk", "night", "fog", "glare")


def clip_specs(seeds, families=("urban", "suburban", "highway"), conditions=TRAINING_CONDITIONS, **kw) -> list[ClipSpec]:
    """Every (seed, condition) with families cycled over seeds, so each street is one family."""
    unknown = [c for c in conditions if c not in CONDITIONS]
    if unknown:
        raise ValueError(f"unknown condition {unknown[0]!r}; choose from {', '.join(CONDITIONS)}")
    return [ClipSpec(seed, families[i % len(families)], cond, **kw) for i, seed in enumerate(seeds) for cond in conditions]


# Seeds reserved per split: test streets are never seen in training.
TRAIN_SEEDS = tuple(range(100, 160))
UNLABELED_SEEDS = tuple(range(200, 260))   # distillation only: their ground truth is never read
VAL_SEEDS = tuple(range(500, 506))
TEST_SEEDS = tuple(range(900, 912))
