"""`ldf-ros fuse` and `ldf-ros eval depth` end to end on small inputs."""
import json

import cv2
import numpy as np

from ldf_ros.cli import main


def test_fuse_writes_one_color_png_per_pair(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for d in ("vi", "ir"):
        (tmp_path / d).mkdir()
    for name in ("a", "b"):
        cv2.imwrite(str(tmp_path / "vi" / f"{name}.png"), rng.integers(0, 255, (50, 70, 3), dtype=np.uint8))
        cv2.imwrite(str(tmp_path / "ir" / f"{name}.png"), rng.integers(0, 255, (50, 70), dtype=np.uint8))
    cfg = tmp_path / "p.yaml"
    cfg.write_text("/**/ldf_fusion:\n  ros__parameters:\n    model: {depth_visible_weights: none.safetensors, "
                   "depth_thermal_weights: none.safetensors}\n")
    assert main(["fuse", "--vi", str(tmp_path / "vi"), "--ir", str(tmp_path / "ir"), "--out", str(tmp_path / "out"),
                 "--variant", "classical", "--caption", "--config", str(cfg)]) == 0
    out = cv2.imread(str(tmp_path / "out" / "a.png"))
    assert out.shape == (50, 70, 3)
    assert (tmp_path / "out" / "b_caption.txt").read_text().count(";") == 2
    assert main(["fuse", "--vi", str(tmp_path / "vi"), "--ir", str(tmp_path / "nope"), "--out", str(tmp_path / "o2"),
                 "--variant", "classical"]) == 2
    assert "nope" in capsys.readouterr().err


def test_eval_depth_on_a_synth_folder(tmp_path, capsys):
    import torch

    from ldf_ros.models.checkpoint import save_checkpoint
    from ldf_ros.models.depth_net import DepthNet, student_config
    torch.manual_seed(0)
    paths = []
    for m in ("visible", "thermal"):
        net = DepthNet(student_config(m))
        paths.append(str(save_checkpoint(tmp_path / f"{m}.safetensors", net, "depth", net.cfg.to_dict())))
    assert main(["synth", "--out", str(tmp_path / "s"), "--frames", "1", "--conditions", "night"]) == 0
    assert main(["eval", "depth", "--models", ",".join(paths), "--data", str(tmp_path / "s"),
                 "--out", str(tmp_path / "r")]) == 0
    text = capsys.readouterr().out
    assert "| night | visible_student |" in text and "| night | blend |" in text
    assert (tmp_path / "r" / "panel_night.png").is_file() and (tmp_path / "r" / "metrics.csv").is_file()
    robust = json.loads((tmp_path / "r" / "summary.json").read_text())["robust"]["night"]["visible_student"]
    assert robust["worst_abs_rel"] >= robust["abs_rel_median"] > 0 and robust["worst_frame"] in text


def test_worst_frames_name_the_outlier_that_moves_the_mean():
    from ldf_ros.evaluation.depth_report import worst_frames

    rows = [{"condition": "night", "method": "m", "frame": f"f{i}", "abs_rel": 0.1} for i in range(9)]
    rows.append({"condition": "night", "method": "m", "frame": "blinded", "abs_rel": 4.0})
    w = worst_frames(rows)["night"]["m"]
    assert w == {"abs_rel_median": 0.1, "worst_frame": "blinded", "worst_abs_rel": 4.0}


def test_eval_fusion_takes_any_checkpoint_with_its_own_text_encoder(tmp_path, capsys):
    """Ablation checkpoints (here trained without text) are evaluated by path, side by side."""
    from ldf_ros.models.fusion_net import FusionNet, FusionNetConfig
    from ldf_ros.models.text import NullTextEncoder
    from ldf_ros.training.fusion import save_fusion_checkpoint

    rng = np.random.default_rng(0)
    for d in ("vi", "ir"):
        (tmp_path / d).mkdir()
    cv2.imwrite(str(tmp_path / "vi" / "a.png"), rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    cv2.imwrite(str(tmp_path / "ir" / "a.png"), rng.integers(0, 255, (48, 64), dtype=np.uint8))
    net = FusionNet(FusionNetConfig(role="student", text_encoder="none", student_widths=(8, 16)))
    ckpt = save_fusion_checkpoint(net, tmp_path / "no_text.safetensors", NullTextEncoder(384).identity)
    cfg = tmp_path / "p.yaml"
    cfg.write_text("/**/ldf_fusion:\n  ros__parameters:\n    model: {depth_visible_weights: none.safetensors, "
                   "depth_thermal_weights: none.safetensors, text_encoder: minilm}\n")
    assert main(["eval", "fusion", "--vi", str(tmp_path / "vi"), "--ir", str(tmp_path / "ir"), "--out",
                 str(tmp_path / "r"), "--config", str(cfg), "--methods", f"average,no_text={ckpt}"]) == 0
    assert set(json.loads((tmp_path / "r" / "summary.json").read_text())) == {"average", "no_text"}
    assert main(["eval", "fusion", "--vi", str(tmp_path / "vi"), "--ir", str(tmp_path / "ir"), "--out",
                 str(tmp_path / "r2"), "--methods", f"x={tmp_path / 'missing.safetensors'}"]) == 2
    assert "missing.safetensors" in capsys.readouterr().err


def test_bench_models_times_every_shipped_network(capsys):
    assert main(["bench", "models", "--variants", "student", "--sizes", "96x64", "--repeats", "2",
                 "--backends", "torch,onnxruntime"]) == 0
    rows = [line.split("|") for line in capsys.readouterr().out.splitlines() if line.startswith("| fusion") or line.startswith("| depth")]
    assert [(r[1].strip(), r[3].strip()) for r in rows] == [(m, b) for m in ("fusion student", "depth visible", "depth thermal")
                                                            for b in ("onnxruntime", "torch")]
    assert all(float(r[6]) > 0 and float(r[7]) >= float(r[6]) for r in rows)
    assert main(["bench", "models", "--precisions", "fp16"]) != 0   # fp16 is a CUDA measurement


def test_bench_models_times_a_reference_command_and_names_a_missing_provider(capsys, tmp_path):
    """A reference method is any command given the pair's files; a provider this machine lacks
    falls back, and the row names the one that ran."""
    import sys
    copy = f"{sys.executable} -c \"import shutil, sys; shutil.copy(sys.argv[1], sys.argv[2])\" {{vi}} {{out}}/fused.png"
    assert main(["bench", "models", "--variants", "student", "--sizes", "96x64", "--repeats", "2",
                 "--backends", "onnxruntime", "--onnx-providers", "tensorrt", "--reference", f"copy={copy}"]) == 0
    out = capsys.readouterr().out
    rows = [line.split("|") for line in out.splitlines() if line.startswith("| fusion student")]
    assert rows and rows[0][4].strip() == "cpu"               # no TensorRT here: the CPU ran it
    ref = [line.split("|") for line in out.splitlines() if line.startswith("| copy |")]
    assert ref and float(ref[0][2]) > 0 and "x (onnxruntime cpu fp32)" in ref[0][3]
    assert main(["bench", "models", "--sizes", "96x64", "--repeats", "1", "--reference", "broken=exit 3"]) != 0
    assert "exited 3" in capsys.readouterr().err
