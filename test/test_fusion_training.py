"""Fusion training: losses, a step that lowers them, checkpoints, the learned backend, torchrun."""
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from ldf_ros.config import FusionTrainConfig
from ldf_ros.models.checkpoint import CheckpointError
from ldf_ros.models.depth_net import DepthNet, student_config
from ldf_ros.models.fusion_net import FusionNet, FusionNetConfig
from ldf_ros.models.layers import luma
from ldf_ros.models.text import CachedTextEncoder, NullTextEncoder
from ldf_ros.runtime.learned_fusion import LearnedFusion, load_fusion_net
from ldf_ros.training.fusion import FusionLoss, save_fusion_checkpoint, stronger_gradient_error


@pytest.fixture
def pair_folder(tmp_path):
    rng = np.random.default_rng(0)
    for d in ("vi", "ir"):
        (tmp_path / d).mkdir()
    for i in range(4):
        cv2.imwrite(str(tmp_path / "vi" / f"{i}.png"), rng.integers(0, 255, (40, 48, 3), dtype=np.uint8))
        cv2.imwrite(str(tmp_path / "ir" / f"{i}.png"), rng.integers(0, 255, (40, 48), dtype=np.uint8))
    return tmp_path


def test_fusion_losses_prefer_the_stronger_source_and_keep_visible_color():
    vis = torch.rand(2, 3, 32, 32) * 0.3
    ir = torch.rand(2, 1, 32, 32)
    loss = FusionLoss(FusionTrainConfig(depth_weight=0.0))
    y = luma(vis)
    target = vis + (torch.maximum(y, ir) - y)          # luminance of the stronger source, visible chroma
    assert loss(target, vis, ir)["intensity"].item() == pytest.approx(0.0, abs=1e-6)
    assert loss(target, vis, ir)["color"].item() == pytest.approx(0.0, abs=1e-6)
    assert loss(vis, vis, ir)["intensity"] > 0.05
    gray = ir.expand_as(vis)                           # the infrared image alone loses the color
    assert loss(gray, vis, ir)["color"] > loss(target, vis, ir)["color"] + 0.01


def test_gradient_loss_follows_the_stronger_source_with_its_sign():
    ramp = torch.linspace(0, 1, 24).view(1, 1, 1, 24).expand(1, 1, 24, 24)
    a = 0.25 * ramp                                    # weak edges along x
    b = ramp.transpose(-1, -2).contiguous()            # stronger edges along y
    assert stronger_gradient_error(b, a, b).item() == pytest.approx(0.0, abs=1e-6)
    assert stronger_gradient_error(b, b, a).item() == pytest.approx(0.0, abs=1e-6)
    assert stronger_gradient_error(a, a, b) > 0.05
    # the same edges with the opposite sign have the same magnitude but are not the sources' edges
    assert stronger_gradient_error(1 - b, a, b) > 0.05


def test_depth_driven_loss_is_zero_for_the_sources_themselves():
    torch.manual_seed(0)
    dv, dt = DepthNet(student_config("visible")).eval(), DepthNet(student_config("thermal")).eval()
    loss = FusionLoss(FusionTrainConfig(depth_weight=1.0), dv, dt)
    gray = torch.rand(1, 1, 64, 80)
    terms = loss(gray.expand(1, 3, 64, 80), gray.expand(1, 3, 64, 80), gray)
    assert terms["depth"].item() == pytest.approx(0.0, abs=1e-5)
    assert loss(torch.rand(1, 3, 64, 80), gray.expand(1, 3, 64, 80), gray)["depth"] > 0.001


def test_depth_driven_loss_does_not_reach_the_chroma():
    """Only the fused luminance goes through the depth branches: recoloring cannot lower the
    depth term (it did, through the visible branch, and the fused images took false colors)."""
    torch.manual_seed(0)
    dv, dt = DepthNet(student_config("visible")).eval(), DepthNet(student_config("thermal")).eval()
    loss = FusionLoss(FusionTrainConfig(depth_weight=1.0), dv, dt)
    vis, ir = 0.3 + 0.4 * torch.rand(1, 3, 64, 80), torch.rand(1, 1, 64, 80)
    fused = (0.3 + 0.4 * torch.rand(1, 3, 64, 80)).requires_grad_(True)
    loss(fused, vis, ir)["depth"].backward()
    grad = fused.grad
    assert grad.abs().sum() > 0
    per_pixel = grad.sum(1, keepdim=True)     # luminance changes move R, G, B alike
    # d(loss)/d(rgb) must be proportional to the luma weights: g_c = w_c * g_Y
    from ldf_ros.ops.color import LUMA_WEIGHTS
    g_y = per_pixel / sum(LUMA_WEIGHTS)
    expected = torch.cat([w * g_y for w in LUMA_WEIGHTS], 1)
    torch.testing.assert_close(grad, expected, atol=1e-7, rtol=1e-4)


