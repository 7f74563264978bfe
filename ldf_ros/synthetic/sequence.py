"""Timed sequences of the synthetic world: a rig driving down a street, RGB and thermal at
their own rates with a time offset, written as folders (and bags by `bag.py`).
"""
from __future__ import annotations

import csv
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
import yaml

from ldf_ros.ops.camera import pixel_rays
from ldf_ros.synthetic.geometry import cast
from ldf_ros.synthetic.render import (CONDITIONS, COUNTS_PER_KELVIN, ThermalSensor, class_map, render_thermal,
                                      render_visible)
from ldf_ros.synthetic.rig import PinholeCamera, Rig
from ldf_ros.synthetic.scene import CLASSES, FAMILIES, Scene, generate_scene


@dataclass(frozen=True)
class SequenceSpec:
    """What to generate. The same spec gives the same frames, bit for bit."""

    frames: int = 10                      # RGB frames per condition
    conditions: tuple[str, ...] = ("day", "night", "fog")
    seed: int = 0
    family: str = "urban"                 # scene.FAMILIES: urban, suburban, highway
    rgb_rate_hz: float = 30.0
    thermal_rate_hz: float = 30.0
    thermal_offset_s: float = 0.0         # thermal stamps = rgb-grid stamps + offset
    start_time_s: float = 1.0
    rig: Rig = field(default_factory=Rig)
    registered_thermal: bool = True       # also render thermal as seen by the RGB camera

    def __post_init__(self):
        unknown = [c for c in self.conditions if c not in CONDITIONS]
        if unknown:
            raise ValueError(f"unknown condition {unknown[0]!r}; choose from {', '.join(CONDITIONS)}")
        if self.family not in FAMILIES:
            raise ValueError(f"unknown scene family {self.family!r}; choose from {', '.join(FAMILIES)}")
        if self.frames < 1:
            raise ValueError(f"frames must be >= 1, got {self.frames}")
        if self.rgb_rate_hz <= 0 or self.thermal_rate_hz <= 0:
            raise ValueError("camera rates must be positive")


VIEW_NAMES = ("rgb", "thermal", "thermal_registered")


@dataclass
class View:
    """One camera's output at one instant."""

    camera: str           # "rgb", "thermal" or "thermal_registered"
    index: int
    stamp_s: float
    image: np.ndarray     # rgb8 (H, W, 3) or uint16 counts (H, W)
    depth: np.ndarray     # float32 meters, NaN for sky
    classes: np.ndarray   # uint8 ids


