"""Export the project's networks to ONNX, with their config in the file's metadata, so
onnxruntime (CPU, CUDA, TensorRT) can run what was trained here."""
from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from ldf_ros.models.depth_net import DepthNet


class _DepthOnly(nn.Module):
    """image (B, C, H, W) in [0, 1] -> depth (B, 1, H, W) in meters."""

    def __init__(self, net: DepthNet):
        super().__init__()
        self.net = net

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.net(image)["depth"]


def export_depth_onnx(net: DepthNet, path: str | Path, dynamic: bool = True, opset: int = 17) -> Path:
    """Write `net` as ONNX (input `image`, output `depth`); `dynamic` leaves height and width free."""
    import warnings

    import onnx

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cfg = net.cfg
    example = torch.rand(1, cfg.in_channels, cfg.input_height, cfg.input_width)
    axes = {"image": {2: "height", 3: "width"}, "depth": {2: "height", 3: "width"}} if dynamic else None
    with warnings.catch_warnings():     # the exporter's notes on constant folding and deprecation
        warnings.simplefilter("ignore")
        torch.onnx.export(_DepthOnly(net.eval()), (example,), str(path), input_names=["image"], output_names=["depth"],
                          dynamic_axes=axes, opset_version=opset, dynamo=False)
    model = onnx.load(str(path))
    entry = model.metadata_props.add()
    entry.key, entry.value = "ldf_ros.depth_config", json.dumps(cfg.to_dict())
    onnx.save(model, str(path))
    return path


class _Fusion(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, visible: torch.Tensor, infrared: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        return self.net(visible, infrared, text)


def export_fusion_onnx(net, path: str | Path, opset: int = 17) -> Path:
    """Write a single-pass fusion network as ONNX: inputs `visible` (1, 3, H, W) and `infrared`
    (1, 1, H, W) in [0, 1] (H, W multiples of 8, dynamic) and `text` (1, D), the caption
    embedding (the text encoder stays outside); output `fused` (1, 3, H, W) in [0, 1]."""
    import warnings

    import onnx

    if net.cfg.role != "student":
        raise ValueError("only the single-pass student exports to ONNX (the teacher runs a diffusion model)")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    v, i, t = torch.rand(1, 3, 64, 80), torch.rand(1, 1, 64, 80), torch.randn(1, net.cfg.text_dim)
    axes = {"visible": {2: "height", 3: "width"}, "infrared": {2: "height", 3: "width"}, "fused": {2: "height", 3: "width"}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(_Fusion(net.eval()), (v, i, t), str(path), input_names=["visible", "infrared", "text"],
                          output_names=["fused"], dynamic_axes=axes, opset_version=opset, dynamo=False)
    model = onnx.load(str(path))
    entry = model.metadata_props.add()
    entry.key, entry.value = "ldf_ros.fusion_config", json.dumps(net.cfg.to_dict())
    onnx.save(model, str(path))
    return path
