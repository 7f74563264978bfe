"""Self-supervised adaptation of the depth branches to a user's own recording.

`ldf-ros train depth --bag BAG` reads each camera's images and CameraInfo from an mcap or
sqlite3 bag, and fine-tunes that branch from the video alone: minimum photometric
reprojection of the neighbouring frames with a pose network and auto-masking, edge-aware
smoothness, metric scale from the camera's height above the road (a plane fitted to the
bottom middle of the image), and a weak anchor to the starting network so that what the
video cannot teach (textureless or static regions) is kept rather than forgotten. No ground
truth is used. The last part of the bag is held out; before/after are reported on it: the
photometric error and the camera height the depth implies (always), and AbsRel where the bag
happens to carry ground truth (`/rgb/depth_gt`, `/thermal/depth_gt`, as synthetic bags do).
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from ldf_ros.models.checkpoint import save_checkpoint
from ldf_ros.models.depth_net import DepthNet, PoseNet, load_depth_net, parameter_count
from ldf_ros.models.layers import ground_plane_height
from ldf_ros.runtime.thermal import ThermalNormalization, normalize_thermal


@dataclass
class BagVideo:
    """One camera's frames from a bag, in time order."""
    frames: np.ndarray            # (N, H, W, 3) uint8 RGB or (N, H, W) float32 thermal in [0, 1]
    stamps: np.ndarray            # (N,) int64 ns
    k: np.ndarray                 # 3x3 intrinsics of the frames
    depth_gt: dict                # stamp -> (H, W) float32 meters, where the bag has them


@dataclass(frozen=True)
class BagAdaptConfig:
    steps: int = 300
    lr: float = 2e-4
    batch_size: int = 4
    holdout: float = 0.2              # the last share of frames: never trained on, reported
    camera_height_m: float = 1.5
    photometric_weight: float = 1.0
    smoothness_weight: float = 1e-3
    camera_height_weight: float = 0.1
    anchor_weight: float = 0.05       # log-depth L1 to the starting network's prediction
    pose_warmup: float = 0.4          # the first share of steps trains only the pose network (depth frozen):
                                      # a pose network from scratch would otherwise teach the depth wrong motion
    frame_gap: int = 1                # neighbours are this many frames away
    seed: int = 0
    threads: int = 0


def _stamp(msg) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


def read_bag_video(bag: str | Path, image_topic: str, info_topic: str | None, modality: str,
                   depth_topic: str | None = None, thermal_norm: ThermalNormalization = ThermalNormalization()) -> BagVideo:
    """Frames of one image topic with the newest CameraInfo's K (ValueError naming what is missing)."""
    from ldf_ros.ros.bag_replay import open_bag
    from ldf_ros.ros.image_encoding import decode_image, to_rgb

    reader = open_bag(bag)
    topics = {c.topic for c in reader.connections}
    if image_topic not in topics:
        reader.close()
        raise ValueError(f"{bag}: no topic {image_topic} (topics: {', '.join(sorted(topics))})")
    frames, stamps, k, gt = [], [], None, {}
    try:
        wanted = [c for c in reader.connections if c.topic in {image_topic, info_topic, depth_topic}]
        for conn, _, raw in reader.messages(connections=wanted):
            msg = reader.deserialize(raw, conn.msgtype)
            if conn.topic == info_topic:
                k = np.asarray(msg.k, dtype=np.float64).reshape(3, 3)
                continue
            arr = decode_image(msg.data, msg.height, msg.width, msg.encoding, msg.step, bool(msg.is_bigendian))
            if conn.topic == depth_topic:
                gt[_stamp(msg)] = arr.astype(np.float32)
            elif modality == "visible":
                frames.append(to_rgb(arr, msg.encoding))
                stamps.append(_stamp(msg))
            else:
                frames.append(normalize_thermal(arr, thermal_norm))
                stamps.append(_stamp(msg))
    finally:
        reader.close()
    if len(frames) < 8:
        raise ValueError(f"{bag}: {image_topic} has {len(frames)} frames; adaptation needs a video (at least 8)")
    if k is None or not np.all(np.isfinite(k)) or k[0, 0] <= 0:
        raise ValueError(f"{bag}: no usable CameraInfo on {info_topic} for {image_topic}; photometric training "
                         "needs the intrinsics")
    order = np.argsort(stamps)
    return BagVideo(np.stack(frames)[order], np.asarray(stamps, np.int64)[order], k, gt)


