"""`ldf-ros eval fusion`: metrics of fusion methods over paired folders or named domains, as
tables, a mean-rank view and panels. Other methods enter as folders of their fused outputs."""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
from tqdm import tqdm

from ldf_ros.data.paired import IMAGE_SUFFIXES, DatasetError, PairedFolder, read_visible
from ldf_ros.evaluation.fusion_metrics import METRICS, fusion_metrics

FuseFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


class ReferenceOutputs:
    """A method known by its fused images in a folder, one per pair with the pair's file stem
    (any image suffix; gray outputs are taken as gray RGB). An output of another size is
    resized to the pair's, as published test scripts often crop to a multiple of 8 or 16."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise DatasetError(f"reference outputs {self.folder}: not a folder")
        self.files = {p.stem: p for p in self.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
        self.resized = 0

    def fused_for(self, name: str, shape: tuple[int, int]) -> np.ndarray:
        if name not in self.files:
            raise DatasetError(f"reference outputs {self.folder}: no image named {name}.*")
        img = read_visible(self.files[name])
        if img.shape[:2] != tuple(shape):
            self.resized += 1
            img = cv2.resize(img, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)
        return img


def evaluate_folder(folder: PairedFolder, methods: dict[str, FuseFn | ReferenceOutputs], progress: bool = True,
                    desc: str = "eval fusion"):
    """Per image and method, the nine metrics. A broken pair raises naming its file."""
    rows = []
    for i in tqdm(range(len(folder)), desc=desc, disable=not progress):
        pair = folder.pairs[i]
        vi, ir = folder.load(i)
        if ir.dtype != np.uint8:
            raise DatasetError(f"{pair.infrared}: fusion metrics need 8-bit infrared, got {ir.dtype}")
        for name, fuse in methods.items():
            try:
                fused = fuse.fused_for(pair.name, vi.shape[:2]) if isinstance(fuse, ReferenceOutputs) else fuse(vi, ir)
            except Exception as exc:  # noqa: BLE001 - report which pair broke which method
                raise DatasetError(f"{pair.name}: method {name} failed: {exc}") from exc
            rows.append({"image": pair.name, "method": name, **fusion_metrics(fused, vi, ir)})
    return rows


def mean_ranks(summary: dict[str, dict[str, float]]) -> dict[str, float]:
    """Per method, its rank (1 = best, ties share the mean rank) averaged over the nine metrics,
    every one of which is better when higher: the field's usual one-number comparison."""
    from scipy.stats import rankdata

    names = list(summary)
    ranks = np.stack([rankdata([-summary[n][m] for n in names]) for m in METRICS])
    return {n: float(r) for n, r in zip(names, ranks.mean(0))}


def load_domains(path: Path) -> dict[str, PairedFolder]:
    """Named validation domains from a YAML file: name -> {root, names (glob), visible (any,
    gray, color)}; a relative root is taken from the working directory, else from the repository."""
    import yaml

    from ldf_ros.config import resolve_path

    spec = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(spec, dict) or not spec:
        raise DatasetError(f"{path}: expected a mapping of domain name -> {{root, names, visible}}")
    domains = {}
    for name, d in spec.items():
        if not isinstance(d, dict) or "root" not in d or set(d) - {"root", "names", "visible"}:
            raise DatasetError(f"{path}: domain {name}: expected keys root, names, visible; got {d!r}")
        root = Path(d["root"]).expanduser()
        folder = PairedFolder.from_root(root if root.is_dir() else resolve_path(d["root"]))
        domains[name] = folder.select(d.get("names", "*"), d.get("visible", "any"))
    return domains


def rank_table(per_domain: dict[str, dict[str, dict[str, float]]]) -> str:
    """Markdown: methods (rows) x domains (columns) of mean rank, and the mean over domains."""
    domains = list(per_domain)
    ranks = {d: mean_ranks(s) for d, s in per_domain.items()}
    methods = list(dict.fromkeys(m for s in per_domain.values() for m in s))
    lines = ["| method | " + " | ".join(domains) + " | mean |", "|---" * (len(domains) + 2) + "|"]
    for m in sorted(methods, key=lambda m: np.mean([ranks[d].get(m, np.nan) for d in domains])):
        vals = [ranks[d].get(m, float("nan")) for d in domains]
        lines.append(f"| {m} | " + " | ".join(f"{v:.2f}" for v in vals) + f" | {np.nanmean(vals):.2f} |")
    return "\n".join(lines)


