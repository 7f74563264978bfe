"""The ROS-free runtime: pairing, registration, thermal normalization, point clouds, captions."""
import numpy as np
import pytest

from ldf_ros.ops.camera import intrinsics, project, transform
from ldf_ros.ops.image import resize_inverse
from ldf_ros.runtime.caption import column_percentile, make_caption, quantize_distance
from ldf_ros.runtime.pairing import ApproximatePairing
from ldf_ros.runtime.pointcloud import depth_to_pointcloud, write_ply
from ldf_ros.runtime.registration import Extrinsic, ThermalRegistration, plane_homography
from ldf_ros.runtime.thermal import ThermalNormalization, normalize_thermal

MS = 1_000_000


def run_pairing(events, slop_ms=20, queue=10):
    pairs = []
    p = ApproximatePairing(slop_ms * MS, queue, lambda a, b: pairs.append((a, b)))
    for index, stamp in events:
        p.add(index, stamp, ("rgb" if index == 0 else "th", stamp))
    return [(a[1], b[1]) for a, b in pairs]


def test_pairing_within_and_beyond_slop():
    assert run_pairing([(0, 0), (1, 10 * MS)]) == [(0, 10 * MS)]
    assert run_pairing([(0, 0), (1, 25 * MS)]) == []
    assert run_pairing([(0, 0), (1, 20 * MS)]) == []        # strictly less than the slop


def test_pairing_30hz_rgb_with_9hz_thermal_takes_nearest():
    rgb = [(0, round(i * 1e9 / 30)) for i in range(60)]
    th = [(1, round(j * 1e9 / 9) + 3 * MS) for j in range(18)]
    events = sorted(rgb + th, key=lambda e: (e[1], e[0]))
    pairs = run_pairing(events, slop_ms=20)
    assert len(pairs) == 18
    for r, t in pairs:
        nearest = min((s for _, s in rgb), key=lambda s: abs(s - t))
        assert r == nearest and abs(r - t) < 20 * MS


def test_pairing_never_reuses_and_bounds_queue():
    pairs = run_pairing([(0, 0), (0, 5 * MS), (1, 4 * MS), (1, 6 * MS)], slop_ms=20)
    assert pairs == [(5 * MS, 4 * MS), (0, 6 * MS)]
    p = ApproximatePairing(MS, 3, lambda a, b: None)
    for i in range(10):
        p.add(0, i * 100 * MS, i)
    assert len(p.queues[0]) == 3 and min(p.queues[0]) == 700 * MS


def test_plane_homography_registers_points_on_the_plane():
    k_rgb, k_th = intrinsics(500, 500, 319.5, 255.5), intrinsics(300, 300, 159.5, 127.5)
    ext = Extrinsic((0.0, 0.0087, 0.0, 0.99996), (0.08, 0.01, 0.0))
    h = plane_homography(k_rgb, k_th, ext, 12.0)
    rng = np.random.default_rng(0)
    uv = rng.uniform([0, 0], [640, 512], size=(50, 2))
    pts_rgb = np.c_[(uv[:, 0] - 319.5) / 500, (uv[:, 1] - 255.5) / 500, np.ones(50)] * 12.0
    pts_th = transform(pts_rgb - ext.t, ext.r.T, np.zeros(3))
    expected, _ = project(pts_th, k_th)
    got = np.c_[uv, np.ones(50)] @ h.T
    np.testing.assert_allclose(got[:, :2] / got[:, 2:], expected, atol=1e-6)


def test_registration_modes_and_validity():
    thermal = np.arange(256 * 320, dtype=np.uint16).reshape(256, 320)
    out, valid = ThermalRegistration("identity")(thermal, (640, 512))
    assert out.shape == (512, 640) and valid.all()
    shift = np.array([[1, 0, 10], [0, 1, 0], [0, 0, 1]], float)   # thermal x -> rgb x + 10
    out, valid = ThermalRegistration("homography", shift)(thermal, (320, 256))
    assert not valid[:, :10].any() and valid[:, 10:].all()
    np.testing.assert_array_equal(out[:, 10:], thermal[:, :-10])
    with pytest.raises(ValueError, match="invertible"):
        ThermalRegistration("homography", np.zeros((3, 3)))
    with pytest.raises(ValueError, match="both intrinsics"):
        ThermalRegistration("camera_info")(thermal, (640, 512), None, None)


