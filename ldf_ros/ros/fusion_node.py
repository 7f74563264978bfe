"""`ldf_fusion`: the ROS 2 node. It only wires topics and parameters to the pure pipeline.

Inputs (relative, remappable): rgb/image, rgb/camera_info, thermal/image, thermal/camera_info,
all with sensor-data QoS (best effort; also matches reliable publishers).
Outputs (reliable): ~/fused/image (rgb8), ~/fused/camera_info, ~/depth/image (32FC1, meters,
NaN invalid), ~/depth/camera_info, ~/points (XYZRGB, RGB optical frame), ~/caption, /diagnostics,
and on request ~/thermal/registered (mono8, the normalized thermal on the RGB grid).

Pairs are formed by approximate time (message_filters where installed, the equivalent
`ApproximatePairing` elsewhere) and handed to one worker thread through a one-slot mailbox:
when inference is slower than the cameras the older waiting pair is dropped (and counted)
instead of queueing, so latency and memory stay bounded.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
import time
import traceback
from collections import deque

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.clock import Clock, ClockType
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions
from rclpy.qos import QoSHistoryPolicy, QoSProfile, QoSReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Header, String

from ldf_ros.config import (LIVE_PARAMETERS, NODE_NAME, ConfigError, FusionConfig, allowed_values, config_from_flat,
                            config_to_flat, parameter_field)
from ldf_ros.ros.conversions import camera_info_to_k, image_to_numpy, make_camera_info, numpy_to_image, xyzrgb_to_pointcloud2
from ldf_ros.ops.camera import intrinsics_problem, scale_intrinsics
from ldf_ros.data.image_encoding import ImageEncodingError, check_image_limits, to_rgb
from ldf_ros.runtime.pairing import ApproximatePairing
from ldf_ros.runtime.pipeline import STAGES, FusionPipeline, InputError
from ldf_ros.runtime.monitor import ProblemLog, RateMeter
from ldf_ros.runtime.worker import LatestWorker

THERMAL_ENCODINGS = ("mono8", "8UC1", "mono16", "16UC1", "32FC1")
WATCHDOG_PERIOD_S = 1.0
CAMERA_INFO_WAIT_S = 0.5         # the first pair waits this long for a camera's first CameraInfo
RESTART_ERROR_HOLD_S = 10.0      # diagnostics stay ERROR this long after the worker was restarted
RELIABLE = QoSProfile(depth=2, reliability=QoSReliabilityPolicy.RELIABLE, history=QoSHistoryPolicy.KEEP_LAST)


def _stamp_ns(msg) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


def use_message_filters() -> bool:
    """message_filters where installed, unless LDF_ROS_PAIRING=builtin asks for our own."""
    if os.environ.get("LDF_ROS_PAIRING", "") == "builtin":
        return False
    try:
        import message_filters  # noqa: F401
        return True
    except ImportError:
        return False


class _FusionCore:
    """What the plain and the managed (lifecycle) node share. Set-up in four steps, as the
    lifecycle names them: configure (`_setup`: pipeline and models, publishers, timers),
    activate (`_start`: subscriptions, worker), deactivate (`_halt`), cleanup (`_teardown`)."""

    pipeline: FusionPipeline | None = None
    worker: LatestWorker | None = None
    _subs: list = []
    _timers: list = []
    _publishers_made: list = []

    def _setup(self) -> None:
        self.problems = ProblemLog(self._log)
        self.pipeline = FusionPipeline(self.cfg, log=self._log)
        self.meters = {"rgb": RateMeter(), "thermal": RateMeter(), "pairs": RateMeter(), "processed": RateMeter()}
        self.stage_ms: dict[str, deque] = {s: deque(maxlen=200) for s in STAGES + ("total", "age")}
        self.infos: dict[str, CameraInfo | None] = {"rgb": None, "thermal": None}
        self._info_seen = {"rgb": threading.Event(), "thermal": threading.Event()}
        self._info_waited = {"rgb": False, "thermal": False}
        self._restarted_at = -float("inf")
        self._subs: list = []
        self._make_publishers()
        steady = Clock(clock_type=ClockType.STEADY_TIME)   # a paused /clock must not stop these
        self._timers = [self.create_timer(WATCHDOG_PERIOD_S, self._watchdog, clock=steady)]
        if self.cfg.outputs.diagnostics:
            self._timers.append(self.create_timer(self.cfg.outputs.diagnostics_period_s, self._publish_diagnostics,
                                                  clock=steady))
        self.worker = LatestWorker(self._process, self._on_worker_error, name="ldf_fusion_worker",
                                   warmup=lambda: self.pipeline.warmup(640, 512))

    def _start(self) -> None:
        self._make_subscriptions()
        self.worker.start()
        self.get_logger().info(
            f"ldf_fusion up: variant={self.pipeline.variant} device={self.pipeline.device} "
            f"pairing={'message_filters' if self._with_message_filters else 'builtin'} slop={self.cfg.sync.slop_s}s "
            f"rgb={self.resolve_topic_name(self.cfg.topics.rgb_image)} thermal={self.resolve_topic_name(self.cfg.topics.thermal_image)}")

    def _halt(self) -> bool:
        """Stop taking input and finish the frame in progress; True when the worker has ended."""
        for sub in self._subs:
            self.destroy_subscription(sub)
        self._subs = []
        return self.worker.stop() if self.worker is not None else True

    def _teardown(self) -> None:
        for timer in self._timers:
            self.destroy_timer(timer)
        for pub in self._publishers_made:
            self.destroy_publisher(pub)
        self._timers, self._publishers_made = [], []
        self.pipeline = self.worker = None

    # --- parameters -------------------------------------------------------------------------
    def _read_parameters(self) -> FusionConfig:
        """Declare every config key as a parameter (its range, and read-only unless it can
        change live); validate them together (ConfigError on bad values). Declared with dynamic
        typing, so `slop_s: 1` in a YAML file is as good as 1.0: the schema checks each type, and
        `ros2 param describe` shows the type of the value set."""
        defaults = config_to_flat(FusionConfig())
        overrides = getattr(self, "_parameter_overrides", {}) or {}
        unknown = sorted(k for k in overrides if k not in defaults and not _is_rclpy_parameter(k))
        if unknown:
            raise ConfigError(f"{unknown[0]}: unknown parameter, expected one of {', '.join(defaults)}")
        given = {k: overrides[k].value for k in defaults if k in overrides}
        cfg = config_from_flat({**defaults, **given})          # our messages first, before rclpy's checks
        for key, value in config_to_flat(cfg).items():
            self.declare_parameter(key, value, parameter_descriptor(key))
        self.add_on_set_parameters_callback(self._on_set_parameters)
        return cfg

    def _on_set_parameters(self, params) -> SetParametersResult:
        """`ros2 param set`: validate the new values with the rest; apply the live ones, refuse
        the others with the reason (the node keeps its config on any refusal)."""
        flat = config_to_flat(self.cfg)
        for p in params:
            if p.name not in flat:
                continue                                      # rclpy's own (use_sim_time, ...)
            if p.name not in LIVE_PARAMETERS:
                return SetParametersResult(successful=False, reason=f"{p.name} cannot change at run time "
                                                                    "(models, devices, topics and geometry are set "
                                                                    "up once): restart the node with the new value")
            flat[p.name] = p.value
        try:
            cfg = config_from_flat(flat)
        except ConfigError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        if cfg != self.cfg:
            self._apply(cfg)
        return SetParametersResult(successful=True)

    def _apply(self, cfg: FusionConfig) -> None:
        """Switch to a validated config whose read-only parts are unchanged (one reference swap
        per object: the worker sees the old or the new config for a whole frame, never a mix)."""
        if self.pipeline is not None:
            self.pipeline.update_config(cfg)
        if hasattr(self, "_pairing"):
            self._pairing.slop_ns = int(round(cfg.sync.slop_s * 1e9))
        elif hasattr(self, "_sync"):
            from rclpy.duration import Duration
            self._sync.slop = Duration(seconds=cfg.sync.slop_s)
        before = config_to_flat(self.cfg)
        changed = {k: v for k, v in config_to_flat(cfg).items() if before[k] != v}
        self.cfg = cfg
        self.get_logger().info("parameters changed: " + ", ".join(f"{k}={v}" for k, v in changed.items()))

    def _log(self, level: str, msg: str) -> None:
        # one call site per severity: rclpy refuses a severity change at the same call site
        logger = self.get_logger()
        if level == "error":
            logger.error(msg)
        elif level in ("warn", "warning"):
            logger.warning(msg)
        else:
            logger.info(msg)

    def _on_worker_error(self, exc: BaseException, where: str) -> None:
        """Worker thread: a pair failed (or the warm-up, or the thread itself): log once per reason."""
        if not self.worker.running:
            return                                   # shutting down: publishers may be gone
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        if where == "process":
            reason = f"processing failed ({detail}); pair skipped"
        elif where == "warmup":
            reason = f"warm-up failed ({detail}); the first frames may be slow"
        else:
            reason = f"worker thread ended ({detail}); the watchdog restarts it"
        if self.problems.report("failure", "error", reason) and where == "process":
            self.get_logger().debug(traceback.format_exc())

    def _watchdog(self) -> None:
        if self.worker.ensure_alive():
            self._restarted_at = time.monotonic()
            self._log("error", f"fusion worker had stopped ({self.worker.last_death or 'unknown cause'}); restarted "
                               f"({self.worker.counters.restarts} restarts so far)")

    # --- wiring -----------------------------------------------------------------------------
    def _make_publishers(self) -> None:
        """Every output's publisher exists from the start, so outputs.* can be switched live."""
        before = set(self.publishers)
        self.pub_fused = self.create_publisher(Image, "~/fused/image", RELIABLE)
        self.pub_fused_info = self.create_publisher(CameraInfo, "~/fused/camera_info", RELIABLE)
        self.pub_depth = self.create_publisher(Image, "~/depth/image", RELIABLE)
        self.pub_depth_info = self.create_publisher(CameraInfo, "~/depth/camera_info", RELIABLE)
        self.pub_confidence = self.create_publisher(Image, "~/depth/confidence", RELIABLE)
        self.pub_points = self.create_publisher(PointCloud2, "~/points", RELIABLE)
        self.pub_caption = self.create_publisher(String, "~/caption", RELIABLE)
        self.pub_caption_stamped = self.create_publisher(DiagnosticArray, "~/caption/stamped", RELIABLE)
        self.pub_thermal = self.create_publisher(Image, "~/thermal/registered", RELIABLE)
        self.pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10) if self.cfg.outputs.diagnostics else None
        self._publishers_made = [p for p in self.publishers if p not in before]

    def _make_subscriptions(self) -> None:
        t, s = self.cfg.topics, self.cfg.sync
        qos = QoSProfile(depth=s.queue_size, reliability=QoSReliabilityPolicy.BEST_EFFORT,
                         history=QoSHistoryPolicy.KEEP_LAST, durability=qos_profile_sensor_data.durability)
        self._with_message_filters = use_message_filters()
        if self._with_message_filters:
            import message_filters
            rgb_sub = message_filters.Subscriber(self, Image, t.rgb_image, qos_profile=qos)
            th_sub = message_filters.Subscriber(self, Image, t.thermal_image, qos_profile=qos)
            self._subs += [rgb_sub.sub, th_sub.sub]
            rgb_sub.registerCallback(lambda m: self.meters["rgb"].tick())
            th_sub.registerCallback(lambda m: self.meters["thermal"].tick())
            self._sync = message_filters.ApproximateTimeSynchronizer([rgb_sub, th_sub], s.queue_size, s.slop_s)
            self._sync.registerCallback(self._on_pair)
        else:
            self._pairing = ApproximatePairing(int(round(s.slop_s * 1e9)), s.queue_size, self._on_pair)
            self._subs += [self.create_subscription(Image, t.rgb_image, lambda m: self._on_image(0, "rgb", m), qos),
                           self.create_subscription(Image, t.thermal_image, lambda m: self._on_image(1, "thermal", m), qos)]
        if t.use_camera_info:
            info_qos = QoSProfile(depth=1, reliability=QoSReliabilityPolicy.BEST_EFFORT, history=QoSHistoryPolicy.KEEP_LAST)
            self._subs += [self.create_subscription(CameraInfo, t.rgb_info, lambda m: self._on_info("rgb", m), info_qos),
                           self.create_subscription(CameraInfo, t.thermal_info, lambda m: self._on_info("thermal", m),
                                                    info_qos)]
        else:
            self.get_logger().info("topics.use_camera_info is false: intrinsics from registration.rgb_k / thermal_k")

    def _on_image(self, index: int, name: str, msg: Image) -> None:
        self.meters[name].tick()
        self._pairing.add(index, _stamp_ns(msg), msg)

    def _on_info(self, cam: str, msg: CameraInfo) -> None:
        """Keep the newest usable CameraInfo; a broken one is reported and the last good one kept."""
        if not any(msg.k):
            self.infos[cam] = msg                      # all zeros: uncalibrated, use the config
            self._info_seen[cam].set()
            return
        problem = intrinsics_problem(camera_info_to_k(msg))
        if problem:
            self.problems.report("camera_info", "warn", f"ignoring {cam} CameraInfo: {problem}; keeping "
                                 + ("the last valid one" if self.infos[cam] is not None else f"registration.{cam}_k"))
            return
        self.infos[cam] = msg
        self._info_seen[cam].set()

    def _on_pair(self, rgb_msg: Image, thermal_msg: Image) -> None:
        """Executor thread: hand the newest pair to the worker; a pair still waiting is stale."""
        self.meters["pairs"].tick()
        self.worker.submit((rgb_msg, thermal_msg))

    # --- worker -----------------------------------------------------------------------------
    def _decode(self, msg: Image, name: str, encodings: tuple[str, ...] | None) -> np.ndarray:
        lim = self.cfg.limits
        check_image_limits(len(msg.data), msg.height, msg.width, lim.max_width, lim.max_height,
                           lim.max_aspect, lim.max_bytes)
        if encodings is not None and msg.encoding not in encodings:
            raise ImageEncodingError(f"{name} encoding '{msg.encoding}' is not single channel "
                                     f"(expected one of {', '.join(encodings)})")
        return image_to_numpy(msg)

    def _process(self, pair: tuple[Image, Image]) -> None:
        rgb_msg, thermal_msg = pair
        t0 = time.perf_counter()
        try:
            rgb = to_rgb(self._decode(rgb_msg, "rgb", None), rgb_msg.encoding)
        except ImageEncodingError as exc:
            return self._bad_input("rgb", str(exc))
        try:
            thermal = self._decode(thermal_msg, "thermal", THERMAL_ENCODINGS)
        except ImageEncodingError as exc:
            return self._bad_input("thermal", str(exc))
        k_rgb = self._intrinsics("rgb", rgb.shape, self.cfg.registration.rgb_k, self.cfg.topics.rgb_info)
        k_th = self._intrinsics("thermal", thermal.shape, self.cfg.registration.thermal_k, self.cfg.topics.thermal_info)
        try:
            result = self.pipeline.process(rgb, thermal, k_rgb, k_th)
        except InputError as exc:
            return self._bad_input("pair", str(exc))
        if not self.worker.running:
            return                                   # shutting down: do not publish into a closing context
        header = Header(stamp=rgb_msg.header.stamp, frame_id=self.cfg.frames.rgb_optical_frame or rgb_msg.header.frame_id)
        self._publish(result, header, k_rgb, rgb.shape)
        self.meters["processed"].tick()
        for stage, ms in result.timings_ms.items():
            self.stage_ms[stage].append(ms)
        self.stage_ms["total"].append((time.perf_counter() - t0) * 1e3)
        age = (self.get_clock().now().nanoseconds - _stamp_ns(rgb_msg)) / 1e6
        self.stage_ms["age"].append(age)

    def _bad_input(self, source: str, reason: str) -> None:
        self.problems.report(source, "warn", f"skipping {source} input: {reason}")

    def _intrinsics(self, cam: str, shape, fallback: list, topic: str) -> np.ndarray:
        """K from the latest CameraInfo (scaled if its size differs from the image), else config.
        Before the first CameraInfo of a camera, the first pair waits briefly for it: drivers
        publish the info beside each image, and it may arrive just after the image."""
        if self.infos[cam] is None and self.cfg.topics.use_camera_info and not self._info_waited[cam]:
            self._info_waited[cam] = True
            self._info_seen[cam].wait(CAMERA_INFO_WAIT_S)
        info = self.infos[cam]
        if info is None or not any(info.k):
            if self.cfg.topics.use_camera_info:
                self.problems.note("warn", f"no CameraInfo on {self.resolve_topic_name(topic)} yet: "
                                                        f"using registration.{cam}_k from the config")
            return np.asarray(fallback, dtype=np.float64).reshape(3, 3)
        k = camera_info_to_k(info)
        h, w = shape[:2]
        if info.width and info.height and (info.width, info.height) != (w, h):
            self.problems.note("warn", f"{cam} CameraInfo is {info.width}x{info.height} but images are "
                                                   f"{w}x{h}: scaling the intrinsics")
            k = scale_intrinsics(k, (info.width, info.height), (w, h))
        return k

    def _publish(self, result, header: Header, k_rgb: np.ndarray, shape) -> None:
        h, w = shape[:2]
        o = self.cfg.outputs
        info = self._output_info(header, k_rgb, w, h)
        if o.fused:
            self.pub_fused.publish(numpy_to_image(result.fused, "rgb8", header))
            self.pub_fused_info.publish(info)
        if o.depth and result.depth is not None:
            self.pub_depth.publish(numpy_to_image(result.depth.astype(np.float32), "32FC1", header))
            self.pub_depth_info.publish(info)
            if o.depth_confidence and result.depth_confidence is not None:
                self.pub_confidence.publish(numpy_to_image(result.depth_confidence, "32FC1", header))
        if o.points and result.points_xyz is not None:
            self.pub_points.publish(xyzrgb_to_pointcloud2(result.points_xyz, result.points_rgb, header))
        if o.caption:
            self.pub_caption.publish(String(data=result.caption))
            self.pub_caption_stamped.publish(stamped_caption(result.caption, header))
        if o.thermal_registered:
            thermal8 = np.clip(np.round(result.thermal_registered * 255.0), 0, 255).astype(np.uint8)
            self.pub_thermal.publish(numpy_to_image(thermal8, "mono8", header))

    def _output_info(self, header: Header, k: np.ndarray, w: int, h: int) -> CameraInfo:
        src = self.infos["rgb"]
        if src is not None and (src.width, src.height) == (w, h):
            info = CameraInfo(width=src.width, height=src.height, distortion_model=src.distortion_model,
                              d=list(src.d), k=list(src.k), r=list(src.r), p=list(src.p))
            info.header = header
            return info
        return make_camera_info(k, w, h, header)

    # --- diagnostics ------------------------------------------------------------------------
    def _publish_diagnostics(self) -> None:
        if not self.worker.running:
            return
        self.pub_diag.publish(DiagnosticArray(header=Header(stamp=self.get_clock().now().to_msg()),
                                              status=[self._status()]))

    def _status(self) -> DiagnosticStatus:
        status = DiagnosticStatus(name=f"{self.get_fully_qualified_name()}: fusion pipeline",
                                  hardware_id=self.pipeline.device)
        level, notes = DiagnosticStatus.OK, []   # levels are bytes constants; max() orders them
        if not self.worker.alive():
            level = DiagnosticStatus.ERROR
            notes.append("fusion worker stopped")
        elif time.monotonic() - self._restarted_at < RESTART_ERROR_HOLD_S:
            level = DiagnosticStatus.ERROR
            notes.append(f"fusion worker restarted ({self.worker.last_death})")
        stall = self.cfg.sync.stall_timeout_s
        for name in ("rgb", "thermal"):
            if self.meters[name].silent_s() > stall:
                level = max(level, DiagnosticStatus.WARN)
                notes.append(f"{name} input stalled")
        if self.pipeline.problems:
            level = max(level, DiagnosticStatus.WARN)
            notes.append("degraded: " + "; ".join(self.pipeline.problems))
        status.level = level
        status.message = ", ".join(notes) or "ok"
        c, bad = self.worker.counters, self.problems.by_kind
        values = {"rgb_rate_hz": f"{self.meters['rgb'].rate_hz():.1f}",
                  "thermal_rate_hz": f"{self.meters['thermal'].rate_hz():.1f}",
                  "pair_rate_hz": f"{self.meters['pairs'].rate_hz():.1f}",
                  "output_rate_hz": f"{self.meters['processed'].rate_hz():.1f}",
                  "pairs": str(self.meters["pairs"].count), "outputs": str(self.meters["processed"].count),
                  "dropped_stale_pairs": str(c.dropped),
                  "skipped_bad_inputs": str(sum(bad[k] for k in ("rgb", "thermal", "pair"))),
                  "ignored_camera_info": str(bad["camera_info"]), "failed_frames": str(bad["failure"]),
                  "worker_restarts": str(c.restarts), "last_problem": self.problems.last[:200],
                  "device": self.pipeline.device, "variant": self.pipeline.variant}
        for stage, samples in self.stage_ms.items():
            if samples:
                values[f"{stage}_ms_median"] = f"{float(np.median(samples)):.1f}"
        status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
        return status

    def stop(self) -> bool:
        """Finish the frame in progress and end the worker; True when it has ended."""
        return self._halt()


