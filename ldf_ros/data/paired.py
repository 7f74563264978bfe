"""Paired visible/infrared image folders (RoadScene, TNO, MSRS, LLVIP layouts).

Pairs are matched by file stem in the two folders. Every problem (a folder missing, a
file without its partner, an unreadable image, two sizes) is reported with the file name.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ldf_ros.ops.color import is_gray

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}
# (visible, infrared) folder names used by the public datasets
LAYOUTS = [("vi", "ir"), ("visible", "infrared"), ("VIS", "IR"), ("vis", "ir"), ("Vis", "Inf")]


class DatasetError(ValueError):
    """A dataset folder or file cannot be used; the message names it."""


def find_pair_dirs(root: Path) -> tuple[Path, Path]:
    """The visible and infrared folders under `root`, for any known layout."""
    root = Path(root)
    for vi, ir in LAYOUTS:
        if (root / vi).is_dir() and (root / ir).is_dir():
            return root / vi, root / ir
    raise DatasetError(f"{root}: no visible/infrared folder pair found (looked for {', '.join('/'.join(x) for x in LAYOUTS)})")


def _images(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        raise DatasetError(f"{folder}: not a folder")
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}


def read_visible(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB; grayscale visible images (TNO) are replicated to three channels."""
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise DatasetError(f"{path}: not a readable image")
    if img.dtype != np.uint8:
        raise DatasetError(f"{path}: expected an 8-bit visible image, got {img.dtype}")
    if img.ndim == 2:
        return np.repeat(img[:, :, None], 3, axis=2)
    return cv2.cvtColor(img[:, :, :3], cv2.COLOR_BGR2RGB)


def read_infrared(path: Path) -> np.ndarray:
    """(H, W) infrared as stored (uint8 or uint16); color-saved IR is reduced to one channel."""
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise DatasetError(f"{path}: not a readable image")
    if img.ndim == 3:
        img = cv2.cvtColor(img[:, :, :3], cv2.COLOR_BGR2GRAY)
    return img


@dataclass(frozen=True)
class Pair:
    name: str
    visible: Path
    infrared: Path


class PairedFolder:
    """Visible/infrared pairs with identical stems; `strict` raises on unpaired files."""

    def __init__(self, vi_dir: Path, ir_dir: Path, strict: bool = True):
        vi, ir = _images(Path(vi_dir)), _images(Path(ir_dir))
        only_vi, only_ir = sorted(set(vi) - set(ir)), sorted(set(ir) - set(vi))
        self.unpaired = [str(vi[n]) for n in only_vi] + [str(ir[n]) for n in only_ir]
        if strict and self.unpaired:
            raise DatasetError(f"{len(self.unpaired)} unpaired file(s): {', '.join(self.unpaired[:10])}")
        self.pairs = [Pair(n, vi[n], ir[n]) for n in sorted(set(vi) & set(ir))]
        if not self.pairs:
            raise DatasetError(f"{vi_dir} and {ir_dir}: no image pairs found")

    @classmethod
    def from_root(cls, root: Path, strict: bool = True) -> "PairedFolder":
        return cls(*find_pair_dirs(root), strict=strict)

    def __len__(self) -> int:
        return len(self.pairs)

    def select(self, names: str = "*", visible: str = "any") -> "PairedFolder":
        """The pairs whose stem matches the glob `names` and whose visible image is `gray`,
        `color` or `any`; raises if none is left (a typo should not evaluate nothing)."""
        import copy
        import fnmatch

        if visible not in ("any", "gray", "color"):
            raise DatasetError(f"visible: {visible!r}, expected any, gray or color")
        keep = [p for p in self.pairs if fnmatch.fnmatch(p.name, names)]
        if visible != "any":
            keep = [p for p in keep if is_gray(read_visible(p.visible)) == (visible == "gray")]
        if not keep:
            raise DatasetError(f"no pair matches names={names!r}, visible={visible!r} among {len(self.pairs)}")
        out = copy.copy(self)
        out.pairs = keep
        return out

    def load(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """(visible RGB uint8, infrared) of pair i; different sizes raise with the file name."""
        pair = self.pairs[i]
        vi, ir = read_visible(pair.visible), read_infrared(pair.infrared)
        if vi.shape[:2] != ir.shape[:2]:
            raise DatasetError(f"{pair.name}: visible {vi.shape[1]}x{vi.shape[0]} and infrared "
                               f"{ir.shape[1]}x{ir.shape[0]} differ in size")
        return vi, ir


def random_crop_flip(vi: np.ndarray, ir: np.ndarray, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The same random square crop (padded by reflection if needed) and horizontal flip for both."""
    h, w = vi.shape[:2]
    if h < size or w < size:
        ph, pw = max(size - h, 0), max(size - w, 0)
        vi = np.pad(vi, ((0, ph), (0, pw)) + ((0, 0),) * (vi.ndim - 2), mode="reflect")
        ir = np.pad(ir, ((0, ph), (0, pw)) + ((0, 0),) * (ir.ndim - 2), mode="reflect")
        h, w = vi.shape[:2]
    y, x = rng.integers(0, h - size + 1), rng.integers(0, w - size + 1)
    vi, ir = vi[y:y + size, x:x + size], ir[y:y + size, x:x + size]
    if rng.random() < 0.5:
        vi, ir = vi[:, ::-1], ir[:, ::-1]
    return np.ascontiguousarray(vi), np.ascontiguousarray(ir)
