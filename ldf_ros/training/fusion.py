"""Training of the DDPM denoiser (self-supervised noise prediction on visible+infrared) and
of the fusion networks (head on diffusion features, or the single-pass student), with the
fusion losses and the depth-driven loss. Multi-process data parallel under torchrun
(gloo on CPU, nccl on GPU) when WORLD_SIZE > 1.
"""
from __future__ import annotations

import csv
import math
import os
import time
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from ldf_ros.config import DiffusionTrainConfig, FusionTrainConfig
from ldf_ros.data.paired import PairedFolder, random_crop_flip
from ldf_ros.models.checkpoint import load_training_state, save_checkpoint, save_training_state
from ldf_ros.models.diffusion import DenoiserConfig, NoiseSchedule, UNetDenoiser
from ldf_ros.models.layers import chroma, lit_mask, luma, luma_chroma_to_rgb, sobel_xy, ssim_map, warm_mask
from ldf_ros.runtime.caption import DIRECTIVES, guidance_text
from ldf_ros.training import cosine_decay


class PairCrops(Dataset):
    """Random crops of paired images as tensors in [0, 1]: visible (3, S, S), infrared (1, S, S).

    Several folders are sampled in turn (`sampling` equal), so a small domain weighs as much as
    a large one, or at random in proportion to the square root of their pair counts (sqrt) or to
    the counts (pairs): one folder of a single pair then no longer makes a share of every batch.
    With `gray_prob` a crop's visible image is replaced by its luminance (a gray visible camera)."""

    def __init__(self, folders: PairedFolder | list[PairedFolder], crop: int, seed: int, length: int | None = None,
                 gray_prob: float = 0.0, sampling: str = "equal"):
        self.folders = [folders] if isinstance(folders, PairedFolder) else list(folders)
        self.crop, self.gray_prob = crop, gray_prob
        self.images = [[f.load(i) for i in range(len(f))] for f in self.folders]
        self.offsets = np.cumsum([0] + [len(f) for f in self.folders])
        self.rng = np.random.default_rng(seed)
        self.length = length or int(self.offsets[-1])
        self.weights = folder_weights([len(f) for f in self.folders], sampling)

    def __len__(self):
        return self.length

    def __getitem__(self, n):
        k = n % len(self.folders) if self.weights is None else int(self.rng.choice(len(self.folders), p=self.weights))
        i = int(self.rng.integers(len(self.images[k]))) if len(self.folders) > 1 else n % len(self.images[k])
        vi, ir = random_crop_flip(*self.images[k][i], self.crop, self.rng)
        if self.gray_prob and self.rng.random() < self.gray_prob:
            vi = np.repeat(cv2.cvtColor(vi, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
        visible, infrared = pair_tensors(vi, ir, self.folders[k].pairs[i].name)
        return {"visible": visible, "infrared": infrared, "index": int(self.offsets[k]) + i}


def folder_weights(counts: list[int], sampling: str) -> np.ndarray | None:
    """Probability of drawing each folder (None: in turn, all equal)."""
    if sampling == "equal" or len(counts) < 2:
        return None
    if sampling not in ("sqrt", "pairs"):
        raise ValueError(f"data_sampling {sampling!r}: expected equal, sqrt or pairs")
    w = np.asarray(counts, np.float64) ** (0.5 if sampling == "sqrt" else 1.0)
    return w / w.sum()


def folder_list(spec: str) -> list[str]:
    """The dataset roots of a comma-separated config value (data, val_data, distill_data)."""
    return [r.strip() for r in spec.split(",") if r.strip()]


def paired_folders(spec: str) -> list[PairedFolder]:
    """Comma-separated dataset roots (each with vi/ and ir/ or another known layout)."""
    roots = folder_list(spec)
    if not roots:
        raise ValueError("data: no paired folder given")
    return [PairedFolder.from_root(r) for r in roots]


def pair_tensors(vi: np.ndarray, ir: np.ndarray, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """8-bit (H, W, 3) visible and (H, W) infrared -> (3, H, W) and (1, H, W) floats in [0, 1]."""
    if ir.dtype != np.uint8:
        raise ValueError(f"{name}: infrared must be 8-bit for training, got {ir.dtype}")
    return (torch.from_numpy(vi.transpose(2, 0, 1).copy()).float() / 255,
            torch.from_numpy(ir[None].copy()).float() / 255)


# --- distributed helpers ---------------------------------------------------------------------
def init_distributed() -> tuple[int, int, str]:
    """(rank, world size, device); initializes torch.distributed under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if device == "cuda" else "gloo")
    rank = torch.distributed.get_rank() if world > 1 else 0
    if device == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    return rank, world, device


def _wrap(model, world: int, device: str):
    if world > 1:
        return torch.nn.parallel.DistributedDataParallel(model, device_ids=[device] if device.startswith("cuda") else None)
    return model


def _resume(state_path: Path, net, opt) -> int:
    """Restore model and optimizer from a run folder's state; the step to continue from (0: fresh)."""
    if not state_path.is_file():
        return 0
    state = load_training_state(state_path)
    net.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    return int(state["step"])


def _loader(data: Dataset, batch: int, world: int, rank: int, seed: int) -> DataLoader:
    sampler = torch.utils.data.DistributedSampler(data, world, rank, shuffle=True, seed=seed) if world > 1 else None
    return DataLoader(data, batch_size=batch, shuffle=sampler is None, sampler=sampler, drop_last=True,
                      generator=torch.Generator().manual_seed(seed))


class RunLog:
    """CSV log and resumable state of a run folder (rank 0 writes)."""

    def __init__(self, out: Path, header: list[str], rank: int, resume_step: int):
        self.rank = rank
        self.path = out / "log.csv"
        if rank == 0:
            new = resume_step == 0 or not self.path.is_file()
            self.fh = open(self.path, "w" if new else "a", newline="")
            self.writer = csv.writer(self.fh)
            if new:
                self.writer.writerow(header)

    def row(self, values: list) -> None:
        if self.rank == 0:
            self.writer.writerow(values)
            self.fh.flush()

    def close(self) -> None:
        if self.rank == 0:
            self.fh.close()


# --- the diffusion model ---------------------------------------------------------------------
def train_diffusion(cfg: DiffusionTrainConfig, resume: bool = True, progress: bool = True) -> Path:
    """Noise prediction on 4-channel crops scaled to [-1, 1]; returns the final checkpoint path."""
    from tqdm import tqdm

    rank, world, device = init_distributed()
    torch.manual_seed(cfg.seed + rank)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if cfg.crop % 4:
        raise ValueError(f"crop must be a multiple of 4, got {cfg.crop}")
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    net = UNetDenoiser(DenoiserConfig(base=cfg.base)).to(device)
    sched = NoiseSchedule(net.cfg.schedule_steps)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr)
    state_path = out / "train_state.pt"
    step = _resume(state_path, net, opt) if resume else 0
    model = _wrap(net, world, device)
    data = PairCrops(paired_folders(cfg.data), cfg.crop, cfg.seed + rank, length=max(512, cfg.batch_size * world * 4))
    log = RunLog(out, ["step", "seconds", "loss"], rank, step)
    bar = tqdm(total=cfg.steps, initial=step, desc="diffusion", disable=not progress or rank != 0)
    t0 = time.time()
    while step < cfg.steps:
        for batch in _loader(data, cfg.batch_size, world, rank, cfg.seed + step):
            x0 = torch.cat([batch["visible"], batch["infrared"]], 1).to(device) * 2 - 1
            noise = torch.randn_like(x0)
            t = torch.randint(0, sched.steps, (x0.shape[0],), device=device)
            loss = F.mse_loss(model(sched.add_noise(x0, noise, t), t), noise)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.4f}")
            log.row([step, f"{time.time() - t0:.1f}", f"{loss.item():.5f}"])
            if rank == 0 and (step % cfg.checkpoint_every == 0 or step == cfg.steps):
                save_training_state(state_path, {"model": net.state_dict(), "optimizer": opt.state_dict(), "step": step})
                save_checkpoint(out / "model.safetensors", net, "denoiser", net.cfg.to_dict(), step=step,
                                train_config=asdict(cfg), world_size=world)
            if step >= cfg.steps:
                break
    return _finish(bar, log, world, out)


def _finish(bar, log, world: int, out: Path) -> Path:
    """Close the progress bar and log, and wait for every rank so none exits while rank 0 writes."""
    bar.close()
    log.close()
    if world > 1:
        torch.distributed.barrier()
    return out / "model.safetensors"


# --- fusion losses ---------------------------------------------------------------------------
def depth_of(net, image: torch.Tensor) -> torch.Tensor:
    """Differentiable metric depth of a frozen depth branch at its input size."""
    cfg = net.cfg
    x = F.interpolate(image, size=(cfg.input_height, cfg.input_width), mode="bilinear", align_corners=False)
    return net(x)["depth"]


def stronger_gradient_error(fused, a, b) -> torch.Tensor:
    """L1 between the fused Sobel gradient vector and the vector of the source whose gradient is
    stronger there. Matching the vector, not only its magnitude, gives the output a direction to
    move in where it is still flat (a magnitude target has no useful sign there)."""
    (fx, fy), (ax, ay), (bx, by) = sobel_xy(fused), sobel_xy(a), sobel_xy(b)
    a_wins = ax.abs() + ay.abs() >= bx.abs() + by.abs()
    return F.l1_loss(fx, torch.where(a_wins, ax, bx)) + F.l1_loss(fy, torch.where(a_wins, ay, by))


def edge_preservation_error(fused, a, b) -> torch.Tensor:
    """1 - a differentiable Q^{AB/F}: the share of both sources' Sobel edges (strength ratio and
    orientation, through the metric's own sigmoids) that the fused image keeps, weighted by
    source edge strength. The L1 gradient target picks one source per pixel; this term also
    credits edges kept from the weaker one and does not reward overshooting."""
    from ldf_ros.evaluation.fusion_metrics import QABF_CONSTANTS as q

    def strength_orientation(x):
        gx, gy = sobel_xy(x)
        angle = torch.atan2(gy, gx + 1e-8)            # line orientation in (-pi/2, pi/2], as atan(gy/gx)
        angle = torch.where(angle > math.pi / 2, angle - math.pi, angle)
        angle = torch.where(angle <= -math.pi / 2, angle + math.pi, angle)
        return torch.sqrt(gx * gx + gy * gy + 1e-10), angle

    gf, af = strength_orientation(fused)
    total, weight = 0.0, 0.0
    for src in (a, b):
        with torch.no_grad():
            gs, as_ = strength_orientation(src)
        ratio = torch.minimum(gs, gf) / torch.maximum(gs, gf)
        agreement = 1 - (as_ - af).abs() / (math.pi / 2)
        strength_kept = q["tg"] / (1 + torch.exp(q["kg"] * (ratio - q["dg"])))
        orientation_kept = q["ta"] / (1 + torch.exp(q["ka"] * (agreement - q["da"])))
        keep = strength_kept * orientation_kept
        total, weight = total + (keep * gs).sum(), weight + gs.sum()
    return 1 - total / weight.clamp_min(1e-8)


WARM_BOOST = 0.15       # "emphasize warm objects": warm pixels this much brighter than the thermal image


def intensity_target(yv, infrared, thermal_contrast: float = 0.0) -> torch.Tensor:
    """The luminance the fusion is pulled to: the stronger source, plus a share of the thermal
    image's contrast about its mean (per image)."""
    target = torch.maximum(yv, infrared)
    if thermal_contrast > 0:
        target = (target + thermal_contrast * (infrared - infrared.mean((-2, -1), keepdim=True))).clamp(0, 1)
    return target


def directive_error(directive: str, yf, yv, infrared) -> torch.Tensor:
    """(B,) how far each fused luminance is from what the directive asks:
    - emphasize warm objects: warm objects brighter than in the thermal image (WARM_BOOST);
    - keep visible colors: the visible luminance (so its colours) kept wherever it is lit."""
    if directive == "emphasize warm objects":
        m = warm_mask(infrared)
        target = (infrared + WARM_BOOST).clamp(max=1.0)
        return (m * (yf - target).abs()).sum((1, 2, 3)) / m.sum((1, 2, 3)).clamp_min(1.0)
    if directive == "keep visible colors":
        m = lit_mask(yv)
        return (m * (yf - yv).abs()).sum((1, 2, 3)) / m.sum((1, 2, 3)).clamp_min(1.0)
    raise ValueError(f"no loss for directive {directive!r}")


class FusionLoss:
    """Intensity, gradient, structure (SSIM), color fidelity and the depth-driven term.

    Intensity and gradient act on luminance only and chroma is pulled to the visible image's:
    a per-RGB-channel max target drags every channel towards the (gray) infrared and washes
    the color out."""

    def __init__(self, cfg: FusionTrainConfig, depth_visible=None, depth_thermal=None):
        self.cfg = cfg
        self.depth_visible, self.depth_thermal = depth_visible, depth_thermal

    def __call__(self, fused, visible, infrared, directives: list[str] | None = None) -> dict[str, torch.Tensor]:
        """The weighted terms and their total; `directives` (one per sample, "" for none) add
        each directive's own term on its samples."""
        c = self.cfg
        yf, yv = luma(fused), luma(visible)
        terms = {
            "intensity": c.intensity_weight * F.l1_loss(yf, intensity_target(yv, infrared, c.thermal_contrast)),
            "gradient": c.gradient_weight * stronger_gradient_error(yf, yv, infrared),
            "ssim": c.ssim_weight * (1 - 0.5 * (ssim_map(yf, yv).mean() + ssim_map(yf, infrared).mean())),
            "color": c.color_weight * F.l1_loss(chroma(fused), chroma(visible)),
        }
        if c.edge_weight > 0:
            terms["edge"] = c.edge_weight * edge_preservation_error(yf, yv, infrared)
        if c.depth_weight > 0 and self.depth_visible is not None and self.depth_thermal is not None:
            with torch.no_grad():
                ref_v = depth_of(self.depth_visible, visible)
                ref_t = depth_of(self.depth_thermal, infrared)
            # the visible branch sees the fused luminance in the visible colors: given the fused
            # RGB, the depth term bent the chroma correction and produced false colors
            as_visible = luma_chroma_to_rgb(yf, chroma(visible)).clamp(0, 1)
            dv = (torch.log(depth_of(self.depth_visible, as_visible)) - torch.log(ref_v)).abs().mean()
            dt = (torch.log(depth_of(self.depth_thermal, yf)) - torch.log(ref_t)).abs().mean()
            terms["depth"] = c.depth_weight * (dv + dt)
        if directives and any(directives):
            err = fused.new_zeros(())
            for d in set(directives) - {""}:
                sel = torch.tensor([x == d for x in directives], device=fused.device)
                err = err + directive_error(d, yf[sel], yv[sel], infrared[sel]).sum() / len(directives)
            terms["directive"] = c.directive_weight * err
        terms["total"] = sum(terms.values())
        return terms


# --- the fusion networks ---------------------------------------------------------------------
def scene_captions(folder: PairedFolder, depth_visible, depth_thermal, progress: bool = True) -> list[str]:
    """One depth-informed caption per pair (whole image), as the node would caption it."""
    from tqdm import tqdm

    from ldf_ros.runtime.caption import make_caption
    from ldf_ros.runtime.depth import DepthPredictor

    pv = DepthPredictor(depth_visible) if depth_visible is not None else None
    pt = DepthPredictor(depth_thermal) if depth_thermal is not None else None
    captions = []
    for i in tqdm(range(len(folder)), desc="captions", disable=not progress):
        vi, ir = folder.load(i)
        ir01 = ir.astype(np.float32) / (255.0 if ir.dtype == np.uint8 else 65535.0)
        captions.append(make_caption(vi, ir01, pv(vi) if pv else None, pt(ir01) if pt else None))
    return captions


def _initial_weights(path, role: str, text_encoder, guided_basis: str = "linear"):
    """Fine-tuning starts from a checkpoint of the role being trained, trained with the same
    text encoder (load_fusion_net checks that); its model config comes with it. A linear guided
    student asked for the max basis gets it added at weight zero."""
    from ldf_ros.models.fusion_net import with_max_basis
    from ldf_ros.runtime.learned_fusion import load_fusion_net

    net = load_fusion_net(path, text_encoder).train()
    if net.cfg.role != role:
        raise ValueError(f"init: {path} is a {net.cfg.role} checkpoint, but this run trains a {role}")
    return with_max_basis(net) if guided_basis == "max" else net


def build_fusion_training(cfg: FusionTrainConfig, device: str):
    """(model, frozen depth branches, cached text encoder, frozen teacher or None)."""
    from ldf_ros.models.depth_net import load_depth_net
    from ldf_ros.models.diffusion import load_denoiser
    from ldf_ros.models.fusion_net import FusionNet, FusionNetConfig
    from ldf_ros.models.text import CachedTextEncoder, make_text_encoder

    from ldf_ros.config import resolve_path
    text = CachedTextEncoder(make_text_encoder(cfg.text_encoder, cfg.clip_model, cfg.clip_checkpoint))
    net_cfg = {"role": cfg.role, "text_dim": text.encoder.dim, "text_encoder": text.encoder.name}
    if cfg.init:
        model = _initial_weights(resolve_path(cfg.init), cfg.role, text.encoder, cfg.guided_basis)
    elif cfg.role == "teacher" and cfg.teacher_features == "inputs":
        model = FusionNet(FusionNetConfig(**net_cfg, teacher_head=cfg.teacher_head, teacher_features="inputs"))
    elif cfg.role == "teacher":
        denoiser = load_denoiser(resolve_path(cfg.denoiser))
        model = FusionNet(FusionNetConfig(denoiser=denoiser.cfg.to_dict(), teacher_head=cfg.teacher_head, **net_cfg),
                          denoiser=denoiser)
    else:
        from ldf_ros.models.fusion_net import STUDENT_WIDTHS
        model = FusionNet(FusionNetConfig(**net_cfg, student_arch=cfg.student_arch,
                                          student_widths=STUDENT_WIDTHS[cfg.student_arch],
                                          guided_downscale=cfg.guided_downscale, guided_basis=cfg.guided_basis))
    depths = []
    for path, modality in ((cfg.depth_visible, "visible"), (cfg.depth_thermal, "thermal")):
        net = load_depth_net(resolve_path(path), modality).to(device) if path else None
        if net is not None:
            for p in net.parameters():
                p.requires_grad_(False)
        depths.append(net)
    teacher = None
    if cfg.teacher:
        from ldf_ros.runtime.learned_fusion import load_fusion_net
        teacher = load_fusion_net(resolve_path(cfg.teacher), text.encoder).to(device).eval()
    return model.to(device), depths[0], depths[1], text, teacher


def train_fusion(cfg: FusionTrainConfig, resume: bool = True, progress: bool = True) -> Path:
    from tqdm import tqdm

    rank, world, device = init_distributed()
    torch.manual_seed(cfg.seed + rank)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    net, dv, dt, text, teacher = build_fusion_training(cfg, device)
    folders = paired_folders(cfg.data)
    captions = [c for f in folders for c in scene_captions(f, dv, dt, progress and rank == 0)]
    val_roots = folder_list(cfg.val_data)
    for root in val_roots:
        if not Path(root).is_dir():
            raise ValueError(f"val_data: {root} is not a folder (set it to '' to train without validation)")
    val_sets = [(Path(r), PairedFolder.from_root(r)) for r in val_roots] if rank == 0 else []
    val_sets = [(_val_name(root), f, scene_captions(f, dv, dt, False)) for root, f in val_sets]
    trainable = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=cfg.lr)
    state_path = out / "train_state.pt"
    step = _resume(state_path, net, opt) if resume else 0
    model = _wrap(net, world, device)
    loss_fn = FusionLoss(cfg, dv, dt)
    data = PairCrops(folders, cfg.crop, cfg.seed + rank, length=max(256, cfg.batch_size * world * 4),
                     gray_prob=cfg.gray_prob, sampling=cfg.data_sampling)
    distill_mask = distill_crops(folders, cfg.data, cfg.distill_data)
    log = RunLog(out, ["step", "seconds", "loss", "terms"], rank, step)
    directive_rng = np.random.default_rng(cfg.seed + 7919 * rank + step)
    bar = tqdm(total=cfg.steps, initial=step, desc=f"fusion {cfg.role}", disable=not progress or rank != 0)
    t0 = time.time()
    while step < cfg.steps:
        for batch in _loader(data, cfg.batch_size, world, rank, cfg.seed + step):
            vis, ir = batch["visible"].to(device), batch["infrared"].to(device)
            directives = pick_directives(len(vis), cfg.directive_prob, directive_rng)
            emb = text([guidance_text(captions[i], d) for i, d in zip(batch["index"].tolist(), directives)]).to(device)
            fused = model(vis, ir, emb)
            terms = loss_fn(fused, vis, ir, directives)
            if teacher is not None and cfg.distill_weight > 0:
                terms["distill"] = cfg.distill_weight * distill_error(fused, teacher, vis, ir, emb,
                                                                     distill_mask[batch["index"]].to(device))
                terms["total"] = terms["total"] + terms["distill"]
            opt.zero_grad(set_to_none=True)
            terms["total"].backward()
            for group in opt.param_groups:
                group["lr"] = cfg.lr * cosine_decay(step, cfg.steps)
            opt.step()
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{terms['total'].item():.4f}")
            log.row([step, f"{time.time() - t0:.1f}", f"{terms['total'].item():.5f}",
                     " ".join(f"{k}={v.item():.4f}" for k, v in terms.items() if k != "total")])
            if rank == 0 and (step % cfg.val_every == 0 or step == cfg.steps):
                save_training_state(state_path, {"model": net.state_dict(), "optimizer": opt.state_dict(), "step": step})
                for path in (out / "model.safetensors", out / "snapshots" / f"step_{step:06d}.safetensors"):
                    save_fusion_checkpoint(net, path, text.identity, step=step, train_config=asdict(cfg), world_size=world)
                for name, val_folder, val_captions in val_sets:
                    _log_validation(out / "val.csv", step, name,
                                    validate_fusion(net, val_folder, val_captions, text, device))
            if step >= cfg.steps:
                break
    return _finish(bar, log, world, out)


