"""Reading ROS 2 bags (mcap or sqlite3) with rosbags, without ROS: for training and
evaluation code that must not import rclpy."""
from __future__ import annotations

from pathlib import Path


def open_bag(path: str | Path):
    """An open rosbags reader of the bag at `path` (FileNotFoundError, or ValueError naming why
    it cannot be read)."""
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


def static_transforms(tf_message) -> list[tuple[str, str, list[float], list[float]]]:
    """(parent frame, child frame, translation xyz, rotation quaternion xyzw) of every transform
    in a deserialized tf2_msgs/TFMessage (a /tf_static message)."""
    out = []
    for tf in tf_message.transforms:
        tr, q = tf.transform.translation, tf.transform.rotation
        out.append((tf.header.frame_id, tf.child_frame_id, [tr.x, tr.y, tr.z], [q.x, q.y, q.z, q.w]))
    return out
