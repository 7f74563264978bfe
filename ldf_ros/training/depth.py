"""Training of the depth networks: self-supervised photometric loss with a pose network,
supervised log-depth loss on synthetic ground truth (switchable), the teacher's semantic
loss, and distillation of a student from a teacher (depth, features, distance categories).
"""
from __future__ import annotations

import csv
import math
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ldf_ros.config import DepthTrainConfig
from ldf_ros.models.checkpoint import (CheckpointError, load_training_state, save_checkpoint,
                                       save_training_state)
from ldf_ros.models.depth_net import (DepthNet, PoseNet, load_depth_net, parameter_count, student_config,
                                      teacher_config)
from ldf_ros.models.layers import (axis_angle_to_matrix, edge_aware_smoothness, ground_plane_height, photometric_error,
                                   warp_image)
from ldf_ros.runtime.depth import depth_input, modality_image
from ldf_ros.synthetic.clips import (TRAIN_SEEDS, UNLABELED_SEEDS, VAL_SEEDS, Clip, clip_camera, clip_specs,
                                     load_or_render)
from ldf_ros.training import cosine_decay


class ClipFrames(Dataset):
    """(previous, target, next) frames of one modality with ground truth, from clips. Frames of
    the first `labeled` clips carry their depth; the others carry zeros, which every depth
    loss treats as invalid (unlabeled video, as a real camera would give). With a teacher of
    another modality (rgb_thermal), "teacher_frames" carry its input: the same frames, with the
    same flip and brightness, as the student sees."""

    def __init__(self, clips: list[Clip], modality: str, augment: bool = True, seed: int = 0, labeled: int | None = None,
                 teacher_modality: str | None = None):
        self.clips, self.modality, self.augment = clips, modality, augment
        self.teacher_modality = teacher_modality if teacher_modality != modality else None
        self.labeled = len(clips) if labeled is None else labeled
        self.index = [(c, i) for c in range(len(clips)) for i in range(1, clips[c].rgb.shape[0] - 1)]
        self.rng = np.random.default_rng(seed)

    def __len__(self):
        return len(self.index)

    def _cameras(self) -> list[str]:
        wanted = {self.modality, self.teacher_modality} - {None}
        return ["visible", "thermal"] if "rgb_thermal" in wanted else sorted(wanted)

    def _input(self, frames: dict[str, np.ndarray], modality: str) -> np.ndarray:
        if modality == "rgb_thermal":
            return np.concatenate([frames["visible"], frames["thermal"]], axis=1)
        return frames[modality]

    def __getitem__(self, n):
        c, i = self.index[n]
        clip = self.clips[c]
        frames = {m: np.stack([depth_input(modality_image(clip.rgb[j], clip.thermal[j], m), m) for j in (i - 1, i, i + 1)])
                  for m in self._cameras()}
        depth = np.nan_to_num(clip.depth[i], nan=0.0)[None] if c < self.labeled else np.zeros((1, *clip.depth.shape[1:]))
        classes = clip.classes[i].astype(np.int64)
        if self.augment and self.rng.random() < 0.5:   # K stays valid: cx = (W - 1) / 2
            frames = {m: f[..., ::-1] for m, f in frames.items()}
            depth, classes = depth[..., ::-1], classes[..., ::-1]
        if self.augment and "visible" in frames:
            frames["visible"] = np.clip(frames["visible"] * self.rng.uniform(0.8, 1.2), 0, 1)
        item = {"frames": _tensor(self._input(frames, self.modality)), "depth": _tensor(depth),
                "classes": torch.from_numpy(np.ascontiguousarray(classes)),
                "k": torch.from_numpy(clip.k.astype(np.float32))}
        if self.teacher_modality:
            item["teacher_frames"] = _tensor(self._input(frames, self.teacher_modality))
        return item


