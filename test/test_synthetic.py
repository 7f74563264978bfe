"""The synthetic world: exact geometry, plausible physics, determinism, bags that read back."""
import numpy as np
import pytest
from rosbags.highlevel import AnyReader

from ldf_ros.ops.camera import intrinsics, pixel_rays
from ldf_ros.synthetic.geometry import Primitives, cast
from ldf_ros.synthetic.render import CONDITIONS, COUNTS_PER_KELVIN, ThermalSensor, render_thermal
from ldf_ros.synthetic.rig import OPTICAL_TO_WORLD
from ldf_ros.synthetic.scene import CLASS_ID
from ldf_ros.synthetic.sequence import SequenceSpec, generate

K = intrinsics(200.0, 200.0, 79.5, 59.5)
RAYS = pixel_rays(K, 160, 120)


def test_ground_plane_depth_is_analytic():
    # camera 1.5 m above the ground, looking along +y (level): depth of row v is f*h/(v-cy)
    hits = cast(Primitives(), OPTICAL_TO_WORLD, np.array([0.0, 0.0, 1.5]), K, RAYS)
    v = np.arange(120)
    below = v > 59.5
    expected = 200.0 * 1.5 / (v[below] - 59.5)
    np.testing.assert_allclose(hits.t[below, 40], expected, atol=1e-3)
    assert np.all(np.isinf(hits.t[~below]))  # above the horizon: sky


def test_box_depth_is_analytic():
    # a box whose near face is the plane y = 10 m, in front of a camera at the origin height 1.5 m
    prims = Primitives(boxes_min=np.array([[-2.0, 10.0, 0.0]]), boxes_max=np.array([[2.0, 12.0, 3.0]]),
                       boxes_material=np.array([3]))
    hits = cast(prims, OPTICAL_TO_WORLD, np.array([0.0, 0.0, 1.5]), K, RAYS)
    center = hits.t[55:65, 75:85]
    np.testing.assert_allclose(center, 10.0, atol=1e-3)   # depth, not ray length
    assert np.all(hits.material[55:65, 75:85] == 3)
    np.testing.assert_allclose(hits.normal[60, 80], [0.0, -1.0, 0.0])
    # the box spans x in [-2, 2] at 10 m: columns |u - cx| <= 200*2/10 = 40 px
    row = hits.material[60]
    assert row[int(79.5 + 38)] == 3 and row[int(79.5 + 42)] != 3


@pytest.fixture(scope="module")
def day_and_night():
    spec = SequenceSpec(frames=1, conditions=("day", "night"), seed=5)
    return {c: {v.camera: v for v in generate(spec, c)} for c in spec.conditions}


def test_night_is_darker_than_day(day_and_night):
    day, night = day_and_night["day"]["rgb"].image, day_and_night["night"]["rgb"].image
    np.testing.assert_array_equal(day_and_night["day"]["rgb"].depth, day_and_night["night"]["rgb"].depth)
    assert night.mean() < 0.5 * day.mean()


def test_warm_classes_are_warmer_than_background():
    # a pedestrian (cylinder) and an engine block in front of a facade, ground below
    from ldf_ros.synthetic.scene import MATERIAL_ID
    prims = Primitives(boxes_min=np.array([[-10.0, 20.0, 0.0], [1.0, 9.0, 0.35]]),
                       boxes_max=np.array([[10.0, 25.0, 4.0], [2.5, 9.5, 1.0]]),
                       boxes_material=np.array([MATERIAL_ID["facade_a"], MATERIAL_ID["engine"]]),
                       cyl_xy=np.array([[-1.0, 8.0]]), cyl_radius=np.array([0.3]), cyl_z=np.array([[0.0, 1.8]]),
                       cyl_material=np.array([MATERIAL_ID["clothes"]]))
    hits = cast(prims, OPTICAL_TO_WORLD, np.array([0.0, 0.0, 1.5]), K, RAYS)
    from ldf_ros.synthetic.render import class_map
    classes = class_map(hits)
    for cond in ("day", "night", "fog"):
        counts = render_thermal(hits, CONDITIONS[cond], ThermalSensor(seed=1), np.random.default_rng(0))
        kelvin = counts / COUNTS_PER_KELVIN
        person = np.median(kelvin[classes == CLASS_ID["pedestrian"]])
        vehicle = np.median(kelvin[(classes == CLASS_ID["vehicle"])])
        med = {c: np.median(kelvin[classes == CLASS_ID[c]]) for c in ("building", "sky", "road")}
        # sun-heated asphalt is warmer than people by day, as real thermal footage shows
        backgrounds = ("building", "sky") if cond == "day" else ("building", "sky", "road")
        for background in backgrounds:
            assert person > med[background] + 2 and vehicle > med[background] + 2, (cond, background, person, med)
        if cond == "day":
            assert med["road"] > med["building"] + 5


