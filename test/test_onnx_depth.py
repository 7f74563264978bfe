"""The ONNX depth backend: export of the project's network, onnxruntime against PyTorch, the
road-plane scale for relative models, clear errors, and the pipeline with an .onnx branch."""
import json

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
from ldf_ros.config import load_config  # noqa: E402
from ldf_ros.models.depth_net import DepthNet, DepthNetConfig  # noqa: E402
from ldf_ros.models.onnx_export import export_depth_onnx  # noqa: E402
from ldf_ros.runtime.depth import DepthPredictor  # noqa: E402
from ldf_ros.runtime.onnx_depth import (OnnxDepthError, OnnxDepthPredictor, OnnxDepthSettings,  # noqa: E402
                                        choose_providers, road_plane_depth)

TINY = dict(widths=(8, 8, 8, 8, 8), input_width=64, input_height=64)


def _net(modality="visible"):
    torch.manual_seed(0)
    return DepthNet(DepthNetConfig(modality=modality, **TINY)).eval()


def _metric_settings(**kw):
    return OnnxDepthSettings(**({"input_width": 64, "input_height": 64, "mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0),
                                 "output": "metric", "provider": "cpu"} | kw))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    net = _net()
    return net, export_depth_onnx(net, tmp_path_factory.mktemp("onnx") / "depth.onnx")


def test_onnxruntime_matches_pytorch_at_the_input_size(exported):
    net, path = exported
    rgb = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    ours = OnnxDepthPredictor(path, "visible", _metric_settings())(rgb)
    ref = DepthPredictor(net)(rgb)
    assert ours.shape == (64, 64) and np.isfinite(ours).all()
    np.testing.assert_allclose(ours, ref, rtol=1e-4)


def test_the_exported_depth_network_takes_a_batch(exported):
    """An image and its mirror run as one batch of two: the same depth as two runs of one."""
    import onnxruntime as ort
    _, path = exported
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).random((2, 3, 64, 96), dtype=np.float32)
    both = session.run(None, {"image": x})[0]
    apart = np.concatenate([session.run(None, {"image": x[i:i + 1]})[0] for i in range(2)])
    assert both.shape == (2, 1, 64, 96)
    np.testing.assert_allclose(both, apart, rtol=1e-5)


def test_the_exported_file_carries_the_model_config(exported):
    import json

    import onnx
    _, path = exported
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert json.loads(meta["ldf_ros.depth_config"])["input_width"] == 64


def test_thermal_images_and_windows_and_spread(exported):
    _, path = exported
    pred = OnnxDepthPredictor(path, "thermal", _metric_settings())
    thermal = np.random.default_rng(1).integers(28000, 31000, (48, 80)).astype(np.uint16)
    depth, spread = pred(thermal, window=(10, 4, 70, 44), spread=True)
    assert depth.shape == (48, 80) and np.isnan(depth[:, :10]).all() and np.isfinite(depth[4:44, 10:70]).all()
    assert np.all(spread[4:44, 10:70] >= 0)


def test_relative_inverse_depth_is_put_in_meters_by_the_road_plane():
    h, w, fy, cy, cam_h = 120, 160, 100.0, 60.0, 1.5
    v = np.arange(h, dtype=np.float64)[:, None] + 0.5
    true = np.where(v > cy + 1, fy * cam_h / np.maximum(v - cy, 1e-6), 80.0) * np.ones((1, w))
    true = np.minimum(true, 80.0)
    disparity = 3.0 * (1.0 / true) + 0.02               # affine-invariant: unknown scale and shift
    disparity[100:110, 70:90] = 3.0 / 4.0 + 0.02         # a car 4 m ahead on the road: an outlier to the fit
    depth = road_plane_depth(disparity, fy, cy, cam_h)
    road = (v[:, 0] > 80) & (v[:, 0] < 100)
    np.testing.assert_allclose(depth[road], true[road], rtol=0.02)
    assert depth[105, 80] == pytest.approx(4.0, rel=0.05)


