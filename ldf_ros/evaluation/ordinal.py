"""Depth on real images without ground truth: human ordinal pairs and WHDR.

No metric depth exists for the real RGB-thermal pairs, so the check follows the "depth in the
wild" protocol (Chen et al., NeurIPS 2016): people mark two points and which one is nearer;
the weighted human disagreement rate (WHDR, all weights 1 here) is the share of pairs whose
predicted order disagrees with the label. The pairs live in the repository as a CSV
(`data/ordinal_depth/pairs.csv`), with image paths relative to a dataset root, and
:func:`draw_pairs` draws them so anyone can check a label by eye.

A trivial prior sits beside the networks: lower in the image is nearer (true on a flat road
in front of a level camera), so a depth model earns its keep only where it beats that.
"""
from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import cv2
import numpy as np

CONDITIONS = ("day", "night")
CATEGORIES = ("road", "object")
COLUMNS = ("image", "condition", "category", "xa", "ya", "xb", "yb", "nearer", "note")
PRIOR = "prior (lower is nearer)"


@dataclass(frozen=True)
class OrdinalPair:
    image: str                   # relative to the dataset root, e.g. roadscene/val/vi/FLIR_04943.jpg
    condition: str               # day | night
    category: str                # road | object
    a: tuple[int, int]           # (x, y) pixels in the visible image
    b: tuple[int, int]
    nearer: str                  # 'a' | 'b'
    note: str = ""


def load_pairs(path: str | Path) -> list[OrdinalPair]:
    """Read and check a pairs CSV; a bad row raises ValueError naming its line."""
    path = Path(path)
    pairs = []
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        missing = set(COLUMNS[:-1]) - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: missing columns {sorted(missing)} (expected {', '.join(COLUMNS)})")
        for line, row in enumerate(reader, start=2):
            pairs.append(_pair_from_row(row, f"{path}:{line}"))
    if not pairs:
        raise ValueError(f"{path}: no pairs")
    return pairs


def _pair_from_row(row: dict, where: str) -> OrdinalPair:
    def choice(key, allowed):
        value = (row.get(key) or "").strip()
        if value not in allowed:
            raise ValueError(f"{where}: {key} {value!r}, expected one of {', '.join(allowed)}")
        return value
    try:
        xa, ya, xb, yb = (int(row[k]) for k in ("xa", "ya", "xb", "yb"))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: coordinates must be integers ({exc})") from exc
    if min(xa, ya, xb, yb) < 0 or (xa, ya) == (xb, yb):
        raise ValueError(f"{where}: coordinates must be non-negative and the points distinct")
    image = (row.get("image") or "").strip()
    if not image:
        raise ValueError(f"{where}: no image")
    return OrdinalPair(image, choice("condition", CONDITIONS), choice("category", CATEGORIES), (xa, ya), (xb, yb),
                       choice("nearer", ("a", "b")), (row.get("note") or "").strip())


def by_image(pairs: Iterable[OrdinalPair]) -> dict[str, list[OrdinalPair]]:
    out: dict[str, list[OrdinalPair]] = defaultdict(list)
    for p in pairs:
        out[p.image].append(p)
    return dict(out)


def infrared_path(root: Path, image: str) -> Path:
    """The registered infrared partner: the same file name under ir/ beside vi/."""
    p = root / image
    return p.parent.parent / "ir" / p.name


def read_pair_images(root: Path, image: str) -> tuple[np.ndarray, np.ndarray]:
    """(visible RGB uint8, infrared uint8 gray) of one annotated image."""
    vi = cv2.imread(str(root / image), cv2.IMREAD_COLOR)
    ir = cv2.imread(str(infrared_path(root, image)), cv2.IMREAD_GRAYSCALE)
    if vi is None or ir is None:
        raise FileNotFoundError(f"cannot read {root / image} or its infrared partner {infrared_path(root, image)}")
    if ir.shape != vi.shape[:2]:
        ir = cv2.resize(ir, (vi.shape[1], vi.shape[0]), interpolation=cv2.INTER_LINEAR)
    return cv2.cvtColor(vi, cv2.COLOR_BGR2RGB), ir


def check_in_bounds(pairs: list[OrdinalPair], shape: tuple[int, int]) -> None:
    h, w = shape
    for p in pairs:
        for x, y in (p.a, p.b):
            if not (0 <= x < w and 0 <= y < h):
                raise ValueError(f"{p.image}: point ({x}, {y}) outside the {w}x{h} image")


def depth_at(depth: np.ndarray, x: int, y: int, radius: int = 2) -> float:
    """Median depth in a small window (a label is about a surface, not a single pixel)."""
    win = depth[max(0, y - radius): y + radius + 1, max(0, x - radius): x + radius + 1]
    finite = win[np.isfinite(win)]
    return float(np.median(finite)) if finite.size else float("nan")