def distill_crops(folders: list[PairedFolder], data: str, distill_data: str) -> torch.Tensor:
    """Per training image (global index), whether its crops are distilled: all, or those of the
    folders named in distill_data (each must be one of data's)."""
    roots = [str(Path(r).resolve()) for r in folder_list(data)]
    chosen = {str(Path(r).resolve()) for r in folder_list(distill_data)}
    if not chosen:
        return torch.ones(sum(len(f) for f in folders), dtype=torch.bool)
    unknown = chosen - set(roots)
    if unknown:
        raise ValueError(f"distill_data: {sorted(unknown)} not among data's folders {roots}")
    return torch.cat([torch.full((len(f),), root in chosen, dtype=torch.bool) for f, root in zip(folders, roots)])


def distill_error(fused, teacher, visible, infrared, text, mask: torch.Tensor) -> torch.Tensor:
    """L1 towards the teacher's output, over the crops the mask selects (0 when none is)."""
    if not mask.any():
        return fused.sum() * 0.0
    with torch.no_grad():
        target = teacher(visible[mask], infrared[mask], text[mask])
    return F.l1_loss(fused[mask], target)


def pick_directives(n: int, prob: float, rng: np.random.Generator) -> list[str]:
    """One directive per crop: none, or with probability `prob` one of DIRECTIVES at random."""
    if prob <= 0:
        return [""] * n
    return [DIRECTIVES[rng.integers(len(DIRECTIVES))] if rng.random() < prob else "" for _ in range(n)]


