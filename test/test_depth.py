"""Depth networks, their checkpoints, training losses and the depth metrics."""
from dataclasses import replace
from pathlib import Path
import cv2
import numpy as np
import pytest
import torch

from ldf_ros.config import DepthTrainConfig
from ldf_ros.evaluation.depth_metrics import depth_metrics
from ldf_ros.models.checkpoint import CheckpointError, save_checkpoint
from ldf_ros.models.depth_net import DepthNet, load_depth_net, parameter_count, student_config, teacher_config
from ldf_ros.models.layers import axis_angle_to_matrix, ground_plane_height, warp_image
from ldf_ros.ops.camera import intrinsics
from ldf_ros.runtime.depth import (DepthPredictor, blend_depths, depth_scale_for_camera, largest_window,
                                   modality_image, spread_weight, visible_reliability)
from ldf_ros.synthetic.clips import TEST_SEEDS, ClipSpec, clip_camera, render_clip
from ldf_ros.training.depth import (ClipFrames, DistillationLoss, build_training, distillation_gate,
                                   flip_averaged, training_batches, training_losses)


@pytest.fixture(scope="module")
def tiny_clips():
    return [render_clip(ClipSpec(1, "urban", c, frames=5, width=64, height=64)) for c in ("day", "night")]


def test_depth_metrics_analytic():
    gt = np.full((10, 10), 10.0)
    gt[0, 0] = np.nan
    m = depth_metrics(gt, gt * 1.1)
    assert m["abs_rel"] == pytest.approx(0.1) and m["a1"] == 1.0 and m["valid"] == 99
    assert m["rmse"] == pytest.approx(1.0) and m["rmse_log"] == pytest.approx(np.log(1.1))
    scaled = depth_metrics(gt, gt * 3.0, median_scaling=True)
    assert scaled["abs_rel"] == pytest.approx(0.0) and scaled["scale"] == pytest.approx(1 / 3)
    assert depth_metrics(gt, gt * 1.3)["a1"] == 0.0 and depth_metrics(gt, gt * 1.3)["a2"] == 1.0
    with pytest.raises(ValueError, match="no valid pixels"):
        depth_metrics(np.full((4, 4), np.nan), np.ones((4, 4)))
    with pytest.raises(ValueError, match="differ in size"):
        depth_metrics(np.ones((4, 4)), np.ones((4, 5)))


def test_student_is_at_most_a_quarter_of_the_teacher():
    for m in ("visible", "thermal"):
        assert parameter_count(DepthNet(student_config(m))) * 4 <= parameter_count(DepthNet(teacher_config(m)))


def test_depth_is_positive_finite_meters_at_any_input_size():
    torch.manual_seed(0)
    net = DepthNet(student_config("visible"))
    depth = DepthPredictor(net)(np.random.default_rng(0).integers(0, 255, (100, 150, 3), dtype=np.uint8))
    assert depth.shape == (100, 150) and depth.dtype == np.float32
    assert np.isfinite(depth).all() and (depth >= net.cfg.min_depth - 1e-3).all() and (depth <= net.cfg.max_depth + 1e-2).all()
    th = DepthPredictor(DepthNet(student_config("thermal")))(np.full((64, 80), 29000, np.uint16))
    assert th.shape == (64, 80) and np.isfinite(th).all()


def test_checkpoint_round_trip_and_errors(tmp_path):
    net = DepthNet(teacher_config("thermal"))
    path = save_checkpoint(tmp_path / "t.safetensors", net, "depth", net.cfg.to_dict(), step=3)
    loaded = load_depth_net(path, modality="thermal")
    assert loaded.cfg == net.cfg
    for a, b in zip(net.state_dict().values(), loaded.state_dict().values()):
        torch.testing.assert_close(a, b)
    with pytest.raises(CheckpointError, match="thermal depth checkpoint, expected visible"):
        load_depth_net(path, modality="visible")
    (tmp_path / "bad.safetensors").write_bytes(b"\x00garbage" * 10)
    with pytest.raises(CheckpointError, match="not a readable"):
        load_depth_net(tmp_path / "bad.safetensors")
    with pytest.raises(CheckpointError, match="not found"):
        load_depth_net(tmp_path / "missing.safetensors")
    other = DepthNet(student_config("thermal"))
    wrong = save_checkpoint(tmp_path / "w.safetensors", other, "depth", net.cfg.to_dict())  # config lies about weights
    with pytest.raises(CheckpointError, match="do not fit"):
        load_depth_net(wrong)
    save_checkpoint(tmp_path / "f.safetensors", other, "fusion", other.cfg.to_dict())
    with pytest.raises(CheckpointError, match="is a fusion checkpoint, expected depth"):
        load_depth_net(tmp_path / "f.safetensors")


