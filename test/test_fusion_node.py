"""The fusion node over real DDS: outputs, pairing, dropping under load, bad inputs, bad config.

Every test drives the node in lockstep (a pair, then wait for its answer) or holds its worker
with a gate, so what is asserted does not depend on the machine's speed or load."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("rclpy")
from node_harness import K_RGB, node_params as params, NodeHarness, camera_images, make_depth_checkpoints, stamp_of, values_of  # noqa: E402

from ldf_ros.ros.conversions import image_to_numpy, pointcloud2_to_xyzrgb  # noqa: E402

pytestmark = pytest.mark.ros
S = 1_000_000_000


@pytest.fixture(scope="module")
def depth_weights(tmp_path_factory):
    return make_depth_checkpoints(tmp_path_factory.mktemp("weights"))


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
    sent = []
    for i in range(5):                              # lockstep: each pair waits for its answer
        stamp = 10 * S + i * 250_000_000
        h.publish_infos(stamp)
        h.send_pair(stamp, rgb, thermal, thermal_offset_ns=3_000_000)
        sent.append(stamp)
        assert h.wait_fused(stamp), h.stop()
    names = ("fused_info", "depth", "depth_info", "confidence", "points", "caption")
    # each output is its own topic: they arrive in any order, so wait for all of them
    assert h.spin_until(lambda: all(len(getattr(h.out, n)) >= len(sent) for n in names), 60), h.stop()
    assert sorted(stamp_of(m) for m in h.out.fused) == sent
    for name in ("fused_info", "depth", "depth_info", "confidence", "points"):
        assert sorted(stamp_of(m) for m in getattr(h.out, name)) == sent, name
    for m in h.out.fused:
        assert (m.encoding, m.width, m.height, m.header.frame_id) == ("rgb8", 640, 512, "rgb_optical_frame")
        assert image_to_numpy(m).shape == (512, 640, 3)
    for m in h.out.depth:
        assert (m.encoding, m.width, m.height, m.header.frame_id) == ("32FC1", 640, 512, "rgb_optical_frame")
        d = image_to_numpy(m)
        assert np.isfinite(d).all() and (d > 0).all()       # untrained net: still meters in range
    for m in h.out.confidence:
        c = image_to_numpy(m)
        assert m.encoding == "32FC1" and c.shape == (512, 640) and ((c > 0) & (c <= 1)).all()
    for m in h.out.fused_info + h.out.depth_info:
        np.testing.assert_allclose(np.reshape(m.k, (3, 3)), K_RGB)
    xyz, rgb_pts = pointcloud2_to_xyzrgb(h.out.points[0])
    assert h.out.points[0].header.frame_id == "rgb_optical_frame" and xyz.shape[0] > 1000
    assert h.out.caption[0].data.count(";") == 2
    assert h.wait_settled()
    values = values_of(h.out.diagnostics[-1])
    assert {"rgb_rate_hz", "thermal_rate_hz", "pair_rate_hz", "dropped_stale_pairs", "device", "worker_restarts"} <= set(values)
    assert any(k.endswith("_ms_median") for k in values)
    assert values["worker_restarts"] == "0" and values["failed_frames"] == "0"


def test_offsets_within_slop_fuse_and_beyond_do_not(harness_factory, depth_weights):
    h = harness_factory(params(depth_weights, **{"outputs.depth": False, "outputs.points": False}))
    rgb, thermal = camera_images()
    inside = []
    for i in range(8):
        stamp = 20 * S + i * 300_000_000
        if i % 2:
            h.send_pair(stamp, rgb, thermal, thermal_offset_ns=40_000_000)     # beyond the 20 ms slop
        else:
            h.send_pair(stamp, rgb, thermal, thermal_offset_ns=10_000_000)
            inside.append(stamp)
            assert h.wait_fused(stamp), h.stop()
    assert h.wait_settled()                       # every pair formed is answered: nothing late can come
    assert sorted(stamp_of(m) for m in h.out.fused) == inside


def test_thermal_9hz_with_rgb_30hz(harness_factory, depth_weights):
    """Camera rates as stamps, published in stamp order in lockstep: every thermal frame is
    fused with its nearest RGB frame, whatever the machine's speed."""
    h = harness_factory(params(depth_weights, **{"outputs.depth": False, "outputs.points": False}))
    rgb, thermal = camera_images()
    base = 30 * S
    msgs = [("rgb", base + round(i * S / 30)) for i in range(45)]
    msgs += [("thermal", base + round(j * S / 9) + 3_000_000) for j in range(13)]
    msgs.sort(key=lambda m: m[1])
    rgb_stamps = [t for w, t in msgs if w == "rgb"]
    expected = {}                                 # thermal stamp -> its nearest RGB stamp
    for w, t in msgs:
        if w == "thermal":
            expected[t] = min(rgb_stamps, key=lambda r: abs(r - t))
    completes = {max(th, r): r for th, r in expected.items()}   # the later message completes the pair
    for w, t in msgs:
        h.publish(w, rgb if w == "rgb" else thermal, "rgb8" if w == "rgb" else "mono16", t)
        if t in completes:
            assert h.wait_fused(completes[t]), (h.stop(), t)
    assert h.wait_settled()
    assert sorted(stamp_of(m) for m in h.out.fused) == sorted(expected.values())


