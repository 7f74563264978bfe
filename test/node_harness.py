"""A fusion node in its own process and a test rig (camera publishers, output subscribers)
in this one, talking over real DDS."""
from __future__ import annotations

import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, QoSReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import String

from ldf_ros.ros.conversions import make_camera_info, numpy_to_image
from ros_tools import spin_until, stop_process

PROBE_END_NS = 2_000_000_000   # probe pairs of `prime` have stamps below this; tests use later ones
GUARD_S = 90.0     # generous limit on any wait: only a hang should reach it, not a loaded machine
RELIABLE = QoSProfile(depth=50, reliability=QoSReliabilityPolicy.RELIABLE)
K_RGB = np.array([[500.0, 0, 319.5], [0, 500.0, 255.5], [0, 0, 1]])
K_TH = np.array([[300.0, 0, 159.5], [0, 300.0, 127.5], [0, 0, 1]])


def make_depth_checkpoints(folder) -> dict[str, str]:
    """Untrained student depth checkpoints (the node tests check wiring, not accuracy)."""
    import torch

    from ldf_ros.models.checkpoint import save_checkpoint
    from ldf_ros.models.depth_net import DepthNet, student_config
    torch.manual_seed(0)
    out = {}
    for m in ("visible", "thermal"):
        net = DepthNet(student_config(m))
        out[m] = str(save_checkpoint(folder / f"depth_{m}.safetensors", net, "depth", net.cfg.to_dict()))
    return out


def node_params(weights: dict[str, str], **kw) -> dict:
    """Node parameters for tests: classical fusion, the given depth checkpoints, no warm-up,
    fast diagnostics; keyword arguments override (dotted names as `**{"a.b": v}`)."""
    base = {"model.variant": "classical", "model.depth_visible_weights": weights["visible"],
            "model.depth_thermal_weights": weights["thermal"], "runtime.warmup_runs": 0,
            "outputs.diagnostics_period_s": 0.5, "pointcloud.stride": 8, "sync.slop_s": 0.02}
    return base | kw


@dataclass
class Outputs:
    fused: list = field(default_factory=list)
    fused_info: list = field(default_factory=list)
    depth: list = field(default_factory=list)
    depth_info: list = field(default_factory=list)
    confidence: list = field(default_factory=list)
    points: list = field(default_factory=list)
    caption: list = field(default_factory=list)
    diagnostics: list = field(default_factory=list)