def test_warp_with_identity_pose_returns_the_source():
    src = torch.rand(1, 3, 16, 20)
    k = torch.tensor([[[20.0, 0, 9.5], [0, 20.0, 7.5], [0, 0, 1]]])
    out = warp_image(src, torch.full((1, 1, 16, 20), 5.0), axis_angle_to_matrix(torch.zeros(1, 3)), torch.zeros(1, 3), k)
    torch.testing.assert_close(out, src, atol=1e-4, rtol=0)


def test_reprojected_depth_moves_with_the_camera_and_keeps_the_nearest_surface():
    from ldf_ros.ops.camera import reproject_depth
    k = intrinsics(50.0, 50.0, 32.0, 24.0)
    depth = np.full((48, 64), 10.0, np.float32)
    same, = reproject_depth(depth, k, k, np.eye(3), np.zeros(3), (64, 48))
    np.testing.assert_allclose(same, depth)
    nearer, = reproject_depth(depth, k, k, np.eye(3), np.array([0.0, 0.0, -1.0]), (64, 48))
    assert np.nanmax(np.abs(nearer - 9.0)) < 1e-5 and np.isnan(nearer).any()   # 1 m closer; the rim has nothing
    depth[20:28, 28:36] = 2.0                       # a box in front, the camera steps 0.2 m right
    moved, tag = reproject_depth(depth, k, k, np.eye(3), np.array([-0.2, 0.0, 0.0]), (64, 48), depth * 0 + 7)
    assert moved[24, 28 - 5] == pytest.approx(2.0)     # the box shifts 50 * 0.2 / 2 = 5 px left
    assert moved[24, 35 - 5] == pytest.approx(2.0) and moved[24, 40] == pytest.approx(10.0)
    assert np.all(tag[np.isfinite(moved)] == 7)


@pytest.mark.parametrize("role, gate, flip", [("teacher", False, False), ("student", False, False),
                                              ("student", True, False), ("student", False, True)])
def test_a_training_step_lowers_the_loss(tiny_clips, role, gate, flip, tmp_path):
    torch.manual_seed(0)
    teacher = ""
    if role == "student":
        t = DepthNet(teacher_config("visible"))
        teacher = str(save_checkpoint(tmp_path / "t.safetensors", t, "depth", t.cfg.to_dict()))
    cfg = DepthTrainConfig(modality="visible", role=role, teacher=teacher, distill_gate=gate, teacher_flip=flip)
    model, pose, teach, distill = build_training(cfg)
    data = ClipFrames(tiny_clips, "visible", augment=False)
    batch = torch.utils.data.default_collate([data[i] for i in range(4)])
    params = list(model.parameters()) + list(pose.parameters()) + (list(distill.parameters()) if distill else [])
    opt = torch.optim.Adam(params, lr=1e-3)
    losses = []
    for _ in range(6):
        out = training_losses(batch, model, pose, teach, distill, cfg)
        opt.zero_grad()
        out["total"].backward()
        opt.step()
        losses.append(out["total"].item())
    assert losses[-1] < losses[0]
    expected = {"supervised", "photometric", "smoothness"} | ({"semantic"} if role == "teacher" else
                                                              {"distill_depth", "distill_feature", "distill_bins"})
    assert expected <= set(out)
    if gate:   # a random teacher is rarely better than the student: it teaches only some pixels
        assert 0.0 < out["gate_share"].item() < 1.0
        terms = sum(v.item() for k, v in out.items() if k not in ("total", "gate_share"))
        assert out["total"].item() == pytest.approx(terms, rel=1e-5)


