"""The RViz config for the node's resolved names: the shipped `config/ldf_ros.rviz` names the
outputs of `/ldf_fusion` and `/thermal/image`; with a namespace or remapped inputs, the launch
file writes a copy whose topics follow them (RViz itself does not resolve relative names
against the node it shows)."""
from __future__ import annotations

from pathlib import Path

import yaml

NODE = "/ldf_fusion/"
THERMAL = "/thermal/image"


def resolve(name: str, namespace: str) -> str:
    """A topic as ROS resolves it for a node in `namespace` (absolute names stay)."""
    if name.startswith("/"):
        return name
    ns = "/" + namespace.strip("/") if namespace.strip("/") else ""
    return f"{ns}/{name}"


def rviz_config_for(template: str, namespace: str = "", thermal_topic: str = "thermal/image") -> str:
    """The template's text with every display topic moved to the node's namespace and the
    thermal display on the remapped thermal input."""
    data = yaml.safe_load(template)
    for display in data["Visualization Manager"]["Displays"]:
        topic = display.get("Topic")
        if not topic:
            continue
        value = topic["Value"]
        if value.startswith(NODE):
            topic["Value"] = resolve("ldf_fusion/" + value[len(NODE):], namespace)
        elif value == THERMAL:
            topic["Value"] = resolve(thermal_topic, namespace)
    return yaml.safe_dump(data, sort_keys=False)


def write_rviz_config(template_path: str | Path, out_path: str | Path, namespace: str, thermal_topic: str) -> Path:
    out = Path(out_path)
    out.write_text(rviz_config_for(Path(template_path).read_text(), namespace, thermal_topic))
    return out
