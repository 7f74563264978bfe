"""`ldf-ros train depth --bag`: self-supervised adaptation on a tiny synthetic bag, end to end."""
import json
import math

import pytest

from ldf_ros.models.checkpoint import save_checkpoint
from ldf_ros.models.depth_net import DepthNet, DepthNetConfig, load_depth_net
from ldf_ros.synthetic.bag import write_bag
from ldf_ros.synthetic.sequence import SequenceSpec


@pytest.fixture(scope="module")
def tiny_bag(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bag")
    spec = SequenceSpec(frames=12, conditions=("day",), seed=5)
    return write_bag(spec, "day", folder / "bag", progress=False)


def _tiny_init(folder, modality):
    net = DepthNet(DepthNetConfig(modality=modality, widths=(8, 8, 8, 8, 8), input_width=64, input_height=64,
                                  focal_px=50.0))
    return str(save_checkpoint(folder / f"tiny_{modality}.safetensors", net, "depth", net.cfg.to_dict()))


def test_train_depth_bag_writes_loadable_checkpoints_and_a_before_after_report(tiny_bag, tmp_path, capsys):
    from ldf_ros.cli import main
    args = ["train", "depth", "--bag", str(tiny_bag), "--steps", "4", "--holdout", "0.25", "--out", str(tmp_path / "run"),
            "--init-visible", _tiny_init(tmp_path, "visible"), "--init-thermal", _tiny_init(tmp_path, "thermal"),
            "--camera-height", "1.4"]
    assert main(args) == 0
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    out = capsys.readouterr().out
    assert report["cross"].startswith("each branch taught by the other")     # the bag has /tf_static
    assert report["config"]["camera_height_weight"] > 0 and "camera height of 1.4 m" in out
    for modality in ("visible", "thermal"):
        r = report["branches"][modality]
        assert 0.0 <= r["cross_coverage"] <= 1.0 and r["after"]["frames"] == 3
        if r.get("kept"):                      # taught too little by the other: left as it started
            assert r["cross_coverage"] < 0.05 and r["checkpoint"].endswith(f"tiny_{modality}.safetensors")
            assert f"{modality} branch is kept as it was" in out
        else:
            assert r["train_frames"] == 9 and r["checkpoint"].startswith(str(tmp_path / "run"))
            assert f"| {modality} | 9 / 3 |" in out
        for when in ("before", "after"):       # synthetic bags carry ground truth: AbsRel on the held-out end
            assert r[when]["abs_rel"] > 0 and math.isfinite(r[when]["camera_height_m"])
        net = load_depth_net(r["checkpoint"], modality)     # what the node loads
        assert net.cfg.focal_px == 50.0
    assert "->" in out


def test_a_branch_the_other_barely_teaches_is_kept_unless_asked_for(tiny_bag, tmp_path):
    from ldf_ros.training.depth_bag import BagAdaptConfig, adapt_to_bag
    inits = {m: _tiny_init(tmp_path, m) for m in ("visible", "thermal")}
    topics = {"visible": ("/rgb/image", "/rgb/camera_info"), "thermal": ("/thermal/image", "/thermal/camera_info")}
    cfg = BagAdaptConfig(steps=2, holdout=0.25, min_taught=1.01)
    report = adapt_to_bag(tiny_bag, tmp_path / "kept", inits, topics, cfg, progress=False)
    assert all(r.get("kept") for r in report["branches"].values())
    assert not list((tmp_path / "kept").glob("*.safetensors"))
    report = adapt_to_bag(tiny_bag, tmp_path / "asked", inits, topics, cfg, progress=False, train=("thermal",))
    assert list(report["branches"]) == ["thermal"] and not report["branches"]["thermal"].get("kept")
    assert (tmp_path / "asked" / "depth_thermal_adapted.safetensors").exists()
    one_camera = dict(topics, thermal=("/nope/image", "/nope/camera_info"))      # a bag with the RGB camera only
    report = adapt_to_bag(tiny_bag, tmp_path / "one", inits, one_camera, cfg, progress=False, train=("visible",))
    assert report["cross"].startswith("off (") and "no topic /nope/image" in report["cross"]
    assert (tmp_path / "one" / "depth_visible_adapted.safetensors").exists()


def test_bag_without_the_topic_or_intrinsics_is_named(tiny_bag):
    from ldf_ros.training.depth_bag import read_bag_video
    with pytest.raises(ValueError, match="no topic /cam/missing"):
        read_bag_video(tiny_bag, "/cam/missing", "/cam/camera_info", "visible")
    with pytest.raises(ValueError, match="no usable CameraInfo on /nope/camera_info"):
        read_bag_video(tiny_bag, "/rgb/image", "/nope/camera_info", "visible")
    video = read_bag_video(tiny_bag, "/thermal/image", "/thermal/camera_info", "thermal", depth_topic="/thermal/depth_gt")
    assert video.frames.shape[0] == 12 and len(video.depth_gt) == 12 and video.frames.max() <= 1.0


def test_the_pose_search_finds_the_rigs_forward_motion(tiny_bag):
    """With the true depth, the search over forward speed recovers how far the camera moves
    between frames (the rig drives straight ahead), and the refinement keeps it there."""
    import cv2
    import numpy as np
    import torch

    from ldf_ros.synthetic.rig import Rig
    from ldf_ros.training.depth_bag import (BagAdaptConfig, VideoPoses, _inputs, read_bag_video, refine_poses,
                                            search_forward_motion)
    video = read_bag_video(tiny_bag, "/rgb/image", "/rgb/camera_info", "visible", depth_topic="/rgb/depth_gt")
    net = DepthNet(DepthNetConfig(modality="visible", widths=(8, 8, 8, 8, 8), input_width=160, input_height=128))
    x, k = _inputs(video, net)
    gt = [np.nan_to_num(cv2.resize(video.depth_gt[int(s)], (160, 128), interpolation=cv2.INTER_NEAREST), nan=80.0)
          for s in video.stamps]
    depths = torch.from_numpy(np.clip(np.stack(gt), 0.5, 80.0)[:, None].astype(np.float32))
    poses, idx = VideoPoses(len(x)), torch.arange(1, len(x) - 1)
    speed = search_forward_motion(poses, depths, x, k, idx, gap=1, max_speed=2.0)
    expected = Rig().speed_mps / 30.0            # SequenceSpec's default RGB rate
    assert np.median(speed) == pytest.approx(expected, rel=0.2)
    refine_poses(poses, depths, x, k, idx, gap=1, steps=20, lr=BagAdaptConfig().pose_lr)
    forward = poses.translation[idx, 0, 2].detach().numpy()
    assert np.median(forward) == pytest.approx(expected, rel=0.2)


def test_the_visible_cameras_depth_moved_into_the_thermal_camera_is_what_it_sees(tiny_bag):
    """The cross-branch targets' geometry: the visible camera's true depth, moved by the bag's
    transform as the targets are, matches the thermal camera's own ground truth (and moved
    back, the visible one's)."""
    import numpy as np

    from ldf_ros.ops.camera import reproject_depth
    from ldf_ros.training.depth_bag import camera_moves, read_bag_extrinsic, read_bag_video
    vis = read_bag_video(tiny_bag, "/rgb/image", "/rgb/camera_info", "visible", depth_topic="/rgb/depth_gt")
    th = read_bag_video(tiny_bag, "/thermal/image", "/thermal/camera_info", "thermal", depth_topic="/thermal/depth_gt")
    moves = camera_moves(read_bag_extrinsic(tiny_bag, vis.frame_id, th.frame_id))
    assert read_bag_extrinsic(tiny_bag, "base_link", th.frame_id) is None     # only the images' own frames
    stamp = int(th.stamps[5])
    for src, dst, move in ((vis, th, moves["thermal"]), (th, vis, moves["visible"])):
        want = dst.depth_gt[stamp]
        got, = reproject_depth(src.depth_gt[stamp], src.k, dst.k, *move, want.shape[::-1])
        both = np.isfinite(got) & np.isfinite(want) & (want < 60)
        assert both.mean() > 0.1         # thermal into visible: a coarser camera leaves holes
        err = np.abs(np.log(got[both] / want[both]))
        assert np.median(err) < 0.01 and np.mean(err > 0.05) < 0.03     # the wrong way round: 0.26 off by 5%


def test_cross_targets_are_the_other_cameras_depth_and_teach_the_thermal_branch_by_day(tiny_bag, monkeypatch):
    """With both starting networks replaced by the true depth (equal spreads), a branch's
    targets are its own true depth wherever they teach, and by day the thermal branch is
    taught more than the visible one (the blend trusts the lit visible image)."""
    import numpy as np

    from ldf_ros.ops.image import resize_inverse
    from ldf_ros.training import depth_bag as db
    videos = {"visible": db.read_bag_video(tiny_bag, "/rgb/image", "/rgb/camera_info", "visible", "/rgb/depth_gt"),
              "thermal": db.read_bag_video(tiny_bag, "/thermal/image", "/thermal/camera_info", "thermal",
                                           "/thermal/depth_gt")}

    def true_depth(video, size):
        return np.stack([resize_inverse(np.nan_to_num(video.depth_gt[int(t)], nan=80.0), size) for t in video.stamps])

    def true_view(init, video):
        k = video.k.astype(np.float64).copy()
        k[0] *= 320 / video.frames.shape[2]
        k[1] *= 256 / video.frames.shape[1]
        depth = true_depth(video, (320, 256))
        return db._BranchView(depth, np.full_like(depth, 0.05), k)
    monkeypatch.setattr(db, "_branch_view", true_view)
    extrinsic = db.read_bag_extrinsic(tiny_bag, videos["visible"].frame_id, videos["thermal"].frame_id)
    cross = db.cross_targets(videos, {"visible": "", "thermal": ""}, extrinsic, max_gap_s=0.02)
    assert cross["thermal"].coverage > 0.05 and cross["thermal"].coverage > 2 * cross["visible"].coverage
    assert cross["thermal"].paired == len(videos["thermal"].stamps)          # the synthetic cameras share stamps
    late = db.cross_targets(videos, {"visible": "", "thermal": ""}, extrinsic, max_gap_s=-1.0)
    assert late["thermal"].paired == 0 and late["thermal"].coverage == 0.0
    for student, c in cross.items():
        taught = c.weight[:, 0].numpy() > 0.05
        want = true_depth(videos[student], (160, 128))
        if student == "thermal":
            assert taught.mean() > 0.05
        err = np.abs(np.log(c.depth[:, 0].numpy()[taught] / want[taught]))
        assert not taught.any() or np.mean(err > 0.1) < 0.05, (student, np.mean(err > 0.1))