def test_unlabeled_clips_give_no_ground_truth_to_the_loss(tiny_clips):
    """Distillation streets stand for unlabeled video: only the teacher and the photometric loss see them."""
    data = ClipFrames(tiny_clips, "visible", augment=False, labeled=1)
    per_clip = len(data) // 2
    assert data[0]["depth"].max() > 0 and data[per_clip]["depth"].max() == 0
    batch = torch.utils.data.default_collate([data[per_clip + i] for i in range(2)])
    model, _, _, _ = build_training(DepthTrainConfig(modality="visible", role="student", photometric_weight=0))
    out = training_losses(batch, model, None, None, None, DepthTrainConfig(photometric_weight=0))
    assert out["supervised"].item() == 0
    out = training_losses(batch, model, None, None, None, DepthTrainConfig(photometric_weight=0, camera_height_weight=1.0))
    assert out["camera_height"].item() > 0 and out["camera_height"].requires_grad


def test_unlabeled_only_distillation_teaches_nothing_on_labeled_frames(tiny_clips, tmp_path):
    t = DepthNet(teacher_config("visible"))
    teacher = str(save_checkpoint(tmp_path / "t.safetensors", t, "depth", t.cfg.to_dict()))
    cfg = DepthTrainConfig(modality="visible", role="student", teacher=teacher, unlabeled_streets=1,
                           distill_unlabeled_only=True, photometric_weight=0)
    model, pose, teach, distill = build_training(cfg)
    data = ClipFrames(tiny_clips, "visible", augment=False, labeled=1)
    per_clip = len(data) // 2
    labeled = torch.utils.data.default_collate([data[i] for i in range(2)])
    unlabeled = torch.utils.data.default_collate([data[per_clip + i] for i in range(2)])
    mixed = torch.utils.data.default_collate([data[0], data[per_clip]])
    terms = ("distill_depth", "distill_feature", "distill_bins")
    on_labeled = training_losses(labeled, model, pose, teach, distill, cfg)
    assert all(on_labeled[k].item() == 0 for k in terms)
    on_unlabeled = training_losses(unlabeled, model, pose, teach, distill, cfg)
    assert all(on_unlabeled[k].item() > 0 for k in terms)
    on_mixed = training_losses(mixed, model, pose, teach, distill, cfg)
    everywhere = training_losses(mixed, model, pose, teach, distill, replace(cfg, distill_unlabeled_only=False))
    assert 0 < on_mixed["distill_depth"].item() < everywhere["distill_depth"].item()
    with pytest.raises(ValueError, match="distill_unlabeled_only needs unlabeled_streets"):
        build_training(replace(cfg, unlabeled_streets=0))


def test_camera_height_of_true_depth_is_the_rig_height_and_scales_with_it(tiny_clips):
    clip = tiny_clips[0]
    depth = torch.from_numpy(np.nan_to_num(clip.depth, nan=80.0)).float()[:, None]
    k = torch.from_numpy(clip.k).float().expand(depth.shape[0], 3, 3)
    torch.testing.assert_close(ground_plane_height(depth, k), torch.full((depth.shape[0],), 1.5), atol=0.01, rtol=0)
    torch.testing.assert_close(ground_plane_height(3 * depth, k), torch.full((depth.shape[0],), 4.5), atol=0.03, rtol=0)
    with pytest.raises(ValueError, match="needs a teacher"):
        build_training(DepthTrainConfig(modality="visible", role="student", unlabeled_streets=4))