class FusionNode(_FusionCore, Node):
    """The plain node: configured and active from construction."""

    def __init__(self, **kwargs):
        Node.__init__(self, NODE_NAME, **kwargs)
        self.cfg = self._read_parameters()
        self._setup()
        self._start()


class LifecycleFusionNode(_FusionCore, LifecycleNode):
    """The managed node (Nav2 bring-up): parameters at construction; configure loads the models
    (a failure leaves it unconfigured, with the reason logged), activate subscribes and starts
    the worker, deactivate stops both, cleanup frees the models."""

    def __init__(self, **kwargs):
        LifecycleNode.__init__(self, NODE_NAME, **kwargs)
        self.cfg = self._read_parameters()

    def on_configure(self, state) -> TransitionCallbackReturn:
        try:
            self._setup()
        except Exception as exc:  # noqa: BLE001 - reported; the node stays unconfigured
            self.get_logger().error(f"configure failed: {type(exc).__name__}: {exc}")
            return TransitionCallbackReturn.FAILURE
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state) -> TransitionCallbackReturn:
        self._start()
        return TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state) -> TransitionCallbackReturn:
        self._halt()
        return TransitionCallbackReturn.SUCCESS

    def on_cleanup(self, state) -> TransitionCallbackReturn:
        self._teardown()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state) -> TransitionCallbackReturn:
        self._halt()
        if self.pipeline is not None:
            self._teardown()
        return TransitionCallbackReturn.SUCCESS


