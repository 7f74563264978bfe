"""Reader of folders written by `ldf-ros synth` (one folder per condition)."""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import yaml

from ldf_ros.data.paired import DatasetError


@dataclass(frozen=True)
class SyntheticFrame:
    camera: str
    index: int
    stamp_ns: int
    image: np.ndarray      # rgb8 (H, W, 3) or uint16 thermal counts (H, W)
    depth: np.ndarray      # float32 meters, NaN = no surface
    classes: np.ndarray    # uint8


class SyntheticSequence:
    """One condition's sequence: frames per camera, calibration, stamps."""

    def __init__(self, root: Path):
        self.root = Path(root)
        for name in ("calibration.yaml", "frames.csv"):
            if not (self.root / name).is_file():
                raise DatasetError(f"{self.root / name}: missing (is this a folder written by `ldf-ros synth`?)")
        self.calibration = yaml.safe_load((self.root / "calibration.yaml").read_text())
        with open(self.root / "frames.csv") as fh:
            self.rows = [dict(r, index=int(r["index"]), stamp_ns=int(r["stamp_ns"])) for r in csv.DictReader(fh)]
        self.condition = self.calibration.get("condition", self.root.name)

    def indices(self, camera: str) -> list[int]:
        return [r["index"] for r in self.rows if r["camera"] == camera]

    def k(self, camera: str) -> np.ndarray:
        """Intrinsics of a camera ("thermal_registered" uses the RGB camera's)."""
        cal = self.calibration["thermal" if camera == "thermal" else "rgb"]
        return np.asarray(cal["k"], dtype=np.float64).reshape(3, 3)

    def frame(self, camera: str, index: int) -> SyntheticFrame:
        row = next((r for r in self.rows if r["camera"] == camera and r["index"] == index), None)
        if row is None:
            raise DatasetError(f"{self.root}: no {camera} frame {index}")
        name = f"{index:06d}"
        d = self.root / camera
        image = cv2.imread(str(d / "image" / f"{name}.png"), cv2.IMREAD_UNCHANGED)
        classes = cv2.imread(str(d / "classes" / f"{name}.png"), cv2.IMREAD_UNCHANGED)
        depth_path = d / "depth" / f"{name}.npy"
        if image is None or classes is None or not depth_path.is_file():
            raise DatasetError(f"{d}: frame {name} is incomplete (image, classes or depth missing)")
        if image.ndim == 3:
            image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        return SyntheticFrame(camera, index, row["stamp_ns"], image, np.load(depth_path), classes)


def synthetic_sequences(root: Path) -> list[SyntheticSequence]:
    """Every condition folder under `root` (or `root` itself if it is one)."""
    root = Path(root)
    if (root / "frames.csv").is_file():
        return [SyntheticSequence(root)]
    seqs = [SyntheticSequence(p) for p in sorted(root.iterdir()) if (p / "frames.csv").is_file()]
    if not seqs:
        raise DatasetError(f"{root}: no synthetic sequences (folders with frames.csv) found")
    return seqs
