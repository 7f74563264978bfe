"""`ldf-ros eval directives`: does each directive do what it says on real pairs? Per domain,
the fused image with no directive and with each one, scored by the quantity the directive
promises, beside two fusion metrics that say what it costs, and side-by-side panels."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch
from tqdm import tqdm

from ldf_ros.data.paired import PairedFolder
from ldf_ros.evaluation.fusion_metrics import fusion_metrics
from ldf_ros.models.layers import lit_mask, warm_mask
from ldf_ros.runtime.caption import DIRECTIVES

# directive -> (quantity it promises, better when higher)
PROMISES = {"emphasize warm objects": ("warm contrast", True), "keep visible colors": ("visible error", False)}


def promise_measures(fused: np.ndarray, vi: np.ndarray, ir: np.ndarray) -> dict[str, float]:
    """warm contrast: mean fused luminance on the thermal image's warm objects minus elsewhere
    (gray levels; NaN without warm objects); visible error: mean |fused - visible| luminance
    where the visible image is lit (gray levels)."""
    yf = torch.from_numpy(cv2.cvtColor(fused, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255)[None, None]
    yv = torch.from_numpy(cv2.cvtColor(vi, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255)[None, None]
    t = torch.from_numpy(ir.astype(np.float32) / 255)[None, None]
    m, lit = warm_mask(t), lit_mask(yv)
    warm = float(m.sum())
    contrast = float((yf * m).sum() / warm - (yf * (1 - m)).sum() / (1 - m).sum()) * 255 if warm >= 20 else float("nan")
    error = float(((yf - yv).abs() * lit).sum() / lit.sum().clamp_min(1.0)) * 255
    return {"warm contrast": contrast, "visible error": error}


def evaluate_directives(domains: dict[str, PairedFolder], fuse: Callable[[np.ndarray, np.ndarray, str], np.ndarray],
                        out: Path, progress: bool = True) -> str:
    """Markdown table (domain x directive: the promised quantities, Qabf, SSIM) and one panel per
    domain (visible | infrared | no directive | each directive) of its pair with the most warm pixels."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    settings = [""] + list(DIRECTIVES)
    lines = ["| domain | directive | warm contrast (higher: warmer objects stand out) | visible error (lower: "
             "visible kept) | Qabf | SSIM |", "|---|---|---|---|---|---|"]
    for name, folder in domains.items():
        rows = {d: [] for d in settings}
        best, best_warm = None, -1.0
        for i in tqdm(range(len(folder)), desc=f"directives {name}", disable=not progress):
            vi, ir = folder.load(i)
            outs = {d: fuse(vi, ir, d) for d in settings}
            for d, f in outs.items():
                m = fusion_metrics(f, vi, ir)
                rows[d].append({**promise_measures(f, vi, ir), "Qabf": m["Qabf"], "SSIM": m["SSIM"]})
            warm = float(warm_mask(torch.from_numpy(ir.astype(np.float32) / 255)[None, None]).mean())
            if warm > best_warm:
                best, best_warm = (vi, ir, outs), warm
        for d in settings:
            mean = {k: float(np.nanmean([r[k] for r in rows[d]])) for k in rows[d][0]}
            lines.append(f"| {name} | {d or '(none)'} | {mean['warm contrast']:.1f} | {mean['visible error']:.1f} | "
                         f"{mean['Qabf']:.3f} | {mean['SSIM']:.3f} |")
        vi, ir, outs = best
        tiles = [vi, np.repeat(ir[..., None], 3, axis=2)] + [outs[d] for d in settings]
        labels = ["visible", "infrared"] + [d or "no directive" for d in settings]
        panel = np.concatenate([_labelled(t, s) for t, s in zip(tiles, labels)], axis=1)
        cv2.imwrite(str(out / f"directives_{name}.png"), cv2.cvtColor(panel, cv2.COLOR_RGB2BGR))
    table = "\n".join(lines)
    (out / "report.md").write_text(f"# Directives\n\n{table}\n\nPanels: directives_<domain>.png\n")
    return table


def _labelled(img: np.ndarray, label: str) -> np.ndarray:
    img = img.copy()
    cv2.putText(img, label, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 0), 1, cv2.LINE_AA)
    return img