def test_same_seed_same_frames_other_seed_differs():
    spec = SequenceSpec(frames=2, conditions=("fog",), seed=11)
    a = list(generate(spec, "fog"))
    b = list(generate(spec, "fog"))
    for x, y in zip(a, b):
        assert x.camera == y.camera and x.stamp_s == y.stamp_s
        np.testing.assert_array_equal(x.image, y.image)
        np.testing.assert_array_equal(x.depth, y.depth)
    c = list(generate(SequenceSpec(frames=2, conditions=("fog",), seed=12), "fog"))
    assert not np.array_equal(a[0].image, c[0].image)


def test_rates_and_offset():
    spec = SequenceSpec(frames=30, conditions=("day",), seed=1, thermal_rate_hz=9.0, thermal_offset_s=0.01,
                        registered_thermal=False)
    from ldf_ros.synthetic.sequence import _stamps
    rgb, th = _stamps(spec)
    assert len(rgb) == 30 and len(th) == 9
    np.testing.assert_allclose(np.diff(th), 1 / 9)
    np.testing.assert_allclose(th[0] - rgb[0], 0.01)


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_bag_reads_back(tmp_path, storage):
    from ldf_ros.synthetic.bag import write_bag
    spec = SequenceSpec(frames=3, conditions=("night",), seed=2, thermal_rate_hz=20.0, thermal_offset_s=0.005)
    path = write_bag(spec, "night", tmp_path / "bag", storage=storage, progress=False)
    seen = {}
    with AnyReader([path]) as reader:
        for conn, stamp, raw in reader.messages():
            msg = reader.deserialize(raw, conn.msgtype)
            seen.setdefault(conn.topic, []).append((conn.msgtype, stamp, msg))
    assert seen["/rgb/image"][0][0] == "sensor_msgs/msg/Image"
    assert len(seen["/rgb/image"]) == 3 and len(seen["/thermal/image"]) == 2
    _, stamp, img = seen["/rgb/image"][1]
    assert (img.encoding, img.width, img.height, img.step) == ("rgb8", 640, 512, 640 * 3)
    assert stamp == img.header.stamp.sec * 10**9 + img.header.stamp.nanosec == round((1.0 + 1 / 30) * 1e9)
    _, stamp, th = seen["/thermal/image"][1]
    assert (th.encoding, th.width, th.height) == ("mono16", 320, 256)
    assert stamp == round((1.005 + 1 / 20) * 1e9)
    counts = np.frombuffer(th.data, np.uint16)
    assert 250 * COUNTS_PER_KELVIN < np.median(counts) < 320 * COUNTS_PER_KELVIN
    depth = seen["/rgb/depth_gt"][0][2]
    assert depth.encoding == "32FC1"
    info = seen["/thermal/camera_info"][0][2]
    assert info.width == 320 and info.k[0] > 0
    tf = seen["/tf_static"][0][2].transforms[0]
    assert (tf.header.frame_id, tf.child_frame_id) == ("rgb_optical_frame", "thermal_optical_frame")
    assert tf.transform.translation.x == pytest.approx(0.08)


def test_scene_families_differ():
    from ldf_ros.synthetic.scene import CLASS_ID as C
    counts = {}
    for family in ("urban", "highway"):
        spec = SequenceSpec(frames=1, conditions=("day",), seed=3, family=family, registered_thermal=False)
        rgb = next(v for v in generate(spec, "day") if v.camera == "rgb")
        counts[family] = np.bincount(rgb.classes.ravel(), minlength=8)
    assert counts["highway"][C["building"]] == 0 < counts["urban"][C["building"]]
    with pytest.raises(ValueError, match="unknown scene family 'moon'"):
        SequenceSpec(family="moon")