def _tensor(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


def supervised_loss(depths: list[torch.Tensor], gt: torch.Tensor, min_depth: float, max_depth: float) -> torch.Tensor:
    """Mean |log d - log gt| over valid ground-truth pixels, each scale upsampled to full size."""
    mask = (gt >= min_depth) & (gt <= max_depth)
    if not mask.any():
        return gt.new_zeros(())
    log_gt = torch.log(gt.clamp(min=min_depth))
    total = gt.new_zeros(())
    for d in depths:
        d = F.interpolate(d, size=gt.shape[-2:], mode="bilinear", align_corners=False)
        total = total + (torch.log(d) - log_gt).abs()[mask].mean()
    return total / len(depths)


def identity_error(frames) -> torch.Tensor:
    """(B, 1, H, W) error of the unwarped neighbours (a tiny noise breaks ties): pixels where it
    is the smallest are static or textureless and tell nothing about depth (auto-masking)."""
    prev, target, nxt = frames[:, 0], frames[:, 1], frames[:, 2]
    identity = torch.cat([photometric_error(s, target) for s in (prev, nxt)], 1)
    return (identity + 1e-5 * torch.randn_like(identity)).min(1, keepdim=True)[0]


def reprojection_error(depth, frames, k, poses) -> torch.Tensor:
    """(B, 1, H, W) minimum over the neighbours of the error of warping them into the target
    with `depth` (upsampled to the frame size) and the poses [(axis-angle, t) per neighbour]."""
    prev, target, nxt = frames[:, 0], frames[:, 1], frames[:, 2]
    d = F.interpolate(depth, size=target.shape[-2:], mode="bilinear", align_corners=False)
    errors = [photometric_error(warp_image(source, d, axis_angle_to_matrix(aa), t, k), target)
              for source, (aa, t) in zip((prev, nxt), poses)]
    return torch.cat(errors, 1).min(1, keepdim=True)[0]


def photometric_loss(reprojection: list[torch.Tensor], identity: torch.Tensor) -> torch.Tensor:
    """Minimum reprojection with auto-masking of static pixels (where the unwarped neighbour
    already matches better, the loss is that constant), averaged over scales."""
    return sum(torch.minimum(r, identity).mean() for r in reprojection) / len(reprojection)


def smoothness_loss(disps, image) -> torch.Tensor:
    total = image.new_zeros(())
    for s, disp in enumerate(disps):
        img = F.interpolate(image, size=disp.shape[-2:], mode="bilinear", align_corners=False)
        total = total + edge_aware_smoothness(disp, img) / (2 ** s)
    return total


def depth_bin_probabilities(depth: torch.Tensor, min_depth: float, max_depth: float, bins: int = 24,
                            sigma: float = 1.0) -> torch.Tensor:
    """Soft assignment of each pixel to log-spaced distance categories, (B, bins, H, W)."""
    centers = torch.linspace(math.log(min_depth), math.log(max_depth), bins, device=depth.device, dtype=depth.dtype)
    step = centers[1] - centers[0]
    logits = -0.5 * ((torch.log(depth) - centers.view(1, -1, 1, 1)) / (sigma * step)) ** 2
    return logits.log_softmax(1)


def distillation_gate(depth_s, depth_t, gt, min_depth: float, max_depth: float, reproj_s=None, reproj_t=None,
                      identity=None) -> torch.Tensor:
    """(B, 1, H, W) 1 where the student should imitate the teacher: where ground truth exists,
    the teacher must be closer to it than the student; elsewhere it must reproject the
    neighbours better than the student and than no motion at all (without the errors: never).
    A teacher that is wrong somewhere (a blown-out night frame) then teaches nothing there."""
    with torch.no_grad():
        valid = (gt >= min_depth) & (gt <= max_depth)
        log_gt = torch.log(gt.clamp(min=min_depth))
        closer = (torch.log(depth_t) - log_gt).abs() < (torch.log(depth_s) - log_gt).abs()
        if reproj_s is None:
            explains = torch.zeros_like(valid)
        else:
            explains = (reproj_t < reproj_s) & (reproj_t < identity)
        return torch.where(valid, closer, explains).float()


def flip_averaged(model: DepthNet, image: torch.Tensor) -> dict[str, torch.Tensor]:
    """The model's depth (geometric mean) and features (mean) over the image and its mirror,
    each mirrored back: errors that do not survive mirroring cancel, so it is a better target
    than one pass (test-time augmentation for the teacher)."""
    a, b = model(image), model(image.flip(-1))
    return {"depth": torch.sqrt(a["depth"] * b["depth"].flip(-1)),
            "features": 0.5 * (a["features"] + b["features"].flip(-1))}


class DistillationLoss(nn.Module):
    """Student imitates the teacher: log depth, bottleneck features (through a 1x1 adapter,
    training only), and the distribution over distance categories; with a gate (B, 1, H, W),
    only where it is 1 (the terms are averaged over all pixels, so the teacher's weight shrinks
    as the student overtakes it)."""

    def __init__(self, student_width: int, teacher_width: int, cfg: DepthTrainConfig, depth_range):
        super().__init__()
        self.adapter = nn.Conv2d(student_width, teacher_width, 1)
        self.cfg = cfg
        self.depth_range = depth_range

    def forward(self, out_s: dict, out_t: dict, gate: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        d_t = out_t["depth"]
        if gate is None:
            gate = torch.ones_like(d_t)
        imitation = sum(((torch.log(F.interpolate(d, size=d_t.shape[-2:], mode="bilinear", align_corners=False))
                          - torch.log(d_t)).abs() * gate).mean()
                        for d in out_s["depth_scales"]) / len(out_s["depth_scales"])
        target = out_t["features"]   # normalized MSE: the teacher's feature scale is arbitrary
        feat_gate = F.adaptive_avg_pool2d(gate, target.shape[-2:])
        feat = ((self.adapter(out_s["features"]) - target) ** 2 * feat_gate).mean() / (target.var() + 1e-6)
        lp_s = depth_bin_probabilities(out_s["depth"], *self.depth_range)
        lp_t = depth_bin_probabilities(d_t, *self.depth_range)
        kl = (lp_t.exp() * (lp_t - lp_s)).sum(1, keepdim=True)   # KL(teacher || student), 0 when they agree
        return {"distill_depth": imitation * self.cfg.distill_depth_weight,
                "distill_feature": feat * self.cfg.distill_feature_weight,
                "distill_bins": (kl * gate).mean() * self.cfg.distill_bins_weight}


def build_training(cfg: DepthTrainConfig):
    """(model, pose net or None, teacher or None, distillation module or None)."""
    net_cfg = teacher_config(cfg.modality) if cfg.role == "teacher" else student_config(cfg.modality)
    # clips are rendered at the network's input size: their camera is the one it learns
    net_cfg = replace(net_cfg, focal_px=float(clip_camera(net_cfg.input_width, net_cfg.input_height,
                                                          cfg.camera_hfov_deg).fx))
    model = _initial_weights(cfg.init, net_cfg) if cfg.init else DepthNet(net_cfg)
    pose = PoseNet(net_cfg.in_channels) if cfg.photometric_weight > 0 else None
    teacher = distill = None
    if cfg.unlabeled_streets and not cfg.teacher:
        raise ValueError("unlabeled_streets needs a teacher: without one nothing supervises their depth")
    if cfg.distill_gate and not cfg.teacher:
        raise ValueError("distill_gate needs a teacher")
    if cfg.teacher_flip and not cfg.teacher:
        raise ValueError("teacher_flip needs a teacher")
    if cfg.unlabeled_batch_size and not cfg.unlabeled_streets:
        raise ValueError("unlabeled_batch_size needs unlabeled_streets (and a teacher): there is nothing to add")
    if cfg.distill_unlabeled_only and not cfg.unlabeled_streets:
        raise ValueError("distill_unlabeled_only needs unlabeled_streets (and a teacher): otherwise nothing is distilled")
    if cfg.teacher:
        if cfg.role != "student":
            raise ValueError("only a student can be distilled from a teacher (role: student)")
        teacher = load_depth_net(cfg.teacher)
        if teacher.cfg.modality not in (cfg.modality, "rgb_thermal"):
            raise CheckpointError(f"teacher {cfg.teacher} is a {teacher.cfg.modality} depth network: a {cfg.modality} "
                                  f"student learns from a {cfg.modality} or an rgb_thermal teacher")
        if teacher.cfg.focal_px and abs(teacher.cfg.focal_px - net_cfg.focal_px) > 1e-3 * net_cfg.focal_px:
            raise ValueError(f"teacher {cfg.teacher} learned with focal {teacher.cfg.focal_px:.1f} px, this student "
                             f"trains with {net_cfg.focal_px:.1f} px (camera_hfov_deg): its depths would not fit")
        for p in teacher.parameters():
            p.requires_grad_(False)
        distill = DistillationLoss(net_cfg.widths[-1], teacher.cfg.widths[-1], cfg,
                                   (net_cfg.min_depth, net_cfg.max_depth))
    return model, pose, teacher, distill


def _initial_weights(path: str, net_cfg) -> DepthNet:
    """Fine-tuning starts from a checkpoint of exactly the network being trained."""
    from ldf_ros.config import resolve_path

    model = load_depth_net(resolve_path(path), modality=net_cfg.modality).train()
    # the camera may differ (fine-tuning to another field of view), the network may not
    if replace(model.cfg, focal_px=net_cfg.focal_px) != net_cfg:
        raise ValueError(f"init: {path} is a depth {model.cfg.role} ({model.cfg.widths}), "
                         f"this run trains a {net_cfg.role} ({net_cfg.widths})")
    model.cfg = net_cfg
    return model


def training_losses(batch, model: DepthNet, pose: PoseNet | None, teacher: DepthNet | None,
                    distill: DistillationLoss | None, cfg: DepthTrainConfig) -> dict[str, torch.Tensor]:
    frames, gt, k = batch["frames"], batch["depth"], batch["k"]
    target = frames[:, 1]
    out = model(target)
    out["depth_scales"] = [model.disp_to_depth(d) for d in out["disp"]]
    mc = model.cfg
    losses: dict[str, torch.Tensor] = {}
    if cfg.supervised_weight > 0:
        losses["supervised"] = cfg.supervised_weight * supervised_loss(out["depth_scales"], gt, mc.min_depth, mc.max_depth)
    reproj = poses = identity = None
    if pose is not None:
        poses = [pose(target, s) for s in (frames[:, 0], frames[:, 2])]
        identity = identity_error(frames)
        reproj = [reprojection_error(d, frames, k, poses) for d in out["depth_scales"][:cfg.photometric_scales]]
        losses["photometric"] = cfg.photometric_weight * photometric_loss(reproj, identity)
    if cfg.smoothness_weight > 0:
        losses["smoothness"] = cfg.smoothness_weight * smoothness_loss(out["disp"], target)
    unlabeled = ~(gt > 0).flatten(1).any(1)
    if cfg.camera_height_weight > 0 and unlabeled.any():
        height = ground_plane_height(out["depth"][unlabeled], batch["k"][unlabeled])
        losses["camera_height"] = cfg.camera_height_weight * (
            torch.log(height.clamp(min=1e-2)) - math.log(cfg.camera_height_m)).abs().mean()
    if out["semantics"] is not None and cfg.semantic_weight > 0:
        logits = F.interpolate(out["semantics"], size=target.shape[-2:], mode="bilinear", align_corners=False)
        losses["semantic"] = cfg.semantic_weight * F.cross_entropy(logits, batch["classes"])
    gate = None
    if teacher is not None:
        with torch.no_grad():
            target_t = batch["teacher_frames"][:, 1] if "teacher_frames" in batch else target
            out_t = flip_averaged(teacher, target_t) if cfg.teacher_flip else teacher(target_t)
            if cfg.distill_gate:
                reproj_t = None if reproj is None else reprojection_error(out_t["depth"], frames, k, poses)
                gate = distillation_gate(out["depth"], out_t["depth"], gt, mc.min_depth, mc.max_depth,
                                         None if reproj is None else reproj[0], reproj_t, identity)
            if cfg.distill_unlabeled_only:
                only = unlabeled.to(out_t["depth"].dtype).view(-1, 1, 1, 1).expand_as(out_t["depth"])
                gate = only if gate is None else gate * only
        losses.update(distill(out, out_t, gate))
    losses["total"] = sum(losses.values())
    if gate is not None:
        losses["gate_share"] = gate.mean()   # logged: the share of pixels the teacher still teaches
    return losses


def _clips(seeds, cfg: DepthTrainConfig, conditions=None) -> list[Clip]:
    from tqdm import tqdm

    kw = {"conditions": conditions} if conditions else {}
    specs = clip_specs(seeds, frames=cfg.clip_frames, hfov_deg=cfg.camera_hfov_deg, **kw)
    return [load_or_render(s, Path(cfg.cache_dir)) for s in tqdm(specs, desc="clips", leave=False)]


def training_batches(labeled_clips: list[Clip], unlabeled_clips: list[Clip], cfg: DepthTrainConfig, step: int = 0,
                     teacher_modality: str | None = None):
    """Endless training batches (a resumed run reseeds with its step). With unlabeled_batch_size,
    every batch is batch_size labeled frames, drawn exactly as a run without unlabeled streets
    draws them, followed by that many unlabeled frames: the teacher's streets come on top of the
    ground truth instead of in its place."""
    def loader(clips, labeled, batch_size, seed):
        data = ClipFrames(clips, cfg.modality, augment=True, seed=seed, labeled=labeled,
                          teacher_modality=teacher_modality)
        return DataLoader(data, batch_size=batch_size, shuffle=True, drop_last=True, num_workers=0,
                          generator=torch.Generator().manual_seed(seed))

    seed = cfg.seed + step
    if not cfg.unlabeled_batch_size:
        yield from _endless(loader(labeled_clips + unlabeled_clips, len(labeled_clips), cfg.batch_size, seed))
        return
    extra = _endless(loader(unlabeled_clips, 0, cfg.unlabeled_batch_size, seed + 1))
    for batch in _endless(loader(labeled_clips, len(labeled_clips), cfg.batch_size, seed)):
        more = next(extra)
        yield {k: torch.cat([batch[k], more[k]]) for k in batch}


def _endless(loader):
    while True:
        yield from loader


def validate(model: DepthNet, clips: list[Clip]) -> float:
    """Mean AbsRel of the model over the clips' frames (no median scaling: metric depth)."""
    from ldf_ros.evaluation.depth_metrics import depth_metrics
    from ldf_ros.runtime.depth import DepthPredictor

    predictor = DepthPredictor(model.eval())
    rows = []
    for clip in clips:
        for i in range(0, clip.rgb.shape[0], 4):
            image = modality_image(clip.rgb[i], clip.thermal[i], model.cfg.modality)
            rows.append(depth_metrics(clip.depth[i], predictor(image))["abs_rel"])
    model.train()
    return float(np.mean(rows))


def train_depth(cfg: DepthTrainConfig, resume: bool = True, progress: bool = True) -> Path:
    """Train one depth network; returns the path of the final checkpoint (out/model.safetensors)."""
    from tqdm import tqdm

    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    model, pose, teacher, distill = build_training(cfg)
    params = list(model.parameters()) + (list(pose.parameters()) if pose else []) + (list(distill.parameters()) if distill else [])
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: cosine_decay(s, cfg.steps))
    step = 0
    state_path = out / "train_state.pt"
    if resume and state_path.is_file():
        state = load_training_state(state_path)
        model.load_state_dict(state["model"])
        if pose is not None:
            pose.load_state_dict(state["pose"])
        if distill is not None:
            distill.load_state_dict(state["distill"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        step = int(state["step"])
        torch.set_rng_state(state["rng"])
    labeled_clips = _clips(TRAIN_SEEDS[:cfg.train_streets], cfg)
    unlabeled_clips = _clips(UNLABELED_SEEDS[:cfg.unlabeled_streets], cfg)
    val_clips = _clips(VAL_SEEDS, cfg, conditions=("day", "night", "fog"))
    batches = training_batches(labeled_clips, unlabeled_clips, cfg, step,
                               teacher.cfg.modality if teacher is not None else None)
    real = None
    if cfg.ordinal_pairs and cfg.ordinal_weight > 0:
        from ldf_ros.config import resolve_path
        from ldf_ros.training.ordinal import OrdinalFrames, ordinal_loss
        root = Path(cfg.ordinal_root) if Path(cfg.ordinal_root).is_dir() else resolve_path(cfg.ordinal_root)
        real = OrdinalFrames(resolve_path(cfg.ordinal_pairs) if not Path(cfg.ordinal_pairs).is_file() else cfg.ordinal_pairs,
                             root, cfg.modality, model.cfg.input_width, model.cfg.input_height)
        real_rng = np.random.default_rng(cfg.seed + 104729 + step)
    log_path = out / "log.csv"
    new_log = not log_path.is_file() or step == 0
    log = open(log_path, "w" if new_log else "a", newline="")
    writer = csv.writer(log)
    if new_log:
        writer.writerow(["step", "seconds", "loss", "val_abs_rel", "terms"])
    t0 = time.time()
    bar = tqdm(total=cfg.steps, initial=step, desc=f"depth {cfg.modality} {cfg.role}", disable=not progress)
    model.train()
    while step < cfg.steps:
        losses = training_losses(next(batches), model, pose, teacher, distill, cfg)
        if real is not None:
            images, labels = real.batch(cfg.ordinal_batch_size, real_rng)
            losses["ordinal"] = cfg.ordinal_weight * ordinal_loss(model(images)["depth"], labels)
            losses["total"] = losses["total"] + losses["ordinal"]
        opt.zero_grad(set_to_none=True)
        losses["total"].backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()
        sched.step()
        step += 1
        bar.update(1)
        bar.set_postfix(loss=f"{losses['total'].item():.3f}")
        val = ""
        if step % cfg.val_every == 0 or step == cfg.steps:
            val = f"{validate(model, val_clips):.4f}"
            _save(model, pose, distill, opt, sched, step, state_path, out, cfg, time.time() - t0)
        writer.writerow([step, f"{time.time() - t0:.1f}", f"{losses['total'].item():.5f}", val,
                         " ".join(f"{k}={v.item():.4f}" for k, v in losses.items() if k != "total")])
        log.flush()
    bar.close()
    log.close()
    return out / "model.safetensors"


def _save(model, pose, distill, opt, sched, step, state_path, out, cfg, seconds):
    state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
             "step": step, "rng": torch.get_rng_state()}
    if pose is not None:
        state["pose"] = pose.state_dict()
    if distill is not None:
        state["distill"] = distill.state_dict()
    save_training_state(state_path, state)
    save_checkpoint(out / "model.safetensors", model, "depth", model.cfg.to_dict(), step=step,
                    train_config=asdict(cfg), parameters=parameter_count(model), train_seconds=round(seconds, 1))