def test_thermal_normalization_modes():
    counts = np.linspace(29000, 31000, 256 * 320).reshape(256, 320).astype(np.uint16)
    n = normalize_thermal(counts)
    assert n.dtype == np.float32 and 0 <= n.min() and n.max() <= 1
    assert n.max() - n.min() > 0.95                        # stretched to the full range, not black
    r = normalize_thermal(counts, ThermalNormalization("range", 29000, 33000))
    assert abs(float(r.max()) - 0.5) < 1e-3
    np.testing.assert_allclose(normalize_thermal(np.full((4, 4), 255, np.uint8)), 1.0)
    kelvin = np.full((8, 8), 300.0, np.float32)
    kelvin[0, 0] = np.nan
    out = normalize_thermal(kelvin, ThermalNormalization("range", 280, 320))
    assert out[0, 0] == 0 and abs(out[1, 1] - 0.5) < 1e-6
    with pytest.raises(ValueError, match="single channel"):
        normalize_thermal(np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="dtype"):
        normalize_thermal(np.zeros((4, 4), np.int32))


def test_plane_at_known_depth_comes_back_on_the_plane():
    k = intrinsics(500, 500, 319.5, 255.5)
    depth = np.full((512, 640), 7.5, np.float32)
    depth[:10] = np.nan
    colors = np.zeros((512, 640, 3), np.uint8)
    colors[..., 1] = 200
    xyz, rgb = depth_to_pointcloud(depth, k, colors, stride=4, min_range_m=0.3, max_range_m=40)
    assert xyz.shape == ((512 - 12) // 4 * (640 // 4), 3)
    np.testing.assert_allclose(xyz[:, 2], 7.5)
    uv, _ = project(xyz.astype(np.float64), k)
    np.testing.assert_allclose(uv, np.round(uv), atol=1e-3)  # points sit on the decimated pixels
    assert (np.round(uv).astype(int) % 4 == 0).all()
    assert (rgb == [0, 200, 0]).all()
    near, _ = depth_to_pointcloud(depth, k, stride=4, max_range_m=7.6)
    assert 0 < near.shape[0] < xyz.shape[0]                 # range is Euclidean: corners are farther


def test_write_ply(tmp_path):
    xyz = np.array([[0, 0, 1], [1, 2, 3]], np.float32)
    rgb = np.array([[255, 0, 0], [0, 0, 255]], np.uint8)
    write_ply(tmp_path / "c.ply", xyz, rgb)
    data = (tmp_path / "c.ply").read_bytes()
    assert data.startswith(b"ply\n") and b"element vertex 2" in data and len(data.split(b"end_header\n")[1]) == 2 * 15


def test_caption_grammar_and_quantization():
    vis = np.full((128, 160, 3), 10, np.uint8)
    th = np.zeros((128, 160), np.float32)
    th[60:80, 10:20] = 1.0
    depth = np.full((128, 160), 30.0, np.float32)
    depth[60:80, 10:20] = 6.2
    cap = make_caption(vis, th, depth, depth)
    assert cap == "a dark scene; 1 warm object, nearest 6 m left; nearest obstacle 6 m left"
    assert make_caption(np.full((64, 64, 3), 200, np.uint8), np.zeros((64, 64), np.float32)).startswith("a bright scene, hazy")
    assert [quantize_distance(d) for d in (0.2, 9.4, 12.6, 38, 55)] == ["1 m", "9 m", "15 m", "40 m", "far"]


def test_pairing_agrees_with_message_filters():
    """Where a ROS 2 distro provides message_filters, both pair the same messages."""
    message_filters = pytest.importorskip("message_filters")
    from sensor_msgs.msg import Image

    rng = np.random.default_rng(3)
    events = sorted([(0, round(i * 1e9 / 30)) for i in range(90)] +
                    [(1, round(j * 1e9 / 9) + int(rng.integers(-15, 15)) * MS) for j in range(27)],
                    key=lambda e: (e[1], e[0]))
    ours = run_pairing(events, slop_ms=20, queue=10)
    inputs = [message_filters.SimpleFilter(), message_filters.SimpleFilter()]
    sync = message_filters.ApproximateTimeSynchronizer(inputs, 10, 0.02)
    theirs = []
    sync.registerCallback(lambda a, b: theirs.append((_ns(a), _ns(b))))
    for index, stamp in events:
        msg = Image()
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp, 1_000_000_000)
        inputs[index].signalMessage(msg)
    assert ours == theirs


def _ns(msg) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


