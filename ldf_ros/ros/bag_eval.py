"""`ldf-ros eval-bag`: run the real node on a bag over DDS and report what came out.

The node runs in its own process (as on a robot) with sim time; the bag is replayed into
its namespace with /clock; every output is recorded. By default the replay is lockstep (each
pair waits for the node's answer), so every pair is evaluated whatever the machine's speed;
`realtime` replays at the bag's rate and measures what a robot would see (drops, latency). Afterwards: an output bag (mcap),
report.md / summary.json / frames.csv (latency per stage, drops, fusion metrics against the
inputs, depth metrics where the bag has ground truth), panels, and a PLY point cloud.
"""
from __future__ import annotations

import csv
import json
import os
import struct
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ldf_ros.data.bags import open_bag, static_transforms
from ldf_ros.ros.bag_replay import BagPlayer, Lockstep

OUTPUT_TOPICS = {  # relative to the node -> message type
    "fused/image": "sensor_msgs/msg/Image",
    "depth/image": "sensor_msgs/msg/Image",
    "points": "sensor_msgs/msg/PointCloud2",
    "caption": "std_msgs/msg/String",
    "thermal/registered": "sensor_msgs/msg/Image",
}


@dataclass
class Recording:
    raw: list = field(default_factory=list)            # (topic, msgtype, stamp_ns, cdr bytes)
    fused: dict = field(default_factory=dict)          # stamp -> rgb array
    depth: dict = field(default_factory=dict)
    thermal: dict = field(default_factory=dict)
    caption: list = field(default_factory=list)
    points: dict = field(default_factory=dict)
    diagnostics: list = field(default_factory=list)
    answered: set = field(default_factory=set)         # stamps of any output with a header
    mode: str = "lockstep"
    pairs_timed_out: list = field(default_factory=list)


def _stamp(msg) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


def bag_inputs(bag: Path) -> dict:
    """What the report needs from the input bag: RGB images and ground-truth depth by stamp,
    the thermal->RGB transform from /tf_static, and the thermal frame count."""
    from ldf_ros.data.image_encoding import decode_image, to_rgb

    reader = open_bag(bag)
    out = {"rgb": {}, "depth_gt": {}, "extrinsic": None, "thermal_frames": 0, "rgb_frames": 0}
    try:
        for conn, stamp, raw in reader.messages():
            if conn.topic == "/thermal/image":
                out["thermal_frames"] += 1
                continue
            if conn.topic not in ("/rgb/image", "/rgb/depth_gt", "/tf_static"):
                continue
            msg = reader.deserialize(raw, conn.msgtype)
            if conn.topic == "/tf_static":
                for _, child, xyz, quat in static_transforms(msg):
                    if child.startswith("thermal"):
                        out["extrinsic"] = (xyz, quat)
                continue
            arr = decode_image(msg.data, msg.height, msg.width, msg.encoding, msg.step, bool(msg.is_bigendian))
            if conn.topic == "/rgb/image":
                out["rgb"][_stamp(msg)] = to_rgb(arr, msg.encoding)
                out["rgb_frames"] += 1
            else:
                out["depth_gt"][_stamp(msg)] = arr
    finally:
        reader.close()
    return out


def _node_command(ns: str, config: Path | None, overrides: dict) -> list[str]:
    cmd = [sys.executable, "-m", "ldf_ros.ros.fusion_node", "--ros-args", "-r", f"__ns:={ns}"]
    if config is not None:
        cmd += ["--params-file", str(config)]
    for k, v in overrides.items():
        cmd += ["-p", f"{k}:={json.dumps(v) if not isinstance(v, str) else v}"]
    return cmd


