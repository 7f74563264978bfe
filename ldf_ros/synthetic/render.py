"""Visible and thermal rendering of ray-cast hits under lighting and weather conditions.

Visible: albedo with world-anchored texture (so it moves correctly with the camera, which
self-supervised depth training relies on), sun and sky by day, street lights, headlights
and lit windows by night, fog as exponential extinction, glare as a saturating bloom,
shot and read noise. Thermal: per-material temperature and emissivity, reflected sky,
weaker fog extinction than visible (LWIR), optics blur, fixed-pattern and temporal noise,
written as 16-bit radiometric counts (a linear map of kelvin).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

import cv2
import numpy as np

from ldf_ros.synthetic.geometry import NO_HIT, Hits
from ldf_ros.synthetic.scene import CLASS_ID, MATERIAL_ID, MATERIALS, ROAD_HALF_WIDTH, Scene

COUNTS_PER_KELVIN = 100.0  # raw thermal counts = kelvin * 100 (0.01 K per count)


@dataclass(frozen=True)
class Condition:
    name: str
    sun: float                  # direct sun intensity
    ambient: float              # sky/ambient light
    sky_rgb: tuple[float, float, float]
    sun_dir: tuple[float, float, float]
    night: bool
    fog_visibility_m: float     # inf: clear
    glare: bool
    gain: float                 # exposure gain: brighter image, more noise
    air_temp: float             # deg C, what fog and far surfaces tend to
    sky_temp: float             # apparent sky temperature, deg C
    warmth: float               # 0: surfaces at night temperature, 1: at sun-heated day temperature
    street_lights: bool = True  # lamps lit (night only): False is an unlit road


_NIGHT = Condition("night", 0.0, 0.004, (0.02, 0.025, 0.04), (0.0, 0.0, 1.0), True, np.inf, False, 3.0, 10.0, -30.0, 0.0)

CONDITIONS = {
    "day": Condition("day", 0.9, 0.45, (0.55, 0.70, 0.95), (0.4, 0.5, 0.77), False, np.inf, False, 1.0, 22.0, -25.0, 1.0),
    "dusk": Condition("dusk", 0.25, 0.12, (0.75, 0.45, 0.30), (-0.6, 0.75, 0.15), False, np.inf, False, 2.5, 16.0, -20.0, 0.6),
    "night": _NIGHT,
    "fog": Condition("fog", 0.25, 0.55, (0.72, 0.74, 0.76), (0.3, 0.4, 0.86), False, 45.0, False, 1.3, 8.0, 0.0, 0.25),
    "glare": Condition("glare", 1.0, 0.45, (0.75, 0.80, 0.95), (0.15, 0.97, 0.12), False, np.inf, True, 1.6, 22.0, -25.0, 1.0),
    # test only (clips.TRAINING_CONDITIONS leaves it out): fog thick enough that the visible
    # camera loses most of the street, which the 45 m training fog never does
    "dense_fog": Condition("dense_fog", 0.15, 0.5, (0.72, 0.74, 0.76), (0.3, 0.4, 0.86), False, 15.0, False, 1.3, 8.0, 0.0, 0.25),
    # test only: the night with the street lights off (an unlit road; headlights and lit
    # windows remain), where the visible camera has far less to read than on the lit street
    "unlit_night": replace(_NIGHT, name="unlit_night", street_lights=False),
}


# Bumped for a condition whenever its rendering changes, so that caches of rendered images
# (clips, rig views) keyed with render_tag() re-render instead of serving stale images.
# night 2: bounded headlight and street-light bloom (GLOW_MAX_GROWTH).
RENDER_REVISION = {"night": 2}


def render_tag(condition: str) -> str:
    """Cache-name suffix for a condition's renderer revision ("" for revision 1)."""
    rev = RENDER_REVISION.get(condition, 1)
    return "" if rev == 1 else f"_r{rev}"


@lru_cache(maxsize=16)
def _lattice(seed: int) -> np.ndarray:
    grid = np.random.default_rng(seed).uniform(-1, 1, size=(256, 256)).astype(np.float32)
    return np.pad(grid, ((0, 1), (0, 1)), mode="wrap")


def _value_noise(u: np.ndarray, v: np.ndarray, seed: int, octaves: int = 2) -> np.ndarray:
    """Smooth noise in [-1, 1] anchored to continuous coordinates (bilinear lattice noise)."""
    grid = _lattice(seed)
    u, v = u.astype(np.float32), v.astype(np.float32)
    out = np.zeros_like(u)
    amp, total = 1.0, 0.0
    for o in range(octaves):
        s = 2.0 ** o
        x, y = u * s, v * s
        x0, y0 = np.floor(x), np.floor(y)
        fx, fy = x - x0, y - y0
        i0 = x0.astype(np.int64) % 256
        j0 = y0.astype(np.int64) % 256
        a = grid[j0, i0] * (1 - fx) + grid[j0, i0 + 1] * fx
        b = grid[j0 + 1, i0] * (1 - fx) + grid[j0 + 1, i0 + 1] * fx
        out += amp * (a * (1 - fy) + b * fy)
        total += amp
        amp *= 0.5
    return out / total


