"""Procedural street scenes at metric scale: road, sidewalks, buildings, vehicles,
pedestrians, poles with street lights, trees. World frame: x right of the road axis,
y along the road (forward), z up; the ground is z = 0.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ldf_ros.synthetic.geometry import Primitives

CLASSES = ["sky", "road", "sidewalk", "building", "vehicle", "pedestrian", "pole", "vegetation"]
CLASS_ID = {name: i for i, name in enumerate(CLASSES)}
ROAD_HALF_WIDTH = 4.0
SIDEWALK_OUTER = 7.0


@dataclass(frozen=True)
class Material:
    """Visible albedo and thermal behaviour of one surface kind.

    Temperatures are in degrees Celsius by day and by night; emissivity in [0, 1].
    """

    name: str
    class_id: int
    albedo: tuple[float, float, float]
    texture: float           # amplitude of procedural albedo texture
    temp_day: float
    temp_night: float
    emissivity: float


def _materials() -> list[Material]:
    m = [
        Material("asphalt", CLASS_ID["road"], (0.22, 0.22, 0.23), 0.25, 38.0, 12.0, 0.95),
        Material("concrete", CLASS_ID["sidewalk"], (0.55, 0.53, 0.50), 0.20, 30.0, 10.0, 0.92),
        Material("facade_a", CLASS_ID["building"], (0.62, 0.45, 0.35), 0.15, 22.0, 11.0, 0.90),
        Material("facade_b", CLASS_ID["building"], (0.70, 0.70, 0.68), 0.15, 24.0, 12.0, 0.90),
        Material("car_red", CLASS_ID["vehicle"], (0.60, 0.08, 0.07), 0.05, 28.0, 9.0, 0.85),
        Material("car_blue", CLASS_ID["vehicle"], (0.10, 0.18, 0.50), 0.05, 28.0, 9.0, 0.85),
        Material("car_white", CLASS_ID["vehicle"], (0.85, 0.85, 0.85), 0.05, 26.0, 9.0, 0.85),
        Material("engine", CLASS_ID["vehicle"], (0.08, 0.08, 0.08), 0.05, 65.0, 55.0, 0.95),
        Material("clothes", CLASS_ID["pedestrian"], (0.30, 0.25, 0.40), 0.10, 31.0, 30.0, 0.98),
        Material("skin", CLASS_ID["pedestrian"], (0.80, 0.60, 0.48), 0.02, 34.0, 33.0, 0.98),
        Material("metal_pole", CLASS_ID["pole"], (0.45, 0.45, 0.48), 0.05, 27.0, 8.0, 0.40),
        Material("trunk", CLASS_ID["vegetation"], (0.30, 0.20, 0.12), 0.20, 21.0, 10.0, 0.95),
        Material("leaves", CLASS_ID["vegetation"], (0.15, 0.40, 0.12), 0.35, 20.0, 9.0, 0.97),
    ]
    return m


MATERIALS = _materials()
MATERIAL_ID = {m.name: i for i, m in enumerate(MATERIALS)}


@dataclass(frozen=True)
class SceneFamily:
    """How a kind of street is populated (expected counts per 100 m, probabilities)."""

    building_probability: float
    vehicles_per_100m: float
    pedestrians_per_100m: float
    light_spacing_m: tuple[float, float]


FAMILIES = {
    "urban": SceneFamily(0.8, 7.0, 8.0, (25.0, 35.0)),
    "suburban": SceneFamily(0.35, 3.0, 3.0, (35.0, 50.0)),
    "highway": SceneFamily(0.0, 10.0, 0.0, (40.0, 60.0)),
}


@dataclass
class Scene:
    """Geometry plus what the renderers need: materials, street lights and headlights."""

    prims: Primitives
    street_lights: np.ndarray   # (L, 3) world positions of lamp heads
    headlights: np.ndarray      # (V, 3) positions, facing -y (oncoming) or +y
    headlight_dir: np.ndarray   # (V, 3) unit directions
    window_seed: int
    length: float


def _sample_buildings(rng, side, y_end, probability):
    lo, hi, mat = [], [], []
    y = -20.0
    while y < y_end:
        length = rng.uniform(8, 25)
        if rng.random() < probability:
            x0 = SIDEWALK_OUTER + rng.uniform(0.0, 2.0)
            depth = rng.uniform(8, 15)
            height = rng.uniform(6, 22)
            xa, xb = (x0, x0 + depth) if side > 0 else (-x0 - depth, -x0)
            lo.append([xa, y, 0.0])
            hi.append([xb, y + length, height])
            mat.append(MATERIAL_ID[rng.choice(["facade_a", "facade_b"])])
        y += length + rng.uniform(0.0, 6.0)
    return lo, hi, mat


def generate_scene(rng: np.random.Generator, length: float = 200.0, family: str = "urban") -> Scene:
    """A random street of `length` meters along +y; same generator state -> same scene."""
    if family not in FAMILIES:
        raise ValueError(f"unknown scene family {family!r}; choose from {', '.join(FAMILIES)}")
    fam = FAMILIES[family]
    box_lo, box_hi, box_mat = [], [], []
    for side in (-1, 1):
        lo, hi, mat = _sample_buildings(rng, side, length, fam.building_probability)
        box_lo += lo
        box_hi += hi
        box_mat += mat

    cyl_xy, cyl_r, cyl_z, cyl_mat = [], [], [], []
    sph_c, sph_r, sph_mat = [], [], []
    lights, heads, head_dirs = [], [], []

    # vehicles: parked along the curb and driving in both lanes
    n_veh = rng.poisson(fam.vehicles_per_100m * length / 100)
    placed: list[tuple[float, float]] = []
    for _ in range(n_veh):
        lane_x = rng.choice([-3.0, -1.6, 1.6, 3.0])
        y0 = rng.uniform(6, length)
        w, l, hgt = rng.uniform(1.7, 2.0), rng.uniform(3.8, 5.0), rng.uniform(1.4, 1.8)
        if any(abs(y0 - py) < l + 2.0 and abs(lane_x - px) < 1.5 for px, py in placed):
            continue
        placed.append((lane_x, y0))
        lo = [lane_x - w / 2, y0, 0.0]
        hi = [lane_x + w / 2, y0 + l, hgt]
        box_lo.append(lo)
        box_hi.append(hi)
        box_mat.append(MATERIAL_ID[rng.choice(["car_red", "car_blue", "car_white"])])
        oncoming = lane_x < 0
        # a warm block on the face toward the camera (engine of oncoming cars, exhaust of others)
        box_lo.append([lane_x - w / 2 + 0.15, y0 - 0.02, 0.35])
        box_hi.append([lane_x + w / 2 - 0.15, y0 + 0.6, hgt - 0.5])
        box_mat.append(MATERIAL_ID["engine"])
        if oncoming:
            for dx in (-w / 2 + 0.3, w / 2 - 0.3):
                heads.append([lane_x + dx, y0 - 0.05, 0.7])
                head_dirs.append([0.0, -1.0, 0.0])

    # pedestrians on the sidewalks, some crossing
    n_ped = rng.poisson(fam.pedestrians_per_100m * length / 100)
    for _ in range(n_ped):
        side = rng.choice([-1, 1])
        x = side * rng.uniform(ROAD_HALF_WIDTH + 0.5, SIDEWALK_OUTER - 0.5) if rng.random() < 0.8 else rng.uniform(-3, 3)
        y = rng.uniform(5, length)
        height = rng.uniform(1.55, 1.9)
        r = rng.uniform(0.18, 0.26)
        cyl_xy.append([x, y])
        cyl_r.append(r)
        cyl_z.append([0.0, height - 0.22])
        cyl_mat.append(MATERIAL_ID["clothes"])
        sph_c.append([x, y, height - 0.11])
        sph_r.append(0.11)
        sph_mat.append(MATERIAL_ID["skin"])

    # street-light poles every 25-35 m on alternating sides; trees in between
    y = rng.uniform(5, 15)
    side = 1
    while y < length:
        x = side * (ROAD_HALF_WIDTH + 0.4)
        cyl_xy.append([x, y])
        cyl_r.append(0.09)
        cyl_z.append([0.0, 6.0])
        cyl_mat.append(MATERIAL_ID["metal_pole"])
        lights.append([x - side * 1.0, y, 5.8])
        ty = y + rng.uniform(8, 14)
        tx = -side * (ROAD_HALF_WIDTH + rng.uniform(1.2, 2.4))
        trunk_h = rng.uniform(2.0, 3.0)
        cyl_xy.append([tx, ty])
        cyl_r.append(0.15)
        cyl_z.append([0.0, trunk_h])
        cyl_mat.append(MATERIAL_ID["trunk"])
        crown = rng.uniform(1.2, 2.0)
        sph_c.append([tx, ty, trunk_h + crown * 0.8])
        sph_r.append(crown)
        sph_mat.append(MATERIAL_ID["leaves"])
        y += rng.uniform(*fam.light_spacing_m)
        side = -side

    prims = Primitives(
        ground_material=MATERIAL_ID["asphalt"],
        boxes_min=np.asarray(box_lo, float).reshape(-1, 3), boxes_max=np.asarray(box_hi, float).reshape(-1, 3),
        boxes_material=np.asarray(box_mat, int),
        cyl_xy=np.asarray(cyl_xy, float).reshape(-1, 2), cyl_radius=np.asarray(cyl_r, float),
        cyl_z=np.asarray(cyl_z, float).reshape(-1, 2), cyl_material=np.asarray(cyl_mat, int),
        sph_center=np.asarray(sph_c, float).reshape(-1, 3), sph_radius=np.asarray(sph_r, float),
        sph_material=np.asarray(sph_mat, int),
    )
    return Scene(prims=prims, street_lights=np.asarray(lights, float).reshape(-1, 3),
                 headlights=np.asarray(heads, float).reshape(-1, 3),
                 headlight_dir=np.asarray(head_dirs, float).reshape(-1, 3),
                 window_seed=int(rng.integers(1 << 30)), length=length)