def test_blend_follows_the_reliable_branch():
    dark = np.zeros((64, 64, 3), np.uint8)
    bright = np.random.default_rng(0).integers(60, 250, (64, 64, 3), dtype=np.uint8)
    dv, dt = np.full((64, 64), 10.0, np.float32), np.full((64, 64), 20.0, np.float32)
    np.testing.assert_allclose(blend_depths(dv, dt, dark), 20.0, rtol=1e-5)
    assert blend_depths(dv, dt, bright)[32, 32] < 12.0
    np.testing.assert_allclose(blend_depths(dv, dt, dark, reliability=np.ones((64, 64), np.float32)), 10.0, rtol=1e-5)
    noisy_dark = np.random.default_rng(1).integers(0, 26, (64, 64, 3), dtype=np.uint8)   # sensor noise, no light
    assert visible_reliability(noisy_dark).max() == 0.0


def test_blend_trusts_the_branch_that_agrees_with_itself_under_mirroring():
    bright = np.random.default_rng(0).integers(60, 250, (64, 64, 3), dtype=np.uint8)
    dv, dt = np.full((64, 64), 10.0, np.float32), np.full((64, 64), 20.0, np.float32)
    calm, shaky = np.zeros((64, 64), np.float32), np.full((64, 64), 0.5, np.float32)
    image_only = blend_depths(dv, dt, bright)
    assert blend_depths(dv, dt, bright, spreads=(shaky, calm))[32, 32] > image_only[32, 32] + 2.0
    assert blend_depths(dv, dt, bright, spreads=(calm, shaky))[32, 32] < 10.01
    np.testing.assert_allclose(spread_weight(calm, calm), 0.5)
    unseen = np.full((64, 64), np.nan, np.float32)     # no thermal spread: the visible branch only
    np.testing.assert_allclose(spread_weight(calm, unseen), 1.0)


def test_spread_is_the_disagreement_of_the_image_and_its_mirror():
    torch.manual_seed(0)
    pred = DepthPredictor(DepthNet(student_config("visible")))
    image = np.random.default_rng(0).integers(0, 255, (64, 80, 3), dtype=np.uint8)
    grid = pred.input_size                 # both are measured at the network's size
    depth, spread = pred(image, spread=True, grid=grid)
    once, mirrored = pred(image, grid=grid), pred(image[:, ::-1].copy(), grid=grid)[:, ::-1]
    np.testing.assert_allclose(depth, np.sqrt(once * mirrored), rtol=1e-4)
    np.testing.assert_allclose(spread, np.abs(np.log(once / mirrored)), atol=1e-4)
    assert spread.max() > 0
    full, _ = pred(image, spread=True)     # and resized once to the image, in inverse depth
    np.testing.assert_allclose(full, 1.0 / cv2.resize(1.0 / depth, (80, 64), interpolation=cv2.INTER_LINEAR), rtol=1e-4)
    d, s = pred(image, window=(8, 8, 48, 40), spread=True)
    assert np.isnan(s[:8]).all() and np.isfinite(s[8:40, 8:48]).all() and np.isnan(d[:, 48:]).all()


def test_blend_uses_visible_outside_the_thermal_field_of_view():
    dark = np.zeros((32, 96, 3), np.uint8)
    dv, dt = np.full((32, 96), 10.0, np.float32), np.full((32, 96), 20.0, np.float32)
    valid = np.zeros((32, 96), bool)
    valid[:, 16:] = True
    out = blend_depths(dv, dt, dark, valid)
    np.testing.assert_allclose(out[:, :16], 10.0, rtol=1e-5)
    np.testing.assert_allclose(out[:, 16 + 25:], 20.0, rtol=1e-5)       # the thermal branch inside its view
    ramp = out[0, 15:16 + 25]                                           # feathered in: no seam at the edge
    assert np.all(np.diff(ramp) >= 0) and np.max(np.diff(np.log(ramp))) < np.log(2.0) / 10