class NodeHarness:
    def __init__(self, params: dict, node_args: list[str] | None = None, entry: list[str] | None = None):
        """entry: how python starts the node (default `-m ldf_ros.ros.fusion_node`)."""
        self.ns = "/t" + uuid.uuid4().hex[:8]
        entry = entry or ["-m", "ldf_ros.ros.fusion_node"]
        args = [sys.executable, *entry, "--ros-args", "-r", f"__ns:={self.ns}"]
        for k, v in params.items():
            args += ["-p", f"{k}:={_param(v)}"]
        self.proc = subprocess.Popen(args + (node_args or []), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            rclpy.init()
        except Exception:
            stop_process(self.proc)           # never leave a node behind
            raise
        self.node = rclpy.create_node("rig", namespace=self.ns)
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self.pub_rgb = self.node.create_publisher(Image, "rgb/image", qos_profile_sensor_data)
        self.pub_th = self.node.create_publisher(Image, "thermal/image", qos_profile_sensor_data)
        self.pub_rgb_info = self.node.create_publisher(CameraInfo, "rgb/camera_info", qos_profile_sensor_data)
        self.pub_th_info = self.node.create_publisher(CameraInfo, "thermal/camera_info", qos_profile_sensor_data)
        self.out = Outputs()
        out_ns = f"{self.ns}/ldf_fusion"
        for name, msg_type, topic in [("fused", Image, "fused/image"), ("fused_info", CameraInfo, "fused/camera_info"),
                                      ("depth", Image, "depth/image"), ("depth_info", CameraInfo, "depth/camera_info"),
                                      ("confidence", Image, "depth/confidence"),
                                      ("points", PointCloud2, "points"), ("caption", String, "caption")]:
            self.node.create_subscription(msg_type, f"{out_ns}/{topic}", self._collector(name), RELIABLE)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._diag, 10)
        self.log = ""
        self.arrivals: dict[int, float] = {}   # fused stamp -> monotonic arrival time
        self.probes_answered = 0

    def _collector(self, name):
        def collect(msg):
            if hasattr(msg, "header") and stamp_of(msg) < PROBE_END_NS:
                self.probes_answered += name == "fused"
                return
            getattr(self.out, name).append(msg)
            if name == "fused":
                self.arrivals[stamp_of(msg)] = time.monotonic()
        return collect

    def _diag(self, msg):
        for s in msg.status:
            if s.name.startswith(f"{self.ns}/ldf_fusion:"):      # /diagnostics is shared by every node
                self.out.diagnostics.append(s)

    def wait_ready(self, timeout_s: float = 40.0) -> None:
        """Until the node subscribes to both cameras and its first diagnostics arrive."""
        ok = spin_until(self.executor, lambda: self.pub_rgb.get_subscription_count() > 0
                        and self.pub_th.get_subscription_count() > 0, timeout_s)
        assert ok, f"node never subscribed:\n{self.stop()}"
        self.prime()

    def prime(self, timeout_s: float = GUARD_S) -> None:
        """Send probe pairs (stamps below PROBE_END_NS, filtered out of the outputs) until one is
        answered: then both directions of discovery are complete and the node is processing, so
        no later message of a test is lost to a reader that has not matched the rig yet."""
        rgb, thermal = camera_images()
        deadline = time.monotonic() + timeout_s
        k = 0
        while time.monotonic() < deadline:
            k += 1
            self.send_pair(PROBE_END_NS // 2 + k * 1_000_000, rgb, thermal)
            if self.spin_until(lambda: self.probes_answered > 0, 3.0):
                assert self.wait_settled(), f"the node never settled:\n{self.stop()}"
                self.out.caption.clear()          # captions carry no stamp: drop the probes'
                return
        raise AssertionError(f"the node never answered a probe pair:\n{self.stop()}")

    def spin(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=0.01)

    def spin_until(self, predicate, timeout_s: float) -> bool:
        return spin_until(self.executor, predicate, timeout_s)

    def publish(self, which: str, arr: np.ndarray, encoding: str, stamp_ns: int, frame: str | None = None, msg=None):
        msg = msg or numpy_to_image(arr, encoding)
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(int(stamp_ns), 1_000_000_000)
        msg.header.frame_id = frame or f"{which}_optical_frame"
        (self.pub_rgb if which == "rgb" else self.pub_th).publish(msg)
        return msg

    def publish_infos(self, stamp_ns: int = 0):
        for pub, k, w, h in ((self.pub_rgb_info, K_RGB, 640, 512), (self.pub_th_info, K_TH, 320, 256)):
            info = make_camera_info(k, w, h)
            info.header.stamp.sec, info.header.stamp.nanosec = divmod(int(stamp_ns), 1_000_000_000)
            pub.publish(info)

    def send_pair(self, stamp_ns: int, rgb: np.ndarray, thermal: np.ndarray, thermal_offset_ns: int = 0,
                  thermal_encoding: str = "mono16") -> None:
        self.publish("rgb", rgb, "rgb8", stamp_ns)
        self.publish("thermal", thermal, thermal_encoding, stamp_ns + thermal_offset_ns)

    def wait_fused(self, stamp_ns: int, timeout_s: float = GUARD_S) -> bool:
        """Lockstep: spin until the fused image of this RGB stamp arrived. The timeout only
        guards against a hang; a test fails on what arrived, never on how fast."""
        return self.spin_until(lambda: stamp_ns in self.arrivals, timeout_s)

    def diag_value(self, key: str, default=None):
        """The value of `key` in the newest diagnostics status, or default."""
        if not self.out.diagnostics:
            return default
        return {kv.key: kv.value for kv in self.out.diagnostics[-1].values}.get(key, default)

    def wait_settled(self, timeout_s: float = GUARD_S) -> bool:
        """Until diagnostics show every pair the node formed as answered, dropped or skipped."""
        def settled(st):
            v = values_of(st)
            done = sum(int(v.get(k, 0)) for k in ("outputs", "dropped_stale_pairs", "skipped_bad_inputs", "failed_frames"))
            return int(v.get("pairs", -1)) == done
        return self.wait_diag(settled, timeout_s)

    def wait_diag(self, predicate, timeout_s: float = GUARD_S) -> bool:
        """Spin until a diagnostics status arriving from now on satisfies predicate(status)."""
        start = len(self.out.diagnostics)
        return self.spin_until(lambda: any(predicate(s) for s in self.out.diagnostics[start:]), timeout_s)

    def stop(self) -> str:
        stop_process(self.proc, timeout_s=10)
        self.log = self.proc.stdout.read() if self.proc.stdout else ""
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown()
        return self.log


def _param(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return v if v else "''"
    return repr(v)


def values_of(status) -> dict:
    return {kv.key: kv.value for kv in status.values}


def stamp_of(msg) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


def camera_images():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (512, 640, 3), dtype=np.uint8)
    thermal = rng.integers(28000, 31000, (256, 320)).astype(np.uint16)
    return rgb, thermal