def test_dense_fog_hides_the_street_from_the_visible_camera_more_than_from_thermal():
    """dense_fog is a test-only condition: the visible camera loses mid-range structure
    (12-30 m) far more than the thermal one does, and training never sees it."""
    from ldf_ros.synthetic.clips import TRAINING_CONDITIONS, ClipSpec, clip_specs, render_clip

    assert "dense_fog" not in TRAINING_CONDITIONS
    assert all(s.condition != "dense_fog" for s in clip_specs([1, 2]))
    with pytest.raises(ValueError, match="unknown condition 'smog'"):
        clip_specs([1], conditions=("smog",))
    contrast = {}
    for cond in ("fog", "dense_fog"):
        clip = render_clip(ClipSpec(901, "urban", cond, frames=1))
        band = np.isfinite(clip.depth[0]) & (clip.depth[0] > 12) & (clip.depth[0] < 30)
        assert band.sum() > 1000
        contrast[cond] = (clip.rgb[0].mean(-1)[band].std(), clip.thermal[0].astype(float)[band].std())
    visible_kept = contrast["dense_fog"][0] / contrast["fog"][0]
    thermal_kept = contrast["dense_fog"][1] / contrast["fog"][1]
    assert visible_kept < 0.5 and thermal_kept > 0.6, (visible_kept, thermal_kept)


def test_lamp_bloom_stays_local_however_close_the_lamp():
    """A headlight 1 m ahead once washed the whole frame out (bloom radius grew as 1/depth);
    the bloom's growth is bounded, so pixels far from the lamp's image stay dark."""
    from ldf_ros.synthetic.render import GLOW_MAX_GROWTH, _glow

    k = intrinsics(100.0, 100.0, 80.0, 64.0)
    eye, ahead = np.eye(3), np.zeros(3)
    glow = {z: _glow(np.array([[0.0, 0.0, z]]), k, eye, ahead, (128, 160), radius=6.0, strength=3.0)[..., 0]
            for z in (1.0, 10.0, 40.0)}
    for z, g in glow.items():
        assert g[64, 80] == pytest.approx(3.0)          # the lamp's own pixel: full strength
    far = np.hypot(*np.mgrid[0:128, 0:160] - np.array([64, 80])[:, None, None]) > 4 * 6.0 * GLOW_MAX_GROWTH
    assert glow[1.0][far].max() < 1e-2, glow[1.0][far].max()
    assert (glow[1.0] > 0.5).sum() > (glow[40.0] > 0.5).sum()   # nearer still blooms wider


def test_render_revision_renames_only_the_revised_conditions_caches():
    """Cached clips of a re-rendered condition get a new name (stale images are never read);
    the others keep theirs."""
    from ldf_ros.synthetic.clips import ClipSpec
    from ldf_ros.synthetic.render import RENDER_REVISION, render_tag

    assert RENDER_REVISION["night"] >= 2
    assert ClipSpec(1, "urban", "night").name.endswith(render_tag("night")) and render_tag("night")
    assert ClipSpec(1, "urban", "day").name == "urban_s1_day_160x128_n24"
    assert ClipSpec(1, "urban", "day", hfov_deg=50.0).name == "urban_s1_day_160x128_n24_fov50"


def test_unlit_night_darkens_the_visible_image_only():
    """unlit_night (test only) is the night with the street lights off: the RGB image of the
    same street is darker, the thermal image the same (lamps do not heat the scene here)."""
    from ldf_ros.synthetic.clips import TRAINING_CONDITIONS, ClipSpec, render_clip

    assert "unlit_night" not in TRAINING_CONDITIONS
    lit, unlit = (render_clip(ClipSpec(900, "urban", c, frames=1)) for c in ("night", "unlit_night"))
    assert unlit.rgb.mean() < 0.8 * lit.rgb.mean(), (unlit.rgb.mean(), lit.rgb.mean())
    np.testing.assert_array_equal(unlit.depth, lit.depth)
    assert np.abs(unlit.thermal.astype(float) - lit.thermal).mean() < 0.01 * lit.thermal.mean()
