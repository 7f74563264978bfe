"""A sensor_msgs/Image crosses real DDS between two processes and decodes bit-exactly."""
import subprocess
import sys
import textwrap

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from ldf_ros.ros.conversions import image_to_numpy  # noqa: E402
from ros_tools import spin_until, stop_process  # noqa: E402

PUBLISHER = textwrap.dedent("""
    import time, numpy as np, rclpy
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image
    from ldf_ros.ros.conversions import numpy_to_image
    rclpy.init()
    node = rclpy.create_node("test_publisher")
    pub = node.create_publisher(Image, "dds_test/image", qos_profile_sensor_data)
    arr = np.arange(512 * 640, dtype=np.uint32).astype(np.uint16).reshape(512, 640)
    for i in range(200):
        msg = numpy_to_image(arr, "mono16")
        msg.header.frame_id = "thermal_optical"
        msg.header.stamp.sec = i
        pub.publish(msg)
        time.sleep(0.05)
""")


def test_image_between_processes():
    rclpy.init()
    node = rclpy.create_node("test_subscriber")
    received = []
    node.create_subscription(Image, "dds_test/image", received.append, qos_profile_sensor_data)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    proc = subprocess.Popen([sys.executable, "-c", PUBLISHER])
    try:
        assert spin_until(executor, lambda: len(received) >= 3, timeout_s=20), "no Image arrived over DDS"
    finally:
        stop_process(proc)
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown()
    msg = received[-1]
    assert (msg.width, msg.height, msg.encoding, msg.header.frame_id) == (640, 512, "mono16", "thermal_optical")
    expected = np.arange(512 * 640, dtype=np.uint32).astype(np.uint16).reshape(512, 640)
    np.testing.assert_array_equal(image_to_numpy(msg), expected)
