"""Self-supervised adaptation of the depth branches to a user's own recording.

`ldf-ros train depth --bag BAG` reads each camera's images and CameraInfo from an mcap or
sqlite3 bag, and fine-tunes that branch from the recording alone: minimum photometric
reprojection of the neighbouring frames with auto-masking, edge-aware smoothness, optionally
metric scale from the camera's height above the road (a plane fitted to the bottom middle of
the image; off by default, since the shipped students are metric already and the term was
measured to hurt them), and a weak anchor to the starting network so that what the video
cannot teach (textureless or static regions) is kept rather than forgotten. No ground truth
is used.

Where the bag has both cameras and their transform (/tf_static), each branch also learns from
the other where the other is trusted more (the weight the node's blend would give it: the
visible image's reliability and both branches' self-agreement under mirroring): by day the
thermal branch is taught the visible branch's depth reprojected into the thermal camera, at
night the other way round. The targets come from the starting networks, once. This is what
improves a branch; the video alone was measured to make the shipped students slightly worse,
so a branch the other teaches on too few pixels is kept as it is unless asked for.

The motion between neighbouring frames is six numbers per pair, kept in a table
(`VideoPoses`) rather than predicted by a pose network: they are found first by a search over
forward speed with the starting depth (a pose network started from zero settles on no motion
or on a sideways one, and then teaches the depth nothing or the wrong thing), then refined
by gradient with the depth held fixed, then trained with it. The last part of the bag is held out; before/after are reported on it: the
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
from ldf_ros.models.depth_net import DepthNet, load_depth_net, parameter_count
from ldf_ros.models.layers import ground_plane_height
from ldf_ros.ops.camera import quaternion_to_matrix, reproject_depth, scale_intrinsics
from ldf_ros.runtime.thermal import ThermalNormalization, normalize_thermal


@dataclass
class BagVideo:
    """One camera's frames from a bag, in time order."""
    frames: np.ndarray            # (N, H, W, 3) uint8 RGB or (N, H, W) float32 thermal in [0, 1]
    stamps: np.ndarray            # (N,) int64 ns
    k: np.ndarray                 # 3x3 intrinsics of the frames
    depth_gt: dict                # stamp -> (H, W) float32 meters, where the bag has them
    frame_id: str = ""            # the images' optical frame (header.frame_id)


CAMERA_HEIGHT_WEIGHT = 0.1   # the scale term's weight when a camera height is given


@dataclass(frozen=True)
class BagAdaptConfig:
    steps: int = 300
    lr: float = 2e-4
    batch_size: int = 4
    holdout: float = 0.2              # the last share of frames: never trained on, reported
    camera_height_m: float = 1.5
    photometric_weight: float = 1.0
    smoothness_weight: float = 1e-3
    camera_height_weight: float = 0.0   # metric scale from the camera height: for a start without one
    anchor_weight: float = 0.05       # log-depth L1 to the starting network's prediction
    max_speed_m: float = 2.0          # pose search: forward motion per frame gap, -max..max (meters)
    pose_refine_steps: int = 100      # gradient steps on the poses with the starting depth fixed
    pose_lr: float = 1e-3
    frame_gap: int = 1                # neighbours are this many frames away
    cross_weight: float = 3.0         # log-depth L1 to the other branch where it is trusted more
    cross_max_gap_s: float = 0.02     # the other camera's frame must be this close in time
    min_taught: float = 0.05          # with cross targets, a branch taught less than this is kept as it is
    seed: int = 0
    threads: int = 0


def _stamp(msg) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


