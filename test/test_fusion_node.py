"""The fusion node over real DDS: outputs, pairing, dropping under load, bad inputs, bad config."""
import re
import subprocess
import sys
import time

import numpy as np
import pytest

pytest.importorskip("rclpy")
from node_harness import K_RGB, NodeHarness, camera_images, make_depth_checkpoints, stamp_of  # noqa: E402

from ldf_ros.ros.conversions import image_to_numpy, pointcloud2_to_xyzrgb  # noqa: E402

pytestmark = pytest.mark.ros
S = 1_000_000_000


@pytest.fixture(scope="module")
def depth_weights(tmp_path_factory):
    return make_depth_checkpoints(tmp_path_factory.mktemp("weights"))


def params(weights, **kw):
    base = {"model.variant": "classical", "model.depth_visible_weights": weights["visible"],
            "model.depth_thermal_weights": weights["thermal"], "runtime.warmup_runs": 0,
            "outputs.diagnostics_period_s": 0.5, "pointcloud.stride": 8, "sync.slop_s": 0.02}
    return base | kw


@pytest.fixture
def harness_factory():
    made = []

    def make(p, node_args=None):
        h = NodeHarness(p, node_args)
        made.append(h)
        h.wait_ready()
        return h
    yield make
    for h in made:
        if not h.log:
            h.stop()


def test_pairs_in_every_output_out(harness_factory, depth_weights):
    h = harness_factory(params(depth_weights))
    rgb, thermal = camera_images()
    h.publish_infos()
    h.spin(0.3)
    sent = []
    for i in range(8):
        stamp = 10 * S + i * 250_000_000
        h.publish_infos(stamp)
        h.publish("rgb", rgb, "rgb8", stamp)
        h.publish("thermal", thermal, "mono16", stamp + 3_000_000)
        sent.append(stamp)
        h.spin(0.25)
    assert h.spin_until(lambda: len(h.out.points) >= 6 and len(h.out.diagnostics) > 0, 20), h.stop()
    fused_stamps = [stamp_of(m) for m in h.out.fused]
    assert set(fused_stamps) <= set(sent) and len(set(fused_stamps)) == len(fused_stamps)
    for name in ("fused_info", "depth", "depth_info", "points"):
        assert sorted(stamp_of(m) for m in getattr(h.out, name)) == sorted(fused_stamps), name
    for m in h.out.fused:
        assert (m.encoding, m.width, m.height, m.header.frame_id) == ("rgb8", 640, 512, "rgb_optical_frame")
        assert image_to_numpy(m).shape == (512, 640, 3)
    for m in h.out.depth:
        assert (m.encoding, m.width, m.height, m.header.frame_id) == ("32FC1", 640, 512, "rgb_optical_frame")
        d = image_to_numpy(m)
        assert np.isfinite(d).all() and (d > 0).all()       # untrained net: still meters in range
    for m in h.out.fused_info + h.out.depth_info:
        np.testing.assert_allclose(np.reshape(m.k, (3, 3)), K_RGB)
    xyz, rgb_pts = pointcloud2_to_xyzrgb(h.out.points[0])
    assert h.out.points[0].header.frame_id == "rgb_optical_frame" and xyz.shape[0] > 1000
    assert len(h.out.caption) == len(h.out.fused) and h.out.caption[0].data.count(";") == 2
    values = {kv.key: kv.value for kv in h.out.diagnostics[-1].values}
    assert {"rgb_rate_hz", "thermal_rate_hz", "pair_rate_hz", "dropped_stale_pairs", "device"} <= set(values)
    assert any(k.endswith("_ms_median") for k in values)


def test_offsets_within_slop_fuse_and_beyond_do_not(harness_factory, depth_weights):
    h = harness_factory(params(depth_weights, **{"outputs.depth": False, "outputs.points": False}))
    rgb, thermal = camera_images()
    inside, outside = [], []
    for i in range(10):
        stamp = 20 * S + i * 300_000_000
        offset = 10_000_000 if i % 2 == 0 else 40_000_000
        (inside if i % 2 == 0 else outside).append(stamp)
        h.publish("rgb", rgb, "rgb8", stamp)
        h.publish("thermal", thermal, "mono16", stamp + offset)
        h.spin(0.3)
    h.spin_until(lambda: len(h.out.fused) >= len(inside), 15)
    h.spin(1.0)
    assert sorted(stamp_of(m) for m in h.out.fused) == inside


