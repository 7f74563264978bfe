"""Outside-in suites over real DDS: fuzz (hostile messages mixed with valid pairs), soak
(sustained load above camera rate) and faults (stalls, publisher restarts, broken weights, bad
parameters, signals under load).

The default suite runs a short version of each; `-m slow` runs the long ones, which write their
figures to out/outside_in/*.json (docs/BENCHMARKS.md quotes them). Assertions are about what
arrived (every valid pair answered, no crash, no restart), never about speed: the figures that
depend on speed are recorded, not asserted.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rclpy")
from hostile import S, hostile_kinds, send  # noqa: E402
from node_harness import node_params as params, GUARD_S, NodeHarness, camera_images, make_depth_checkpoints, values_of  # noqa: E402

from ldf_ros.ros.conversions import numpy_to_image  # noqa: E402

pytestmark = pytest.mark.ros
FIGURES = Path(__file__).resolve().parent.parent / "out" / "outside_in"


@pytest.fixture(scope="module")
def depth_weights(tmp_path_factory):
    return make_depth_checkpoints(tmp_path_factory.mktemp("weights"))


def _figures(name: str, data: dict) -> None:
    FIGURES.mkdir(parents=True, exist_ok=True)
    (FIGURES / f"{name}.json").write_text(json.dumps(data, indent=2))
    print(f"\n{name}: {json.dumps(data)}")


def _no_crash(h: NodeHarness) -> str:
    assert h.proc.poll() is None, f"the node exited:\n{h.stop()}"
    assert h.wait_settled(), h.stop()
    assert h.diag_value("worker_restarts") == "0", h.stop()
    log = h.stop()
    for sign in ("Traceback", "Logger severity", "worker thread ended"):
        assert sign not in log, (sign, log)
    return log


# --- fuzz -----------------------------------------------------------------------------------
def fuzz(h: NodeHarness, hostile_messages: int, seed: int = 0, batch: int = 20) -> dict:
    """Every kind once, each followed by a valid pair; then random batches of `batch` kinds,
    each batch followed by a valid pair, until `hostile_messages` were sent. Each hostile pair
    is processed before the next message goes out (lockstep on the node's counters, so none is
    merely dropped as stale), and every valid pair must be answered, so a kind after which
    outputs stop fails at once, named."""
    rng = np.random.default_rng(seed)
    rgb, thermal = camera_images()
    rgb_ok, thermal_ok = numpy_to_image(rgb, "rgb8"), numpy_to_image(thermal, "mono16")
    kinds = hostile_kinds(rgb_ok, thermal_ok)
    h.publish_infos(100 * S)                       # good CameraInfo first: bad ones must not replace it
    assert h.wait_settled()
    pairs = int(h.diag_value("pairs"))
    stamp, sent, valid, per_kind = 100 * S, 0, 0, {k: 0 for k in kinds}
    for n, group in enumerate(_batches(kinds, rng, batch)):
        if n >= len(kinds) and sent >= hostile_messages:
            break
        for kind in group:
            stamp += 100_000_000
            items = kinds[kind](rng)
            send(h, items, stamp)
            sent += len(items)
            per_kind[kind] += 1
            pairs += {w for w, _, _ in items} >= {"rgb", "thermal"}
            assert h.wait_diag(lambda st: int(values_of(st)["pairs"]) == pairs and _settled(st)), \
                (f"the node did not answer hostile kind {kind}", h.stop())
        stamp += 100_000_000
        h.send_pair(stamp, rgb, thermal)
        pairs += 1
        assert h.wait_fused(stamp), (f"no output for the valid pair after {group}", h.stop())
        valid += 1
    return {"hostile_messages": sent, "valid_pairs": valid, "valid_pairs_answered": valid,
            "kinds": len(kinds), "per_kind": per_kind}


def _settled(st) -> bool:
    v = values_of(st)
    return int(v["pairs"]) == sum(int(v[k]) for k in ("outputs", "dropped_stale_pairs", "skipped_bad_inputs",
                                                        "failed_frames"))


def _batches(kinds: dict, rng, batch: int):
    """Each kind alone first, then random batches of `batch` kinds, endlessly."""
    for k in kinds:
        yield [k]
    while True:
        yield [str(k) for k in rng.choice(list(kinds), batch)]


def _fuzz_test(depth_weights, hostile_messages):
    h = NodeHarness(params(depth_weights, **{"outputs.diagnostics_period_s": 0.2}))
    try:
        h.wait_ready()
        figures = fuzz(h, hostile_messages)
        assert h.wait_settled()
        v = values_of(h.out.diagnostics[-1])
        figures.update({k: int(v[k]) for k in ("pairs", "outputs", "skipped_bad_inputs", "ignored_camera_info",
                                                 "failed_frames", "dropped_stale_pairs", "worker_restarts")})
        _no_crash(h)
        return figures
    finally:
        if h.proc.poll() is None:
            h.stop()


def test_fuzz_short_every_hostile_kind_then_a_valid_pair(depth_weights):
    """1x100000 and 100000x1 images, 20000x20000 claims, NaN/inf thermal, NaN/zero/negative
    intrinsics, backwards/duplicate/future stamps and more: outputs for every valid pair after each."""
    figures = _fuzz_test(depth_weights, hostile_messages=60)
    bad_infos = ("rgb_info_nan_k", "rgb_info_zero_k", "rgb_info_negative_f", "thermal_info_nan_k")
    assert figures["ignored_camera_info"] == sum(figures["per_kind"][k] for k in bad_infos)
    assert figures["dropped_stale_pairs"] == 0
    assert figures["skipped_bad_inputs"] >= 12


@pytest.mark.slow
def test_fuzz_long(depth_weights):
    figures = _fuzz_test(depth_weights, hostile_messages=1000)
    assert figures["hostile_messages"] >= 1000
    _figures("fuzz", figures)


# --- soak -----------------------------------------------------------------------------------
def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def soak(h: NodeHarness, seconds: float, rgb_hz: float = 60.0, thermal_hz: float = 18.0) -> dict:
    """Publish at twice the rig's camera rates (30 Hz RGB, 9 Hz thermal) for `seconds`; record
    RSS, output rate, latency from publication to fused output, and drops."""
    rgb, thermal = camera_images()
    sent_at, rss = {}, []
    assert h.wait_settled()
    base = {k: int(h.diag_value(k)) for k in ("pairs", "outputs", "dropped_stale_pairs")}   # the probes
    t0 = time.monotonic()
    n_rgb = n_th = 0
    next_rss = t0
    while (now := time.monotonic()) - t0 < seconds:
        if now >= next_rss:
            rss.append(round(_rss_mb(h.proc.pid), 1))
            next_rss += max(1.0, seconds / 60)
        if now - t0 >= n_rgb / rgb_hz:
            stamp = 200 * S + round(n_rgb * S / rgb_hz)
            sent_at[stamp] = now
            h.publish("rgb", rgb, "rgb8", stamp)
            n_rgb += 1
        if now - t0 >= n_th / thermal_hz:
            h.publish("thermal", thermal, "mono16", 200 * S + round(n_th * S / thermal_hz) + 2_000_000)
            n_th += 1
        h.executor.spin_once(timeout_sec=0.001)
    assert h.wait_settled()
    rss.append(round(_rss_mb(h.proc.pid), 1))
    latency = [h.arrivals[s] - sent_at[s] for s in h.arrivals if s in sent_at]
    v = {k: int(h.diag_value(k)) - base[k] for k in base}
    return {"seconds": seconds, "rgb_sent": n_rgb, "thermal_sent": n_th, "pairs": v["pairs"],
            "outputs": v["outputs"], "outputs_received": len(latency), "output_rate_hz": round(v["outputs"] / seconds, 2),
            "dropped_stale_pairs": v["dropped_stale_pairs"],
            "latency_ms_median": round(1e3 * float(np.median(latency)), 1) if latency else None,
            "latency_ms_p95": round(1e3 * float(np.percentile(latency, 95)), 1) if latency else None,
            "rss_mb_first": rss[0], "rss_mb_last": rss[-1], "rss_mb_max": max(rss), "rss_samples": len(rss)}


def test_soak_short(depth_weights):
    h = NodeHarness(params(depth_weights))
    try:
        h.wait_ready()
        figures = soak(h, seconds=10.0)
        assert figures["outputs"] >= 1 and figures["pairs"] == figures["outputs"] + figures["dropped_stale_pairs"]
        _no_crash(h)
    finally:
        if h.proc.poll() is None:
            h.stop()


@pytest.mark.slow
def test_soak_long_default_models():
    """The shipped models (student fusion, both depth branches) for LDF_SOAK_S seconds (1800)."""
    seconds = float(os.environ.get("LDF_SOAK_S", "1800"))
    h = NodeHarness({"outputs.diagnostics_period_s": 1.0})
    try:
        h.wait_ready(timeout_s=180)
        figures = soak(h, seconds=seconds)
        figures["variant"] = h.diag_value("variant")
        _no_crash(h)
        _figures("soak", figures)
    finally:
        if h.proc.poll() is None:
            h.stop()


# --- faults ---------------------------------------------------------------------------------
def _status_text(st) -> str:
    return f"{st.level!r} {st.message}"


def test_input_stall_warns_and_recovers(depth_weights):
    h = NodeHarness(params(depth_weights, **{"sync.stall_timeout_s": 1.0, "outputs.depth": False,
                                             "outputs.points": False}))
    ok, warn = b"\x00", b"\x01"
    try:
        h.wait_ready()
        rgb, thermal = camera_images()
        stamp = [300 * S]

        def keep_publishing(predicate):
            """Pairs every 0.1 s (lockstep on their answers) until a diagnostics status satisfies predicate."""
            start = len(h.out.diagnostics)
            deadline = time.monotonic() + GUARD_S
            while time.monotonic() < deadline:
                stamp[0] += 100_000_000
                h.send_pair(stamp[0], rgb, thermal)
                h.wait_fused(stamp[0])
                h.spin(0.1)
                if any(predicate(st) for st in h.out.diagnostics[start:]):
                    return True
            return False

        assert keep_publishing(lambda st: st.level == ok), [_status_text(s) for s in h.out.diagnostics[-3:]]
        assert h.wait_diag(lambda st: st.level == warn and "rgb input stalled" in st.message
                           and "thermal input stalled" in st.message), h.stop()
        assert keep_publishing(lambda st: st.level == ok and st.message == "ok"), h.stop()
        _no_crash(h)
    finally:
        if h.proc.poll() is None:
            h.stop()


def test_publisher_restart_outputs_resume(depth_weights):
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image
    h = NodeHarness(params(depth_weights))
    try:
        h.wait_ready()
        rgb, thermal = camera_images()
        h.send_pair(310 * S, rgb, thermal)
        assert h.wait_fused(310 * S)
        for _ in range(2):                         # the cameras' driver restarts twice
            h.node.destroy_publisher(h.pub_rgb)
            h.node.destroy_publisher(h.pub_th)
            h.pub_rgb = h.node.create_publisher(Image, "rgb/image", qos_profile_sensor_data)
            h.pub_th = h.node.create_publisher(Image, "thermal/image", qos_profile_sensor_data)
            h.probes_answered = 0
            h.prime()                              # discovery again, then lockstep
        for i in range(3):
            stamp = 311 * S + i * 100_000_000
            h.send_pair(stamp, rgb, thermal)
            assert h.wait_fused(stamp), h.stop()
        _no_crash(h)
    finally:
        if h.proc.poll() is None:
            h.stop()


def test_broken_weights_degrade_and_the_node_keeps_fusing(depth_weights, tmp_path):
    """Missing depth file, truncated depth file, corrupt fusion file: each is named in the log,
    diagnostics say degraded (WARN), and pairs are still fused (classical fallback)."""
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(Path(depth_weights["thermal"]).read_bytes()[:5000])
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(os.urandom(20000))
    h = NodeHarness(params(depth_weights, **{"model.variant": "student", "model.fusion_weights": str(corrupt),
                                             "model.depth_visible_weights": str(tmp_path / "missing.safetensors"),
                                             "model.depth_thermal_weights": str(truncated)}))
    try:
        h.wait_ready(timeout_s=120)
        rgb, thermal = camera_images()
        h.send_pair(320 * S, rgb, thermal)
        assert h.wait_fused(320 * S)
        assert h.wait_diag(lambda st: st.level == b"\x01" and "degraded" in st.message)
        assert h.diag_value("variant") == "classical"
        assert not h.out.depth and not h.out.points            # depth disabled, not made up
        log = _no_crash(h)
        for name in ("missing.safetensors", "truncated.safetensors", "corrupt.safetensors"):
            assert name in log, (name, log)
    finally:
        if h.proc.poll() is None:
            h.stop()


@pytest.mark.parametrize("arg,key", [("sync.slop_s:=-1.0", "sync.slop_s"), ("model.variant:=banana", "model.variant"),
                                     ("pointcloud.stride:=0", "pointcloud.stride"), ("limits.max_width:=0", "limits.max_width"),
                                     ("no.such_key:=1", "no.such_key")])
def test_bad_parameters_stop_start_up_with_the_key_named(arg, key):
    proc = subprocess.run([sys.executable, "-m", "ldf_ros.ros.fusion_node", "--ros-args", "-p", arg],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and key in proc.stderr, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("sig,attempt", [(signal.SIGINT, 1), (signal.SIGINT, 2), (signal.SIGINT, 3), (signal.SIGTERM, 1)])
def test_signal_under_load_exits_cleanly(depth_weights, sig, attempt):
    """A signal while pairs keep arriving and a frame is being processed: exit 0, no traceback."""
    h = NodeHarness(params(depth_weights))
    try:
        h.wait_ready()
        rgb, thermal = camera_images()
        stamp = 330 * S
        for _ in range(5):                         # unpaced: the worker is busy when the signal comes
            stamp += 33_333_333
            h.send_pair(stamp, rgb, thermal)
            h.spin(0.02)
        h.proc.send_signal(sig)
        rc = h.proc.wait(timeout=GUARD_S)
        out = h.proc.stdout.read()
        assert rc == 0, (rc, out)
        for sign in ("Traceback", "context is invalid", "Error"):
            assert sign not in out, (sign, out)
    finally:
        if h.proc.poll() is None:
            h.proc.kill()
        h.stop()
