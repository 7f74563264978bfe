"""Publish a ROS 2 bag (mcap or sqlite3, read with rosbags) over DDS with its original
timing and /clock, like `ros2 bag play`, for machines without rosbag2_py.

Messages are published as the serialized CDR stored in the bag (no re-encoding), so what
the node receives is byte for byte what was recorded.
"""
from __future__ import annotations

import importlib
import time
from pathlib import Path
from typing import Callable

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

LATCHED = {"/tf_static"}


def message_class(msgtype: str):
    """'sensor_msgs/msg/Image' -> the rclpy class, or None when its package is not installed."""
    pkg, _, name = msgtype.split("/")
    try:
        return getattr(importlib.import_module(f"{pkg}.msg"), name)
    except (ImportError, AttributeError):
        return None


def open_bag(path: str | Path):
    from rosbags.highlevel import AnyReader

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such bag")
    try:
        reader = AnyReader([path])
        reader.open()
    except Exception as exc:  # noqa: BLE001 - rosbags raises several types for unreadable bags
        raise ValueError(f"{path}: cannot read bag ({exc})") from exc
    return reader


class BagPlayer:
    """Publishes a bag's topics under `prefix` (e.g. a test namespace) on `node`."""

    def __init__(self, node: Node, bag: str | Path, prefix: str = "", topics: set[str] | None = None,
                 clock: bool = True, log: Callable[[str], None] = print):
        self.node, self.bag, self.prefix = node, Path(bag), prefix.rstrip("/")
        self.reader = open_bag(bag)
        self.publishers = {}
        for conn in self.reader.connections:
            if topics is not None and conn.topic not in topics:
                continue
            cls = message_class(conn.msgtype)
            if cls is None:
                log(f"skipping {conn.topic}: message type {conn.msgtype} is not installed")
                continue
            qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL if conn.topic in LATCHED else DurabilityPolicy.VOLATILE)
            self.publishers[conn.id] = node.create_publisher(cls, self.prefix + conn.topic, qos)
        self.clock = None
        if clock:
            from rosgraph_msgs.msg import Clock
            self.clock = node.create_publisher(Clock, "/clock", 10)
            self._clock_cls = Clock

    def wait_for_subscribers(self, topics: list[str], timeout_s: float = 30.0, spin=None) -> bool:
        """Until each named topic (bag name, without prefix) has a subscriber."""
        want = [p for p in self.publishers.values() if p.topic_name in {self.prefix + t for t in topics}]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if all(p.get_subscription_count() > 0 for p in want):
                return True
            (spin or time.sleep)(0.05)
        return False

    def play(self, rate: float = 1.0, loop: bool = False, spin=None, progress: bool = True) -> int:
        """Publish everything in recording order, paced by the bag stamps / rate; returns the count."""
        from tqdm import tqdm

        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        sent = 0
        while True:
            conns = [c for c in self.reader.connections if c.id in self.publishers]
            start_wall, start_bag = None, None
            total = sum(c.msgcount for c in conns)
            for conn, stamp, raw in tqdm(self.reader.messages(connections=conns), total=total, desc="replay",
                                         disable=not progress, leave=False):
                if start_wall is None:
                    start_wall, start_bag = time.monotonic(), stamp
                due = start_wall + (stamp - start_bag) / 1e9 / rate
                while (wait := due - time.monotonic()) > 0:
                    (spin or time.sleep)(min(wait, 0.005))
                if self.clock is not None:
                    msg = self._clock_cls()
                    msg.clock.sec, msg.clock.nanosec = divmod(stamp, 1_000_000_000)
                    self.clock.publish(msg)
                self.publishers[conn.id].publish(bytes(raw))
                sent += 1
            if not loop:
                return sent


def replay_main(bag: str, rate: float, loop: bool, clock: bool) -> int:
    """`ldf-ros replay`: play a bag until it ends (or forever with loop); Ctrl-C stops."""
    import rclpy
    rclpy.init()
    node = rclpy.create_node("ldf_replay")
    try:
        player = BagPlayer(node, bag, clock=clock, log=lambda m: node.get_logger().warn(m))
        n = player.play(rate=rate, loop=loop, spin=lambda t: rclpy.spin_once(node, timeout_sec=t))
        print(f"published {n} messages from {bag}")
    except KeyboardInterrupt:
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0
