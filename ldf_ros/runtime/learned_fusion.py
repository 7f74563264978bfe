"""The learned LDFusion backend of the pipeline: numpy in, numpy out, text embeddings cached."""
from __future__ import annotations

import numpy as np
import torch

from ldf_ros.models.checkpoint import CheckpointError, load_weights, read_checkpoint
from ldf_ros.models.fusion_net import FusionNet, FusionNetConfig
from ldf_ros.models.text import CachedTextEncoder, TextEncoder, make_text_encoder


def load_fusion_net(path, text_encoder: TextEncoder | None) -> FusionNet:
    """A fusion network from its checkpoint; the configured text encoder must be the one it was
    trained with. None skips that check, for callers that supply embeddings themselves (benchmarks)."""
    tensors, config, _ = read_checkpoint(path, "fusion")
    trained_with = config.pop("text", None)
    if text_encoder is not None and trained_with != text_encoder.identity:
        raise CheckpointError(f"{path}: trained with text encoder {trained_with}, but {text_encoder.identity} is "
                              "configured (model.text_encoder); captions would be embedded differently")
    try:
        cfg = FusionNetConfig.from_dict(config)
    except (TypeError, ValueError, KeyError) as exc:
        raise CheckpointError(f"{path}: fusion config in the checkpoint is invalid ({exc})") from exc
    return load_weights(FusionNet(cfg), tensors, path).eval()


class LearnedFusion:
    def __init__(self, net: FusionNet, text: CachedTextEncoder, device: str = "cpu", fp16: bool = False):
        self.net = net.to(device).eval()
        self.text = text
        self.device = device
        self.dtype = torch.float16 if (fp16 and device.startswith("cuda")) else torch.float32
        self.net.to(self.dtype)
        self.name = net.cfg.role

    @staticmethod
    def from_checkpoint(path, cfg, device: str) -> "LearnedFusion":
        m = cfg.model
        text = CachedTextEncoder(make_text_encoder(m.text_encoder, m.clip_model, m.clip_checkpoint, device))
        net = load_fusion_net(path, text.encoder)
        if net.cfg.role != m.variant:
            raise CheckpointError(f"{path}: is a {net.cfg.role} fusion checkpoint, but model.variant is {m.variant!r}")
        return LearnedFusion(net, text, device, cfg.runtime.fp16)

    @torch.inference_mode()
    def __call__(self, rgb: np.ndarray, thermal01: np.ndarray, caption: str = "") -> np.ndarray:
        vis = torch.from_numpy(rgb).permute(2, 0, 1)[None].to(self.device, self.dtype) / 255.0
        ir = torch.from_numpy(np.ascontiguousarray(thermal01, dtype=np.float32))[None, None].to(self.device, self.dtype)
        emb = self.text([caption]).to(self.device, self.dtype)
        h, w = rgb.shape[:2]
        pad_h, pad_w = (-h) % 8, (-w) % 8     # the denoiser halves the size twice; pad, then crop back
        if pad_h or pad_w:
            vis = torch.nn.functional.pad(vis, (0, pad_w, 0, pad_h), mode="replicate")
            ir = torch.nn.functional.pad(ir, (0, pad_w, 0, pad_h), mode="replicate")
        out = self.net(vis, ir, emb)[0, :, :h, :w]
        return (out.float().clamp(0, 1) * 255 + 0.5).byte().permute(1, 2, 0).cpu().numpy()