def test_bad_files_fixed_sizes_and_missing_providers_give_clear_errors(tmp_path, exported):
    with pytest.raises(OnnxDepthError, match="no such ONNX file"):
        OnnxDepthPredictor(tmp_path / "missing.onnx", "visible")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x08\x07not a protobuf" * 50)
    with pytest.raises(OnnxDepthError, match="not a usable ONNX model"):
        OnnxDepthPredictor(junk, "visible")
    fixed = export_depth_onnx(_net(), tmp_path / "fixed.onnx", dynamic=False)
    with pytest.raises(OnnxDepthError, match="fixed at 64x64 but onnx_depth.input_width x input_height is 518x518"):
        OnnxDepthPredictor(fixed, "visible", OnnxDepthSettings(provider="cpu"))
    providers, problem = choose_providers("cuda", ["CPUExecutionProvider"], OnnxDepthSettings())
    assert providers == ["CPUExecutionProvider"] and "CUDAExecutionProvider is not available" in problem
    providers, problem = choose_providers("auto", ["TensorrtExecutionProvider", "CUDAExecutionProvider",
                                                   "CPUExecutionProvider"], OnnxDepthSettings(engine_cache_dir=str(tmp_path / "trt")))
    assert providers[0][0] == "TensorrtExecutionProvider" and providers[0][1]["trt_engine_cache_enable"]
    assert problem is None and (tmp_path / "trt").is_dir()
    pred = OnnxDepthPredictor(fixed, "visible", _metric_settings(provider="cuda"))
    assert pred.providers == ["CPUExecutionProvider"] and "not available" in pred.problem


def test_the_pipeline_runs_an_onnx_branch_and_names_a_broken_one(tmp_path, exported):
    from ldf_ros.runtime.pipeline import FusionPipeline
    _, path = exported
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"junk" * 100)
    cfg = load_config(None, {"model.variant": "classical", "model.depth_visible_weights": str(path),
                             "model.depth_thermal_weights": str(junk), "registration.mode": "identity",
                             "runtime.warmup_runs": 0, "onnx_depth.input_width": 64, "onnx_depth.input_height": 64,
                             "onnx_depth.output": "metric", "onnx_depth.mean": [0.0, 0.0, 0.0],
                             "onnx_depth.std": [1.0, 1.0, 1.0], "runtime.onnx_provider": "cpu"})
    logs = []
    pipe = FusionPipeline(cfg, log=lambda level, msg: logs.append(msg))
    assert pipe.depth_visible is not None and pipe.depth_thermal is None
    assert any("thermal depth disabled" in p and "junk.onnx" in p for p in pipe.problems)
    rgb = np.random.default_rng(0).integers(0, 255, (96, 128, 3), dtype=np.uint8)
    result = pipe.process(rgb, rgb[..., 0].astype(np.uint16) * 100, None, None)
    assert result.depth.shape == (96, 128) and np.isfinite(result.depth).all()


def _onnx_params(path, tmp_path):
    cfg = tmp_path / "onnx.yaml"
    cfg.write_text("/**/ldf_fusion:\n  ros__parameters:\n"
                   f"    model: {{depth_visible_weights: {path}, depth_thermal_weights: {path}}}\n"
                   "    onnx_depth: {input_width: 64, input_height: 64, output: metric, mean: [0.0, 0.0, 0.0], "
                   "std: [1.0, 1.0, 1.0]}\n    runtime: {warmup_runs: 0, onnx_provider: cpu}\n")
    return cfg


