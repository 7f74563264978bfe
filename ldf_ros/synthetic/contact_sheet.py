"""A PNG contact sheet of the synthetic world: RGB | thermal | depth | classes, per condition."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ldf_ros.ops.visualize import colorize_depth, colorize_gray, label
from ldf_ros.synthetic.render import thermal_agc
from ldf_ros.synthetic.sequence import SequenceSpec, generate

CLASS_COLORS = np.array([[70, 130, 180], [128, 64, 128], [244, 35, 232], [70, 70, 70], [0, 0, 142],
                         [220, 20, 60], [153, 153, 153], [107, 142, 35]], dtype=np.uint8)


def colorize_thermal(counts: np.ndarray) -> np.ndarray:
    return colorize_gray(thermal_agc(counts))


def contact_sheet(spec: SequenceSpec, out: Path, scale: float = 0.5) -> Path:
    """One row per condition of the spec's first frame: RGB, registered thermal, depth, classes."""
    rows = []
    for cond in spec.conditions:
        views = {v.camera: v for v in generate(spec, cond) if v.index == 0}
        rgb, th = views["rgb"], views["thermal_registered"]
        tiles = [label(rgb.image, f"{cond}: RGB"), label(colorize_thermal(th.image), "thermal (registered)"),
                 label(colorize_depth(rgb.depth), "depth 0-60 m"), label(CLASS_COLORS[rgb.classes], "classes")]
        rows.append(np.concatenate(tiles, axis=1))
    sheet = np.concatenate(rows, axis=0)
    sheet = cv2.resize(sheet, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    return out