def run_node_on_bag(bag: Path, config: Path | None, overrides: dict, rate: float, quiet_s: float = 4.0,
                    log_path: Path | None = None, lockstep: bool = True, pair_timeout_s: float = 60.0) -> Recording:
    """Start the node, replay the bag into it, record its outputs. Lockstep: until every pair
    was answered (or timed out); real time: until the node goes quiet for `quiet_s`."""
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    from ldf_ros.ros.bag_replay import message_class

    from ldf_ros.config import default_config_path, load_config
    sync = load_config(config, {k: v for k, v in overrides.items() if k != "use_sim_time"}).sync
    # 640x512 images need the large shared-memory profile (see README); keep the user's own if set
    os.environ.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", str(default_config_path().parent / "fastdds_large_images.xml"))
    ns = "/ldf_eval_" + uuid.uuid4().hex[:8]
    log = open(log_path, "w") if log_path else subprocess.DEVNULL
    proc = subprocess.Popen(_node_command(ns, config, overrides), stdout=log, stderr=subprocess.STDOUT)
    rclpy.init()
    node = rclpy.create_node("ldf_eval_recorder")
    rec = Recording(mode="lockstep" if lockstep else "realtime")
    last_output = [time.monotonic()]

    def on_output(topic, msgtype):
        def cb(raw: bytes):        # serialized CDR: decoded after the run, not on the cores being measured
            last_output[0] = time.monotonic()
            stamp = _cdr_header_stamp(raw) if topic != "caption" else None
            if stamp is not None:
                rec.answered.add(stamp)
            rec.raw.append((f"/ldf_fusion/{topic}", msgtype, stamp, raw))
        return cb

    qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
    for topic, msgtype in OUTPUT_TOPICS.items():
        node.create_subscription(message_class(msgtype), f"{ns}/ldf_fusion/{topic}", on_output(topic, msgtype), qos,
                                 raw=True)
    ours = f"{ns}/ldf_fusion:"          # /diagnostics is shared: keep only this node's status
    node.create_subscription(DiagnosticArray, "/diagnostics",
                             lambda m: rec.diagnostics.extend(s for s in m.status if s.name.startswith(ours)), 10)
    spin = lambda t: rclpy.spin_once(node, timeout_sec=t)  # noqa: E731
    try:
        player = BagPlayer(node, bag, prefix=ns, log=lambda m: node.get_logger().info(m))
        if not player.wait_for_subscribers(["/rgb/image", "/thermal/image"], timeout_s=90, spin=spin):
            raise RuntimeError(f"the node never subscribed (see {log_path or 'its output'}); exit code {proc.poll()}")
        t_end = time.monotonic() + 1.0
        while time.monotonic() < t_end:
            spin(0.05)
        step = Lockstep(lambda: len(rec.answered), slop_ns=int(round(sync.slop_s * 1e9)), queue_size=sync.queue_size,
                        timeout_s=pair_timeout_s) if lockstep else None
        player.play(rate=rate, spin=spin, lockstep=step)
        if step is not None:
            rec.pairs_timed_out = step.timed_out
            _settle(spin, rec, quiet_s=1.0, limit_s=pair_timeout_s)
        else:
            _settle(spin, rec, quiet_s=quiet_s, limit_s=3 * quiet_s, last_output=last_output)
    finally:
        proc.send_signal(2)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        node.destroy_node()
        rclpy.try_shutdown()
        if log_path:
            log.close()
    _decode_outputs(rec)
    return rec


def _cdr_header_stamp(raw: bytes) -> int:
    """The header stamp (ns) of a serialized message whose first field is a std_msgs/Header:
    after the 4-byte CDR encapsulation (its second byte says the byte order), int32 sec and
    uint32 nanosec."""
    sec, nanosec = struct.unpack_from("<iI" if raw[1] & 1 else ">iI", raw, 4)
    return sec * 1_000_000_000 + nanosec


