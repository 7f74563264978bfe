"""Diffusion features, fusion networks and text encoders (tiny configs, offline)."""
import json

import pytest
import torch

from ldf_ros.models.diffusion import DenoiserConfig, DiffusionFeatures, NoiseSchedule, UNetDenoiser
from ldf_ros.models.fusion_net import FusionNet, FusionNetConfig
from ldf_ros.models.text import CachedTextEncoder, NullTextEncoder, OpenClipEncoder

TINY = DenoiserConfig(base=8, mults=(1, 2), time_dim=16)


def test_noise_schedule_endpoints():
    s = NoiseSchedule()
    x0, noise = torch.ones(2, 4, 8, 8), torch.zeros(2, 4, 8, 8)
    assert torch.allclose(s.add_noise(x0, noise, torch.tensor([0, 0])), x0, atol=1e-3)
    assert s.add_noise(x0, noise, torch.tensor([999, 999])).abs().max() < 0.01


def test_diffusion_features_are_deterministic_and_multiscale():
    torch.manual_seed(0)
    feats = DiffusionFeatures(UNetDenoiser(TINY), timesteps=(10, 100))
    x = torch.rand(2, 4, 32, 48) * 2 - 1
    a, b = feats(x), feats(x)
    assert [f.shape[1] for f in a] == feats.channels == [32, 16]
    assert [f.shape[-1] for f in a] == [24, 48]
    assert all(torch.equal(p, q) for p, q in zip(a, b))


def test_denoising_step_lowers_the_loss():
    torch.manual_seed(0)
    net, sched = UNetDenoiser(TINY), NoiseSchedule()
    opt = torch.optim.Adam(net.parameters(), 3e-3)
    x0 = torch.rand(4, 4, 16, 16) * 2 - 1
    g = torch.Generator().manual_seed(1)
    noise, t = torch.randn(x0.shape, generator=g), torch.randint(0, 1000, (4,), generator=g)
    losses = []
    for _ in range(8):
        loss = torch.nn.functional.mse_loss(net(sched.add_noise(x0, noise, t), t), noise)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


# tiny networks of each kind: the teacher, and the two student architectures
KINDS = {"teacher": dict(role="teacher", width=8, denoiser=TINY.to_dict()),
         "teacher_guided": dict(role="teacher", width=8, denoiser=TINY.to_dict(), teacher_head="guided"),
         "teacher_inputs": dict(role="teacher", width=8, denoiser=TINY.to_dict(), teacher_head="guided",
                                teacher_features="inputs"),
         "unet": dict(role="student", student_widths=(8, 16)),
         "guided": dict(role="student", student_arch="guided", student_widths=(8, 8, 16, 16)),
         "guided4": dict(role="student", student_arch="guided", student_widths=(8, 8, 16, 16), guided_downscale=4),
         "guided_max": dict(role="student", student_arch="guided", student_widths=(8, 8, 16, 16), guided_basis="max")}


def tiny_net(kind: str, text_dim: int = 16, trained_head: bool = True) -> FusionNet:
    """A tiny fusion network; the guided student's zero-initialized head (the average of the
    sources) is given random weights so that the tests see a network that does something."""
    net = FusionNet(FusionNetConfig(text_dim=text_dim, **KINDS[kind]))
    if kind.startswith("guided") and trained_head:
        torch.nn.init.normal_(net.student.head.weight, std=0.1)
    if kind.startswith("teacher_") and trained_head:
        torch.nn.init.normal_(net.head.head.weight, std=0.1)
    return net


@pytest.mark.parametrize("kind", list(KINDS))
def test_fusion_net_shapes_range_and_input_errors(kind):
    torch.manual_seed(0)
    net = tiny_net(kind)
    vis, ir, text = torch.rand(1, 3, 36, 52), torch.rand(1, 1, 36, 52), torch.randn(1, 16)
    out = net(vis, ir, text)
    assert out.shape == (1, 3, 36, 52) and 0 <= out.min() and out.max() <= 1
    torch.testing.assert_close(net(vis, ir, text), out)
    with pytest.raises(ValueError, match="visible must be"):
        net(torch.rand(1, 4, 36, 52), ir, text)
    with pytest.raises(ValueError, match="differ in batch or size"):
        net(vis, torch.rand(1, 1, 30, 52), text)
    with pytest.raises(ValueError, match="text embedding"):
        net(vis, ir, torch.randn(1, 8))