def parameter_descriptor(key: str) -> ParameterDescriptor:
    """What `ros2 param describe` shows: the description and allowed values, the numeric range
    (open ends as the largest representable value), and read-only unless the key is live."""
    f = parameter_field(key)
    m = f.metadata
    desc = ParameterDescriptor(description=f"{m['doc']} ({allowed_values(key)})", dynamic_typing=True,
                               read_only=key not in LIVE_PARAMETERS,
                               additional_constraints="" if key in LIVE_PARAMETERS else "read-only: set at start-up")
    lo, hi = m.get("lo"), m.get("hi")
    if f.type == "int" and (lo is not None or hi is not None):
        desc.integer_range = [IntegerRange(from_value=int(lo if lo is not None else -2**62),
                                           to_value=int(hi if hi is not None else 2**62), step=1)]
    elif f.type == "float" and (lo is not None or hi is not None):
        desc.floating_point_range = [FloatingPointRange(from_value=float(lo if lo is not None else -1e308),
                                                        to_value=float(hi if hi is not None else 1e308), step=0.0)]
    return desc


def stamped_caption(text: str, header: Header) -> DiagnosticArray:
    """The caption with its frame's stamp and frame id: a DiagnosticArray whose one status is
    named 'caption' and carries the text as its message (std_msgs has no stamped string)."""
    return DiagnosticArray(header=header, status=[DiagnosticStatus(level=DiagnosticStatus.OK, name="caption",
                                                                   message=text)])