def validate_fusion(net, folder: PairedFolder, captions: list[str], text, device: str, crop: int = 256) -> dict[str, float]:
    """Mean of the nine fusion metrics on a center crop of every validation pair (the full
    evaluation is `ldf-ros eval fusion`; crops keep a teacher's validation under a minute)."""
    from ldf_ros.evaluation.fusion_metrics import fusion_metrics

    was_training = net.training
    net.eval()
    rows = []
    with torch.no_grad():
        for i in range(len(folder)):
            vi, ir = folder.load(i)
            h, w = ir.shape[:2]
            c = min(crop, h, w) // 8 * 8
            y0, x0 = (h - c) // 2, (w - c) // 2
            vi, ir = vi[y0:y0 + c, x0:x0 + c], ir[y0:y0 + c, x0:x0 + c]
            v, t = pair_tensors(vi, ir, folder.pairs[i].name)
            fused = net(v[None].to(device), t[None].to(device), text([captions[i]]).to(device))[0].clamp(0, 1)
            rows.append(fusion_metrics((fused.permute(1, 2, 0).cpu().numpy() * 255 + 0.5).astype(np.uint8), vi, ir))
    net.train(was_training)
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}


def _val_name(root: Path) -> str:
    """A validation folder's name in val.csv: its last two path parts (msrs/val, vifb/.)."""
    parts = Path(root).resolve().parts
    return "/".join(parts[-2:]) if parts[-1] in ("val", "test", "train") else parts[-1]


def _log_validation(path: Path, step: int, name: str, metrics: dict[str, float]) -> None:
    new = not path.exists()
    with open(path, "a", newline="") as fh:
        writer = csv.writer(fh)
        if new:
            writer.writerow(["step", "data"] + list(metrics))
        writer.writerow([step, name] + [f"{v:.4f}" for v in metrics.values()])


def save_fusion_checkpoint(net, path: Path, text_identity: dict, **provenance) -> Path:
    """A self-contained fusion checkpoint: the teacher's frozen denoiser (1.4 M parameters) is
    stored with its head, and the text encoder's identity (never its weights) is recorded."""
    return save_checkpoint(path, net, "fusion", net.cfg.to_dict() | {"text": text_identity}, **provenance)