GATED_NODE = """
import os, sys, time
import ldf_ros.ros.fusion_node as f
orig, gate = f.FusionPipeline.process, os.environ["LDF_TEST_GATE"]
def process(self, *a, **k):
    # the first pair holds the worker until the test opens the gate
    open(gate + ".entered", "a").close()
    while not os.path.exists(gate + ".open"):
        time.sleep(0.01)
    return orig(self, *a, **k)
f.FusionPipeline.process = process
on_pair = f.FusionNode._on_pair
def log_pair(self, rgb_msg, thermal_msg):
    # tell the test which pairs the executor formed (while the worker is held)
    with open(gate + ".pairs", "a") as fh:
        fh.write(f"{f._stamp_ns(rgb_msg)} ")
    on_pair(self, rgb_msg, thermal_msg)
f.FusionNode._on_pair = log_pair
sys.exit(f.main())
"""


def test_a_busy_node_drops_stale_pairs_and_keeps_the_newest(depth_weights, tmp_path, monkeypatch):
    """Pairs arriving while the worker is busy replace each other: the newest one is processed
    next and the others are counted as dropped. The busy worker is held by a gate, so the
    outcome is fixed by construction."""
    gate = tmp_path / "gate"
    monkeypatch.setenv("LDF_TEST_GATE", str(gate))
    h = NodeHarness(params(depth_weights, **{"outputs.depth": False, "outputs.points": False}), entry=["-c", GATED_NODE])
    try:
        # no probe pairs (prime): the gate holds the first pair; readiness is checked by hand
        assert h.spin_until(lambda: h.pub_rgb.get_subscription_count() > 0 and h.pub_th.get_subscription_count() > 0,
                            60), h.stop()
        rgb, thermal = camera_images()
        first = [40 * S]
        while not os.path.exists(f"{gate}.entered"):      # resend until the node took a first pair
            first.append(first[-1] + 1_000_000)
            h.send_pair(first[-1], rgb, thermal)
            h.spin_until(lambda: os.path.exists(f"{gate}.entered"), 2.0)
        later = [41 * S + i * 33_333_333 for i in range(4)]
        for stamp in later:
            h.send_pair(stamp, rgb, thermal)
        # the executor keeps receiving while the worker is held: wait until it paired the last one
        paired = lambda: os.path.exists(f"{gate}.pairs") and str(later[-1]) in open(f"{gate}.pairs").read().split()  # noqa: E731
        assert h.spin_until(paired, 90), h.stop()
        open(f"{gate}.open", "w").close()
        assert h.wait_fused(later[-1]), h.stop()
        assert h.wait_settled()
        fused = [stamp_of(m) for m in h.out.fused]
        assert len(fused) == 2 and fused[-1] == later[-1] and fused[0] in first
        assert int(h.diag_value("dropped_stale_pairs")) == int(h.diag_value("pairs")) - 2
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
    skipped = 0
    for rounds in range(2):                    # every bad message twice: logged once
        for which, msg in bad:
            stamp += 200_000_000
            h.publish(which, None, None, stamp, msg=msg)
            h.publish("thermal" if which == "rgb" else "rgb", thermal if which == "rgb" else rgb,
                      "mono16" if which == "rgb" else "rgb8", stamp)
            skipped += 1                       # lockstep: the bad pair is answered by a counter
            assert h.wait_diag(lambda st: int(values_of(st)["skipped_bad_inputs"]) == skipped), h.stop()
            stamp += 200_000_000               # lockstep: a good pair after each bad one
            h.send_pair(stamp, rgb, thermal)
            good.append(stamp)
            assert h.wait_fused(stamp), h.stop()
    assert h.wait_settled()
    assert h.proc.poll() is None, "node died on a malformed message"
    assert int(h.diag_value("skipped_bad_inputs")) == 2 * len(bad)
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