def _decode_outputs(rec: Recording) -> None:
    """Fill the recording's arrays from the serialized outputs; a caption gets the stamp of the
    latest fused image received before it."""
    from rclpy.serialization import deserialize_message

    from ldf_ros.ros.bag_replay import message_class
    from ldf_ros.ros.conversions import image_to_numpy, pointcloud2_to_xyzrgb

    latest = 0
    for n, (topic, msgtype, stamp, raw) in enumerate(rec.raw):
        msg = deserialize_message(raw, message_class(msgtype))
        name = topic.removeprefix("/ldf_fusion/")
        if name == "fused/image":
            rec.fused[stamp] = image_to_numpy(msg)
            latest = stamp
        elif name == "depth/image":
            rec.depth[stamp] = image_to_numpy(msg)
        elif name == "thermal/registered":
            rec.thermal[stamp] = image_to_numpy(msg)
        elif name == "points":
            rec.points[stamp] = pointcloud2_to_xyzrgb(msg)
        else:
            rec.caption.append(msg.data)
            rec.raw[n] = (topic, msgtype, latest, raw)


def _settle(spin, rec: Recording, quiet_s: float, limit_s: float, last_output: list | None = None) -> None:
    """Spin until no output came for `quiet_s` and a diagnostics message arrived after the last
    output (so its counters include every frame), or `limit_s` passed."""
    last = last_output or [time.monotonic()]
    n_out, n_diag = len(rec.answered), len(rec.diagnostics)
    start = time.monotonic()
    while time.monotonic() - start < limit_s:
        if len(rec.answered) != n_out:
            n_out, n_diag, last[0] = len(rec.answered), len(rec.diagnostics), time.monotonic()
        if time.monotonic() - last[0] >= quiet_s and len(rec.diagnostics) > n_diag:
            return
        spin(0.05)


def write_output_bag(rec: Recording, path: Path) -> Path:
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    ts = get_typestore(Stores.ROS2_KILTED)
    if path.exists():
        import shutil
        shutil.rmtree(path)
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        conns = {}
        for topic, msgtype, stamp, raw in sorted(rec.raw, key=lambda r: r[2]):
            if topic not in conns:
                conns[topic] = writer.add_connection(topic, msgtype, typestore=ts)
            writer.write(conns[topic], stamp, raw)
    return path


def evaluate_bag(bag: str | Path, out: str | Path, config: str | Path | None = None, variant: str | None = None,
                 rate: float = 1.0, fusion_metrics_every: int = 1, lockstep: bool = True,
                 pair_timeout_s: float = 60.0) -> dict:
    """Run, record, evaluate; returns the summary written to summary.json. Lockstep (default):
    every pair is processed; real time (lockstep=False): the bag's timing scaled by `rate`."""
    bag, out = Path(bag), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    inputs = bag_inputs(bag)
    if not inputs["rgb"]:
        raise ValueError(f"{bag}: no /rgb/image messages")
    overrides = {"use_sim_time": True, "outputs.thermal_registered": True, "outputs.diagnostics_period_s": 0.5}
    if variant:
        overrides["model.variant"] = variant
    if inputs["extrinsic"] is not None:
        t, q = inputs["extrinsic"]
        overrides["registration.thermal_to_rgb_translation"] = [float(v) for v in t]
        overrides["registration.thermal_to_rgb_rotation"] = [float(v) for v in q]
    t0 = time.monotonic()
    rec = run_node_on_bag(bag, Path(config) if config else None, overrides, rate, log_path=out / "node.log",
                          lockstep=lockstep, pair_timeout_s=pair_timeout_s)
    wall = time.monotonic() - t0
    if not rec.fused:
        raise RuntimeError(f"the node produced no output for {bag}; see {out / 'node.log'}")
    write_output_bag(rec, out / "output_bag")
    summary = report(rec, inputs, out, fusion_metrics_every)
    summary.update({"bag": str(bag), "rate": rate, "mode": rec.mode, "wall_s": round(wall, 1),
                    "pairs_timed_out": len(rec.pairs_timed_out)})
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    (out / "report.md").write_text(markdown_report(summary))
    return summary