def _inputs(video: BagVideo, net: DepthNet) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, C, h, w) frames at the network's input size in [0, 1] and K scaled to it."""
    cfg = net.cfg
    h, w = video.frames.shape[1:3]
    resized = np.stack([cv2.resize(f, (cfg.input_width, cfg.input_height), interpolation=cv2.INTER_AREA)
                        for f in video.frames])
    if resized.ndim == 4:
        x = resized.astype(np.float32).transpose(0, 3, 1, 2) / 255.0
    else:
        x = resized.astype(np.float32)[:, None]
    k = video.k.copy()
    k[0] *= cfg.input_width / w
    k[1] *= cfg.input_height / h
    return torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(k.astype(np.float32))


def _metric(net: DepthNet, x: torch.Tensor, k: torch.Tensor) -> list[torch.Tensor]:
    """The network's depth at each scale, in meters for this camera (its focal over the learned one)."""
    scale = float(math.sqrt(k[0, 0] * k[1, 1])) / net.cfg.focal_px if net.cfg.focal_px > 0 else 1.0
    out = net(x)
    return [net.disp_to_depth(d) * scale for d in out["disp"]], out["disp"]


def _losses(net, pose, anchor, x, idx, gap, k, cfg: BagAdaptConfig) -> dict[str, torch.Tensor]:
    from ldf_ros.training.depth import identity_error, photometric_loss, reprojection_error, smoothness_loss

    frames = torch.stack([x[idx - gap], x[idx], x[idx + gap]], 1)
    target = frames[:, 1]
    kb = k.expand(len(idx), 3, 3)
    depths, disps = _metric(net, target, k)
    poses = [pose(target, s) for s in (frames[:, 0], frames[:, 2])]
    reproj = [reprojection_error(d, frames, kb, poses) for d in depths[:1]]
    losses = {"photometric": cfg.photometric_weight * photometric_loss(reproj, identity_error(frames)),
              "smoothness": cfg.smoothness_weight * smoothness_loss(disps, target)}
    height = ground_plane_height(depths[0], kb)
    losses["camera_height"] = cfg.camera_height_weight * (
        torch.log(height.clamp(min=1e-2)) - math.log(cfg.camera_height_m)).abs().mean()
    if cfg.anchor_weight > 0:
        with torch.no_grad():
            ref = _metric(anchor, target, k)[0][0]
        losses["anchor"] = cfg.anchor_weight * (torch.log(depths[0]) - torch.log(ref)).abs().mean()
    losses["total"] = sum(losses.values())
    return losses


@torch.no_grad()
def held_out_report(net: DepthNet, video: BagVideo, held: np.ndarray, cfg: BagAdaptConfig,
                    pose: PoseNet | None = None) -> dict:
    """Camera height implied by the depth (median), photometric error with the pose network
    when given, and AbsRel against ground truth where the bag has it, on the held-out frames."""
    from ldf_ros.evaluation.depth_metrics import depth_metrics
    from ldf_ros.runtime.depth import DepthPredictor
    from ldf_ros.training.depth import identity_error, reprojection_error

    net.eval()
    x, k = _inputs(video, net)
    heights, photo = [], []
    for i in held:
        depth = _metric(net, x[i:i + 1], k)[0][0]
        heights.append(float(ground_plane_height(depth, k[None])[0]))
        if pose is not None and cfg.frame_gap <= i < len(x) - cfg.frame_gap:
            frames = torch.stack([x[i - cfg.frame_gap], x[i], x[i + cfg.frame_gap]])[None]
            poses = [pose(frames[:, 1], s) for s in (frames[:, 0], frames[:, 2])]
            err = reprojection_error(depth, frames, k[None], poses)
            photo.append(float(torch.minimum(err, identity_error(frames)).mean()))
    out = {"frames": int(len(held)), "camera_height_m": float(np.median(heights))}
    if photo:
        out["photometric"] = float(np.mean(photo))
    predictor = DepthPredictor(net)
    rows = [depth_metrics(video.depth_gt[int(video.stamps[i])], predictor(video.frames[i], video.k))["abs_rel"]
            for i in held if int(video.stamps[i]) in video.depth_gt]
    if rows:
        out["abs_rel"] = float(np.mean(rows))
    net.train()
    return out


