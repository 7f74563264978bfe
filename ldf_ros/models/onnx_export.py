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