def render_view(scene: Scene, cam: PinholeCamera, pose, cond_name: str, modalities: tuple[str, ...],
                sensor: ThermalSensor, rngs: dict) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Cast one camera once and render each requested modality ("visible", "thermal") from
    the same hits: modality -> (image, depth in m with NaN for sky, class ids)."""
    r, t = pose
    rays = pixel_rays(cam.k, cam.width, cam.height)
    hits = cast(scene.prims, r, t, cam.k, rays)
    cond = CONDITIONS[cond_name]
    depth = np.where(np.isfinite(hits.t), hits.t, np.nan).astype(np.float32)
    classes = class_map(hits)
    out = {}
    for modality in modalities:
        if modality == "thermal":
            image = render_thermal(hits, cond, sensor, rngs[modality])
        else:
            image = render_visible(scene, hits, rays @ r.T, cond, rngs[modality], cam.k, r, t)
        out[modality] = (image, depth, classes)
    return out


def _stamps(spec: SequenceSpec) -> tuple[np.ndarray, np.ndarray]:
    duration = spec.frames / spec.rgb_rate_hz
    rgb = spec.start_time_s + np.arange(spec.frames) / spec.rgb_rate_hz
    n_th = max(1, int(np.floor(duration * spec.thermal_rate_hz + 1e-9)))
    th = spec.start_time_s + spec.thermal_offset_s + np.arange(n_th) / spec.thermal_rate_hz
    return rgb, th


def scene_for(spec: SequenceSpec) -> Scene:
    """The street of a spec: long enough for the drive plus a view ahead."""
    duration = spec.frames / spec.rgb_rate_hz + abs(spec.thermal_offset_s) + spec.start_time_s
    length = spec.rig.speed_mps * duration + 150.0
    return generate_scene(np.random.default_rng(spec.seed), length=length, family=spec.family)


def generate(spec: SequenceSpec, condition: str) -> Iterator[View]:
    """All views of one condition in stamp order (RGB, thermal and registered thermal)."""
    scene = scene_for(spec)
    sensor = ThermalSensor(seed=spec.seed + 1)
    rig = spec.rig
    cond_idx = list(CONDITIONS).index(condition)
    rgb_stamps, th_stamps = _stamps(spec)
    jobs = [("rgb", i, s) for i, s in enumerate(rgb_stamps)] + [("thermal", i, s) for i, s in enumerate(th_stamps)]
    jobs.sort(key=lambda j: (j[2], j[0]))
    for camera, i, stamp in jobs:
        t = stamp - spec.start_time_s
        if camera == "thermal":
            cam, pose, outputs = rig.thermal, rig.thermal_pose(t), {"thermal": "thermal"}
        else:
            cam, pose = rig.rgb, rig.rgb_pose(t)
            outputs = {"visible": "rgb", "thermal": "thermal_registered"} if spec.registered_thermal else {"visible": "rgb"}
        rngs = {m: np.random.default_rng([spec.seed, cond_idx, VIEW_NAMES.index(name), i]) for m, name in outputs.items()}
        rendered = render_view(scene, cam, pose, condition, tuple(outputs), sensor, rngs)
        for modality, name in outputs.items():
            yield View(name, i, float(stamp), *rendered[modality])


def calibration(spec: SequenceSpec) -> dict:
    """Calibration YAML contents: intrinsics, extrinsic, thermal radiometry, class names."""
    rig = spec.rig
    return {
        "rgb": rig.rgb.to_dict(),
        "thermal": rig.thermal.to_dict(),
        "thermal_to_rgb": {"translation": list(rig.thermal_to_rgb_translation),
                           "rotation_xyzw": list(rig.thermal_to_rgb_rotation)},
        "thermal_radiometry": {"counts_per_kelvin": COUNTS_PER_KELVIN, "encoding": "mono16",
                               "kelvin": "counts / counts_per_kelvin"},
        "rig": {"mount_height_m": rig.mount_height_m, "pitch_deg": rig.pitch_deg, "speed_mps": rig.speed_mps},
        "rates_hz": {"rgb": spec.rgb_rate_hz, "thermal": spec.thermal_rate_hz},
        "thermal_offset_s": spec.thermal_offset_s,
        "classes": list(CLASSES),
        "seed": spec.seed,
        "family": spec.family,
    }


def write_folder(spec: SequenceSpec, out: Path, progress: bool = True) -> list[Path]:
    """Write every condition as out/<condition>/{rgb,thermal,...}/NNNNNN.{png,npy} + frames.csv."""
    from tqdm import tqdm

    out = Path(out)
    written = []
    for cond in spec.conditions:
        root = out / cond
        for sub in ("rgb", "thermal", "thermal_registered"):
            for kind in ("image", "depth", "classes"):
                (root / sub / kind).mkdir(parents=True, exist_ok=True)
        (root / "calibration.yaml").write_text(yaml.safe_dump(calibration(spec) | {"condition": cond}, sort_keys=False))
        rows = []
        total = spec.frames * (2 if spec.registered_thermal else 1) + len(_stamps(spec)[1])
        for view in tqdm(generate(spec, cond), total=total, desc=f"synth {cond}", disable=not progress):
            name = f"{view.index:06d}"
            d = root / view.camera
            img = view.image if view.image.ndim == 2 else cv2.cvtColor(view.image, cv2.COLOR_RGB2BGR)
            cv2.imwrite(str(d / "image" / f"{name}.png"), img)
            np.save(d / "depth" / f"{name}.npy", view.depth)
            cv2.imwrite(str(d / "classes" / f"{name}.png"), view.classes)
            rows.append({"camera": view.camera, "index": view.index, "stamp_ns": int(round(view.stamp_s * 1e9)),
                         "file": f"{view.camera}/image/{name}.png"})
        with open(root / "frames.csv", "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        written.append(root)
    return written


def spec_dict(spec: SequenceSpec) -> dict:
    return asdict(spec)