def _set(h, **values):
    """ros2 param set over the node's service: [(successful, reason)] per value."""
    from rcl_interfaces.srv import SetParameters
    from rclpy.parameter import Parameter
    client = h.node.create_client(SetParameters, f"{h.ns}/ldf_fusion/set_parameters")
    assert client.wait_for_service(timeout_sec=30)
    req = SetParameters.Request(parameters=[Parameter(k.replace("__", "."), value=v).to_parameter_msg()
                                            for k, v in values.items()])
    future = client.call_async(req)
    assert h.spin_until(future.done, 60)
    return [(r.successful, r.reason) for r in future.result().results]


def test_live_parameters_validate_and_apply(harness_factory, depth_weights):
    """`ros2 param set`: bad values and read-only keys are refused with the reason and change
    nothing; a live key takes effect on the next frame."""
    h = harness_factory(params(depth_weights, **{"pointcloud.stride": 8}))
    rgb, thermal = camera_images()
    h.send_pair(70 * S, rgb, thermal)
    assert h.wait_fused(70 * S) and h.spin_until(lambda: len(h.out.points) == 1, 30)
    n8 = pointcloud2_to_xyzrgb(h.out.points[0])[0].shape[0]
    (ok, why), = _set(h, pointcloud__stride=0)
    assert not ok and "pointcloud.stride" in why and "64" in why       # the range, from the descriptor
    (ok, why), = _set(h, pointcloud__stride="banana")
    assert not ok and "pointcloud.stride" in why
    (ok, why), = _set(h, model__variant="student")
    assert not ok and ("read-only" in why or "cannot change" in why)
    (ok, why), = _set(h, pointcloud__stride=16)
    assert ok, why
    h.send_pair(71 * S, rgb, thermal)
    assert h.wait_fused(71 * S) and h.spin_until(lambda: len(h.out.points) == 2, 30)
    n16 = pointcloud2_to_xyzrgb(h.out.points[1])[0].shape[0]
    assert n16 < n8 / 3                      # every 16th pixel in u and v instead of every 8th
    (ok, why), = _set(h, outputs__points=False)
    assert ok, why
    h.send_pair(72 * S, rgb, thermal)
    assert h.wait_fused(72 * S) and h.wait_settled()
    assert len(h.out.points) == 2
    log = h.stop()
    assert "parameters changed: pointcloud.stride=16" in log


def test_stamped_caption_matches_its_frame(harness_factory, depth_weights):
    from diagnostic_msgs.msg import DiagnosticArray

    from node_harness import RELIABLE
    h = harness_factory(params(depth_weights))
    got = []
    h.node.create_subscription(DiagnosticArray, f"{h.ns}/ldf_fusion/caption/stamped", got.append, RELIABLE)
    rgb, thermal = camera_images()
    h.send_pair(80 * S, rgb, thermal)
    assert h.wait_fused(80 * S) and h.spin_until(lambda: any(stamp_of(m) == 80 * S for m in got), 30)
    m = next(m for m in got if stamp_of(m) == 80 * S)
    assert m.header.frame_id == "rgb_optical_frame" and m.status[0].name == "caption"
    assert m.status[0].message.count(";") == 2