def read_bag_video(bag: str | Path, image_topic: str, info_topic: str | None, modality: str,
                   depth_topic: str | None = None, thermal_norm: ThermalNormalization = ThermalNormalization()) -> BagVideo:
    """Frames of one image topic with the newest CameraInfo's K (ValueError naming what is missing)."""
    from ldf_ros.data.bags import open_bag
    from ldf_ros.data.image_encoding import decode_image, to_rgb

    reader = open_bag(bag)
    topics = {c.topic for c in reader.connections}
    if image_topic not in topics:
        reader.close()
        raise ValueError(f"{bag}: no topic {image_topic} (topics: {', '.join(sorted(topics))})")
    frames, stamps, k, gt, frame_id = [], [], None, {}, ""
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
                frame_id = msg.header.frame_id
                frames.append(to_rgb(arr, msg.encoding))
                stamps.append(_stamp(msg))
            else:
                frame_id = msg.header.frame_id
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
    return BagVideo(np.stack(frames)[order], np.asarray(stamps, np.int64)[order], k, gt, frame_id)


def read_bag_extrinsic(bag: str | Path, rgb_frame: str, thermal_frame: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(R, t) of the thermal optical frame in the RGB one (p_rgb = R p_thermal + t): the
    /tf_static transform from the RGB images' frame to the thermal images' frame, or None
    where the bag has no such transform (a transform between other frames is not used)."""
    from ldf_ros.data.bags import open_bag, static_transforms

    reader = open_bag(bag)
    try:
        wanted = [c for c in reader.connections if c.topic == "/tf_static"]
        for conn, _, raw in reader.messages(connections=wanted):
            for parent, child, xyz, quat in static_transforms(reader.deserialize(raw, conn.msgtype)):
                if parent == rgb_frame and child == thermal_frame:
                    return quaternion_to_matrix(quat), np.array(xyz)
    finally:
        reader.close()
    return None


def camera_moves(extrinsic: tuple[np.ndarray, np.ndarray]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(R, t) taking points of the other camera into this one (p = R p_other + t), by camera,
    from the thermal pose in the RGB frame."""
    r, t = extrinsic
    return {"thermal": (r.T, -r.T @ t), "visible": (r, t)}


@dataclass
class CrossTargets:
    """Per frame of one branch's video, at its network's input size: the other branch's depth
    as this camera sees it (1 where there is none) and how much to learn from it (0 to 1)."""
    depth: torch.Tensor    # (N, 1, h, w) meters
    weight: torch.Tensor   # (N, 1, h, w)
    paired: int = 0        # frames with one of the other camera close enough in time

    @property
    def coverage(self) -> float:
        """Mean weight over all pixels of all frames: how much the other branch teaches."""
        return float(self.weight.mean())


@dataclass
class _BranchView:
    """A starting network's flip-averaged depth and spread on every frame of its video, at
    twice its input size (so reprojected into the other camera it leaves no holes), with K."""
    depth: np.ndarray      # (N, 2h, 2w)
    spread: np.ndarray     # (N, 2h, 2w)
    k: np.ndarray


def _branch_view(init: str | Path, video: BagVideo) -> _BranchView:
    from ldf_ros.runtime.depth import DepthPredictor

    predictor = DepthPredictor(load_depth_net(init))
    w, h = predictor.input_size
    runs = [predictor(f, video.k, spread=True, grid=(2 * w, 2 * h)) for f in video.frames]
    return _BranchView(np.stack([d for d, _ in runs]), np.stack([s for _, s in runs]), _scaled_k(video, (2 * w, 2 * h)))


def _scaled_k(video: BagVideo, size: tuple[int, int]) -> np.ndarray:
    """The video's intrinsics for its frames resized to (width, height)."""
    return scale_intrinsics(video.k, (video.frames.shape[2], video.frames.shape[1]), size)


def _first_held_out(n: int, cfg: BagAdaptConfig) -> int:
    """Index of the first of the last `holdout` share of n frames."""
    return int(round(n * (1.0 - cfg.holdout)))


def _pool2(depth: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """2x2 blocks: the weight averaged; the depth averaged in inverse depth over the pixels
    that have one (1 where none has)."""
    h, w = depth.shape[0] // 2, depth.shape[1] // 2
    ok = np.isfinite(depth)
    inv = np.where(ok, 1.0 / np.where(ok, depth, 1.0), 0.0).reshape(h, 2, w, 2).sum((1, 3))
    count = ok.reshape(h, 2, w, 2).sum((1, 3))
    pooled = np.where(count > 0, count / np.maximum(inv, 1e-6), 1.0).astype(np.float32)
    return pooled, weight.reshape(h, 2, w, 2).mean((1, 3)).astype(np.float32)


def cross_targets(videos: dict[str, BagVideo], inits: dict[str, str], extrinsic: tuple[np.ndarray, np.ndarray],
                  max_gap_s: float) -> dict[str, CrossTargets]:
    """For each branch, the other's depth where the node's blend would trust the other more.

    In each camera's frames the visible weight of the blend is computed as the node does
    (`visible_reliability` averaged with `spread_weight`); the thermal branch learns with weight
    2w - 1 where that is positive, the visible branch with 1 - 2w."""
    from ldf_ros.runtime.depth import spread_weight, visible_reliability

    views = {m: _branch_view(inits[m], videos[m]) for m in ("visible", "thermal")}
    moves = camera_moves(extrinsic)
    out = {}
    for student, teacher in (("thermal", "visible"), ("visible", "thermal")):
        sv, tv = views[student], views[teacher]
        h, w = sv.depth.shape[1:]
        net_size = (w // 2, h // 2)
        rot, trans = moves[student]
        depth, weight, paired = [], [], 0
        for i, stamp in enumerate(videos[student].stamps):
            j = int(np.argmin(np.abs(videos[teacher].stamps - stamp)))
            if abs(int(videos[teacher].stamps[j]) - int(stamp)) > max_gap_s * 1e9:
                depth.append(np.ones(net_size[::-1], np.float32))
                weight.append(np.zeros(net_size[::-1], np.float32))
                continue
            paired += 1
            if teacher == "visible":
                rel = cv2.resize(visible_reliability(videos["visible"].frames[j]), tv.depth.shape[:0:-1],
                                 interpolation=cv2.INTER_AREA)      # on the teacher's grid: it travels with its depth
                d, s, rel = reproject_depth(tv.depth[j], tv.k, sv.k, rot, trans, (w, h), tv.spread[j], rel)
                w_vis = 0.5 * (np.nan_to_num(rel) + spread_weight(s, sv.spread[i]))
                learn = np.clip(2.0 * w_vis - 1.0, 0.0, 1.0)
            else:
                rel = cv2.resize(visible_reliability(videos["visible"].frames[i]), (w, h), interpolation=cv2.INTER_AREA)
                d, s = reproject_depth(tv.depth[j], tv.k, sv.k, rot, trans, (w, h), tv.spread[j])
                w_vis = 0.5 * (rel + spread_weight(sv.spread[i], s))
                learn = np.clip(1.0 - 2.0 * w_vis, 0.0, 1.0)
            d, learn = _pool2(d, np.where(np.isfinite(d), learn, 0.0))
            depth.append(d)
            weight.append(learn)
        out[student] = CrossTargets(torch.from_numpy(np.stack(depth)[:, None]),
                                    torch.from_numpy(np.stack(weight)[:, None]), paired)
    return out


def _inputs(video: BagVideo, net: DepthNet) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, C, h, w) frames at the network's input size in [0, 1] and K scaled to it."""
    cfg = net.cfg
    resized = np.stack([cv2.resize(f, (cfg.input_width, cfg.input_height), interpolation=cv2.INTER_AREA)
                        for f in video.frames])
    if resized.ndim == 4:
        x = resized.astype(np.float32).transpose(0, 3, 1, 2) / 255.0
    else:
        x = resized.astype(np.float32)[:, None]
    k = _scaled_k(video, (cfg.input_width, cfg.input_height))
    return torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(k.astype(np.float32))


def _metric(net: DepthNet, x: torch.Tensor, k: torch.Tensor) -> list[torch.Tensor]:
    """The network's depth at each scale, in meters for this camera (its focal over the learned one)."""
    scale = float(math.sqrt(k[0, 0] * k[1, 1])) / net.cfg.focal_px if net.cfg.focal_px > 0 else 1.0
    out = net(x)
    return [net.disp_to_depth(d) * scale for d in out["disp"]], out["disp"]


class VideoPoses(torch.nn.Module):
    """Per frame, the target->source pose (axis-angle, translation) to its previous and its
    next neighbour: the motion of a recorded video as parameters, trained with the depth."""

    def __init__(self, frames: int):
        super().__init__()
        self.rotation = torch.nn.Parameter(torch.zeros(frames, 2, 3))
        self.translation = torch.nn.Parameter(torch.zeros(frames, 2, 3))

    def forward(self, idx: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [(self.rotation[idx, j], self.translation[idx, j]) for j in (0, 1)]


def _neighbours(x: torch.Tensor, idx: torch.Tensor, gap: int) -> torch.Tensor:
    return torch.stack([x[idx - gap], x[idx], x[idx + gap]], 1)


@torch.no_grad()
def search_forward_motion(poses: VideoPoses, depths: torch.Tensor, x: torch.Tensor, k: torch.Tensor,
                          idx: torch.Tensor, gap: int, max_speed: float, candidates: int = 41) -> np.ndarray:
    """Set the poses of frames `idx` to the straight-line motion along the optical axis that
    best explains their neighbours under `depths` (N, 1, h, w): the previous frame seen from
    v meters behind, the next from v ahead, v in [-max_speed, max_speed]. Returns v per frame."""
    from ldf_ros.training.depth import identity_error, reprojection_error

    frames = _neighbours(x, idx, gap)
    kb = k.expand(len(idx), 3, 3)
    zero = torch.zeros(len(idx), 3)
    errors = []
    speeds = torch.linspace(-max_speed, max_speed, candidates)
    identity = identity_error(frames)
    for v in speeds:
        t = torch.zeros(len(idx), 3)
        t[:, 2] = v
        err = reprojection_error(depths[idx], frames, kb, [(zero, t), (zero, -t)])
        errors.append(torch.minimum(err, identity).mean((1, 2, 3)))
    best = speeds[torch.stack(errors, 1).argmin(1)]
    poses.rotation[idx] = 0.0
    poses.translation[idx] = 0.0
    poses.translation[idx, 0, 2] = best
    poses.translation[idx, 1, 2] = -best
    return best.numpy()


def refine_poses(poses: VideoPoses, depths: torch.Tensor, x: torch.Tensor, k: torch.Tensor, idx: torch.Tensor,
                 gap: int, steps: int, lr: float) -> float:
    """Gradient steps on the poses of frames `idx` with `depths` fixed; the final photometric loss."""
    from ldf_ros.training.depth import identity_error, photometric_loss, reprojection_error

    frames = _neighbours(x, idx, gap)
    kb = k.expand(len(idx), 3, 3)
    identity = identity_error(frames)
    opt = torch.optim.Adam(poses.parameters(), lr=lr)
    loss = torch.zeros(())
    for _ in range(steps):
        loss = photometric_loss([reprojection_error(depths[idx], frames, kb, poses(idx))], identity)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return float(loss.detach())


@torch.no_grad()
def _all_depths(net: DepthNet, x: torch.Tensor, k: torch.Tensor, batch: int = 16) -> torch.Tensor:
    was_training = net.training
    net.eval()
    out = torch.cat([_metric(net, x[i:i + batch], k)[0][0] for i in range(0, len(x), batch)])
    net.train(was_training)
    return out


def fit_poses(net: DepthNet, x: torch.Tensor, k: torch.Tensor, idx: np.ndarray, cfg: BagAdaptConfig,
              poses: VideoPoses | None = None) -> VideoPoses:
    """Poses of frames `idx` explained by `net`'s depth: search, then refinement, a chunk of
    frames at a time (each pose depends only on its own frames; memory stays bounded)."""
    poses = poses or VideoPoses(len(x))
    depths = _all_depths(net, x, k)
    idx = np.asarray(idx)
    for start in range(0, len(idx), POSE_CHUNK):
        chunk = torch.from_numpy(idx[start:start + POSE_CHUNK])
        search_forward_motion(poses, depths, x, k, chunk, cfg.frame_gap, cfg.max_speed_m)
        refine_poses(poses, depths, x, k, chunk, cfg.frame_gap, cfg.pose_refine_steps, cfg.pose_lr)
    return poses


POSE_CHUNK = 32   # frames whose poses are searched and refined together


def _losses(net, poses, anchor, x, idx, gap, k, cfg: BagAdaptConfig,
            cross: CrossTargets | None = None) -> dict[str, torch.Tensor]:
    from ldf_ros.training.depth import identity_error, photometric_loss, reprojection_error, smoothness_loss

    frames = _neighbours(x, idx, gap)
    target = frames[:, 1]
    kb = k.expand(len(idx), 3, 3)
    depths, disps = _metric(net, target, k)
    reproj = [reprojection_error(d, frames, kb, poses(idx)) for d in depths[:1]]
    losses = {"photometric": cfg.photometric_weight * photometric_loss(reproj, identity_error(frames)),
              "smoothness": cfg.smoothness_weight * smoothness_loss(disps, target)}
    height = ground_plane_height(depths[0], kb)
    losses["camera_height"] = cfg.camera_height_weight * (
        torch.log(height.clamp(min=1e-2)) - math.log(cfg.camera_height_m)).abs().mean()
    if cfg.anchor_weight > 0:
        with torch.no_grad():
            ref = _metric(anchor, target, k)[0][0]
        losses["anchor"] = cfg.anchor_weight * (torch.log(depths[0]) - torch.log(ref)).abs().mean()
    if cross is not None and cfg.cross_weight > 0:
        gap_log = (torch.log(depths[0]) - torch.log(cross.depth[idx])).abs()
        losses["cross"] = cfg.cross_weight * (cross.weight[idx] * gap_log).mean()
    losses["total"] = sum(losses.values())
    return losses


def held_out_report(net: DepthNet, video: BagVideo, held: np.ndarray, cfg: BagAdaptConfig) -> dict:
    """On the held-out frames: the camera height implied by the depth (median), the
    photometric error with poses fitted to this depth (`fit_poses`, so each network is scored
    with the motion it explains best), and AbsRel where the bag has ground truth."""
    from ldf_ros.evaluation.depth_metrics import depth_metrics
    from ldf_ros.runtime.depth import DepthPredictor
    from ldf_ros.training.depth import identity_error, photometric_loss, reprojection_error

    net.eval()
    x, k = _inputs(video, net)
    depths = _all_depths(net, x, k)
    heights = [float(ground_plane_height(depths[i:i + 1], k[None])[0]) for i in held]
    out = {"frames": int(len(held)), "camera_height_m": float(np.median(heights))}
    inner = held[(held >= cfg.frame_gap) & (held < len(x) - cfg.frame_gap)]
    if len(inner):
        poses = fit_poses(net, x, k, inner, cfg)
        idx = torch.from_numpy(inner)
        with torch.no_grad():
            frames = _neighbours(x, idx, cfg.frame_gap)
            err = reprojection_error(depths[idx], frames, k.expand(len(idx), 3, 3), poses(idx))
            out["photometric"] = float(photometric_loss([err], identity_error(frames)))
    predictor = DepthPredictor(net)
    rows = [depth_metrics(video.depth_gt[int(video.stamps[i])], predictor(video.frames[i], video.k))["abs_rel"]
            for i in held if int(video.stamps[i]) in video.depth_gt]
    if rows:
        out["abs_rel"] = float(np.mean(rows))
    net.train()
    return out


def adapt_branch(init: str | Path, video: BagVideo, cfg: BagAdaptConfig, out: Path, name: str,
                 progress: bool = True, cross: CrossTargets | None = None) -> dict:
    """Fine-tune one branch on a video (and on the other branch's depth where `cross` says);
    writes out/<name>.safetensors, returns before/after."""
    from tqdm import tqdm

    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    net = load_depth_net(init).train()
    anchor = load_depth_net(init).eval()
    for p in anchor.parameters():
        p.requires_grad_(False)
    n = len(video.frames)
    split = _first_held_out(n, cfg)
    gap = cfg.frame_gap
    train_idx = np.arange(gap, split - gap)
    held = np.arange(split, n)
    if len(train_idx) < cfg.batch_size or len(held) < 1:
        raise ValueError(f"{n} frames are too few to train on {1 - cfg.holdout:.0%} and hold out {cfg.holdout:.0%}")
    x, k = _inputs(video, net)
    before = held_out_report(net, video, held, cfg)
    t0 = time.time()
    poses = fit_poses(net, x, k, train_idx, cfg)
    speed = float(poses.translation[train_idx, 0, 2].detach().abs().median())
    opt = torch.optim.AdamW([{"params": net.parameters(), "lr": cfg.lr, "weight_decay": 1e-4},
                             {"params": poses.parameters(), "lr": cfg.pose_lr * 0.1, "weight_decay": 0.0}])
    log = []
    for step in tqdm(range(cfg.steps), desc=f"adapt {name}", disable=not progress, leave=False):
        idx = torch.from_numpy(rng.choice(train_idx, cfg.batch_size, replace=len(train_idx) < cfg.batch_size))
        losses = _losses(net, poses, anchor, x, idx, gap, k, cfg, cross)
        opt.zero_grad(set_to_none=True)
        losses["total"].backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        opt.step()
        log.append({key: round(v.item(), 5) for key, v in losses.items()})
    after = held_out_report(net, video, held, cfg)
    path = save_checkpoint(out / f"{name}.safetensors", net, "depth", net.cfg.to_dict(), step=cfg.steps,
                           adapted_from=str(init), adapt_config=json.dumps(cfg.__dict__),
                           parameters=parameter_count(net), train_seconds=round(time.time() - t0, 1))
    return {"checkpoint": str(path), "train_frames": int(len(train_idx) + 2 * gap), "before": before, "after": after,
            "forward_motion_m": round(speed, 3), "seconds": round(time.time() - t0, 1),
            "cross_coverage": None if cross is None else round(cross.coverage, 4),
            "final_losses": log[-1] if log else {}}


def adapt_to_bag(bag: str | Path, out: str | Path, inits: dict[str, str], topics: dict[str, tuple[str, str]],
                 cfg: BagAdaptConfig = BagAdaptConfig(), progress: bool = True,
                 train: tuple[str, ...] | None = None) -> dict:
    """The branches in `train` on one bag, each starting from its network in `inits` (both
    there: they teach each other); writes checkpoints and report.md/json. train None: every
    branch of `inits`, except one the other teaches on under `min_taught` of its pixels (kept)."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    videos, missing = {}, {}
    for modality in inits:
        image_topic, info_topic = topics[modality]
        gt_topic = image_topic.rsplit("/", 1)[0] + "/depth_gt"
        try:
            videos[modality] = read_bag_video(bag, image_topic, info_topic, modality, depth_topic=gt_topic)
        except ValueError as e:
            if modality in (train or tuple(inits)):
                raise
            missing[modality] = str(e)         # only a teacher: train without it
    cross, cross_note = _cross_for_bag(bag, videos, inits, cfg)
    if missing:
        cross_note = "off (" + "; ".join(missing.values()) + ")"
    results = {}
    for m in train or tuple(inits):
        taught = cross[m].coverage if m in cross else None
        if train is None and taught is not None and taught < cfg.min_taught:
            results[m] = keep_branch(inits[m], videos[m], cfg, taught)
        else:
            results[m] = adapt_branch(inits[m], videos[m], cfg, out, f"depth_{m}_adapted", progress, cross.get(m))
    report = {"bag": str(bag), "config": cfg.__dict__, "branches": results, "cross": cross_note}
    (out / "report.json").write_text(json.dumps(report, indent=2))
    (out / "report.md").write_text(adaptation_markdown(report))
    return report


def keep_branch(init: str | Path, video: BagVideo, cfg: BagAdaptConfig, taught: float) -> dict:
    """A branch left as it starts: the other teaches it too little here, and the video alone
    was measured to make the shipped students worse (docs/BENCHMARKS.md)."""
    net = load_depth_net(init)
    n = len(video.frames)
    held = np.arange(_first_held_out(n, cfg), n)
    report = held_out_report(net, video, held, cfg)
    return {"checkpoint": str(init), "train_frames": 0, "before": report, "after": report,
            "cross_coverage": round(taught, 4),
            "kept": f"taught by the other branch on {taught:.1%} of its pixels (under {cfg.min_taught:.0%})"}


def _cross_for_bag(bag, videos: dict[str, BagVideo], inits: dict[str, str],
                   cfg: BagAdaptConfig) -> tuple[dict[str, CrossTargets], str]:
    """The branches' targets from each other, or none, with a line saying which and why."""
    if cfg.cross_weight <= 0:
        return {}, "off (cross_weight 0)"
    if set(videos) != {"visible", "thermal"}:
        return {}, "off (needs both branches)"
    rgb_frame, thermal_frame = videos["visible"].frame_id, videos["thermal"].frame_id
    extrinsic = read_bag_extrinsic(bag, rgb_frame, thermal_frame)
    if extrinsic is None:
        return {}, f"off (no transform from {rgb_frame!r} to {thermal_frame!r} on /tf_static)"
    cross = cross_targets(videos, inits, extrinsic, cfg.cross_max_gap_s)
    return cross, ("each branch taught by the other where the blend trusts the other more: "
                   + ", ".join(f"{m} on {c.coverage:.0%} of its pixels ({c.paired} of {len(c.weight)} frames paired "
                               f"within {cfg.cross_max_gap_s * 1000:.0f} ms)" for m, c in cross.items()))


def adaptation_markdown(report: dict) -> str:
    lines = [f"# Depth adaptation to {report['bag']}", "",
             f"{report['config']['steps']} steps per branch, the last {report['config']['holdout']:.0%} of the frames "
             "held out (never trained on)" + (f"; scale pulled to a camera height of {report['config']['camera_height_m']} m"
                                              if report['config'].get('camera_height_weight', 0) > 0 else "")
             + ". Held-out frames, before -> after:", "",
             "| branch | frames (train / held out) | photometric | camera height (m) | AbsRel (ground truth, if in the bag) |",
             "|---|---|---|---|---|"]
    kept = []
    for modality, r in report["branches"].items():
        b, a = r["before"], r["after"]
        if r.get("kept"):
            kept.append(f"{modality} branch is kept as it was: {r['kept']}")

        def cell(key, fmt):
            if key not in b or key not in a:
                return "-"
            return f"{b[key]:{fmt}} -> {a[key]:{fmt}}"
        lines.append(f"| {modality} | {r['train_frames']} / {a['frames']} | {cell('photometric', '.4f')} | "
                     f"{cell('camera_height_m', '.2f')} | {cell('abs_rel', '.4f')} |")
    lines += ["", f"Cross-branch targets: {report.get('cross', 'off')}."]
    lines += [f"The {k}; `--modality` trains it anyway." for k in kept]
    lines += ["", "Checkpoints: " + ", ".join(r["checkpoint"] for r in report["branches"].values())
              + " (set model.depth_visible_weights / model.depth_thermal_weights to use them)", ""]
    return "\n".join(lines)