@pytest.mark.parametrize("kind", list(KINDS))
def test_fusion_net_runs_in_half_precision(kind):
    """The node runs fp16 on CUDA: every tensor built inside the forward must follow the input dtype."""
    torch.manual_seed(0)
    net = tiny_net(kind)
    vis, ir, text = torch.rand(1, 3, 32, 32), torch.rand(1, 1, 32, 32), torch.randn(1, 16)
    with torch.inference_mode():
        ref = net(vis, ir, text)
        out = net.half()(vis.half(), ir.half(), text.half())
    assert out.dtype == torch.float16
    torch.testing.assert_close(out.float(), ref, atol=1e-2, rtol=0)


@pytest.mark.parametrize("kind", ["unet", "guided"])
def test_text_modulation_changes_the_output_once_trained(kind):
    torch.manual_seed(0)
    net = tiny_net(kind)
    vis, ir = torch.rand(1, 3, 16, 16), torch.rand(1, 1, 16, 16)
    a, b = torch.randn(1, 16), torch.randn(1, 16)
    torch.testing.assert_close(net(vis, ir, a), net(vis, ir, b))   # zero-initialized modulation
    torch.nn.init.normal_(net.student.film.mlp[-1].weight, std=0.1)
    assert not torch.allclose(net(vis, ir, a), net(vis, ir, b))


def test_caption_cache_hits_on_repeated_captions():
    enc = CachedTextEncoder(NullTextEncoder(8))
    enc(["a dark scene", "a bright scene", "a dark scene"])
    assert (enc.hits, enc.misses) == (1, 2)
    out = enc(["a dark scene"] * 5)
    assert out.shape == (5, 8) and (enc.hits, enc.misses) == (6, 2)