def adapt_branch(init: str | Path, video: BagVideo, cfg: BagAdaptConfig, out: Path, name: str,
                 progress: bool = True) -> dict:
    """Fine-tune one branch on a video; writes out/<name>.safetensors, returns before/after."""
    from tqdm import tqdm

    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    net = load_depth_net(init).train()
    anchor = load_depth_net(init).eval()
    for p in anchor.parameters():
        p.requires_grad_(False)
    pose = PoseNet(net.cfg.in_channels)
    n = len(video.frames)
    split = int(round(n * (1.0 - cfg.holdout)))
    gap = cfg.frame_gap
    train_idx = np.arange(gap, split - gap)
    held = np.arange(split, n)
    if len(train_idx) < cfg.batch_size or len(held) < 1:
        raise ValueError(f"{n} frames are too few to train on {1 - cfg.holdout:.0%} and hold out {cfg.holdout:.0%}")
    x, k = _inputs(video, net)
    before = held_out_report(net, video, held, cfg)
    opt_pose = torch.optim.AdamW(pose.parameters(), lr=1e-3, weight_decay=1e-4)
    opt = torch.optim.AdamW(list(net.parameters()) + list(pose.parameters()), lr=cfg.lr, weight_decay=1e-4)
    warmup = int(cfg.pose_warmup * cfg.steps)
    t0, log = time.time(), []
    for step in tqdm(range(cfg.steps), desc=f"adapt {name}", disable=not progress, leave=False):
        idx = torch.from_numpy(rng.choice(train_idx, cfg.batch_size, replace=len(train_idx) < cfg.batch_size))
        net.requires_grad_(step >= warmup)
        losses = _losses(net, pose, anchor, x, idx, gap, k, cfg)
        optimizer = opt if step >= warmup else opt_pose
        optimizer.zero_grad(set_to_none=True)
        losses["total"].backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        optimizer.step()
        log.append({key: round(v.item(), 5) for key, v in losses.items()})
    after = held_out_report(net, video, held, cfg, pose)
    before_photo = held_out_report(anchor, video, held, cfg, pose).get("photometric")
    if before_photo is not None:
        before["photometric"] = before_photo            # the same pose network scores both
    path = save_checkpoint(out / f"{name}.safetensors", net, "depth", net.cfg.to_dict(), step=cfg.steps,
                           adapted_from=str(init), adapt_config=json.dumps(cfg.__dict__),
                           parameters=parameter_count(net), train_seconds=round(time.time() - t0, 1))
    return {"checkpoint": str(path), "train_frames": int(len(train_idx) + 2 * gap), "before": before, "after": after,
            "seconds": round(time.time() - t0, 1), "final_losses": log[-1] if log else {}}


def adapt_to_bag(bag: str | Path, out: str | Path, inits: dict[str, str], topics: dict[str, tuple[str, str]],
                 cfg: BagAdaptConfig = BagAdaptConfig(), progress: bool = True) -> dict:
    """Both branches (or those in `inits`) on one bag; writes checkpoints and report.md/json."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    for modality, init in inits.items():
        image_topic, info_topic = topics[modality]
        gt_topic = image_topic.rsplit("/", 1)[0] + "/depth_gt"
        video = read_bag_video(bag, image_topic, info_topic, modality, depth_topic=gt_topic)
        results[modality] = adapt_branch(init, video, cfg, out, f"depth_{modality}_adapted", progress)
    report = {"bag": str(bag), "config": cfg.__dict__, "branches": results}
    (out / "report.json").write_text(json.dumps(report, indent=2))
    (out / "report.md").write_text(adaptation_markdown(report))
    return report


def adaptation_markdown(report: dict) -> str:
    lines = [f"# Depth adaptation to {report['bag']}", "",
             f"{report['config']['steps']} steps per branch, the last {report['config']['holdout']:.0%} of the frames "
             "held out (never trained on); camera height "
             f"{report['config']['camera_height_m']} m. Held-out frames, before -> after:", "",
             "| branch | frames (train / held out) | photometric | camera height (m) | AbsRel (ground truth, if in the bag) |",
             "|---|---|---|---|---|"]
    for modality, r in report["branches"].items():
        b, a = r["before"], r["after"]

        def cell(key, fmt):
            if key not in b or key not in a:
                return "-"
            return f"{b[key]:{fmt}} -> {a[key]:{fmt}}"
        lines.append(f"| {modality} | {r['train_frames']} / {a['frames']} | {cell('photometric', '.4f')} | "
                     f"{cell('camera_height_m', '.2f')} | {cell('abs_rel', '.4f')} |")
    lines += ["", "Checkpoints: " + ", ".join(r["checkpoint"] for r in report["branches"].values())
              + " (set model.depth_visible_weights / model.depth_thermal_weights to use them)", ""]
    return "\n".join(lines)
