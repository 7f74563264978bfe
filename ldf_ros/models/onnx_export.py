"""Export the project's networks to ONNX, with their config in the file's metadata, so
onnxruntime (CPU, CUDA, TensorRT) can run what was trained here."""
from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from ldf_ros.models.depth_net import DepthNet

# Part of the name of every cached export: a change to what the exporters write (the depth
# network's free batch axis) exports the shipped checkpoints again instead of reusing old files.
EXPORT_VERSION = 2


class _DepthOnly(nn.Module):
    """image (B, C, H, W) in [0, 1] -> depth (B, 1, H, W) in meters."""

    def __init__(self, net: DepthNet):
        super().__init__()
        self.net = net

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.net(image)["depth"]


def _half_copy(net: nn.Module, fp16: bool) -> nn.Module:
    """The network to trace: itself, or a float16 copy (inputs, weights and outputs in half
    precision, for the CUDA provider; TensorRT builds fp16 engines from the fp32 file)."""
    import copy
    return copy.deepcopy(net).half().eval() if fp16 else net.eval()


def _write_metadata(path: Path, key: str, config: dict, fp16: bool) -> None:
    import onnx

    model = onnx.load(str(path))
    for k, v in ((key, json.dumps(config)), ("ldf_ros.precision", "fp16" if fp16 else "fp32")):
        entry = model.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.save(model, str(path))


def export_depth_onnx(net: DepthNet, path: str | Path, dynamic: bool = True, opset: int = 17, fp16: bool = False) -> Path:
    """Write `net` as ONNX (input `image`, output `depth`); `dynamic` leaves the batch, height
    and width free (a batch of two runs an image and its mirror in one call)."""
    import warnings

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cfg = net.cfg
    example = torch.rand(1, cfg.in_channels, cfg.input_height, cfg.input_width, dtype=torch.float16 if fp16 else torch.float32)
    free = {0: "batch", 2: "height", 3: "width"}
    axes = {"image": free, "depth": free} if dynamic else None
    with warnings.catch_warnings(), torch.no_grad():     # the exporter's notes on constant folding and deprecation
        warnings.simplefilter("ignore")
        torch.onnx.export(_DepthOnly(_half_copy(net, fp16)), (example,), str(path), input_names=["image"],
                          output_names=["depth"], dynamic_axes=axes, opset_version=opset, dynamo=False)
    _write_metadata(path, "ldf_ros.depth_config", cfg.to_dict(), fp16)
    return path


class _Fusion(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, visible: torch.Tensor, infrared: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        return self.net(visible, infrared, text)


def export_fusion_onnx(net, path: str | Path, opset: int = 17, fp16: bool = False) -> Path:
    """Write a single-pass fusion network as ONNX: inputs `visible` (1, 3, H, W) and `infrared`
    (1, 1, H, W) in [0, 1] (H, W multiples of 8, dynamic) and `text` (1, D), the caption
    embedding (the text encoder stays outside); output `fused` (1, 3, H, W) in [0, 1]."""
    import warnings

    if net.cfg.role != "student":
        raise ValueError("only the single-pass student exports to ONNX (the teacher runs a diffusion model)")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    dtype = torch.float16 if fp16 else torch.float32
    v, i = torch.rand(1, 3, 64, 80, dtype=dtype), torch.rand(1, 1, 64, 80, dtype=dtype)
    t = torch.randn(1, net.cfg.text_dim, dtype=dtype)
    axes = {"visible": {2: "height", 3: "width"}, "infrared": {2: "height", 3: "width"}, "fused": {2: "height", 3: "width"}}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(_Fusion(_half_copy(net, fp16)), (v, i, t), str(path), input_names=["visible", "infrared", "text"],
                          output_names=["fused"], dynamic_axes=axes, opset_version=opset, dynamo=False)
    _write_metadata(path, "ldf_ros.fusion_config", net.cfg.to_dict(), fp16)
    return path