def test_thermal_9hz_with_rgb_30hz(harness_factory, depth_weights):
    h = harness_factory(params(depth_weights, **{"outputs.depth": False, "outputs.points": False}))
    rgb, thermal = camera_images()
    t0, th_stamps, rgb_stamps = time.monotonic(), [], []
    next_rgb = next_th = 0
    base = 30 * S
    while time.monotonic() - t0 < 3.0:
        now = time.monotonic() - t0
        if now >= next_rgb / 30:
            rgb_stamps.append(base + round(next_rgb * S / 30))
            h.publish("rgb", rgb, "rgb8", rgb_stamps[-1])
            next_rgb += 1
        if now >= next_th / 9:
            th_stamps.append(base + round(next_th * S / 9) + 3_000_000)
            h.publish("thermal", thermal, "mono16", th_stamps[-1])
            next_th += 1
        h.executor.spin_once(timeout_sec=0.002)
    h.spin(2.0)
    fused = [stamp_of(m) for m in h.out.fused]
    assert len(fused) >= len(th_stamps) // 2, (len(fused), len(th_stamps))
    assert len(set(fused)) == len(fused)
    for s in fused:
        assert s in rgb_stamps and min(abs(s - t) for t in th_stamps) < 20_000_000


SLOW_NODE = ("import time, ldf_ros.ros.fusion_node as f; orig = f.FusionPipeline.process; "
             "f.FusionPipeline.process = lambda self, *a, **k: (time.sleep(0.4), orig(self, *a, **k))[1]; "
             "import sys; sys.exit(f.main())")


def _rss_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def test_slow_model_drops_stale_pairs_with_bounded_latency(depth_weights):
    h = NodeHarness(params(depth_weights, **{"outputs.depth": False, "outputs.points": False}), entry=["-c", SLOW_NODE])
    try:
        h.wait_ready()
        rgb, thermal = camera_images()
        sent_at, rss = {}, []
        t0 = time.monotonic()
        i = 0
        while time.monotonic() - t0 < 5.0:
            stamp = 40 * S + i * 33_333_333
            sent_at[stamp] = time.monotonic()
            h.publish("rgb", rgb, "rgb8", stamp)
            h.publish("thermal", thermal, "mono16", stamp)
            i += 1
            h.spin(1 / 30)
            if i == 30:
                rss.append(_rss_mb(h.proc.pid))
        rss.append(_rss_mb(h.proc.pid))
        h.spin(1.5)
        n = len(h.out.fused)
        assert 4 <= n <= 16 and i > 3 * n, (n, i)  # ~0.4 s per frame: about 12 of the pairs sent
        latencies = [h.arrivals[s] - sent_at[s] for s in h.arrivals if s in sent_at]
        assert max(latencies) < 1.5, latencies   # never a backlog: at most one pair waits
        assert rss[1] - rss[0] < 80, rss
        assert h.spin_until(lambda: any(int({kv.key: kv.value for kv in d.values}.get("dropped_stale_pairs", 0)) > i // 2
                                        for d in h.out.diagnostics), 5)
    finally:
        h.stop()


def test_malformed_messages_are_logged_once_and_skipped(harness_factory, depth_weights):
    h = harness_factory(params(depth_weights, **{"outputs.depth": False, "outputs.points": False}))
    rgb, thermal = camera_images()
    from ldf_ros.ros.conversions import numpy_to_image
    bad = []
    m = numpy_to_image(rgb, "rgb8"); m.step = 100; bad.append(("rgb", m))                              # wrong step
    m = numpy_to_image(rgb, "rgb8"); m.encoding = "yuv422"; bad.append(("rgb", m))                     # unknown
    m = numpy_to_image(rgb, "rgb8"); m.data = m.data[:1000]; bad.append(("rgb", m))                    # size
    m = numpy_to_image(rgb, "rgb8"); m.data = b""; m.height = m.width = 0; bad.append(("rgb", m))      # empty
    m = numpy_to_image(rgb, "rgb8"); bad.append(("thermal", m))                                        # 3 channels
    stamp = 50 * S
    good = []
    for rounds in range(2):                    # every bad message twice: logged once
        for which, msg in bad:
            stamp += 200_000_000
            h.publish(which, None, None, stamp, msg=msg)
            other = h.publish("thermal" if which == "rgb" else "rgb", thermal if which == "rgb" else rgb,
                              "mono16" if which == "rgb" else "rgb8", stamp)
            assert other
            h.spin(0.2)
    for i in range(3):
        stamp += 200_000_000
        good.append(stamp)
        h.publish("rgb", rgb, "rgb8", stamp)
        h.publish("thermal", thermal, "mono16", stamp)
        h.spin(0.25)
    assert h.spin_until(lambda: len(h.out.fused) >= 3, 15)
    assert h.proc.poll() is None, "node died on a malformed message"
    log = h.stop()
    assert sorted(stamp_of(m) for m in h.out.fused) == good
    for reason in ("step 100 is smaller", "unsupported encoding 'yuv422'", "data has 1000 bytes", "empty image",
                   "not single channel"):
        assert len(re.findall(re.escape(reason), log)) == 1, (reason, log)


def test_bad_config_stops_with_the_key_named():
    proc = subprocess.run([sys.executable, "-m", "ldf_ros.ros.fusion_node", "--ros-args", "-p", "sync.slop_s:=-1.0"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "sync.slop_s" in proc.stderr
