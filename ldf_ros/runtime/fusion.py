"""Fusion backends behind one call: (rgb uint8, thermal in [0, 1], caption) -> fused rgb uint8.

`classical` needs no weights (Laplacian-pyramid fusion of luminance, visible chroma kept);
`student` and `teacher` are the learned LDFusion models. When a learned model cannot be
loaded, the pipeline falls back to `classical` and says why, so a robot still gets an image.
"""
from __future__ import annotations

import numpy as np

from ldf_ros.config import FusionConfig, resolve_path
from ldf_ros.runtime.classical_fusion import laplacian_pyramid_fusion


class ClassicalFusion:
    name = "classical"

    def __call__(self, rgb: np.ndarray, thermal01: np.ndarray, caption: str = "") -> np.ndarray:
        ir = np.clip(np.round(thermal01 * 255.0), 0, 255).astype(np.uint8)
        return laplacian_pyramid_fusion(rgb, ir)


def load_fusion_backend(cfg: FusionConfig, device: str):
    """(backend, problem): problem is None, or the message explaining a fallback to classical."""
    if cfg.model.variant == "classical":
        return ClassicalFusion(), None
    path = resolve_path(cfg.model.fusion_weights or f"models/fusion_{cfg.model.variant}.safetensors")
    try:
        from ldf_ros.runtime.learned_fusion import LearnedFusion
        if _use_onnxruntime(cfg, device):
            backend, problem = _onnxruntime_fusion(path, cfg)
            if backend is not None:
                return backend, problem
        else:
            problem = None
        return LearnedFusion.from_checkpoint(path, cfg, device), problem
    except (ImportError, ValueError) as exc:   # CheckpointError is a ValueError
        return ClassicalFusion(), f"fusion variant {cfg.model.variant!r} unavailable, using classical: {exc}"


def onnxruntime_wanted(cfg: FusionConfig, device: str) -> bool:
    """runtime.backend: onnxruntime asked for, or auto on the CPU with onnxruntime installed
    (on CUDA, PyTorch runs the networks; onnxruntime's CUDA/TensorRT providers are opt-in)."""
    if cfg.runtime.backend != "auto":
        return cfg.runtime.backend == "onnxruntime"
    if device != "cpu":
        return False
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def _use_onnxruntime(cfg: FusionConfig, device: str) -> bool:
    """The fusion network on onnxruntime: only the student exports (auto leaves the teacher on PyTorch)."""
    if cfg.runtime.backend == "auto" and cfg.model.variant != "student":
        return False
    return onnxruntime_wanted(cfg, device)


def _onnxruntime_fusion(path, cfg: FusionConfig):
    """(OrtFusion or None, problem): None falls back to PyTorch (the teacher, no onnxruntime)."""
    if cfg.model.variant != "student":
        return None, f"runtime.backend onnxruntime runs the fusion student only; the {cfg.model.variant} runs in PyTorch"
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return None, "runtime.backend onnxruntime: onnxruntime is not installed; the fusion runs in PyTorch"
    from ldf_ros.models.text import make_text_encoder
    from ldf_ros.runtime.learned_fusion import CachedTextEncoder, OrtFusion
    m = cfg.model
    text = CachedTextEncoder(make_text_encoder(m.text_encoder, m.clip_model, m.clip_checkpoint, "cpu"))
    backend = OrtFusion(path, cfg, text)
    return backend, backend.problem
