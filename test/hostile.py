"""Hostile and malformed messages for the outside-in suites: each kind is what a broken
driver, a bad bag or an attacker could put on the node's input topics."""
from __future__ import annotations

import numpy as np
from sensor_msgs.msg import CameraInfo, Image

from ldf_ros.ros.conversions import make_camera_info, numpy_to_image

S = 1_000_000_000


def _image(h: int, w: int, encoding: str, data: bytes, step: int) -> Image:
    m = Image()
    m.height, m.width, m.encoding, m.step, m.is_bigendian = h, w, encoding, step, 0
    m.data = data
    return m


def _rgb(h, w, rng):
    return numpy_to_image(rng.integers(0, 255, (h, w, 3), dtype=np.uint8), "rgb8")


def _thermal(h, w, rng):
    return numpy_to_image(rng.integers(28000, 31000, (h, w)).astype(np.uint16), "mono16")


def _info(k, w=640, h=512) -> CameraInfo:
    info = make_camera_info(np.eye(3), w, h)
    info.k = [float(v) for v in np.asarray(k, dtype=np.float64).ravel()]
    return info


def _pair(rgb, thermal):
    return [("rgb", rgb, 0), ("thermal", thermal, 0)]


def hostile_kinds(rgb_ok: Image, thermal_ok: Image):
    """{kind: function(rng) -> [(input, msg, stamp offset in ns)]}. Inputs are 'rgb', 'thermal',
    'rgb_info', 'thermal_info'; an offset of None keeps a message's own stamp (stamp kinds)."""
    def f32_thermal(fill):
        def make(rng):
            arr = rng.normal(300.0, 5.0, (256, 320)).astype(np.float32)
            fill(arr, rng)
            return _pair(rgb_ok, numpy_to_image(arr, "32FC1"))
        return make

    def nan_all(a, rng):
        a[:] = np.nan

    def inf_some(a, rng):
        a[rng.random(a.shape) < 0.3] = np.inf
        a[rng.random(a.shape) < 0.3] = -np.inf
        a[rng.random(a.shape) < 0.1] = np.nan

    def wrong_step(rng):
        m = _rgb(512, 640, rng)
        m.step = int(rng.integers(1, 640 * 3))
        return _pair(m, thermal_ok)

    def truncated(rng):
        m = _rgb(512, 640, rng)
        m.data = bytes(m.data[: int(rng.integers(0, len(m.data)))])
        return _pair(m, thermal_ok)

    def other_frame(rng):
        m = _thermal(256, 320, rng)
        m.header.frame_id = "some_other_camera"
        return _pair(rgb_ok, m)

    return {
        "rgb_1x100000": lambda rng: _pair(_rgb(1, 100000, rng), thermal_ok),
        "rgb_100000x1": lambda rng: _pair(_rgb(100000, 1, rng), thermal_ok),
        "thermal_100000x1": lambda rng: _pair(rgb_ok, _thermal(100000, 1, rng)),
        "thermal_1x100000": lambda rng: _pair(rgb_ok, _thermal(1, 100000, rng)),
        "rgb_claims_20000x20000": lambda rng: _pair(_image(20000, 20000, "rgb8", b"\0" * 1000, 60000), thermal_ok),
        "thermal_claims_20000x20000": lambda rng: _pair(rgb_ok, _image(20000, 20000, "mono16", b"\0" * 1000, 40000)),
        "thermal_odd_size": lambda rng: _pair(rgb_ok, _thermal(int(rng.integers(1, 8)), int(rng.integers(1, 8)), rng)),
        "both_1x1": lambda rng: _pair(_rgb(1, 1, rng), _thermal(1, 1, rng)),
        "thermal_32fc1_nan": f32_thermal(nan_all),
        "thermal_32fc1_inf": f32_thermal(inf_some),
        "rgb_info_nan_k": lambda rng: [("rgb_info", _info([[np.nan, 0, 320], [0, np.nan, 256], [0, 0, 1]]), 0)],
        "rgb_info_zero_k": lambda rng: [("rgb_info", _info(np.zeros((3, 3))  + np.diag([0, 0, 1])), 0)],
        "rgb_info_negative_f": lambda rng: [("rgb_info", _info([[-500, 0, 320], [0, -500, 256], [0, 0, 1]]), 0)],
        "thermal_info_nan_k": lambda rng: [("thermal_info", _info([[np.nan, 0, 160], [0, 300, 128], [0, 0, 1]], 320, 256), 0)],
        "thermal_info_tiny_size": lambda rng: [("thermal_info", _info([[3, 0, 1], [0, 3, 1], [0, 0, 1]], 2, 2), 0)],
        "stamp_backwards": lambda rng: [("rgb", rgb_ok, -50 * S), ("thermal", thermal_ok, -50 * S)],
        "stamp_far_future": lambda rng: [("rgb", rgb_ok, 10**9 * S), ("thermal", thermal_ok, 10**9 * S)],
        "stamp_duplicate": lambda rng: [("rgb", rgb_ok, -100_000_000), ("thermal", thermal_ok, -100_000_000)],
        "rgb_wrong_step": wrong_step,
        "rgb_truncated": truncated,
        "rgb_unknown_encoding": lambda rng: _pair(_image(512, 640, "yuv422", b"\0" * 512 * 1280, 1280), thermal_ok),
        "thermal_is_color": lambda rng: _pair(rgb_ok, _rgb(256, 320, rng)),
        "thermal_other_frame_id": other_frame,
    }


def send(h, items, stamp_ns: int, good_info=None) -> None:
    """Publish hostile items on the harness at stamp_ns (+ each item's offset)."""
    for which, msg, offset in items:
        stamp = max(0, stamp_ns + offset)
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(int(stamp), S)
        if which in ("rgb", "thermal"):
            msg.header.frame_id = msg.header.frame_id or f"{which}_optical_frame"
            (h.pub_rgb if which == "rgb" else h.pub_th).publish(msg)
        else:
            (h.pub_rgb_info if which == "rgb_info" else h.pub_th_info).publish(msg)
