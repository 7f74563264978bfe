"""A PNG contact sheet of the synthetic world: RGB | thermal | depth | classes, per condition."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ldf_ros.synthetic.render import thermal_agc
from ldf_ros.synthetic.sequence import SequenceSpec, generate

CLASS_COLORS = np.array([[70, 130, 180], [128, 64, 128], [244, 35, 232], [70, 70, 70], [0, 0, 142],
                         [220, 20, 60], [153, 153, 153], [107, 142, 35]], dtype=np.uint8)


def colorize_depth(depth: np.ndarray, max_m: float = 60.0) -> np.ndarray:
    """Depth in meters as RGB (near bright, far dark, no surface black) for people to look at."""
    d = np.clip(np.nan_to_num(depth, nan=max_m) / max_m, 0, 1)
    rgb = cv2.applyColorMap((255 * (1 - d)).astype(np.uint8), cv2.COLORMAP_MAGMA)[..., ::-1]
    rgb = rgb.copy()
    rgb[~np.isfinite(depth)] = 0
    return rgb


def colorize_thermal(counts: np.ndarray) -> np.ndarray:
    return cv2.applyColorMap(thermal_agc(counts), cv2.COLORMAP_INFERNO)[..., ::-1]


def _label(img: np.ndarray, text: str) -> np.ndarray:
    img = img.copy()
    cv2.putText(img, text, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 0, 0), 4, cv2.LINE_AA)
    cv2.putText(img, text, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 1, cv2.LINE_AA)
    return img


def contact_sheet(spec: SequenceSpec, out: Path, scale: float = 0.5) -> Path:
    """One row per condition of the spec's first frame: RGB, registered thermal, depth, classes."""
    rows = []
    for cond in spec.conditions:
        views = {v.camera: v for v in generate(spec, cond) if v.index == 0}
        rgb, th = views["rgb"], views["thermal_registered"]
        tiles = [_label(rgb.image, f"{cond}: RGB"), _label(colorize_thermal(th.image), "thermal (registered)"),
                 _label(colorize_depth(rgb.depth), "depth 0-60 m"), _label(CLASS_COLORS[rgb.classes], "classes")]
        rows.append(np.concatenate(tiles, axis=1))
    sheet = np.concatenate(rows, axis=0)
    sheet = cv2.resize(sheet, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    return out