def test_fuse_depth_with_an_onnx_branch(tmp_path, exported):
    import cv2

    from ldf_ros.cli import main
    _, path = exported
    rng = np.random.default_rng(0)
    for d in ("vi", "ir"):
        (tmp_path / d).mkdir()
    cv2.imwrite(str(tmp_path / "vi" / "a.png"), rng.integers(0, 255, (60, 80, 3), dtype=np.uint8))
    cv2.imwrite(str(tmp_path / "ir" / "a.png"), rng.integers(0, 255, (60, 80), dtype=np.uint8))
    assert main(["fuse", "--vi", str(tmp_path / "vi"), "--ir", str(tmp_path / "ir"), "--out", str(tmp_path / "out"),
                 "--variant", "classical", "--depth", "--config", str(_onnx_params(path, tmp_path))]) == 0
    depth = np.load(tmp_path / "out" / "a_depth.npy")
    assert depth.shape == (60, 80) and np.isfinite(depth).all()


@pytest.mark.ros
def test_the_node_publishes_depth_from_onnx_branches(tmp_path, exported):
    pytest.importorskip("rclpy")
    from node_harness import NodeHarness, camera_images, stamp_of
    _, path = exported
    h = NodeHarness({"model.variant": "classical", "outputs.points": False, "outputs.diagnostics_period_s": 0.5},
                    node_args=["--params-file", str(_onnx_params(path, tmp_path))])
    try:
        h.wait_ready()
        rgb, thermal = camera_images()
        h.send_pair(60 * 10**9, rgb, thermal)
        assert h.wait_fused(60 * 10**9)
        assert h.spin_until(lambda: any(stamp_of(m) == 60 * 10**9 for m in h.out.depth), 60)
        assert h.wait_diag(lambda st: st.message == "ok" or "stalled" in st.message)   # not degraded
    finally:
        log = h.stop()
    assert "ONNX model" in log and "depth disabled" not in log


def test_export_command_writes_and_checks_onnx_files(tmp_path, capsys):
    from ldf_ros.cli import main
    from ldf_ros.models.checkpoint import save_checkpoint
    net = _net("thermal")
    ckpt = save_checkpoint(tmp_path / "tiny_thermal.safetensors", net, "depth", net.cfg.to_dict())
    assert main(["export", "--models", str(ckpt), "--out", str(tmp_path / "onnx")]) == 0
    assert (tmp_path / "onnx" / "tiny_thermal.onnx").is_file()
    diff = float(capsys.readouterr().out.split("max |diff| ")[1].split(" m")[0])
    assert diff < 1e-3


def test_export_of_the_fusion_student_fp32_and_fp16_on_a_real_pair(tmp_path, capsys, roadscene):
    """The student's ONNX file (fp32 and half precision) against PyTorch on a RoadScene pair;
    the file says its config and precision."""
    import onnx

    from ldf_ros.cli import main
    from ldf_ros.models.checkpoint import save_checkpoint
    from ldf_ros.models.fusion_net import FusionNet, FusionNetConfig
    torch.manual_seed(0)
    net = FusionNet(FusionNetConfig(role="student", student_arch="guided", student_widths=(8, 8, 16, 16), text_dim=16))
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.1)
    ckpt = save_checkpoint(tmp_path / "tiny_fusion.safetensors", net, "fusion", {**net.cfg.to_dict(), "text": {}})
    name = sorted((roadscene / "val" / "vi").iterdir())[0].name
    pair = f"{roadscene / 'val' / 'vi' / name},{roadscene / 'val' / 'ir' / name}"
    for flag, tolerance in (([], 1.0), (["--fp16"], 4.0)):
        assert main(["export", "--models", str(ckpt), "--check-pair", pair, "--out", str(tmp_path / "onnx"), *flag]) == 0
        printed = capsys.readouterr().out
        assert name in printed
        diff = float(printed.split("max |diff| ")[1].split(" gray")[0])
        assert diff <= tolerance, (flag, diff)
    model = onnx.load(str(tmp_path / "onnx" / "tiny_fusion-fp16.onnx"))
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["ldf_ros.precision"] == "fp16" and json.loads(meta["ldf_ros.fusion_config"])["student_arch"] == "guided"
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT16