def summarize(rows: list[dict]) -> dict[str, dict[str, float]]:
    """Mean of each metric per method, in the order methods first appear."""
    out: dict[str, dict[str, float]] = {}
    for method in dict.fromkeys(r["method"] for r in rows):
        sel = [r for r in rows if r["method"] == method]
        out[method] = {m: float(np.mean([r[m] for r in sel])) for m in METRICS}
    return out


def markdown_table(summary: dict[str, dict[str, float]], reference: dict[str, dict[str, float]] | None = None) -> str:
    lines = ["| method | " + " | ".join(METRICS) + " |", "|---" * (len(METRICS) + 1) + "|"]
    for name, vals in {**(reference or {}), **summary}.items():
        lines.append(f"| {name} | " + " | ".join(f"{vals[m]:.4g}" for m in METRICS) + " |")
    return "\n".join(lines)


def write_domains_report(per_domain_rows: dict[str, list[dict]], domains: dict[str, PairedFolder],
                         methods: dict[str, dict], out: Path, rank_method: str) -> dict[str, dict[str, dict[str, float]]]:
    """One report folder per domain (as `write_report`, with that domain's methods: reference
    outputs may live in a folder per domain), and report.md with every domain's table and the
    mean-rank view; returns {domain: summary}."""
    out = Path(out)
    per_domain = {}
    for name, rows in per_domain_rows.items():
        per_domain[name] = write_report(rows, domains[name], methods[name], out / name, rank_method)
    body = [f"# Fusion evaluation by domain\n\nMean rank over the nine metrics (1 = best; per domain, then "
            f"the mean over domains):\n\n{rank_table(per_domain)}\n"]
    for name, summary in per_domain.items():
        body.append(f"## {name} ({len(domains[name])} pairs)\n\n{markdown_table(summary)}\n")
    (out / "report.md").write_text("\n".join(body))
    (out / "summary.json").write_text(json.dumps(per_domain, indent=2))
    return per_domain


def _panel(folder: PairedFolder, i: int, fused: np.ndarray, title: str) -> np.ndarray:
    vi, ir = folder.load(i)
    tiles = [vi, np.repeat(ir[..., None], 3, axis=2), fused]
    panel = np.concatenate(tiles, axis=1).copy()
    cv2.putText(panel, title, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 0), 2, cv2.LINE_AA)
    return panel


def write_report(rows: list[dict], folder: PairedFolder, methods: dict[str, FuseFn], out: Path,
                 rank_method: str, rank_metric: str = "Qabf") -> dict[str, dict[str, float]]:
    """metrics.csv (per image), summary.json, report.md, and worst/median/best panels of `rank_method`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "metrics.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["image", "method", *METRICS])
        writer.writeheader()
        writer.writerows(rows)
    summary = summarize(rows)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    ranked = sorted((r for r in rows if r["method"] == rank_method), key=lambda r: r[rank_metric])
    names = [p.name for p in folder.pairs]
    picks = {"worst": ranked[0], "median": ranked[len(ranked) // 2], "best": ranked[-1]}
    for label, row in picks.items():
        i = names.index(row["image"])
        vi, ir = folder.load(i)
        fuse = methods[rank_method]
        fused = fuse.fused_for(row["image"], vi.shape[:2]) if isinstance(fuse, ReferenceOutputs) else fuse(vi, ir)
        panel = _panel(folder, i, fused,
                       f"{label} {rank_metric}={row[rank_metric]:.3f} {row['image']}: visible | infrared | {rank_method}")
        cv2.imwrite(str(out / f"panel_{label}.png"), cv2.cvtColor(panel, cv2.COLOR_RGB2BGR))
    (out / "report.md").write_text(
        f"# Fusion evaluation\n\n{len(folder)} pairs, mean per method (luminance metrics, see "
        f"ldf_ros/evaluation/fusion_metrics.py).\n\n{markdown_table(summary)}\n\n"
        f"Panels (ranked by {rank_metric} of {rank_method}): panel_worst.png, panel_median.png, panel_best.png\n")
    return summary
