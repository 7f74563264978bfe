"""ros2 launch ldf_ros fusion.launch.py [rgb_topic:=...] [thermal_topic:=...] [rviz:=true] ...

Starts `ldf_fusion` with config/fusion.yaml (or params_file), remaps its camera inputs and
the CameraInfo topics beside them (image_transport convention: <dir>/image -> <dir>/camera_info),
and optionally RViz with config/ldf_ros.rviz. Fast DDS gets the large-image profile unless the
user already set FASTDDS_DEFAULT_PROFILES_FILE (640x512 images otherwise lose fragments).
"""
import os
import tempfile

from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, LogInfo, OpaqueFunction, SetEnvironmentVariable
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node

# launch argument -> node parameter it overrides (checked against the config schema by the tests)
PARAMETER_ARGUMENTS = {"device": "runtime.device", "variant": "model.variant"}


def info_topic(image_topic: str) -> str:
    head, _, _ = image_topic.rpartition("/")
    return f"{head}/camera_info" if head else "camera_info"


def _node(context):
    get = lambda name: LaunchConfiguration(name).perform(context)  # noqa: E731
    overrides = {param: get(arg) for arg, param in PARAMETER_ARGUMENTS.items() if get(arg)}
    overrides["use_sim_time"] = get("use_sim_time").lower() == "true"
    rgb, thermal = get("rgb_topic"), get("thermal_topic")
    lifecycle = get("lifecycle").lower() == "true"
    return [(LifecycleNode if lifecycle else Node)(
        package="ldf_ros", executable="fusion_lifecycle_node" if lifecycle else "fusion_node", name="ldf_fusion",
        namespace=get("namespace"),
        parameters=[get("params_file"), overrides],
        remappings=[("rgb/image", rgb), ("rgb/camera_info", info_topic(rgb)),
                    ("thermal/image", thermal), ("thermal/camera_info", info_topic(thermal))],
        output="screen", emulate_tty=True)]


def _rviz(context):
    """RViz with the config's topics following the namespace and the thermal remap; only where
    rviz2 is installed (otherwise one log line and the node runs alone)."""
    get = lambda name: LaunchConfiguration(name).perform(context)  # noqa: E731
    if get("rviz").lower() != "true":
        return []
    try:
        get_package_share_directory("rviz2")
    except PackageNotFoundError:
        return [LogInfo(msg="rviz:=true but rviz2 is not installed: starting the fusion node without RViz")]
    from ldf_ros.ros.rviz_config import write_rviz_config
    share = get_package_share_directory("ldf_ros")
    out = f"{tempfile.mkdtemp(prefix='ldf_ros_rviz_')}/ldf_ros.rviz"
    write_rviz_config(os.path.join(share, "config", "ldf_ros.rviz"), out, get("namespace"), get("thermal_topic"))
    return [Node(package="rviz2", executable="rviz2", name="rviz", namespace=get("namespace"), arguments=["-d", out],
                 parameters=[{"use_sim_time": get("use_sim_time").lower() == "true"}])]


def generate_launch_description():
    share = get_package_share_directory("ldf_ros")
    actions = [
        DeclareLaunchArgument("namespace", default_value="", description="namespace of the node"),
        DeclareLaunchArgument("rgb_topic", default_value="rgb/image", description="RGB image topic"),
        DeclareLaunchArgument("thermal_topic", default_value="thermal/image", description="thermal image topic"),
        DeclareLaunchArgument("params_file", default_value=os.path.join(share, "config", "fusion.yaml"),
                              description="ROS 2 parameters file (schema: README parameter table)"),
        DeclareLaunchArgument("device", default_value="", description="auto | cpu | cuda (empty: from params_file)"),
        DeclareLaunchArgument("variant", default_value="", description="student | teacher | classical (empty: from params_file)"),
        DeclareLaunchArgument("use_sim_time", default_value="false", description="use /clock (bag replay)"),
        DeclareLaunchArgument("rviz", default_value="false", description="start RViz with config/ldf_ros.rviz"),
        DeclareLaunchArgument("lifecycle", default_value="false",
                              description="run the managed node (configure/activate by a lifecycle manager, e.g. Nav2's)"),
    ]
    if "FASTDDS_DEFAULT_PROFILES_FILE" not in os.environ:
        actions.append(SetEnvironmentVariable("FASTDDS_DEFAULT_PROFILES_FILE",
                                              os.path.join(share, "config", "fastdds_large_images.xml")))
    actions += [
        OpaqueFunction(function=_node),
        OpaqueFunction(function=_rviz),
    ]
    return LaunchDescription(actions)
