"""Torch building blocks shared by the depth and fusion networks and their losses.

Image tensors are (B, C, H, W) floats in [0, 1]; depth is (B, 1, H, W) in meters along the
optical z axis (REP-118), the same convention as `ldf_ros.ops.camera`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ldf_ros.ops.color import CB_SCALE, CR_SCALE, LUMA_WEIGHTS


class ConvBlock(nn.Module):
    """3x3 conv, group norm, SiLU: the unit every network here is built from."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, padding_mode="reflect", bias=False)
        self.norm = nn.GroupNorm(_groups(cout), cout)

    def forward(self, x):
        return F.silu(self.norm(self.conv(x)))


class ResBlock(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.a = ConvBlock(ch, ch)
        self.b = nn.Conv2d(ch, ch, 3, padding=1, padding_mode="reflect")

    def forward(self, x):
        return F.silu(x + self.b(self.a(x)))


def _groups(ch: int) -> int:
    for g in (8, 4, 2):
        if ch % g == 0:
            return g
    return 1


def upsample_to(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, size=ref.shape[-2:], mode="bilinear", align_corners=False)


def luma(rgb: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB -> (B, 1, H, W) BT.601 luminance (the fusion metrics' Y)."""
    wr, wg, wb = LUMA_WEIGHTS
    return wr * rgb[:, 0:1] + wg * rgb[:, 1:2] + wb * rgb[:, 2:3]


def chroma(rgb: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB -> (B, 2, H, W) Cb, Cr centered at 0."""
    y = luma(rgb)
    return torch.cat([(rgb[:, 2:3] - y) * CB_SCALE, (rgb[:, 0:1] - y) * CR_SCALE], 1)


def luma_chroma_to_rgb(y: torch.Tensor, cbcr: torch.Tensor) -> torch.Tensor:
    """Inverse of (`luma`, `chroma`)."""
    wr, wg, wb = LUMA_WEIGHTS
    r = y + cbcr[:, 1:2] / CR_SCALE
    b = y + cbcr[:, 0:1] / CB_SCALE
    return torch.cat([r, (y - wr * r - wb * b) / wg, b], 1)


def warm_mask(infrared: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) soft mask of the warm objects of each image: well above that image's own thermal level
    (its 75th percentile + 0.15, and at least 0.45), ramping over 0.05."""
    level = torch.quantile(infrared.flatten(1), 0.75, dim=1).view(-1, 1, 1, 1)
    return ((infrared - torch.clamp(level + 0.15, min=0.45)) / 0.05).clamp(0, 1)


def lit_mask(y_visible: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) soft mask of where the visible image is lit enough to carry detail and colour."""
    return ((y_visible - 0.12) / 0.1).clamp(0, 1)


def ssim_map(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-pixel SSIM with a 3x3 box window (the differentiable form used in photometric
    losses; the evaluation metric with its published window lives in `ldf_ros.ops.image`)."""
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    x, y = F.pad(x, (1, 1, 1, 1), mode="reflect"), F.pad(y, (1, 1, 1, 1), mode="reflect")
    mx, my = F.avg_pool2d(x, 3, 1), F.avg_pool2d(y, 3, 1)
    vx = F.avg_pool2d(x * x, 3, 1) - mx * mx
    vy = F.avg_pool2d(y * y, 3, 1) - my * my
    vxy = F.avg_pool2d(x * y, 3, 1) - mx * my
    return ((2 * mx * my + c1) * (2 * vxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))


def photometric_error(pred: torch.Tensor, target: torch.Tensor, alpha: float = 0.85) -> torch.Tensor:
    """(B, 1, H, W) mix of SSIM dissimilarity and L1, the standard reprojection error."""
    l1 = (pred - target).abs().mean(1, keepdim=True)
    dssim = ((1 - ssim_map(pred, target)) / 2).clamp(0, 1).mean(1, keepdim=True)
    return alpha * dssim + (1 - alpha) * l1


def image_gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward differences (dx: (B,C,H,W-1), dy: (B,C,H-1,W))."""
    return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]


SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])


def sobel_xy(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(Gx, Gy) per channel with 3x3 Sobel kernels (replicated borders)."""
    c = x.shape[1]
    kx = SOBEL_X.to(x).view(1, 1, 3, 3).repeat(c, 1, 1, 1)
    ky = kx.transpose(-1, -2)
    xp = F.pad(x, (1, 1, 1, 1), mode="replicate")
    return F.conv2d(xp, kx, groups=c), F.conv2d(xp, ky, groups=c)


def edge_aware_smoothness(disp: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """Mean-normalized disparity gradients, down-weighted at image edges."""
    disp = disp / (disp.mean((2, 3), keepdim=True) + 1e-7)
    ddx, ddy = image_gradients(disp)
    idx, idy = image_gradients(image)
    wx = torch.exp(-idx.abs().mean(1, keepdim=True))
    wy = torch.exp(-idy.abs().mean(1, keepdim=True))
    return (ddx.abs() * wx).mean() + (ddy.abs() * wy).mean()


def pixel_grid(height: int, width: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """(3, H*W) homogeneous pixel coordinates (u, v, 1) of pixel centers."""
    v, u = torch.meshgrid(torch.arange(height, device=device, dtype=dtype),
                          torch.arange(width, device=device, dtype=dtype), indexing="ij")
    return torch.stack([u.reshape(-1), v.reshape(-1), torch.ones(height * width, device=device, dtype=dtype)])


def backproject_depth(depth: torch.Tensor, k_inv: torch.Tensor) -> torch.Tensor:
    """(B,1,H,W) depth, (B,3,3) inverse intrinsics -> (B,3,H*W) optical-frame points."""
    b, _, h, w = depth.shape
    rays = k_inv @ pixel_grid(h, w, depth.device, depth.dtype).unsqueeze(0)
    return rays * depth.reshape(b, 1, -1)


def ground_plane_height(depth: torch.Tensor, k: torch.Tensor, rows=(0.75, 1.0), cols=(0.3, 0.7)) -> torch.Tensor:
    """(B,) height of the camera above the plane fitted (least squares, differentiable) to the
    points of an image region that is road for a forward-looking vehicle camera: the bottom
    rows, middle columns. With a known mounting height this fixes monocular scale."""
    b, _, h, w = depth.shape
    r0, r1, c0, c1 = int(rows[0] * h), int(rows[1] * h), int(cols[0] * w), int(cols[1] * w)
    points = backproject_depth(depth, torch.linalg.inv(k)).reshape(b, 3, h, w)[:, :, r0:r1, c0:c1].reshape(b, 3, -1)
    x, y, z = points[:, 0], points[:, 1], points[:, 2]     # optical frame: y points down, to the road
    a = torch.stack([x, z, torch.ones_like(x)], -1)        # the road as y = p x + q z + height
    sol = torch.linalg.solve(a.transpose(1, 2) @ a, (a.transpose(1, 2) @ y.unsqueeze(-1))).squeeze(-1)
    return sol[:, 2] / torch.sqrt(1 + sol[:, 0] ** 2 + sol[:, 1] ** 2)


def project_points(points: torch.Tensor, k: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(B,3,N) points -> (B,H,W,2) sampling grid in [-1, 1] for `grid_sample`."""
    uvz = k @ points
    uv = uvz[:, :2] / uvz[:, 2:3].clamp(min=1e-3)
    u = uv[:, 0] / (width - 1) * 2 - 1
    v = uv[:, 1] / (height - 1) * 2 - 1
    return torch.stack([u, v], dim=-1).reshape(-1, height, width, 2)


def axis_angle_to_matrix(vec: torch.Tensor) -> torch.Tensor:
    """(B,3) axis-angle -> (B,3,3) rotation (Rodrigues)."""
    angle = vec.norm(dim=1, keepdim=True).clamp(min=1e-8)
    axis = vec / angle
    x, y, z = axis[:, 0], axis[:, 1], axis[:, 2]
    c, s = torch.cos(angle[:, 0]), torch.sin(angle[:, 0])
    C = 1 - c
    return torch.stack([
        torch.stack([c + x * x * C, x * y * C - z * s, x * z * C + y * s], -1),
        torch.stack([y * x * C + z * s, c + y * y * C, y * z * C - x * s], -1),
        torch.stack([z * x * C - y * s, z * y * C + x * s, c + z * z * C], -1),
    ], dim=1)


def warp_image(source: torch.Tensor, depth: torch.Tensor, rotation: torch.Tensor, translation: torch.Tensor,
               k: torch.Tensor) -> torch.Tensor:
    """Resample `source` into the target view given target depth and the target->source pose
    (p_src = R p_tgt + t)."""
    b, _, h, w = depth.shape
    points = backproject_depth(depth, torch.linalg.inv(k))
    points = rotation @ points + translation.reshape(b, 3, 1)
    grid = project_points(points, k, h, w)
    return F.grid_sample(source, grid, mode="bilinear", padding_mode="border", align_corners=True)