def test_a_parameter_dump_loads_back(harness_factory, depth_weights, tmp_path):
    """What `ros2 param dump` writes (every parameter, rclpy's own included, nested by dots)
    starts the node again."""
    import yaml
    from rcl_interfaces.srv import GetParameters, ListParameters
    from rclpy.parameter import parameter_value_to_python
    h = harness_factory(params(depth_weights))
    lister = h.node.create_client(ListParameters, f"{h.ns}/ldf_fusion/list_parameters")
    getter = h.node.create_client(GetParameters, f"{h.ns}/ldf_fusion/get_parameters")
    assert lister.wait_for_service(timeout_sec=30) and getter.wait_for_service(timeout_sec=30)
    names = lister.call_async(ListParameters.Request())
    assert h.spin_until(names.done, 60)
    names = sorted(names.result().result.names)
    values = getter.call_async(GetParameters.Request(names=names))
    assert h.spin_until(values.done, 60)
    tree: dict = {}
    for name, value in zip(names, values.result().values):
        *path, leaf = name.split(".")
        node = tree
        for part in path:
            node = node.setdefault(part, {})
        node[leaf] = parameter_value_to_python(value)
    assert "use_sim_time" in tree and "start_type_description_service" in tree
    dump = tmp_path / "dump.yaml"
    dump.write_text(yaml.safe_dump({f"{h.ns}/ldf_fusion": {"ros__parameters": tree}}))
    h.stop()
    proc = subprocess.Popen([sys.executable, "-m", "ldf_ros.ros.fusion_node", "--ros-args", "-r", f"__ns:={h.ns}",
                             "--params-file", str(dump)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in proc.stdout:                    # until it is up (or exits: the file was refused)
        lines.append(line)
        if "ldf_fusion up" in line:
            break
    proc.send_signal(2)
    rc = proc.wait(timeout=60)
    log = "".join(lines) + proc.stdout.read()
    assert rc == 0 and "ldf_fusion up" in log and "configuration error" not in log, log


def _transition(h, label: str) -> str:
    """Drive the managed node through a transition (lifecycle services); returns the new state."""
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState, GetState
    ids = {"configure": Transition.TRANSITION_CONFIGURE, "activate": Transition.TRANSITION_ACTIVATE,
           "deactivate": Transition.TRANSITION_DEACTIVATE, "cleanup": Transition.TRANSITION_CLEANUP}
    change = h.node.create_client(ChangeState, f"{h.ns}/ldf_fusion/change_state")
    get = h.node.create_client(GetState, f"{h.ns}/ldf_fusion/get_state")
    assert change.wait_for_service(timeout_sec=60) and get.wait_for_service(timeout_sec=60)
    done = change.call_async(ChangeState.Request(transition=Transition(id=ids[label])))
    assert h.spin_until(done.done, 90) and done.result().success, label
    state = get.call_async(GetState.Request())
    assert h.spin_until(state.done, 30)
    return state.result().current_state.label


def test_lifecycle_node_configures_activates_deactivates_and_cleans_up(depth_weights):
    h = NodeHarness(params(depth_weights), entry=["-m", "ldf_ros.ros.fusion_node", "--lifecycle"])
    try:
        rgb, thermal = camera_images()
        for cycle in range(2):                       # a managed node can go round again
            assert _transition(h, "configure") == "inactive"
            assert _transition(h, "activate") == "active"
            h.probes_answered = 0
            h.wait_ready()
            stamp = (90 + cycle) * S
            h.send_pair(stamp, rgb, thermal)
            assert h.wait_fused(stamp), h.stop()
            assert _transition(h, "deactivate") == "inactive"
            assert _transition(h, "cleanup") == "unconfigured"
    finally:
        log = h.stop()
    assert h.proc.returncode == 0 and "Traceback" not in log, log
