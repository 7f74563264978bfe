"""sensor_msgs Image / CameraInfo / PointCloud2 <-> numpy.

The wire rules live in :mod:`ldf_ros.data.image_encoding` (tested without ROS); this
module only moves fields in and out of message objects. cv_bridge decodes where a ROS 2
distro provides it; elsewhere the project's decoder does (same encodings, row padding, byte order).
"""
from __future__ import annotations

import numpy as np
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField
from std_msgs.msg import Header

from ldf_ros.data.image_encoding import ImageEncodingError, check_image_fields, decode_image, encode_image


try:  # a ROS 2 distro has cv_bridge; the PyPI wheels do not
    from cv_bridge import CvBridge, CvBridgeError  # type: ignore
    _BRIDGE = CvBridge()
except ImportError:  # pragma: no cover - depends on the installation
    _BRIDGE = None


def image_to_numpy(msg: Image) -> np.ndarray:
    """Decode an Image message; raises ImageEncodingError with the reason when malformed.

    Fields are checked first (encoding, size, step, data length) so both decoders reject
    the same messages with the same reasons; cv_bridge decodes where it is installed.
    """
    if _BRIDGE is not None:
        check_image_fields(len(msg.data), msg.height, msg.width, msg.encoding, msg.step)
        try:
            return np.asarray(_BRIDGE.imgmsg_to_cv2(msg, desired_encoding="passthrough"))
        except (CvBridgeError, TypeError, ValueError) as exc:
            raise ImageEncodingError(f"cv_bridge: {exc}") from exc
    return decode_image(msg.data, msg.height, msg.width, msg.encoding, msg.step, bool(msg.is_bigendian))


def numpy_to_image(arr: np.ndarray, encoding: str, header: Header | None = None) -> Image:
    data, h, w, step = encode_image(arr, encoding)
    msg = Image()
    if header is not None:
        msg.header = header
    msg.height, msg.width, msg.step, msg.encoding = h, w, step, encoding
    msg.is_bigendian = 0
    msg.data = data
    return msg


def camera_info_to_k(msg: CameraInfo) -> np.ndarray:
    """3x3 intrinsics of a CameraInfo (its K, row-major)."""
    return np.asarray(msg.k, dtype=np.float64).reshape(3, 3)


def make_camera_info(k: np.ndarray, width: int, height: int, header: Header | None = None) -> CameraInfo:
    """A rectified pinhole CameraInfo for an output image with intrinsics `k`."""
    info = CameraInfo()
    if header is not None:
        info.header = header
    info.width, info.height = int(width), int(height)
    info.distortion_model = "plumb_bob"
    info.d = [0.0] * 5
    info.k = [float(v) for v in np.asarray(k, dtype=np.float64).ravel()]
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    p = np.zeros((3, 4))
    p[:, :3] = np.asarray(k).reshape(3, 3)
    info.p = [float(v) for v in p.ravel()]
    return info


_XYZRGB_FIELDS = [("x", 0), ("y", 4), ("z", 8), ("rgb", 12)]


def xyzrgb_to_pointcloud2(xyz: np.ndarray, rgb: np.ndarray, header: Header | None = None) -> PointCloud2:
    """Pack (N,3) float points and (N,3) uint8 colors as an unorganized XYZRGB cloud.

    Color is the PCL convention: 0x00RRGGBB in a float32 field named `rgb`, as RViz expects.
    """
    n = int(xyz.shape[0])
    buf = np.empty(n, dtype=np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("rgb", "<u4")]))
    buf["x"], buf["y"], buf["z"] = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    c = rgb.astype(np.uint32)
    buf["rgb"] = (c[:, 0] << 16) | (c[:, 1] << 8) | c[:, 2]
    msg = PointCloud2()
    if header is not None:
        msg.header = header
    msg.height, msg.width = 1, n
    msg.fields = [PointField(name=name, offset=off, datatype=PointField.FLOAT32, count=1) for name, off in _XYZRGB_FIELDS]
    msg.is_bigendian = False
    msg.point_step = 16
    msg.row_step = 16 * n
    msg.is_dense = True
    msg.data = buf.tobytes()
    return msg


def pointcloud2_to_xyzrgb(msg: PointCloud2) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`xyzrgb_to_pointcloud2` for clouds with that layout."""
    names = [(f.name, f.offset) for f in msg.fields]
    if names != _XYZRGB_FIELDS or msg.point_step != 16:
        raise ValueError(f"expected XYZRGB fields at offsets 0,4,8,12 with point_step 16, got {names}, {msg.point_step}")
    buf = np.frombuffer(bytes(msg.data), dtype=np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("rgb", "<u4")]))
    xyz = np.stack([buf["x"], buf["y"], buf["z"]], axis=1)
    packed = buf["rgb"]
    rgb = np.stack([(packed >> 16) & 255, (packed >> 8) & 255, packed & 255], axis=1).astype(np.uint8)
    return xyz, rgb