def test_distillation_gate_follows_whoever_is_right():
    gt = torch.full((1, 1, 4, 6), 10.0)
    gt[..., 0] = 0.0                                   # no ground truth in the first column
    teacher = torch.full_like(gt, 10.0)
    teacher[..., 3:] = 20.0                            # the teacher is wrong on the right half
    student = torch.full_like(gt, 15.0)
    gate = distillation_gate(student, teacher, gt, 0.5, 80.0)
    assert gate[..., 1:3].eq(1).all() and gate[..., 3:].eq(0).all()
    assert gate[..., 0].eq(0).all()                    # no labels, no reprojection errors: never
    reproj_s, identity = torch.full_like(gt, 0.3), torch.full_like(gt, 0.2)
    reproj_t = torch.full_like(gt, 0.1)
    reproj_t[:, :, 2:, 0] = 0.25                       # better than the student, worse than no motion
    gate = distillation_gate(student, teacher, gt, 0.5, 80.0, reproj_s, reproj_t, identity)
    assert gate[:, :, :2, 0].eq(1).all() and gate[:, :, 2:, 0].eq(0).all()
    assert gate[..., 1:].equal(distillation_gate(student, teacher, gt, 0.5, 80.0)[..., 1:])


def test_a_closed_gate_silences_the_teacher():
    s_net, t_net = DepthNet(student_config("visible")), DepthNet(teacher_config("visible"))
    cfg = DepthTrainConfig(modality="visible", role="student")
    distill = DistillationLoss(s_net.cfg.widths[-1], t_net.cfg.widths[-1], cfg, (0.5, 80.0))
    x = torch.rand(2, 3, 128, 160)
    out_s, out_t = s_net(x), t_net(x)
    out_s["depth_scales"] = [s_net.disp_to_depth(d) for d in out_s["disp"]]
    closed = distill(out_s, out_t, torch.zeros_like(out_t["depth"]))
    assert all(v.item() == 0 for v in closed.values())
    opened, ungated = distill(out_s, out_t, torch.ones_like(out_t["depth"])), distill(out_s, out_t)
    for name, value in ungated.items():
        assert value.item() > 0
        torch.testing.assert_close(opened[name], value)


def test_fine_tuning_starts_from_the_same_network_only(tmp_path):
    student = DepthNet(student_config("visible"))
    path = str(save_checkpoint(tmp_path / "s.safetensors", student, "depth", student.cfg.to_dict()))
    model, _, _, _ = build_training(DepthTrainConfig(modality="visible", role="student", init=path))
    for name, value in student.state_dict().items():
        torch.testing.assert_close(model.state_dict()[name], value)
    with pytest.raises(ValueError, match="this run trains a teacher"):
        build_training(DepthTrainConfig(modality="visible", role="teacher", init=path))
    with pytest.raises(CheckpointError, match="expected thermal"):
        build_training(DepthTrainConfig(modality="thermal", role="student", init=path))
    with pytest.raises(ValueError, match="distill_gate needs a teacher"):
        build_training(DepthTrainConfig(modality="visible", role="student", distill_gate=True))
    with pytest.raises(ValueError, match="teacher_flip needs a teacher"):
        build_training(DepthTrainConfig(modality="visible", role="student", teacher_flip=True))


def test_flip_averaged_teacher_is_mirror_symmetric_and_between_its_passes():
    torch.manual_seed(0)
    model = DepthNet(teacher_config("visible")).eval()
    x = torch.rand(2, 3, model.cfg.input_height, model.cfg.input_width)
    with torch.no_grad():
        avg, mirrored = flip_averaged(model, x), flip_averaged(model, x.flip(-1))
        a, b = model(x)["depth"], model(x.flip(-1))["depth"].flip(-1)
    torch.testing.assert_close(mirrored["depth"].flip(-1), avg["depth"])
    torch.testing.assert_close(mirrored["features"].flip(-1), avg["features"])
    assert (avg["depth"] >= torch.minimum(a, b) - 1e-5).all() and (avg["depth"] <= torch.maximum(a, b) + 1e-5).all()
    assert not torch.allclose(a, b)   # a random network is not symmetric: the average did something