def test_a_fusion_training_step_lowers_the_loss():
    torch.manual_seed(0)
    net = FusionNet(FusionNetConfig(role="student", text_dim=8, student_widths=(8, 16)))
    loss = FusionLoss(FusionTrainConfig(depth_weight=0.0))
    opt = torch.optim.Adam(net.parameters(), 3e-3)
    vis, ir, text = torch.rand(2, 3, 32, 32), torch.rand(2, 1, 32, 32), torch.randn(2, 8)
    values = []
    for _ in range(8):
        total = loss(net(vis, ir, text), vis, ir)["total"]
        opt.zero_grad()
        total.backward()
        opt.step()
        values.append(total.item())
    assert values[-1] < values[0]


def test_fusion_checkpoint_round_trip_and_text_encoder_mismatch(tmp_path):
    torch.manual_seed(0)
    net = FusionNet(FusionNetConfig(role="student", text_dim=384, text_encoder="none", student_widths=(8, 16)))
    path = save_fusion_checkpoint(net, tmp_path / "f.safetensors", NullTextEncoder(384).identity, step=1)
    loaded = load_fusion_net(path, NullTextEncoder(384))
    backend = LearnedFusion(loaded, CachedTextEncoder(NullTextEncoder(384)))
    rgb = np.random.default_rng(0).integers(0, 255, (37, 50, 3), dtype=np.uint8)
    out = backend(rgb, np.random.default_rng(1).random((37, 50)).astype(np.float32), "a dark scene")
    assert out.shape == (37, 50, 3) and out.dtype == np.uint8
    with pytest.raises(CheckpointError, match="trained with text encoder"):
        load_fusion_net(path, NullTextEncoder(512))