def _is_rclpy_parameter(name: str) -> bool:
    """Parameters rclpy itself declares (a `ros2 param dump` file carries them)."""
    return name in ("use_sim_time", "start_type_description_service") or name.startswith("qos_overrides.")


def main(args=None, lifecycle: bool | None = None) -> int:
    """Spin until SIGINT or SIGTERM; then stop the worker before the context goes away, exit 0.
    `lifecycle` (or `--lifecycle` before the ROS arguments) runs the managed node."""
    if lifecycle is None:
        ours = sys.argv[1:sys.argv.index("--ros-args")] if "--ros-args" in sys.argv else sys.argv[1:]
        lifecycle = "--lifecycle" in ours
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        node = LifecycleFusionNode() if lifecycle else FusionNode()
    except ConfigError as exc:
        print(f"[{NODE_NAME}] configuration error: {exc}", file=sys.stderr)
        rclpy.try_shutdown()
        return 2
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        while not stop.is_set() and rclpy.ok():
            executor.spin_once(timeout_sec=0.1)
    except ExternalShutdownException:
        pass
    finally:
        if not node.stop():
            node.get_logger().warning("the worker did not finish its frame in time; exiting anyway")
        executor.remove_node(node)
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


def lifecycle_main(args=None) -> int:
    """Entry point `fusion_lifecycle_node`: the managed node."""
    return main(args, lifecycle=True)


if __name__ == "__main__":
    sys.exit(main())