def report(rec: Recording, inputs: dict, out: Path, every: int = 1) -> dict:
    """Per-frame metrics, panels and a PLY; returns the summary."""
    from ldf_ros.evaluation.depth_metrics import DEPTH_METRICS, abs_rel_error_map, depth_metrics, mean_metrics
    from ldf_ros.evaluation.fusion_metrics import fusion_metrics
    from ldf_ros.ops.visualize import colorize_depth, colorize_error, colorize_gray, label, tile_row, write_rgb_png
    from ldf_ros.runtime.pointcloud import write_ply

    rows, depth_rows = [], []
    stamps = sorted(s for s in rec.fused if s in inputs["rgb"])
    for i, s in enumerate(stamps):
        row = {"stamp_ns": s}
        if i % every == 0 and s in rec.thermal:
            row.update(fusion_metrics(rec.fused[s], inputs["rgb"][s], rec.thermal[s]))
        if s in rec.depth and s in inputs["depth_gt"]:
            dm = depth_metrics(inputs["depth_gt"][s], rec.depth[s])
            row.update({f"depth_{k}": dm[k] for k in DEPTH_METRICS})
            depth_rows.append(dm)
        rows.append(row)
    keys = sorted({k for r in rows for k in r})
    with open(out / "frames.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
    fusion_keys = [k for k in keys if k != "stamp_ns" and not k.startswith("depth_")]
    summary = {
        "outputs": len(stamps), "rgb_frames": inputs["rgb_frames"], "thermal_frames": inputs["thermal_frames"],
        "fusion": {k: float(np.mean([r[k] for r in rows if k in r])) for k in fusion_keys},
        "depth": mean_metrics(depth_rows) if depth_rows else None,
        "captions": sorted(set(rec.caption)),
        "diagnostics": {kv.key: kv.value for kv in rec.diagnostics[-1].values} if rec.diagnostics else {},
    }
    panel_stamps = [stamps[0], stamps[len(stamps) // 2], stamps[-1]]
    for name, s in zip(("first", "middle", "last"), panel_stamps):
        tiles = [label(inputs["rgb"][s], "visible"), label(colorize_gray(rec.thermal[s]), "thermal (registered)")
                 if s in rec.thermal else None, label(rec.fused[s], "fused")]
        if s in rec.depth:
            tiles.append(label(colorize_depth(rec.depth[s]), "depth 0-60 m"))
            if s in inputs["depth_gt"]:
                tiles.append(label(colorize_error(abs_rel_error_map(inputs["depth_gt"][s], rec.depth[s])), "AbsRel 0-0.5"))
        write_rgb_png(out / f"panel_{name}.png", tile_row([t for t in tiles if t is not None]))
    if rec.points:
        s = stamps[len(stamps) // 2] if stamps[len(stamps) // 2] in rec.points else next(iter(rec.points))
        write_ply(out / "points.ply", *rec.points[s])
        summary["ply_points"] = int(rec.points[s][0].shape[0])
    return summary


def markdown_report(s: dict) -> str:
    diag = s["diagnostics"]
    stages = [k for k in diag if k.endswith("_ms_median")]
    lines = [f"# Bag evaluation: {s['bag']}", "",
             (f"Replay in lockstep (each pair waits for the node's answer; {s['pairs_timed_out']} timed out); "
              if s.get("mode") == "lockstep" else f"Replay in real time at {s['rate']}x; ")
             + f"{s['rgb_frames']} RGB and {s['thermal_frames']} thermal frames in; "
             f"{s['outputs']} fused outputs; dropped stale pairs {diag.get('dropped_stale_pairs', '?')}; "
             f"skipped bad inputs {diag.get('skipped_bad_inputs', '?')}; device {diag.get('device', '?')}; "
             f"variant {diag.get('variant', '?')}.", "",
             "## Latency per stage (node diagnostics, median ms)", "", "| stage | ms |", "|---|---|"]
    lines += [f"| {k[:-len('_ms_median')]} | {diag[k]} |" for k in stages]
    lines += ["", "## Fusion metrics (mean over outputs; luminance, vs the RGB input and the registered thermal)", "",
              "| " + " | ".join(s["fusion"]) + " |", "|---" * len(s["fusion"]) + "|",
              "| " + " | ".join(f"{v:.4g}" for v in s["fusion"].values()) + " |"]
    if s["depth"]:
        lines += ["", "## Depth metrics (published depth vs ground truth, 0.5-80 m, no scaling)", "",
                  "| " + " | ".join(s["depth"]) + " |", "|---" * len(s["depth"]) + "|",
                  "| " + " | ".join(f"{v:.4g}" for v in s["depth"].values()) + " |"]
    lines += ["", "## Captions", ""] + [f"- {c}" for c in s["captions"][:20]]
    lines += ["", "Files: output_bag/ (mcap), frames.csv, summary.json, panel_{first,middle,last}.png, points.ply, node.log", ""]
    return "\n".join(lines)


def run_demo(out: str | Path, frames: int = 30, conditions=("day", "night", "fog"), rate: float = 0.5,
             variant: str | None = None, config: str | Path | None = None, seed: int = 7,
             lockstep: bool = True) -> dict:
    """The main job: synthetic bags (9 Hz thermal, 30 Hz RGB) -> the real node over DDS -> reports.
    Lockstep (default) evaluates every pair; real time (lockstep=False) replays at `rate`."""
    from ldf_ros.synthetic.bag import write_bag
    from ldf_ros.synthetic.sequence import SequenceSpec

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    spec = SequenceSpec(frames=frames, conditions=tuple(conditions), seed=seed, family="urban",
                        thermal_rate_hz=9.0, thermal_offset_s=0.004)
    results = {}
    for cond in conditions:
        bag = out / cond / "input_bag"
        if not bag.exists():
            write_bag(spec, cond, bag)
        results[cond] = evaluate_bag(bag, out / cond, config=config, variant=variant, rate=rate, lockstep=lockstep)
        print(f"{cond}: {results[cond]['outputs']} outputs -> {out / cond / 'report.md'}")
    (out / "summary.json").write_text(json.dumps(results, indent=2))
    (out / "report.md").write_text(demo_markdown(results, spec, rate, lockstep))
    return results


def demo_markdown(results: dict, spec, rate: float, lockstep: bool = True) -> str:
    mode = ("in lockstep (each pair waits for the node's answer, so every pair is evaluated)" if lockstep
            else f"in real time at {rate}x (a slow node drops pairs)")
    lines = ["# ldf_ros demo", "",
             f"Synthetic urban street (seed {spec.seed}), {spec.frames} RGB frames at {spec.rgb_rate_hz:g} Hz, thermal at "
             f"{spec.thermal_rate_hz:g} Hz (+{spec.thermal_offset_s * 1e3:g} ms), replayed {mode} through the "
             "fusion node over DDS. Per condition: report.md, panels, output_bag/, points.ply.", "",
             "| condition | pairs | outputs | timed out | dropped | EN | SD | SF | Qabf | depth AbsRel | depth d<1.25 "
             "| total ms (median) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for cond, r in results.items():
        f, d, g = r["fusion"], r["depth"] or {}, r["diagnostics"]
        lines.append(f"| {cond} | {g.get('pairs', '?')} | {r['outputs']} | {r.get('pairs_timed_out', '?')} | "
                     f"{g.get('dropped_stale_pairs', '?')} | {f.get('EN', float('nan')):.3f} | "
                     f"{f.get('SD', float('nan')):.2f} | {f.get('SF', float('nan')):.2f} | {f.get('Qabf', float('nan')):.3f} | "
                     f"{d.get('abs_rel', float('nan')):.3f} | {d.get('a1', float('nan')):.3f} | {g.get('total_ms_median', '?')} |")
    return "\n".join(lines) + "\n"