def predicted_nearer(depth: np.ndarray, pair: OrdinalPair) -> str | None:
    """'a' or 'b' by the depth map, None where it has no depth at a point (or a tie)."""
    da, db = depth_at(depth, *pair.a), depth_at(depth, *pair.b)
    if not (np.isfinite(da) and np.isfinite(db)) or da == db:
        return None
    return "a" if da < db else "b"


def prior_depth(shape: tuple[int, int]) -> np.ndarray:
    """Lower in the image is nearer: depth grows towards the top."""
    h, w = shape
    return np.repeat((h - np.arange(h, dtype=np.float32))[:, None], w, axis=1)


def against_prior(pair: OrdinalPair) -> bool:
    """The nearer point is higher in the image: the prior 'lower is nearer' gets it wrong."""
    near, far = (pair.a, pair.b) if pair.nearer == "a" else (pair.b, pair.a)
    return near[1] < far[1]


def judge(depths: dict[str, np.ndarray], pairs: list[OrdinalPair]) -> list[dict]:
    """One row per pair and method: whether the method answered and agreed with the label."""
    rows = []
    for name, depth in depths.items():
        for p in pairs:
            guess = predicted_nearer(depth, p)
            rows.append({"method": name, "image": p.image, "condition": p.condition, "category": p.category,
                         "against_prior": against_prior(p), "answered": guess is not None, "correct": guess == p.nearer})
    return rows


SPLITS: dict[str, Callable[[dict], bool]] = {
    "all": lambda r: True,
    "object": lambda r: r["category"] == "object",
    "road": lambda r: r["category"] == "road",
    "day": lambda r: r["condition"] == "day",
    "night": lambda r: r["condition"] == "night",
    "object day": lambda r: r["category"] == "object" and r["condition"] == "day",
    "object night": lambda r: r["category"] == "object" and r["condition"] == "night",
    "object, nearer higher": lambda r: r["category"] == "object" and r["against_prior"],
    "object, nearer lower": lambda r: r["category"] == "object" and not r["against_prior"],
}


def whdr_summary(rows: list[dict]) -> dict[str, dict[str, dict]]:
    """{method: {split: {'whdr', 'pairs', 'answered'}}}; unanswered pairs count as disagreements
    (a method that gives no depth at a point does not get the benefit of the doubt)."""
    out: dict[str, dict[str, dict]] = {}
    for method in dict.fromkeys(r["method"] for r in rows):
        mine = [r for r in rows if r["method"] == method]
        out[method] = {}
        for split, keep in SPLITS.items():
            sel = [r for r in mine if keep(r)]
            if sel:
                answered = sum(r["answered"] for r in sel)
                out[method][split] = {"whdr": 1.0 - sum(r["correct"] for r in sel) / len(sel), "pairs": len(sel),
                                      "answered": answered,
                                      "whdr_answered": (1.0 - sum(r["correct"] for r in sel) / answered) if answered else None}
    return out


def worst_images(rows: list[dict], method: str, n: int = 4) -> list[tuple[str, float, int]]:
    """(image, WHDR, pairs) of the n images where `method` disagrees most with the labels."""
    per: dict[str, list[bool]] = defaultdict(list)
    for r in rows:
        if r["method"] == method:
            per[r["image"]].append(r["correct"])
    scored = [(img, 1.0 - sum(c) / len(c), len(c)) for img, c in per.items()]
    return sorted(scored, key=lambda t: (-t[1], -t[2], t[0]))[:n]


def summary_markdown(summary: dict) -> str:
    splits = list(SPLITS)
    head = "| depth | " + " | ".join(f"WHDR {s}" for s in splits) + " |"
    lines = [head, "|---" * (len(splits) + 1) + "|"]
    for method, by_split in summary.items():
        cells = []
        for s in splits:
            v = by_split.get(s)
            if v is None:
                cells.append("-")
            elif v["answered"] == v["pairs"] or v["whdr_answered"] is None:
                cells.append(f"{v['whdr']:.3f}")
            else:
                cells.append(f"{v['whdr']:.3f} ({v['answered']}/{v['pairs']} answered: {v['whdr_answered']:.3f})")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    n = next(iter(summary.values()))
    lines.append("")
    lines.append("pairs: " + ", ".join(f"{s} {n[s]['pairs']}" for s in splits if s in n)
                 + "; WHDR = share of pairs ordered against the human label (lower is better; 0.5 is a coin)")
    return "\n".join(lines)


