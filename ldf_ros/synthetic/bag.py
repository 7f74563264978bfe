"""Synthetic sequences as ROS 2 bags (mcap or sqlite3), written with rosbags.

Topics follow the node's default inputs: /rgb/image (rgb8), /rgb/camera_info,
/thermal/image (mono16 raw counts), /thermal/camera_info, /tf_static (thermal optical
frame in the RGB optical frame), and ground truth on /rgb/depth_gt and /thermal/depth_gt
(32FC1, meters, NaN where nothing was hit).
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from ldf_ros.data.image_encoding import encode_image
from ldf_ros.synthetic.rig import PinholeCamera
from ldf_ros.synthetic.sequence import SequenceSpec, generate

TYPESTORE = get_typestore(Stores.ROS2_KILTED)
RGB_FRAME = "rgb_optical_frame"
THERMAL_FRAME = "thermal_optical_frame"
TOPICS = {
    "rgb_image": ("/rgb/image", "sensor_msgs/msg/Image"),
    "rgb_info": ("/rgb/camera_info", "sensor_msgs/msg/CameraInfo"),
    "thermal_image": ("/thermal/image", "sensor_msgs/msg/Image"),
    "thermal_info": ("/thermal/camera_info", "sensor_msgs/msg/CameraInfo"),
    "rgb_depth": ("/rgb/depth_gt", "sensor_msgs/msg/Image"),
    "thermal_depth": ("/thermal/depth_gt", "sensor_msgs/msg/Image"),
    "tf_static": ("/tf_static", "tf2_msgs/msg/TFMessage"),
}


def _header(stamp_ns: int, frame: str):
    t = TYPESTORE.types
    return t["std_msgs/msg/Header"](stamp=t["builtin_interfaces/msg/Time"](sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9),
                                   frame_id=frame)


def _image(arr: np.ndarray, encoding: str, stamp_ns: int, frame: str):
    data, h, w, step = encode_image(arr, encoding)
    return TYPESTORE.types["sensor_msgs/msg/Image"](header=_header(stamp_ns, frame), height=h, width=w, encoding=encoding,
                                                    is_bigendian=0, step=step, data=np.frombuffer(data, np.uint8))


def _camera_info(cam: PinholeCamera, stamp_ns: int, frame: str):
    t = TYPESTORE.types
    k = cam.k
    p = np.zeros((3, 4))
    p[:, :3] = k
    return t["sensor_msgs/msg/CameraInfo"](
        header=_header(stamp_ns, frame), height=cam.height, width=cam.width, distortion_model="plumb_bob",
        d=np.zeros(5), k=k.ravel(), r=np.eye(3).ravel(), p=p.ravel(), binning_x=0, binning_y=0,
        roi=t["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))


def _tf_static(spec: SequenceSpec, stamp_ns: int):
    t = TYPESTORE.types
    tr, q = spec.rig.thermal_to_rgb_translation, spec.rig.thermal_to_rgb_rotation
    transform = t["geometry_msgs/msg/TransformStamped"](
        header=_header(stamp_ns, RGB_FRAME), child_frame_id=THERMAL_FRAME,
        transform=t["geometry_msgs/msg/Transform"](
            translation=t["geometry_msgs/msg/Vector3"](x=tr[0], y=tr[1], z=tr[2]),
            rotation=t["geometry_msgs/msg/Quaternion"](x=q[0], y=q[1], z=q[2], w=q[3])))
    return t["tf2_msgs/msg/TFMessage"](transforms=[transform])


def write_bag(spec: SequenceSpec, condition: str, path: Path, storage: str = "mcap", progress: bool = True) -> Path:
    """Write one condition's sequence as a bag directory at `path` (must not exist)."""
    from tqdm import tqdm

    plugin = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}[storage]
    path = Path(path)
    with Writer(path, version=9, storage_plugin=plugin) as writer:
        conns = {key: writer.add_connection(topic, msgtype, typestore=TYPESTORE) for key, (topic, msgtype) in TOPICS.items()}

        def put(key, stamp_ns, msg):
            writer.write(conns[key], stamp_ns, TYPESTORE.serialize_cdr(msg, TOPICS[key][1]))

        first = int(round(spec.start_time_s * 1e9)) - 1
        put("tf_static", first, _tf_static(spec, first))
        rig = spec.rig
        # bags carry what real cameras give: no thermal rendered from the RGB viewpoint
        views = generate(replace(spec, registered_thermal=False), condition)
        for view in tqdm(views, desc=f"bag {condition}", disable=not progress):
            ns = int(round(view.stamp_s * 1e9))
            if view.camera == "rgb":
                put("rgb_image", ns, _image(view.image, "rgb8", ns, RGB_FRAME))
                put("rgb_info", ns, _camera_info(rig.rgb, ns, RGB_FRAME))
                put("rgb_depth", ns, _image(view.depth, "32FC1", ns, RGB_FRAME))
            elif view.camera == "thermal":
                put("thermal_image", ns, _image(view.image, "mono16", ns, THERMAL_FRAME))
                put("thermal_info", ns, _camera_info(rig.thermal, ns, THERMAL_FRAME))
                put("thermal_depth", ns, _image(view.depth, "32FC1", ns, THERMAL_FRAME))
    return path

