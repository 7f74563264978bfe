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
        vis, ir, (h, w) = _padded_inputs(rgb, thermal01, self.device, self.dtype)
        emb = self.text([caption]).to(self.device, self.dtype)
        return _to_uint8(self.net(vis, ir, emb)[0, :, :h, :w])


def _padded_inputs(rgb: np.ndarray, thermal01: np.ndarray, device: str = "cpu", dtype=torch.float32):
    """(visible (1, 3, H', W'), infrared (1, 1, H', W'), (H, W)): [0, 1] tensors on `device`
    (the uint8 image crosses to it before conversion), padded by edge replication to multiples
    of 8 (the networks halve the size three times); crop back to (H, W)."""
    vis = torch.from_numpy(rgb).to(device).permute(2, 0, 1)[None].to(dtype) / 255.0
    ir = torch.from_numpy(np.ascontiguousarray(thermal01, dtype=np.float32))[None, None].to(device, dtype)
    h, w = rgb.shape[:2]
    pad_h, pad_w = (-h) % 8, (-w) % 8
    if pad_h or pad_w:
        vis = torch.nn.functional.pad(vis, (0, pad_w, 0, pad_h), mode="replicate")
        ir = torch.nn.functional.pad(ir, (0, pad_w, 0, pad_h), mode="replicate")
    return vis, ir, (h, w)


def _to_uint8(out: torch.Tensor) -> np.ndarray:
    """(3, H, W) in [0, 1] -> (H, W, 3) uint8."""
    return (out.float().clamp(0, 1) * 255 + 0.5).byte().permute(1, 2, 0).cpu().numpy()


class OrtFusion:
    """The fusion student run by onnxruntime: exported once from its checkpoint into the cache
    (file named by the checkpoint's hash, so a new checkpoint exports again), same call and
    output as `LearnedFusion`; the caption embedding is computed outside and fed in."""

    def __init__(self, checkpoint, cfg, text: CachedTextEncoder, check_text: bool = True):
        from ldf_ros.models.onnx_export import export_fusion_onnx
        from ldf_ros.runtime.onnx_depth import OnnxDepthSettings, cached_export, open_session

        net = load_fusion_net(checkpoint, text.encoder if check_text else None)
        if net.cfg.role != "student":
            raise CheckpointError(f"{checkpoint}: runtime.backend onnxruntime runs the fusion student only")
        import onnxruntime as ort
        # fp16 on a GPU: a half-precision file for the CUDA provider (TensorRT builds fp16 engines either way)
        half = cfg.runtime.fp16 and "CUDAExecutionProvider" in ort.get_available_providers() \
            and cfg.runtime.onnx_provider != "cpu"
        path = cached_export(checkpoint, "fusion_student-fp16" if half else "fusion_student",
                             lambda out: export_fusion_onnx(net, out, fp16=half), cfg)
        self.session, self.problem = open_session(path, OnnxDepthSettings.from_config(cfg), cfg.runtime.num_threads)
        self.providers = self.session.get_providers()
        self.dtype = np.float16 if "float16" in self.session.get_inputs()[0].type else np.float32
        self.text, self.path, self.name = text, path, "student"

    def __call__(self, rgb: np.ndarray, thermal01: np.ndarray, caption: str = "") -> np.ndarray:
        vis, ir, (h, w) = _padded_inputs(rgb, thermal01)
        emb = self.text([caption]).float().cpu().numpy()
        feed = {"visible": vis.numpy(), "infrared": ir.numpy(), "text": emb}
        out = self.session.run(None, {k: v.astype(self.dtype, copy=False) for k, v in feed.items()})[0]
        return _to_uint8(torch.from_numpy(out.astype(np.float32, copy=False))[0, :, :h, :w])
