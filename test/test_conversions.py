"""Message conversions: Image, CameraInfo and XYZRGB PointCloud2 round trips."""
import numpy as np
import pytest

pytest.importorskip("sensor_msgs")
from std_msgs.msg import Header  # noqa: E402

from ldf_ros.ros.conversions import (camera_info_to_k, image_to_numpy, make_camera_info, numpy_to_image,  # noqa: E402
                                     pointcloud2_to_xyzrgb, xyzrgb_to_pointcloud2)
from ldf_ros.data.image_encoding import ImageEncodingError  # noqa: E402


def test_image_round_trip_keeps_header():
    header = Header(frame_id="rgb_optical_frame")
    header.stamp.sec, header.stamp.nanosec = 12, 345
    depth = np.random.default_rng(0).uniform(0.5, 40, (6, 9)).astype(np.float32)
    msg = numpy_to_image(depth, "32FC1", header)
    assert (msg.encoding, msg.step, msg.header.frame_id, msg.header.stamp.nanosec) == ("32FC1", 36, "rgb_optical_frame", 345)
    np.testing.assert_array_equal(image_to_numpy(msg), depth)
    msg.step = 10
    with pytest.raises(ImageEncodingError, match="step 10"):
        image_to_numpy(msg)


def test_camera_info_and_cloud():
    k = np.array([[500.0, 0, 320], [0, 500.0, 256], [0, 0, 1]])
    info = make_camera_info(k, 640, 512)
    np.testing.assert_array_equal(camera_info_to_k(info), k)
    assert info.p[0] == 500.0 and info.p[3] == 0.0
    xyz = np.random.default_rng(1).normal(size=(50, 3)).astype(np.float32)
    rgb = np.random.default_rng(2).integers(0, 255, (50, 3), dtype=np.uint8)
    cloud = xyzrgb_to_pointcloud2(xyz, rgb, Header(frame_id="f"))
    assert (cloud.width, cloud.point_step, cloud.row_step) == (50, 16, 800)
    xyz2, rgb2 = pointcloud2_to_xyzrgb(cloud)
    np.testing.assert_array_equal(xyz2, xyz)
    np.testing.assert_array_equal(rgb2, rgb)