def test_pipeline_normalizes_thermal_before_registration():
    """The zero-filled area outside the thermal field of view must not skew the AGC."""
    from ldf_ros.config import load_config
    from ldf_ros.runtime.pipeline import FusionPipeline

    cfg = load_config(None, {"model.variant": "classical", "outputs.depth": False, "outputs.points": False,
                             "model.depth_visible_weights": "none", "model.depth_thermal_weights": "none",
                             "registration.mode": "homography",
                             "registration.homography": [0.5, 0, 80, 0, 0.5, 64, 0, 0, 1]})
    pipe = FusionPipeline(cfg)
    thermal = np.linspace(29000, 31000, 256 * 320).reshape(256, 320).astype(np.uint16)
    res = pipe.process(np.zeros((256, 320, 3), np.uint8), thermal, None, None)
    inside = res.thermal_registered[64:192, 80:240]
    assert inside.min() < 0.05 and inside.max() > 0.95 and abs(float(inside.mean()) - 0.5) < 0.05
    assert res.thermal_registered[:60].max() == 0


def test_thermal_depth_covers_exactly_the_window_the_thermal_camera_sees():
    """Where the thermal camera sees only the middle of the RGB frame, its branch runs on the
    largest window of that view (not on a frame with a blank border) and nothing outside it."""
    from ldf_ros.config import load_config
    from ldf_ros.runtime.pipeline import FusionPipeline

    logs = []
    overrides = {"model.variant": "classical", "outputs.points": False, "runtime.warmup_runs": 0,
                 "registration.mode": "homography", "registration.homography": [0.5, 0, 80, 0, 0.5, 64, 0, 0, 1]}
    pipe = FusionPipeline(load_config(None, overrides), log=lambda level, msg: logs.append((level, msg)))
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (256, 320, 3), dtype=np.uint8)
    thermal = rng.integers(29000, 31000, (256, 320)).astype(np.uint16)
    res = pipe.process(rgb, thermal, None, None)
    seen = np.isfinite(res.depth_thermal)
    rows, cols = np.flatnonzero(seen.any(1)), np.flatnonzero(seen.any(0))
    assert res.thermal_valid[seen].all() and seen.sum() > 0.9 * res.thermal_valid.sum()
    assert (cols[-1] + 1 - cols[0]) / (rows[-1] + 1 - rows[0]) == pytest.approx(1.25, abs=0.02)
    window = pipe._window                                      # no CameraInfo: the learned camera is assumed
    assert window[0] <= cols[0] and cols[-1] < window[2] and window[1] <= rows[0] and rows[-1] < window[3]
    grid = pipe.depth_grid(320, 256)           # the depth stage works near the network's size
    assert grid == (160, 128)

    def on_image(depth):
        return resize_inverse(depth, (320, 256))
    # runtime.depth_flip_consistency (default on): the mean of the window and its mirror
    np.testing.assert_allclose(res.depth_thermal, on_image(pipe.depth_thermal(res.thermal_registered, None, window,
                                                                              spread=True, grid=grid)[0]), rtol=1e-5)
    one_pass = FusionPipeline(load_config(None, {**overrides, "runtime.depth_flip_consistency": False}))
    np.testing.assert_allclose(one_pass.process(rgb, thermal, None, None).depth_thermal,
                               on_image(pipe.depth_thermal(res.thermal_registered, None, window, grid=grid)), rtol=1e-5)
    full_frame = on_image(pipe.depth_thermal(res.thermal_registered, grid=grid))   # blank border included: not what runs
    assert not np.allclose(full_frame[seen], res.depth_thermal[seen], rtol=0.05)
    assert np.isfinite(res.depth_visible).all() and np.isfinite(res.depth).all()
    import cv2
    unseen = cv2.dilate(seen.astype(np.uint8), np.ones((9, 9), np.uint8)) == 0   # a grid cell clear of the view
    np.testing.assert_allclose(res.depth[unseen], res.depth_visible[unseen], rtol=1e-5)   # blend: visible where unseen
    assert not [msg for level, msg in logs if level != "info"]
    tiny = load_config(None, {"model.variant": "classical", "outputs.points": False, "runtime.warmup_runs": 0,
                              "registration.mode": "homography",
                              "registration.homography": [0.05, 0, 150, 0, 0.05, 120, 0, 0, 1]})
    pipe = FusionPipeline(tiny, log=lambda level, msg: logs.append((level, msg)))
    res = pipe.process(rgb, thermal, None, None)
    assert res.depth_thermal is None and np.isfinite(res.depth).all()
    assert any("thermal depth skipped" in msg for _, msg in logs)