@pytest.mark.parametrize("arch,widths,downscale", [("unet", (8, 16, 16), 2), ("guided", (8, 8, 16, 16), 2),
                                                   ("guided", (8, 8, 16, 16), 4)])
def test_fusion_student_on_onnxruntime_matches_pytorch(tmp_path, arch, widths, downscale):
    """runtime.backend onnxruntime: the student exported once into the cache, the same image."""
    from ldf_ros.models.checkpoint import save_checkpoint
    from ldf_ros.models.fusion_net import FusionNet, FusionNetConfig
    from ldf_ros.runtime.pipeline import FusionPipeline
    torch.manual_seed(0)
    net = FusionNet(FusionNetConfig(role="student", student_arch=arch, student_widths=widths, text_dim=384,
                                    guided_downscale=downscale))
    for p in net.parameters():                     # zero-initialized layers would hide a wrong export
        torch.nn.init.normal_(p, std=0.1)
    cfg_dict = {**net.cfg.to_dict(), "text": {"encoder": "none", "dim": 384}}
    ckpt = save_checkpoint(tmp_path / "fusion_student.safetensors", net, "fusion", cfg_dict)
    base = {"model.variant": "student", "model.fusion_weights": str(ckpt), "model.text_encoder": "none",
            "registration.mode": "identity", "outputs.depth": False, "outputs.points": False, "runtime.warmup_runs": 0,
            "runtime.onnx_cache_dir": str(tmp_path / "cache"), "runtime.onnx_provider": "cpu"}
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (60, 84, 3), dtype=np.uint8)          # not multiples of 8: padded and cropped
    thermal = rng.integers(0, 255, (60, 84), dtype=np.uint8)
    ref = FusionPipeline(load_config(None, base)).process(rgb, thermal, None, None).fused
    pipe = FusionPipeline(load_config(None, {**base, "runtime.backend": "onnxruntime"}))
    assert type(pipe.fusion).__name__ == "OrtFusion" and not pipe.problems
    got = pipe.process(rgb, thermal, None, None).fused
    assert got.shape == ref.shape and np.abs(got.astype(int) - ref.astype(int)).max() <= 1
    assert len(list((tmp_path / "cache").glob("fusion_student-*.onnx"))) == 1


def test_shipped_depth_checkpoints_run_on_onnxruntime_with_the_same_depth(tmp_path):
    """runtime.backend onnxruntime: the depth checkpoints are exported once into the cache and
    give the PyTorch depth (same resizing, flip consistency and rescaling around the network)."""
    from ldf_ros.runtime.pipeline import FusionPipeline
    base = {"registration.mode": "identity", "runtime.warmup_runs": 0, "outputs.points": False,
            "model.variant": "classical", "runtime.onnx_cache_dir": str(tmp_path / "cache"), "runtime.onnx_provider": "cpu"}
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (90, 120, 3), dtype=np.uint8)
    thermal = rng.integers(0, 255, (90, 120), dtype=np.uint8)
    ref = FusionPipeline(load_config(None, {**base, "runtime.backend": "torch"})).process(rgb, thermal, None, None)
    pipe = FusionPipeline(load_config(None, {**base, "runtime.backend": "onnxruntime"}))
    assert type(pipe.depth_visible.model).__name__ == "ExportedDepthNet" and not pipe.problems
    assert pipe._depth_pool is not None          # one core per branch, the two side by side
    got = pipe.process(rgb, thermal, None, None)
    for key in ("depth_visible", "depth_thermal", "depth"):
        a, b = getattr(ref, key), getattr(got, key)
        assert np.array_equal(np.isfinite(a), np.isfinite(b)), key
        ok = np.isfinite(a)
        assert np.abs(np.log(a[ok]) - np.log(b[ok])).max() < 1e-3, key
    assert len(list((tmp_path / "cache").glob("depth_*.onnx"))) == 2
