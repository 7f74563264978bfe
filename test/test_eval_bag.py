"""`ldf-ros eval-bag`: a synthetic bag through the real node over DDS, recorded and reported."""
import json

import pytest

pytest.importorskip("rclpy")
from node_harness import make_depth_checkpoints  # noqa: E402

from ldf_ros.ros.bag_eval import evaluate_bag  # noqa: E402
from ldf_ros.synthetic.bag import write_bag  # noqa: E402
from ldf_ros.synthetic.sequence import SequenceSpec  # noqa: E402

pytestmark = pytest.mark.ros


def test_eval_bag_writes_output_bag_report_panels_and_ply(tmp_path):
    weights = make_depth_checkpoints(tmp_path)
    spec = SequenceSpec(frames=6, conditions=("night",), seed=2, thermal_rate_hz=15.0, thermal_offset_s=0.003)
    bag = write_bag(spec, "night", tmp_path / "in_bag", progress=False)
    cfg = tmp_path / "params.yaml"
    cfg.write_text("/**/ldf_fusion:\n  ros__parameters:\n    model:\n"
                   f"      depth_visible_weights: {weights['visible']}\n      depth_thermal_weights: {weights['thermal']}\n"
                   "    runtime:\n      warmup_runs: 0\n")
    summary = evaluate_bag(bag, tmp_path / "out", config=cfg, variant="classical")
    assert summary["thermal_frames"] == 3 and summary["rgb_frames"] == 6
    assert summary["mode"] == "lockstep" and summary["pairs_timed_out"] == 0
    assert summary["outputs"] == 3                         # lockstep: every pair, on any machine
    assert summary["depth"] is not None and summary["depth"]["abs_rel"] > 0      # ground truth was in the bag
    assert {"EN", "SD", "Qabf"} <= set(summary["fusion"])
    assert float(summary["diagnostics"]["total_ms_median"]) > 0        # diagnostics after the last output
    out = tmp_path / "out"
    for name in ("report.md", "summary.json", "frames.csv", "panel_first.png", "points.ply", "node.log"):
        assert (out / name).is_file(), name
    assert json.loads((out / "summary.json").read_text())["outputs"] == summary["outputs"]
    from rosbags.highlevel import AnyReader
    with AnyReader([out / "output_bag"]) as reader:
        topics = {c.topic: c.msgcount for c in reader.connections}
    assert topics["/ldf_fusion/fused/image"] == summary["outputs"]
    assert {"/ldf_fusion/depth/image", "/ldf_fusion/points", "/ldf_fusion/caption"} <= set(topics)


def test_recorder_reads_the_stamp_from_serialized_outputs():
    """The recorder keeps outputs serialized while the node runs; the stamp comes from the CDR."""
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import Image, PointCloud2

    from ldf_ros.ros.bag_eval import _cdr_header_stamp

    for cls in (Image, PointCloud2):
        msg = cls()
        msg.header.stamp.sec, msg.header.stamp.nanosec = 1_700_000_123, 987_654_321
        msg.header.frame_id = "rgb_optical"
        assert _cdr_header_stamp(serialize_message(msg)) == 1_700_000_123_987_654_321
