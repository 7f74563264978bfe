"""Real images in depth training: human-labelled point pairs ("a is nearer than b") on real
frames teach the order of real scenes, which the synthetic world cannot. The ranking term of
Chen et al. (NeurIPS 2016) on the network's log depth at the two points, with a margin.
Registered RGB-thermal pairs share the labels, so one file trains both branches."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ldf_ros.evaluation.ordinal import by_image, check_in_bounds, load_pairs, read_pair_images
from ldf_ros.runtime.depth import depth_input


class OrdinalFrames:
    """The labelled real frames of one modality at the network's input size (the whole frame,
    resized as `DepthPredictor` resizes it), with their pairs in normalized coordinates."""

    def __init__(self, pairs_csv: str | Path, root: str | Path, modality: str, width: int, height: int):
        if modality not in ("visible", "thermal"):
            raise ValueError(f"ordinal pairs train visible or thermal branches, not {modality}")
        self.items = []
        for image, pairs in by_image(load_pairs(pairs_csv)).items():
            rgb, ir = read_pair_images(Path(root), image)
            check_in_bounds(pairs, ir.shape)
            x = depth_input(rgb if modality == "visible" else ir, modality).transpose(1, 2, 0)
            x = cv2.resize(x, (width, height), interpolation=cv2.INTER_AREA).reshape(height, width, -1)
            h, w = ir.shape
            pts = np.array([[(p.a[0] + 0.5) / w, (p.a[1] + 0.5) / h, (p.b[0] + 0.5) / w, (p.b[1] + 0.5) / h]
                            for p in pairs], np.float32) * 2 - 1
            a_nearer = np.array([p.nearer == "a" for p in pairs])
            self.items.append((x.transpose(2, 0, 1).copy(), pts, a_nearer))
        if not self.items:
            raise ValueError(f"{pairs_csv}: no labelled frames")

    def __len__(self) -> int:
        return len(self.items)

    @property
    def pair_count(self) -> int:
        return sum(len(p) for _, p, _ in self.items)

    def batch(self, n: int, rng: np.random.Generator) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
        """n frames at random, each mirrored with probability 1/2 (its points with it)."""
        images, labels = [], []
        for i in rng.integers(len(self.items), size=n):
            x, pts, a_nearer = self.items[i]
            if rng.random() < 0.5:
                x, pts = x[..., ::-1], pts * np.array([-1, 1, -1, 1], np.float32)
            images.append(torch.from_numpy(np.ascontiguousarray(x)))
            labels.append((torch.from_numpy(np.ascontiguousarray(pts)), torch.from_numpy(a_nearer)))
        return torch.stack(images), labels


def ordinal_loss(depth: torch.Tensor, labels: list[tuple[torch.Tensor, torch.Tensor]], margin: float = 0.05,
                 sharpness: float = 10.0) -> torch.Tensor:
    """Mean softplus(sharpness * (log d_near - log d_far + margin)) over every labelled pair:
    near about 5% nearer than far costs little, the wrong order costs linearly."""
    terms = []
    for i, (pts, a_nearer) in enumerate(labels):
        grid = pts.to(depth).view(1, -1, 2, 2)                                   # (1, P, [a, b], xy)
        log_d = F.grid_sample(torch.log(depth[i:i + 1]), grid, mode="bilinear", align_corners=False)[0, 0]
        near_minus_far = torch.where(a_nearer.to(depth.device), log_d[:, 0] - log_d[:, 1], log_d[:, 1] - log_d[:, 0])
        terms.append(F.softplus(sharpness * (near_minus_far + margin)))
    return torch.cat(terms).mean()