def draw_pairs(rgb: np.ndarray, pairs: list[OrdinalPair], correct: list[bool] | None = None,
               min_width: int = 960) -> np.ndarray:
    """The image with each pair drawn: a line from a to b, the nearer point filled, numbered.
    With `correct`, a pair's line is green where a method agreed and red where it did not;
    without, a is cyan and b yellow. Small images are scaled up so labels stay readable."""
    scale = max(1.0, min_width / rgb.shape[1])
    img = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR) if scale > 1 else rgb.copy()
    img = np.ascontiguousarray(img)
    for i, p in enumerate(pairs):
        a = (round(p.a[0] * scale), round(p.a[1] * scale))
        b = (round(p.b[0] * scale), round(p.b[1] * scale))
        line = (255, 255, 255) if correct is None else ((40, 220, 40) if correct[i] else (230, 30, 30))
        cv2.line(img, a, b, line, 1, cv2.LINE_AA)
        for name, pt, color in (("a", a, (0, 230, 230)), ("b", b, (250, 220, 0))):
            filled = p.nearer == name
            cv2.circle(img, pt, 6, (0, 0, 0), -1 if filled else 3, cv2.LINE_AA)
            cv2.circle(img, pt, 5, color, -1 if filled else 2, cv2.LINE_AA)
            cv2.putText(img, f"{i}{name}", (pt[0] + 7, pt[1] - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 3,
                        cv2.LINE_AA)
            cv2.putText(img, f"{i}{name}", (pt[0] + 7, pt[1] - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.45, color, 1,
                        cv2.LINE_AA)
    return img


DepthFn = Callable[[np.ndarray, np.ndarray], dict[str, np.ndarray]]


def evaluate_ordinal(pairs: list[OrdinalPair], root: str | Path, depth_fn: DepthFn, out: str | Path,
                     panel_method: str | None = None, worst: int = 4) -> dict:
    """Run `depth_fn(visible, infrared) -> {name: depth map}` on every annotated image, judge
    every pair (plus the prior), write report.md, rows.csv, summary.json and panels of the
    images where `panel_method` (default: the last name) disagrees most. Returns the summary."""
    import json

    from tqdm import tqdm

    from ldf_ros.ops.visualize import colorize_depth, label, tile_row, write_rgb_png

    root, out = Path(root), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows, kept = [], {}
    for image, mine in tqdm(by_image(pairs).items(), desc="ordinal", leave=False):
        rgb, ir = read_pair_images(root, image)
        check_in_bounds(mine, rgb.shape[:2])
        depths = {PRIOR: prior_depth(rgb.shape[:2]), **depth_fn(rgb, ir)}
        rows += judge(depths, mine)
        kept[image] = depths
    summary = whdr_summary(rows)
    panel_method = panel_method or list(summary)[-1]
    with open(out / "rows.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    worst_list = worst_images(rows, panel_method, worst)
    for i, (image, whdr, n) in enumerate(worst_list):
        rgb, ir = read_pair_images(root, image)
        mine = by_image(pairs)[image]
        tiles = []
        for name, depth in kept[image].items():
            if name == PRIOR:
                continue
            correct = [predicted_nearer(depth, p) == p.nearer for p in mine]
            tiles.append(label(draw_pairs(colorize_depth(depth), mine, correct, min_width=480), f"{name} depth 0-60 m"))
        correct = [predicted_nearer(kept[image][panel_method], p) == p.nearer for p in mine]
        sheet = [label(draw_pairs(rgb, mine, correct, min_width=480), f"{Path(image).name}: {panel_method} WHDR {whdr:.2f}"),
                 label(np.repeat(cv2.resize(ir, (rgb.shape[1], rgb.shape[0]))[..., None], 3, 2), "infrared")]
        write_rgb_png(out / f"worst_{i}.png", tile_row(sheet + tiles, height=360))
    result = {"summary": summary, "worst": [{"image": w[0], "whdr": w[1], "pairs": w[2]} for w in worst_list],
              "images": len(kept), "pairs": len(pairs), "panel_method": panel_method}
    (out / "summary.json").write_text(json.dumps(result, indent=2))
    (out / "report.md").write_text("# Ordinal depth on real images\n\n" + summary_markdown(summary) + "\n\n"
                                   + f"Worst images for {panel_method}: "
                                   + ", ".join(f"{Path(w[0]).name} ({w[1]:.2f} of {w[2]})" for w in worst_list)
                                   + " (worst_*.png: green pairs agree with the label, red disagree; the filled "
                                     "point is the one people marked nearer)\n")
    return result


def draw_sheets(pairs: list[OrdinalPair], root: str | Path, out: str | Path) -> list[Path]:
    """One PNG per annotated image with its pairs drawn and numbered, for checking labels by eye."""
    from ldf_ros.ops.visualize import write_rgb_png

    root, out = Path(root), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for image, mine in by_image(pairs).items():
        rgb, _ = read_pair_images(root, image)
        check_in_bounds(mine, rgb.shape[:2])
        path = out / (image.replace("/", "__").rsplit(".", 1)[0] + ".png")
        write_rgb_png(path, draw_pairs(rgb, mine))
        written.append(path)
    return written