def test_torchrun_two_processes_train_the_denoiser(pair_folder, tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
           "-m", "ldf_ros.cli", "train", "diffusion", "--data", f"{pair_folder},{pair_folder}", "--steps", "3",
           "--out", str(tmp_path / "run"), "--threads", "1"]
    cfg = tmp_path / "d.yaml"
    cfg.write_text("batch_size: 2\ncrop: 32\nbase: 8\ncheckpoint_every: 3\n")
    proc = subprocess.run(cmd + ["--config", str(cfg)], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = (tmp_path / "run" / "log.csv").read_text().splitlines()
    assert len(log) == 4                         # header + 3 steps, written by rank 0 only
    from ldf_ros.models.diffusion import load_denoiser
    assert load_denoiser(tmp_path / "run" / "model.safetensors").cfg.base == 8


def test_fusion_training_validates_on_the_val_folder(pair_folder, tmp_path):
    cfg = tmp_path / "f.yaml"
    cfg.write_text(f"role: student\ndata: {pair_folder},{pair_folder}\nval_data: {pair_folder}\ndepth_visible: ''\n"
                   f"depth_thermal: ''\ntext_encoder: none\nbatch_size: 2\ncrop: 32\nsteps: 2\nval_every: 1\n")
    proc = subprocess.run([sys.executable, "-m", "ldf_ros.cli", "train", "fusion", "--config", str(cfg),
                           "--out", str(tmp_path / "run"), "--threads", "1"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    val = (tmp_path / "run" / "val.csv").read_text().splitlines()
    assert val[0].split(",") == ["step", "data", "EN", "SD", "SF", "AG", "MI", "SCD", "VIF", "Qabf", "SSIM"]
    assert [row.split(",")[:2] for row in val[1:]] == [["1", pair_folder.name], ["2", pair_folder.name]]
    assert sorted(p.name for p in (tmp_path / "run" / "snapshots").iterdir()) == ["step_000001.safetensors",
                                                                                   "step_000002.safetensors"]
    cfg.write_text(cfg.read_text().replace(f"val_data: {pair_folder}", f"val_data: {tmp_path / 'missing'}"))
    proc = subprocess.run([sys.executable, "-m", "ldf_ros.cli", "train", "fusion", "--config", str(cfg),
                           "--out", str(tmp_path / "run2")], capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "val_data" in proc.stderr


def test_fusion_training_is_deterministic_for_a_fixed_seed(pair_folder, tmp_path):
    from safetensors.torch import load_file

    from ldf_ros.training.fusion import train_fusion

    def run(name: str, seed: int) -> dict:
        cfg = FusionTrainConfig(role="student", data=str(pair_folder), val_data="", depth_visible="", depth_thermal="",
                                text_encoder="none", batch_size=2, crop=32, steps=3, seed=seed, threads=1,
                                out=str(tmp_path / name))
        return load_file(str(train_fusion(cfg, resume=False, progress=False)))

    threads = torch.get_num_threads()
    try:
        a, b, c = run("a", 0), run("b", 0), run("c", 1)
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_fine_tuning_starts_from_the_init_checkpoint_and_keeps_its_config(pair_folder, tmp_path):
    from safetensors.torch import load_file

    from ldf_ros.training.fusion import train_fusion

    torch.manual_seed(3)
    start = FusionNet(FusionNetConfig(role="student", text_encoder="none", student_widths=(8, 16, 24)))
    init = save_fusion_checkpoint(start, tmp_path / "init.safetensors", NullTextEncoder().identity)
    cfg = FusionTrainConfig(role="student", data=str(pair_folder), val_data="", depth_visible="", depth_thermal="",
                            text_encoder="none", batch_size=2, crop=32, steps=1, lr=1e-9, threads=1,
                            init=str(init), out=str(tmp_path / "tuned"))
    threads = torch.get_num_threads()
    try:
        tuned_path = train_fusion(cfg, resume=False, progress=False)
        tuned = load_file(str(tuned_path))
        assert load_fusion_net(tuned_path, None).cfg.student_widths == (8, 16, 24)
        assert all(torch.allclose(tuned[k], v, atol=1e-6) for k, v in start.state_dict().items())
        with pytest.raises(ValueError, match="init:.*student checkpoint, but this run trains a teacher"):
            train_fusion(FusionTrainConfig(**{**cfg.__dict__, "role": "teacher", "out": str(tmp_path / "t")}),
                         resume=False, progress=False)
    finally:
        torch.set_num_threads(threads)


def test_edge_preservation_error_rewards_keeping_the_source_edges():
    from ldf_ros.training.fusion import edge_preservation_error

    torch.manual_seed(0)
    a = torch.nn.functional.avg_pool2d(torch.rand(1, 1, 68, 68), 5, 1)
    blurred = torch.nn.functional.avg_pool2d(a, 5, 1, padding=2, count_include_pad=False)
    kept = edge_preservation_error(a, a, a).item()
    ceiling = 0.9994 / (1 + np.exp(-15 * 0.5)) * 0.9879 / (1 + np.exp(-22 * 0.2))   # Qabf of a perfect copy
    assert kept == pytest.approx(1 - ceiling, abs=1e-4)
    assert edge_preservation_error(blurred, a, a).item() > kept + 0.1
    flat = torch.zeros_like(a, requires_grad=True)
    edge_preservation_error(flat, a, a).backward()
    assert torch.isfinite(flat.grad).all()


@pytest.fixture
def warm_folder(tmp_path):
    """Lit, textured visible images and thermal images with warm squares on a cool background."""
    rng = np.random.default_rng(1)
    root = tmp_path / "warm"
    for d in ("vi", "ir"):
        (root / d).mkdir(parents=True)
    for i in range(4):
        vi = cv2.GaussianBlur(rng.integers(60, 200, (48, 48, 3), dtype=np.uint8), (3, 3), 0)
        ir = np.full((48, 48), 60, np.uint8)
        for _ in range(3):
            y, x = rng.integers(0, 36, 2)
            ir[y:y + 10, x:x + 10] = 190
        cv2.imwrite(str(root / "vi" / f"{i}.png"), vi)
        cv2.imwrite(str(root / "ir" / f"{i}.png"), ir)
    return root


def test_a_directive_moves_the_output_its_way_on_a_tiny_trained_model(warm_folder, tmp_path):
    """Trained with directives on some crops, the same network given "emphasize warm objects"
    makes warm objects brighter, and given "keep visible colors" stays nearer the visible image."""
    from ldf_ros.models.text import WordHashEncoder
    from ldf_ros.models.layers import lit_mask, warm_mask
    from ldf_ros.training.fusion import pair_tensors, train_fusion

    cfg = FusionTrainConfig(role="student", data=str(warm_folder), val_data="", depth_visible="", depth_thermal="",
                            text_encoder="words", batch_size=6, crop=32, steps=120, lr=5e-3, threads=1, seed=0,
                            directive_prob=0.7, directive_weight=4.0, out=str(tmp_path / "run"))
    threads = torch.get_num_threads()
    try:
        net = load_fusion_net(train_fusion(cfg, resume=False, progress=False), None).eval()
    finally:
        torch.set_num_threads(threads)
    text = CachedTextEncoder(WordHashEncoder())
    vis, ir = zip(*(pair_tensors(cv2.cvtColor(cv2.imread(str(warm_folder / "vi" / f"{i}.png")), cv2.COLOR_BGR2RGB),
                                 cv2.imread(str(warm_folder / "ir" / f"{i}.png"), cv2.IMREAD_GRAYSCALE), str(i))
                    for i in range(4)))
    vis, ir = torch.stack(vis), torch.stack(ir)
    caption = "a bright scene; 3 warm objects, nearest 5 m ahead; nearest obstacle 5 m ahead"

    def fused(directive: str):
        from ldf_ros.runtime.caption import guidance_text
        with torch.no_grad():
            return luma(net(vis, ir, text([guidance_text(caption, directive)] * 4)))

    none, warm, colors = fused(""), fused("emphasize warm objects"), fused("keep visible colors")
    m, lit = warm_mask(ir), lit_mask(luma(vis))
    warm_level = lambda y: float((y * m).sum() / m.sum())                              # noqa: E731
    visible_error = lambda y: float(((y - luma(vis)).abs() * lit).sum() / lit.sum())   # noqa: E731
    assert warm_level(warm) > warm_level(none) + 0.02, (warm_level(warm), warm_level(none))
    assert visible_error(colors) < visible_error(none) - 0.01, (visible_error(colors), visible_error(none))


def _blank_pairs(root, n: int) -> str:
    """A paired folder (vi/, ir/) of n blank 8x8 pairs; its path."""
    for d in ("vi", "ir"):
        (root / d).mkdir(parents=True)
    for i in range(n):
        cv2.imwrite(str(root / "vi" / f"{i}.png"), np.zeros((8, 8, 3), np.uint8))
        cv2.imwrite(str(root / "ir" / f"{i}.png"), np.zeros((8, 8), np.uint8))
    return str(root)


def test_distillation_reaches_only_the_chosen_folders(tmp_path):
    """distill_data: a teacher right on one domain pulls only that domain's crops."""
    from ldf_ros.data.paired import PairedFolder
    from ldf_ros.training.fusion import distill_crops, distill_error

    roots = [_blank_pairs(tmp_path / name, n) for name, n in (("a", 2), ("b", 3))]
    folders = [PairedFolder.from_root(r) for r in roots]
    data = ",".join(roots)
    assert distill_crops(folders, data, "").tolist() == [True] * 5
    assert distill_crops(folders, data, roots[1]).tolist() == [False, False, True, True, True]
    with pytest.raises(ValueError, match="not among"):
        distill_crops(folders, data, str(tmp_path / "c"))

    teacher = lambda v, i, t: torch.ones_like(v)  # noqa: E731
    fused, vis, ir, text = torch.zeros(2, 3, 4, 4), torch.zeros(2, 3, 4, 4), torch.zeros(2, 1, 4, 4), torch.zeros(2, 8)
    assert distill_error(fused, teacher, vis, ir, text, torch.tensor([False, True])).item() == 1.0
    assert distill_error(fused, teacher, vis, ir, text, torch.tensor([False, False])).item() == 0.0


def test_intensity_target_adds_the_thermal_contrast_it_is_given():
    from ldf_ros.training.fusion import intensity_target

    yv = torch.full((1, 1, 2, 2), 0.5)
    ir = torch.tensor([[[[0.2, 0.4], [0.6, 0.8]]]])
    assert torch.equal(intensity_target(yv, ir), torch.maximum(yv, ir))
    boosted = intensity_target(yv, ir, 0.5)           # thermal mean 0.5: +-0.15 and +-0.05 around the max
    assert torch.allclose(boosted, torch.tensor([[[[0.35, 0.45], [0.65, 0.95]]]]))
    assert float(intensity_target(torch.ones_like(yv), ir, 1.0).max()) == 1.0


def test_data_sampling_draws_folders_by_their_size(tmp_path):
    """data_sampling: equal takes the folders in turn; sqrt and pairs draw a one-pair folder
    far less often than a large one."""
    from ldf_ros.data.paired import PairedFolder
    from ldf_ros.training.fusion import PairCrops, folder_weights

    assert folder_weights([1, 100], "equal") is None
    np.testing.assert_allclose(folder_weights([1, 100], "sqrt"), [1 / 11, 10 / 11])
    np.testing.assert_allclose(folder_weights([1, 3], "pairs"), [0.25, 0.75])
    with pytest.raises(ValueError, match="data_sampling"):
        folder_weights([1, 2], "uniform")
    roots = [PairedFolder.from_root(_blank_pairs(tmp_path / name, n)) for name, n in (("one", 1), ("many", 16))]

    def share_of_one(sampling):
        data = PairCrops(roots, 8, seed=0, length=400, sampling=sampling)
        return np.mean([data[n]["index"] == 0 for n in range(400)])
    assert share_of_one("equal") == 0.5
    assert 0.1 < share_of_one("sqrt") < 0.3          # 1 / (1 + 4) = 0.2 expected
    assert share_of_one("pairs") < 0.12              # 1 / 17