def test_depth_scales_with_the_focal_length_the_network_learned_with():
    """Depth from one image is read off sizes in pixels: a camera (or crop) with twice the
    focal length at the network's input sees everything twice as large, so depth doubles."""
    cfg = replace(student_config("visible"), focal_px=100.0)
    k = intrinsics(400.0, 400.0, 319.5, 255.5)           # 640x512 -> 160x128: 100 px
    assert depth_scale_for_camera(cfg, k, 640, 512) == pytest.approx(1.0)
    assert depth_scale_for_camera(cfg, k, 320, 256) == pytest.approx(2.0)   # a centred half: a 2x zoom
    assert depth_scale_for_camera(cfg, 1.5 * k, 640, 512) == pytest.approx(1.5)
    assert depth_scale_for_camera(replace(cfg, focal_px=0.0), k, 320, 256) == 1.0   # unknown: as is
    assert depth_scale_for_camera(cfg, None, 320, 256) == 1.0
    torch.manual_seed(0)
    predictor = DepthPredictor(DepthNet(cfg))
    image = np.random.default_rng(1).integers(0, 255, (512, 640, 3), dtype=np.uint8)
    np.testing.assert_allclose(predictor(image, 2 * k), 2 * predictor(image), rtol=1e-5)
    window = (160, 128, 480, 384)
    windowed = predictor(image, k, window)
    assert np.isnan(windowed[:128]).all() and np.isnan(windowed[:, :160]).all() and np.isnan(windowed[384:]).all()
    np.testing.assert_allclose(windowed[128:384, 160:480], 2 * predictor(image[128:384, 160:480]), rtol=1e-5)
    # without intrinsics the whole image is taken to be the learned camera: a window is still a zoom
    np.testing.assert_allclose(predictor(image, None, window), windowed, rtol=1e-5)
    with pytest.raises(ValueError, match="not inside"):
        predictor(image, k, (600, 0, 700, 100))