def test_open_clip_loads_only_local_checkpoints(tmp_path):
    open_clip = pytest.importorskip("open_clip")
    cfg = {"embed_dim": 16,
           "vision_cfg": {"image_size": 32, "layers": 1, "width": 64, "head_width": 32, "patch_size": 16},
           "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}
    (tmp_path / "ldf-tiny-test.json").write_text(json.dumps(cfg))
    open_clip.add_model_config(tmp_path / "ldf-tiny-test.json")
    model = open_clip.create_model("ldf-tiny-test")
    torch.save(model.state_dict(), tmp_path / "tiny.pt")
    enc = OpenClipEncoder("ldf-tiny-test", tmp_path / "tiny.pt")
    emb = enc.encode(["a dark scene", "a bright scene"])
    assert emb.shape == (2, 16) and torch.allclose(emb.norm(dim=1), torch.ones(2))
    with pytest.raises(ValueError, match="local checkpoint"):
        OpenClipEncoder("ldf-tiny-test", tmp_path / "missing.pt")


@pytest.mark.slow
def test_minilm_encoder_is_offline_and_normalized():
    from ldf_ros.models.text import MiniLMEncoder
    emb = CachedTextEncoder(MiniLMEncoder())(["a dark scene; no warm objects", "a bright scene; no warm objects"])
    assert emb.shape == (2, 384) and torch.allclose(emb.norm(dim=1), torch.ones(2), atol=1e-4)


def test_luma_chroma_round_trip():
    from ldf_ros.models.layers import chroma, luma, luma_chroma_to_rgb
    rgb = torch.rand(2, 3, 8, 8)
    assert torch.allclose(luma_chroma_to_rgb(luma(rgb), chroma(rgb)), rgb, atol=1e-5)


@pytest.mark.parametrize("kind", list(KINDS))
def test_untrained_fusion_keeps_the_visible_color(kind):
    """The output layer's chroma correction starts at zero: a fresh network recolors nothing."""
    from ldf_ros.models.layers import chroma
    torch.manual_seed(0)
    net = tiny_net(kind, text_dim=8, trained_head=False)
    vis = 0.45 + 0.1 * torch.rand(1, 3, 32, 32)
    fused = net(vis, torch.rand(1, 1, 32, 32), torch.randn(1, 8))
    inside = ((fused > 0) & (fused < 1)).all(1, keepdim=True).expand(1, 2, 32, 32)
    assert inside.float().mean() > 0.9
    assert torch.allclose(chroma(fused)[inside], chroma(vis)[inside], atol=1e-5)


def test_guided_student_starts_as_the_average_and_keeps_full_resolution_edges():
    """Its coefficients live at half resolution, but the image it writes is a combination of the
    full-resolution sources: a one-pixel line in the infrared survives."""
    from ldf_ros.models.layers import luma
    torch.manual_seed(0)
    net = tiny_net("guided", trained_head=False)
    vis, ir = torch.full((1, 3, 32, 32), 0.4), torch.full((1, 1, 32, 32), 0.2)
    ir[..., 15, :] = 0.9
    y = luma(net(vis, ir, torch.randn(1, 16)))
    torch.testing.assert_close(y, 0.5 * (luma(vis) + ir), atol=1e-5, rtol=0)
    assert y[..., 15, :].mean() - y[..., 14, :].mean() > 0.3
    with pytest.raises(ValueError, match="divisible by 2"):
        net(torch.rand(1, 3, 31, 32), torch.rand(1, 1, 31, 32), torch.randn(1, 16))
    quarter = tiny_net("guided4", trained_head=False)    # coefficients at 1/4: the same line survives
    y4 = luma(quarter(vis, ir, torch.randn(1, 16)))
    assert y4[..., 15, :].mean() - y4[..., 14, :].mean() > 0.3
    with pytest.raises(ValueError, match="divisible by 4"):
        quarter(torch.rand(1, 3, 30, 32), torch.rand(1, 1, 30, 32), torch.randn(1, 16))
    with pytest.raises(ValueError, match="guided_downscale"):
        FusionNetConfig(student_arch="guided", student_widths=(8, 8, 16, 16), guided_downscale=3)


def test_student_config_names_its_architecture_and_widths():
    with pytest.raises(ValueError, match="student_arch"):
        FusionNetConfig(student_arch="transformer")
    with pytest.raises(ValueError, match="takes 4 widths"):
        FusionNetConfig(student_arch="guided", student_widths=(8, 16))
    old = FusionNetConfig(student_widths=(8, 16)).to_dict()
    old.pop("student_arch")                       # checkpoints written before the guided student
    assert FusionNetConfig.from_dict(old).student_arch == "unet"


def test_guided_teacher_starts_as_the_average_and_its_ablation_has_no_denoiser(tmp_path):
    """The guided head writes a combination of the full-resolution sources, so a fresh one is
    their average; the inputs-only ablation carries no denoiser and round-trips strictly."""
    from ldf_ros.models.layers import luma
    from ldf_ros.models.text import NullTextEncoder
    from ldf_ros.runtime.learned_fusion import load_fusion_net
    from ldf_ros.training.fusion import save_fusion_checkpoint
    torch.manual_seed(0)
    vis, ir, text = torch.full((1, 3, 32, 32), 0.4), torch.full((1, 1, 32, 32), 0.2), torch.randn(1, 16)
    ir[..., 15, :] = 0.9
    for kind in ("teacher_guided", "teacher_inputs"):
        y = luma(tiny_net(kind, trained_head=False)(vis, ir, text))
        torch.testing.assert_close(y, 0.5 * (luma(vis) + ir), atol=1e-5, rtol=0)
    ablation = tiny_net("teacher_inputs")
    assert not any("denoiser" in k for k in ablation.state_dict())
    path = save_fusion_checkpoint(ablation, tmp_path / "ablation.safetensors", NullTextEncoder(16).identity)
    loaded = load_fusion_net(path, None)
    assert loaded.cfg.teacher_features == "inputs"
    torch.testing.assert_close(loaded(vis, ir, text), ablation.eval()(vis, ir, text))
    with pytest.raises(ValueError, match="teacher_head: guided"):
        FusionNetConfig(role="teacher", teacher_features="inputs")
    old = FusionNetConfig(role="teacher").to_dict()
    for key in ("teacher_head", "teacher_features"):     # teacher checkpoints written before the guided head
        old.pop(key)
    assert FusionNetConfig.from_dict(old).teacher_head == "residual"


def test_the_max_basis_is_added_without_changing_the_output_and_then_acts():
    from ldf_ros.models.fusion_net import with_max_basis
    net = tiny_net("guided").eval()
    extended = with_max_basis(net).eval()
    assert extended.cfg.guided_basis == "max" and extended.student.head.out_channels == 8
    g = torch.Generator().manual_seed(3)
    vis, ir, text = torch.rand(2, 3, 32, 32, generator=g), torch.rand(2, 1, 32, 32, generator=g), torch.randn(2, 16, generator=g)
    with torch.no_grad():
        assert torch.allclose(net(vis, ir, text), extended(vis, ir, text), atol=1e-6)
        extended.student.head.bias[7] += 0.5          # weight on max(Y_v, T): the output gets brighter
        assert (extended(vis, ir, text) - net(vis, ir, text)).mean() > 0.01
    with pytest.raises(ValueError, match="guided_basis"):
        FusionNetConfig(student_arch="guided", student_widths=(8, 8, 16, 16), guided_basis="min")