@pytest.mark.parametrize("height, width", [(128, 160), (256, 320), (480, 640)])
def test_published_depth_confidence_and_the_nan_floor(height, width):
    """The published depth carries a confidence from the branches' image-vs-mirror spreads;
    with runtime.depth_min_confidence, values below it are NaN (never a confident guess).
    At the networks' size, and where the depth stage works on a smaller grid (640x480: 213x160,
    not a whole division) and resizes once."""
    from ldf_ros.config import load_config
    from ldf_ros.runtime.depth import CONFIDENCE_SPREAD
    from ldf_ros.runtime.pipeline import FusionPipeline

    base = {"model.variant": "classical", "outputs.points": False, "runtime.warmup_runs": 0, "registration.mode": "identity"}
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    thermal = rng.integers(29000, 31000, (height, width)).astype(np.uint16)
    res = FusionPipeline(load_config(None, base)).process(rgb, thermal, None, None)
    conf = res.depth_confidence
    assert conf.shape == (height, width) and conf.dtype == np.float32 and ((conf > 0) & (conf <= 1)).all()
    assert res.depth.shape == (height, width) and np.isfinite(res.depth).all()
    if (height, width) == (128, 160):               # no resize: the published spread lies between the branches'
        sv, st = res.depth_spreads
        spread = -np.log(conf) * CONFIDENCE_SPREAD
        assert np.all(spread <= np.maximum(sv, st) + 1e-4) and np.all(spread >= np.minimum(sv, st) - 1e-4)
    floor = float(np.median(conf))
    masked = FusionPipeline(load_config(None, {**base, "runtime.depth_min_confidence": floor})).process(rgb, thermal, None, None)
    np.testing.assert_array_equal(np.isnan(masked.depth), conf < floor)
    np.testing.assert_allclose(masked.depth[conf >= floor], res.depth[conf >= floor])
    single = FusionPipeline(load_config(None, {**base, "runtime.depth_flip_consistency": False})).process(rgb, thermal, None, None)
    assert single.depth_confidence is None and np.isfinite(single.depth).all()


def test_a_gray_visible_camera_gets_a_gray_fused_image(tmp_path):
    """No invented chroma: a gray visible input (mono8, or RGB with equal channels) gives a gray
    output from every fusion backend, the learned one included."""
    from ldf_ros.config import load_config
    from ldf_ros.models.checkpoint import save_checkpoint
    from ldf_ros.models.fusion_net import FusionNet, FusionNetConfig
    from ldf_ros.ops.color import is_gray
    from ldf_ros.runtime.pipeline import FusionPipeline
    import torch

    torch.manual_seed(0)
    net = FusionNet(FusionNetConfig(role="student", student_widths=(8, 16, 16)))
    with torch.no_grad():                      # chroma corrections that would tint a gray image
        net.student.out.bias[1:] = 2.0
    ckpt = save_checkpoint(tmp_path / "f.safetensors", net, "fusion", {**net.cfg.to_dict(), "text": {"encoder": "none", "dim": 384}})
    rng = np.random.default_rng(0)
    gray = np.repeat(rng.integers(0, 255, (64, 80, 1), dtype=np.uint8), 3, axis=2)
    color = rng.integers(0, 255, (64, 80, 3), dtype=np.uint8)
    thermal = rng.integers(0, 255, (64, 80), dtype=np.uint8)
    assert is_gray(gray) and not is_gray(color)
    for variant, extra in (("classical", {}), ("student", {"model.fusion_weights": str(ckpt), "model.text_encoder": "none"})):
        pipe = FusionPipeline(load_config(None, {"model.variant": variant, "registration.mode": "identity",
                                                 "outputs.depth": False, "outputs.points": False,
                                                 "runtime.warmup_runs": 0, **extra}))
        assert pipe.variant == variant
        out = pipe.process(gray, thermal, None, None).fused
        assert is_gray(out, tolerance=0), variant
    tinted = pipe.process(color, thermal, None, None).fused
    assert not is_gray(tinted)                 # colour input keeps its colour


def test_column_percentile_is_numpys_nanpercentile_per_column():
    import warnings
    rng = np.random.default_rng(0)
    x = rng.random((40, 25)).astype(np.float32)
    x[rng.random(x.shape) < 0.3] = np.nan
    x[:, 3] = np.nan                      # a column without depth
    x[:, 5] = np.inf
    x[:39, 6] = np.nan                    # a column with one value
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ref = np.nanpercentile(np.where(np.isfinite(x), x, np.nan), 5, axis=0)
    np.testing.assert_allclose(column_percentile(x, 5), ref, rtol=1e-6, equal_nan=True)
