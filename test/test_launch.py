"""The launch file and RViz config agree with the node: checked statically here (no `launch`
package on PyPI), and by building the launch description where a ROS 2 distro provides it."""
import ast
from pathlib import Path

import pytest
import yaml

from ldf_ros.config import config_to_flat, FusionConfig

ROOT = Path(__file__).resolve().parent.parent
LAUNCH = ROOT / "launch" / "fusion.launch.py"
ISSUE_ARGUMENTS = {"namespace", "rgb_topic", "thermal_topic", "params_file", "device", "variant", "use_sim_time", "rviz", "lifecycle"}


def _launch_tree():
    return ast.parse(LAUNCH.read_text())


def _declared_arguments(tree) -> set[str]:
    return {node.args[0].value for node in ast.walk(tree)
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "DeclareLaunchArgument"}


def test_launch_arguments_are_declared():
    assert _declared_arguments(_launch_tree()) == ISSUE_ARGUMENTS


def test_launch_parameter_overrides_exist_in_the_node():
    tree = _launch_tree()
    mapping = next(node.value for node in ast.walk(tree) if isinstance(node, ast.Assign)
                   and getattr(node.targets[0], "id", "") == "PARAMETER_ARGUMENTS")
    mapping = ast.literal_eval(mapping)
    node_params = set(config_to_flat(FusionConfig()))
    assert set(mapping.values()) <= node_params
    assert set(mapping) <= _declared_arguments(tree)
    remapped = {n.elts[0].value for n in ast.walk(tree) if isinstance(n, ast.Tuple) and len(n.elts) == 2
                and isinstance(n.elts[0], ast.Constant) and isinstance(n.elts[0].value, str) and "/" in n.elts[0].value}
    cfg = FusionConfig().topics
    assert remapped == {cfg.rgb_image, cfg.rgb_info, cfg.thermal_image, cfg.thermal_info}


def test_installed_files_exist():
    tree = _launch_tree()
    joined = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "attr", "") == "join"]
    files = {tuple(a.value for a in n.args if isinstance(a, ast.Constant)) for n in joined}
    for parts in files:
        assert (ROOT.joinpath(*parts)).is_file(), parts
    assert ("config", "ldf_ros.rviz") in files


def test_rviz_config_shows_the_node_outputs():
    rviz = yaml.safe_load((ROOT / "config" / "ldf_ros.rviz").read_text())
    displays = rviz["Visualization Manager"]["Displays"]
    topics = {d["Topic"]["Value"] for d in displays if "Topic" in d}
    assert {"/ldf_fusion/fused/image", "/ldf_fusion/depth/image", "/ldf_fusion/points", "/thermal/image"} <= topics
    assert rviz["Visualization Manager"]["Global Options"]["Fixed Frame"] == "rgb_optical_frame"


def test_launch_description_builds_where_launch_is_installed():
    pytest.importorskip("launch_ros")
    import importlib.util
    spec = importlib.util.spec_from_file_location("fusion_launch", LAUNCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    ld = mod.generate_launch_description()
    assert {a.name for a in ld.get_launch_arguments()} == ISSUE_ARGUMENTS


def test_rviz_config_follows_namespace_and_thermal_remap():
    from ldf_ros.ros.rviz_config import rviz_config_for
    text = (ROOT / "config" / "ldf_ros.rviz").read_text()
    moved = yaml.safe_load(rviz_config_for(text, "robot1", "/cam/ir/image_raw"))
    topics = {d["Topic"]["Value"] for d in moved["Visualization Manager"]["Displays"] if "Topic" in d}
    assert {"/robot1/ldf_fusion/fused/image", "/robot1/ldf_fusion/depth/image", "/robot1/ldf_fusion/points",
            "/cam/ir/image_raw"} <= topics
    relative = yaml.safe_load(rviz_config_for(text, "/robot2/", "thermal/image"))
    topics = {d["Topic"]["Value"] for d in relative["Visualization Manager"]["Displays"] if "Topic" in d}
    assert "/robot2/thermal/image" in topics and "/robot2/ldf_fusion/points" in topics
    same = yaml.safe_load(rviz_config_for(text))
    assert same == yaml.safe_load(text)                  # no namespace, no remap: the shipped config