def test_largest_window_is_inside_the_view_with_the_network_aspect():
    valid = np.zeros((512, 640), bool)
    valid[100:400, 50:600] = True                        # 300 rows high: the height limits
    x0, y0, x1, y1 = largest_window(valid, 1.25)
    assert valid[y0:y1, x0:x1].all()
    assert (x1 - x0) / (y1 - y0) == pytest.approx(1.25, abs=0.01) and y1 - y0 >= 296
    slanted = np.zeros((200, 200), bool)                 # a sheared view (small rotation): still inside
    for r in range(200):
        slanted[r, 40 + r // 10: 170 + r // 10] = True
    x0, y0, x1, y1 = largest_window(slanted, 1.0)
    assert slanted[y0:y1, x0:x1].all() and y1 - y0 > 100
    assert largest_window(np.zeros((64, 64), bool), 1.25) is None
    tiny = np.zeros((512, 640), bool)
    tiny[250:270, 300:330] = True
    assert largest_window(tiny, 1.25) is None            # too small for a depth network


def test_training_records_its_camera_and_rejects_a_teacher_of_another(tmp_path):
    model, _, _, _ = build_training(DepthTrainConfig(modality="thermal", role="student", camera_hfov_deg=50.0))
    assert model.cfg.focal_px == pytest.approx(clip_camera(160, 128, 50.0).fx)
    assert ClipSpec(1, "urban", "day", hfov_deg=50.0).name != ClipSpec(1, "urban", "day").name
    t = DepthNet(replace(teacher_config("thermal"), focal_px=float(clip_camera(160, 128).fx)))
    teacher = str(save_checkpoint(tmp_path / "t.safetensors", t, "depth", t.cfg.to_dict()))
    with pytest.raises(ValueError, match="its depths would not fit"):
        build_training(DepthTrainConfig(modality="thermal", role="student", teacher=teacher, camera_hfov_deg=50.0))
    old = DepthNet(student_config("thermal"))      # before focal_px was recorded: fine-tunes to any camera
    init = str(save_checkpoint(tmp_path / "s.safetensors", old, "depth", old.cfg.to_dict()))
    tuned, _, _, _ = build_training(DepthTrainConfig(modality="thermal", role="student", init=init, camera_hfov_deg=50.0))
    assert tuned.cfg.focal_px == pytest.approx(model.cfg.focal_px)


def test_runtime_depth_evaluation_runs_the_node_pipeline_on_raw_rig_images():
    """`eval depth --rig`: raw RGB + native thermal through registration, window and blend."""
    from ldf_ros.evaluation.depth_report import RigSample, evaluate_runtime_depth, rig_pipeline
    from ldf_ros.synthetic.rig import PinholeCamera, Rig
    from ldf_ros.synthetic.sequence import SequenceSpec, generate

    rig = Rig(rgb=PinholeCamera.from_hfov(160, 128, 66.0), thermal=PinholeCamera.from_hfov(96, 80, 50.0))
    spec = SequenceSpec(frames=1, conditions=("night",), seed=900, rig=rig, registered_thermal=False)
    views = {v.camera: v for v in generate(spec, "night")}
    sample = RigSample("night", "s900/000", views["rgb"].image, views["thermal"].image, views["rgb"].depth,
                       rig.rgb.k, rig.thermal.k)
    rows, examples = evaluate_runtime_depth(rig_pipeline(rig), [sample], progress=False)
    by_method = {r["method"]: r for r in rows}
    assert set(by_method) == {"visible", "thermal", "blend", "visible_where_thermal", "blend_where_thermal",
                              "thermal_full_frame", "blend_full_frame"}
    assert all(np.isfinite(r["abs_rel"]) and r["abs_rel"] > 0 for r in rows)
    thermal = examples["night"][1]["thermal"]
    seen = np.isfinite(thermal)
    assert 0.3 < seen.mean() < 0.7          # the 50 deg camera's window of the 66 deg frame
    for name in ("visible_where_thermal", "blend_where_thermal"):
        assert np.isnan(examples["night"][1][name][~seen]).all() and np.isfinite(examples["night"][1][name][seen]).all()


SHIPPED_DEPTH = sorted((Path(__file__).resolve().parents[1] / "models").glob("depth_*.safetensors"))


@pytest.mark.parametrize("path", SHIPPED_DEPTH, ids=lambda p: p.stem)
def test_shipped_depth_checkpoints_give_metric_depth_on_a_street_they_never_saw(path):
    """The weights in models/ load strictly as the modality and role their name says, record
    their camera, and give metric depth (no median scaling) near the truth on a test street."""
    modality, role = path.stem.split("_")[1:3]
    net = load_depth_net(path, modality=modality)
    assert net.cfg.role == role and net.cfg.focal_px > 0
    hfov = float(np.degrees(2 * np.arctan(net.cfg.input_width / 2 / net.cfg.focal_px)))
    clip = render_clip(ClipSpec(TEST_SEEDS[7], "suburban", "day", frames=1, hfov_deg=hfov))   # never trained on
    image = clip.rgb[0] if modality == "visible" else clip.thermal[0]
    depth = DepthPredictor(net)(image)
    assert np.isfinite(depth).all() and (depth > 0).all()
    assert depth_metrics(clip.depth[0], depth)["abs_rel"] < 0.2


def test_a_two_camera_teacher_distils_into_a_one_camera_student(tiny_clips, tmp_path):
    """rgb_thermal teachers see both cameras of the same pixels; the student keeps its own input,
    with the same flip and brightness as the teacher's RGB channels."""
    torch.manual_seed(0)
    data = ClipFrames(tiny_clips, "visible", augment=True, seed=3, teacher_modality="rgb_thermal")
    for n in range(4):
        item = data[n]
        assert item["frames"].shape[1] == 3 and item["teacher_frames"].shape[1] == 4
        torch.testing.assert_close(item["teacher_frames"][:, :3], item["frames"])
    t = DepthNet(teacher_config("rgb_thermal"))
    assert t.encoder.stages[0][0].conv.in_channels == 4
    teacher = str(save_checkpoint(tmp_path / "t.safetensors", t, "depth", t.cfg.to_dict()))
    cfg = DepthTrainConfig(modality="visible", role="student", teacher=teacher, distill_gate=True)
    model, pose, teach, distill = build_training(cfg)
    assert teach.cfg.modality == "rgb_thermal"
    batch = torch.utils.data.default_collate([data[i] for i in range(4)])
    out = training_losses(batch, model, pose, teach, distill, cfg)
    assert {"distill_depth", "distill_feature", "distill_bins"} <= set(out) and torch.isfinite(out["total"])
    # the teacher's targets come from its own 4-channel input: other thermal, other targets
    changed = dict(batch, teacher_frames=batch["teacher_frames"].clone())
    changed["teacher_frames"][:, :, 3] = 1.0 - changed["teacher_frames"][:, :, 3]
    again = training_losses(changed, model, pose, teach, distill, cfg)
    assert again["distill_depth"].item() != pytest.approx(out["distill_depth"].item())


def test_rgb_thermal_is_for_teachers_and_a_student_rejects_other_teachers(tmp_path):
    with pytest.raises(ValueError, match="teachers only"):
        DepthNet(student_config("rgb_thermal"))
    t = DepthNet(teacher_config("thermal"))
    teacher = str(save_checkpoint(tmp_path / "t.safetensors", t, "depth", t.cfg.to_dict()))
    with pytest.raises(CheckpointError, match="a visible student learns from a visible or an rgb_thermal teacher"):
        build_training(DepthTrainConfig(modality="visible", role="student", teacher=teacher))
    predictor = DepthPredictor(DepthNet(teacher_config("rgb_thermal")))
    rgb = np.zeros((40, 48, 3), np.uint8)
    thermal = np.full((40, 48), 30000, np.uint16)
    depth = predictor(modality_image(rgb, thermal, "rgb_thermal"))
    assert depth.shape == (40, 48) and np.isfinite(depth).all() and (depth > 0).all()
    with pytest.raises(ValueError, match="must be registered"):
        modality_image(rgb, thermal[:20], "rgb_thermal")


def test_unlabeled_batch_comes_on_top_of_the_labeled_one(tiny_clips):
    """With unlabeled_batch_size the labeled frames are those a run without unlabeled streets
    draws, in the same order; the teacher's streets follow them instead of replacing them."""
    labeled, unlabeled = tiny_clips[:1], tiny_clips[1:]
    cfg = DepthTrainConfig(modality="visible", role="student", batch_size=2, unlabeled_streets=1, unlabeled_batch_size=3)
    on_top = training_batches(labeled, unlabeled, cfg)
    alone = training_batches(labeled, [], replace(cfg, unlabeled_streets=0, unlabeled_batch_size=0))
    for _ in range(4):   # past the end of an epoch of the 3-frame labeled clip
        a, b = next(on_top), next(alone)
        assert a["frames"].shape[0] == 5
        torch.testing.assert_close(a["frames"][:2], b["frames"])
        assert (a["depth"][:2].flatten(1).amax(1) > 0).all() and (a["depth"][2:] == 0).all()
    mixed = next(training_batches(labeled, unlabeled, replace(cfg, unlabeled_batch_size=0)))
    assert mixed["frames"].shape[0] == 2
    with pytest.raises(ValueError, match="unlabeled_batch_size needs unlabeled_streets"):
        build_training(replace(cfg, unlabeled_streets=0))


def test_intrinsics_of_a_resized_image_keep_each_pixel_centres_ray():
    """Halving an image puts pixel 0 where pixels 0 and 1 were: its ray is the one through 0.5."""
    from ldf_ros.ops.camera import intrinsics, pixel_rays, scale_intrinsics
    k = intrinsics(400.0, 380.0, 319.5, 255.5)
    half = scale_intrinsics(k, (640, 512), (320, 256))
    assert half[0, 2] == 159.5 and half[1, 2] == 127.5 and half[0, 0] == 200.0 and half[1, 1] == 190.0
    rays = pixel_rays(half, 320, 256)
    full = np.linalg.inv(k) @ np.array([0.5, 0.5, 1.0])
    np.testing.assert_allclose(rays[0, 0], full, rtol=0, atol=1e-12)
    np.testing.assert_allclose(scale_intrinsics(half, (320, 256), (640, 512)), k, atol=1e-12)
