"""Publish a ROS 2 bag (mcap or sqlite3, read with rosbags) over DDS with /clock, like
`ros2 bag play`, for machines without rosbag2_py.

Two modes. Real time (`ros2 bag play`): messages go out with the bag's timing scaled by the
rate, so a slow node drops pairs as it would on the robot; for measuring drops and latency.
Lockstep: the player forms the image pairs the node will form (same approximate-time rule and
slop), and after each pair waits until the node has answered it (a new output) or a per-pair
timeout expires (counted), so every pair of a bag is processed on any machine, fast or loaded.

Messages are published as the serialized CDR stored in the bag (no re-encoding), so what
the node receives is byte for byte what was recorded.
"""
from __future__ import annotations

import importlib
import time
from pathlib import Path
from dataclasses import dataclass, field
from typing import Callable

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from ldf_ros.data.bags import open_bag

LATCHED = {"/tf_static"}


@dataclass
class Lockstep:
    """How to wait for the node in lockstep mode.

    `answers()` returns how many distinct outputs the node has sent so far (the caller counts
    them from its subscription); after the message that completes a pair, the player spins until
    that number grows or `timeout_s` passes. `pair_topics` are the bag's two image topics, in
    the order (rgb, thermal); `slop_ns` and `queue_size` are the node's sync settings.
    """
    answers: Callable[[], int]
    pair_topics: tuple[str, str] = ("/rgb/image", "/thermal/image")
    slop_ns: int = 20_000_000
    queue_size: int = 10
    timeout_s: float = 60.0
    answered: int = 0
    timed_out: list = field(default_factory=list)     # RGB stamps of pairs that got no answer in time


def pair_completions(stamps: list[tuple[int, int]], slop_ns: int, queue_size: int) -> dict[int, int]:
    """For messages (input index, stamp) in publishing order: {position of the message that
    completes a pair: that pair's RGB stamp}, by the node's own approximate-time rule."""
    from ldf_ros.runtime.pairing import ApproximatePairing

    done: dict[int, int] = {}
    current = [0]
    pairing = ApproximatePairing(slop_ns, queue_size, lambda rgb, th: done.__setitem__(current[0], rgb))
    for i, (index, stamp) in enumerate(stamps):
        current[0] = i
        pairing.add(index, stamp, stamp)
    return done


def message_class(msgtype: str):
    """'sensor_msgs/msg/Image' -> the rclpy class, or None when its package is not installed."""
    pkg, _, name = msgtype.split("/")
    try:
        return getattr(importlib.import_module(f"{pkg}.msg"), name)
    except (ImportError, AttributeError):
        return None


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

    def play(self, rate: float = 1.0, loop: bool = False, spin=None, progress: bool = True,
             lockstep: Lockstep | None = None) -> int:
        """Publish everything in recording order; returns the count. Real time: paced by the bag
        stamps / rate. Lockstep: as fast as the node answers each pair (see :class:`Lockstep`)."""
        from tqdm import tqdm

        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        spin = spin or time.sleep
        sent = 0
        while True:
            conns = [c for c in self.reader.connections if c.id in self.publishers]
            completes = self._plan_pairs(conns, lockstep) if lockstep is not None else {}
            start_wall, start_bag = None, None
            total = sum(c.msgcount for c in conns)
            for i, (conn, stamp, raw) in enumerate(tqdm(self.reader.messages(connections=conns), total=total,
                                                        desc="replay", disable=not progress, leave=False)):
                if start_wall is None:
                    start_wall, start_bag = time.monotonic(), stamp
                if lockstep is None:
                    due = start_wall + (stamp - start_bag) / 1e9 / rate
                    while (wait := due - time.monotonic()) > 0:
                        spin(min(wait, 0.005))
                if self.clock is not None:
                    msg = self._clock_cls()
                    msg.clock.sec, msg.clock.nanosec = divmod(stamp, 1_000_000_000)
                    self.clock.publish(msg)
                self.publishers[conn.id].publish(bytes(raw))
                sent += 1
                if i in completes:
                    self._await_answer(lockstep, completes[i], spin)
            if not loop:
                return sent

    def _plan_pairs(self, conns, lockstep: Lockstep) -> dict[int, int]:
        """Positions (in publishing order) of the messages that complete a pair."""
        index = {t: n for n, t in enumerate(lockstep.pair_topics)}
        order, positions = [], []
        for i, (conn, _, raw) in enumerate(self.reader.messages(connections=conns)):
            if conn.topic in index:
                msg = self.reader.deserialize(raw, conn.msgtype)
                order.append((index[conn.topic], msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec))
                positions.append(i)
        done = pair_completions(order, lockstep.slop_ns, lockstep.queue_size)
        return {positions[k]: rgb_stamp for k, rgb_stamp in done.items()}

    @staticmethod
    def _await_answer(lockstep: Lockstep, rgb_stamp: int, spin) -> None:
        before = lockstep.answered
        deadline = time.monotonic() + lockstep.timeout_s
        while lockstep.answers() <= before and time.monotonic() < deadline:
            spin(0.005)
        if lockstep.answers() <= before:
            lockstep.timed_out.append(rgb_stamp)
        lockstep.answered = lockstep.answers()


def answer_counter(node: Node, topic: str):
    """Subscribe to a node output (a message with a header); returns a function giving the
    number of distinct stamps seen so far, for :class:`Lockstep`."""
    from sensor_msgs.msg import Image

    seen: set[int] = set()
    qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
    node.create_subscription(Image, topic, lambda m: seen.add(m.header.stamp.sec * 1_000_000_000 + m.header.stamp.nanosec), qos)
    return lambda: len(seen)


def replay_main(bag: str, rate: float, loop: bool, clock: bool, lockstep_topic: str | None = None,
                slop_s: float = 0.02, timeout_s: float = 60.0) -> int:
    """`ldf-ros replay`: play a bag until it ends (or forever with loop); Ctrl-C stops.
    With `lockstep_topic` (an Image output of the node), each pair waits for its answer there."""
    import rclpy
    rclpy.init()
    node = rclpy.create_node("ldf_replay")
    try:
        player = BagPlayer(node, bag, clock=clock, log=lambda m: node.get_logger().warn(m))
        step = None
        if lockstep_topic:
            step = Lockstep(answer_counter(node, lockstep_topic), slop_ns=int(round(slop_s * 1e9)), timeout_s=timeout_s)
        n = player.play(rate=rate, loop=loop, spin=lambda t: rclpy.spin_once(node, timeout_sec=t), lockstep=step)
        print(f"published {n} messages from {bag}")
        if step is not None:
            print(f"lockstep: {step.answered} answers on {lockstep_topic}, {len(step.timed_out)} pairs timed out")
    except KeyboardInterrupt:
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0