def surface_materials(hits: Hits) -> np.ndarray:
    """Material id per pixel, with the ground split into road and sidewalk by |x|."""
    mat = hits.material.copy()
    ground = mat == MATERIAL_ID["asphalt"]
    off_road = ground & (np.abs(hits.point[..., 0]) >= ROAD_HALF_WIDTH)
    mat[off_road] = MATERIAL_ID["concrete"]
    return mat


def class_map(hits: Hits) -> np.ndarray:
    """(H, W) uint8 class ids (scene.CLASSES), sky where nothing was hit."""
    mat = surface_materials(hits)
    lut = np.array([m.class_id for m in MATERIALS] + [CLASS_ID["sky"]], dtype=np.uint8)
    return lut[np.where(mat == NO_HIT, len(MATERIALS), mat)]


def _surface_coords(hits: Hits) -> tuple[np.ndarray, np.ndarray]:
    """2-D texture coordinates on each surface: (x, y) on the ground, (x + y, z) on walls."""
    p, n = hits.point, hits.normal
    horizontal = np.abs(n[..., 2]) > 0.7
    u = np.where(horizontal, p[..., 0], p[..., 0] + p[..., 1])
    v = np.where(horizontal, p[..., 1], p[..., 2])
    return u, v


def _windows(hits: Hits, mat: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Window mask on facades and which windows are lit at night."""
    facade = np.isin(mat, [MATERIAL_ID["facade_a"], MATERIAL_ID["facade_b"]]) & (np.abs(hits.normal[..., 2]) < 0.5)
    u, v = _surface_coords(hits)
    cu, cv = np.floor(u / 3.0), np.floor((v - 1.0) / 3.0)
    fu, fv = u / 3.0 - cu, (v - 1.0) / 3.0 - cv
    window = facade & (fu > 0.25) & (fu < 0.75) & (fv > 0.2) & (fv < 0.7) & (v > 1.0)
    h = (cu.astype(np.int64) * 73856093 ^ cv.astype(np.int64) * 19349663 ^ seed) % 1000
    return window, window & (h < 300)


def render_visible(scene: Scene, hits: Hits, rays_world: np.ndarray, cond: Condition,
                   rng: np.random.Generator, cam_k: np.ndarray, cam_r: np.ndarray, cam_t: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB image of the hits under `cond`."""
    mat = surface_materials(hits)
    hit = mat != NO_HIT
    albedo_lut = np.array([m.albedo for m in MATERIALS] + [(0, 0, 0)])
    tex_lut = np.array([m.texture for m in MATERIALS] + [0.0])
    idx = np.where(hit, mat, len(MATERIALS))
    u, v = _surface_coords(hits)
    tex = _value_noise(u * 2.0, v * 2.0, seed=7) * 0.6 + _value_noise(u * 9.0, v * 9.0, seed=11) * 0.4
    albedo = albedo_lut[idx] * (1.0 + tex_lut[idx] * tex)[..., None]
    # lane markings: dashed center line and solid edge lines
    p = hits.point
    on_road = mat == MATERIAL_ID["asphalt"]
    center = on_road & (np.abs(p[..., 0]) < 0.08) & (np.mod(p[..., 1], 9.0) < 4.5)
    edge = on_road & (np.abs(np.abs(p[..., 0]) - (ROAD_HALF_WIDTH - 0.25)) < 0.08)
    albedo[center | edge] = (0.85, 0.85, 0.80)
    window, lit = _windows(hits, mat, scene.window_seed)
    albedo[window] = (0.10, 0.12, 0.15)

    lamps = scene.street_lights if cond.street_lights else scene.street_lights[:0]
    n = hits.normal
    sun_dir = np.asarray(cond.sun_dir) / np.linalg.norm(cond.sun_dir)
    light = cond.ambient * (0.6 + 0.4 * np.clip(n[..., 2], 0, 1))[..., None] * np.asarray(cond.sky_rgb) / max(cond.sky_rgb)
    light = light + cond.sun * np.clip(n @ sun_dir, 0, None)[..., None] * np.array([1.0, 0.97, 0.9])
    if cond.night:
        p, n = p.astype(np.float32), n.astype(np.float32)
        near = lambda pts: pts[np.linalg.norm(pts - cam_t, axis=1) < 80.0] if len(pts) else pts  # noqa: E731
        light = light + _point_lights(p, n, near(lamps), intensity=3.0, color=(1.0, 0.85, 0.6))
        keep = np.linalg.norm(scene.headlights - cam_t, axis=1) < 80.0 if len(scene.headlights) else []
        light = light + _spot_lights(p, n, scene.headlights[keep], scene.headlight_dir[keep], intensity=15.0)
    rgb = albedo * light
    if cond.night:
        rgb[lit] = (0.45, 0.36, 0.2)
    sky = _sky(rays_world, cond)
    rgb = np.where(hit[..., None], rgb, sky)
    if np.isfinite(cond.fog_visibility_m):
        trans = np.exp(-3.0 * np.where(hit, hits.t, 1e6) / cond.fog_visibility_m)[..., None]
        fog_color = np.asarray(cond.sky_rgb) * (0.25 if cond.night else 1.0)
        rgb = rgb * trans + fog_color * (1 - trans)
    if cond.night:
        rgb = rgb + _glow(scene.headlights, cam_k, cam_r, cam_t, rgb.shape[:2], radius=6.0, strength=3.0)
        rgb = rgb + _glow(lamps, cam_k, cam_r, cam_t, rgb.shape[:2], radius=4.0, strength=1.5)
    if cond.glare:
        rgb = rgb + _sun_glare(sun_dir, cam_k, cam_r, rgb.shape[:2])
    return _expose(rgb, cond.gain, rng)


def _point_lights(p, n, lights, intensity, color):
    out = np.zeros(p.shape[:2], np.float32)
    for L in lights.astype(np.float32):
        d = L - p
        dist2 = np.einsum("...i,...i->...", d, d) + 1.0
        out += np.clip(np.einsum("...i,...i->...", n, d), 0, None) / dist2 ** 1.5
    return intensity * out[..., None] * np.asarray(color)


def _spot_lights(p, n, pos, dirs, intensity):
    out = np.zeros(p.shape[:2], np.float32)
    for L, axis in zip(pos.astype(np.float32), dirs.astype(np.float32)):
        d = p - L
        dist = np.linalg.norm(d, axis=-1) + 1e-6
        cos_axis = (d @ axis) / dist
        cone = np.clip((cos_axis - 0.9) / 0.1, 0, 1) ** 2
        out += cone * np.clip(-np.einsum("...i,...i->...", n, d) / dist, 0, None) / (dist ** 2 + 1.0)
    return intensity * out[..., None] * np.array([1.0, 1.0, 0.95])


def _sky(rays_world, cond: Condition):
    up = rays_world[..., 2] / np.linalg.norm(rays_world, axis=-1)
    horizon = np.asarray(cond.sky_rgb)
    zenith = horizon * (0.6 if not cond.night else 0.5)
    w = np.clip(up * 3.0, 0, 1)[..., None]
    return horizon * (1 - w) + zenith * w


def _project_points(points, k, cam_r, cam_t):
    pc = (points - cam_t) @ cam_r  # world -> camera (cam_r is camera-to-world)
    front = pc[:, 2] > 0.5
    uv = pc[front, :2] / pc[front, 2:3] * [k[0, 0], k[1, 1]] + [k[0, 2], k[1, 2]]
    return uv, pc[front, 2]


# Lens bloom grows as a lamp comes closer, but only up to this factor: it is the optics'
# scatter, a few pixels wide whatever the distance (revision 1 let it grow as 20 m / depth,
# so one headlight 3 m away washed the whole 160-px frame out).
GLOW_MAX_GROWTH = 2.0


def _glow(points, k, cam_r, cam_t, shape, radius, strength):
    """Additive Gaussian bloom around each visible lamp's image position."""
    out = np.zeros(shape + (3,))
    if len(points) == 0:
        return out
    uv, z = _project_points(points, k, cam_r, cam_t)
    for (u, v), depth in zip(uv, z):
        r = radius * min(max(1.0, 20.0 / depth), GLOW_MAX_GROWTH)
        v0, v1 = max(int(v - 4 * r), 0), min(int(v + 4 * r) + 1, shape[0])
        u0, u1 = max(int(u - 4 * r), 0), min(int(u + 4 * r) + 1, shape[1])
        if v0 >= v1 or u0 >= u1:
            continue
        vv, uu = np.mgrid[v0:v1, u0:u1]
        d2 = (uu - u) ** 2 + (vv - v) ** 2
        out[v0:v1, u0:u1] += strength * np.exp(-d2 / (2 * r * r))[..., None] * np.array([1.0, 0.95, 0.85])
    return out


def _sun_glare(sun_dir, k, cam_r, shape):
    """A veiling bloom around the sun's image position (saturating), as a low sun causes."""
    sun_far = np.asarray(sun_dir)[None] * 1e4
    uv, _ = _project_points(sun_far, k, cam_r, np.zeros(3))
    if len(uv) == 0:
        return np.zeros(shape + (3,))
    u, v = uv[0]
    vv, uu = np.mgrid[0:shape[0], 0:shape[1]]
    d = np.sqrt((uu - u) ** 2 + (vv - v) ** 2) / max(shape)
    return (2.5 * np.exp(-(d / 0.12) ** 2) + 0.35 * np.exp(-d / 0.5))[..., None] * np.array([1.0, 0.97, 0.9])


def _expose(rgb, gain, rng):
    """Exposure, shot and read noise, gamma, 8-bit quantization (saturation clips)."""
    x = np.clip(rgb * gain, 0, None)
    electrons = 800.0 / gain
    # shot noise (Gaussian approximation of Poisson) plus read noise that grows with gain
    sigma = np.sqrt(np.clip(x, 0, 4) / electrons + (0.004 * gain) ** 2)
    x = x + sigma * rng.standard_normal(x.shape, dtype=np.float32)
    x = np.clip(x, 0, 1) ** (1 / 2.2)
    return (x * 255 + 0.5).astype(np.uint8)


def temperature_map(hits: Hits, cond: Condition) -> np.ndarray:
    """(H, W) apparent temperature in deg C at the sensor, before optics and noise."""
    mat = surface_materials(hits)
    hit = mat != NO_HIT
    idx = np.where(hit, mat, len(MATERIALS))
    temp_lut = np.array([m.temp_night + cond.warmth * (m.temp_day - m.temp_night) for m in MATERIALS] + [cond.sky_temp])
    emis_lut = np.array([m.emissivity for m in MATERIALS] + [1.0])
    u, v = _surface_coords(hits)
    temp = temp_lut[idx] + np.where(hit, 0.8 * _value_noise(u * 0.7, v * 0.7, seed=23), 0.0)
    # sun-lit faces warm up by day; up-facing surfaces reflect the cold sky
    if not cond.night:
        sun_dir = np.asarray(cond.sun_dir) / np.linalg.norm(cond.sun_dir)
        temp = temp + np.where(hit, 6.0 * cond.sun * np.clip(hits.normal @ sun_dir, 0, None), 0.0)
    emis = emis_lut[idx]
    reflected = np.where(hits.normal[..., 2] > 0.5, cond.sky_temp, cond.air_temp)
    apparent = emis * temp + (1 - emis) * reflected
    if np.isfinite(cond.fog_visibility_m):
        # LWIR is attenuated far less by fog droplets than visible light
        trans = np.exp(-3.0 * np.where(hit, hits.t, 1e6) / (6.0 * cond.fog_visibility_m))
        apparent = apparent * trans + cond.air_temp * (1 - trans)
    return apparent


@dataclass(frozen=True)
class ThermalSensor:
    """Fixed traits of one thermal camera: optics blur, fixed-pattern noise, NETD."""

    seed: int
    blur_sigma_px: float = 0.8
    netd_k: float = 0.05
    fpn_column_k: float = 0.15
    fpn_pixel_gain: float = 0.01

    def pattern(self, shape):
        rng = np.random.default_rng(self.seed)
        columns = rng.normal(0, self.fpn_column_k, size=(1, shape[1]))
        gain = 1.0 + rng.normal(0, self.fpn_pixel_gain, size=shape)
        return columns, gain


def render_thermal(hits: Hits, cond: Condition, sensor: ThermalSensor, rng: np.random.Generator) -> np.ndarray:
    """(H, W) uint16 raw counts: kelvin * COUNTS_PER_KELVIN, with sensor traits."""
    kelvin = temperature_map(hits, cond) + 273.15
    kelvin = cv2.GaussianBlur(kelvin, (0, 0), sensor.blur_sigma_px)
    columns, gain = sensor.pattern(kelvin.shape)
    kelvin = (kelvin - 273.15) * gain + 273.15 + columns + rng.normal(0, sensor.netd_k, kelvin.shape)
    return np.clip(np.round(kelvin * COUNTS_PER_KELVIN), 0, 65535).astype(np.uint16)


def thermal_agc(counts: np.ndarray, low: float = 1.0, high: float = 99.0) -> np.ndarray:
    """8-bit automatic gain control output of a thermal camera (percentile stretch)."""
    lo, hi = np.percentile(counts, [low, high])
    scaled = (counts.astype(np.float32) - lo) / max(hi - lo, 1.0)
    return (np.clip(scaled, 0, 1) * 255 + 0.5).astype(np.uint8)
