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
            "--init-visible", _tiny_init(tmp_path, "visible"), "--init-thermal", _tiny_init(tmp_path, "thermal")]
    assert main(args) == 0
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    for modality in ("visible", "thermal"):
        r = report["branches"][modality]
        assert r["train_frames"] == 9 and r["after"]["frames"] == 3
        for when in ("before", "after"):       # synthetic bags carry ground truth: AbsRel on the held-out end
            assert r[when]["abs_rel"] > 0 and math.isfinite(r[when]["camera_height_m"])
        net = load_depth_net(r["checkpoint"], modality)     # what the node loads
        assert net.cfg.focal_px == 50.0
    out = capsys.readouterr().out
    assert "| visible | 9 / 3 |" in out and "->" in out


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
