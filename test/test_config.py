"""The one config schema: the shipped file loads, each kind of bad value names its key."""
from pathlib import Path

import pytest
import yaml

from ldf_ros.config import (ConfigError, FusionConfig, config_from_flat, config_to_flat, default_config_path,
                            load_config, parameter_docs)

SHIPPED = Path(__file__).resolve().parent.parent / "config" / "fusion.yaml"


def write(tmp_path, params):
    p = tmp_path / "cfg.yaml"
    p.write_text(yaml.safe_dump({"ldf_fusion": {"ros__parameters": params}}))
    return p


def test_shipped_file_loads_and_matches_defaults():
    assert default_config_path() == SHIPPED
    cfg = load_config(SHIPPED)
    assert isinstance(cfg, FusionConfig)
    # The shipped file spells out every parameter, with the schema's defaults.
    assert config_to_flat(cfg) == config_to_flat(FusionConfig())
    raw = yaml.safe_load(SHIPPED.read_text())["/**/ldf_fusion"]["ros__parameters"]
    assert {f"{s}.{k}" for s, sec in raw.items() for k in sec} == set(config_to_flat(cfg))


def test_valid_values_are_typed(tmp_path):
    cfg = load_config(write(tmp_path, {"sync": {"slop_s": 0.05, "queue_size": 20.0}, "runtime": {"device": "cpu"}}))
    assert cfg.sync.slop_s == 0.05 and cfg.sync.queue_size == 20 and isinstance(cfg.sync.queue_size, int)
    assert cfg.runtime.device == "cpu"
    assert cfg.pointcloud.stride == 4  # untouched sections keep defaults


@pytest.mark.parametrize("params, key, allowed", [
    ({"sync": {"slop": 0.1}}, "sync.slop", "slop_s"),                       # unknown key
    ({"synk": {"slop_s": 0.1}}, "synk", "topics"),                          # unknown section
    ({"sync": {"slop_s": "fast"}}, "sync.slop_s", "a number in (0.0, 1.0]"),  # wrong type
    ({"sync": {"slop_s": 0.0}}, "sync.slop_s", "(0.0, 1.0]"),              # out of range (open bound)
    ({"sync": {"queue_size": 2.5}}, "sync.queue_size", "an integer"),       # non-integral int
    ({"runtime": {"device": "tpu"}}, "runtime.device", "'auto', 'cpu', 'cuda'"),  # bad choice
    ({"runtime": {"fp16": 1}}, "runtime.fp16", "true or false"),            # int is not bool
    ({"pointcloud": {"stride": True}}, "pointcloud.stride", "an integer"),  # bool is not int
    ({"registration": {"homography": [1, 0, 0]}}, "registration.homography", "9 numbers"),
    ({"thermal": {"low_percentile": 99.5, "high_percentile": 99.0}}, "thermal.low_percentile", "below"),
    ({"thermal": {"range_max": float("nan")}}, "thermal.range_max", "a number"),
])
def test_bad_values_name_key_and_allowed(tmp_path, params, key, allowed):
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, params))
    assert str(err.value).startswith(key), err.value
    assert allowed in str(err.value)


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("ldf_fusion: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(broken)
    no_params = tmp_path / "noparams.yaml"
    no_params.write_text("ldf_fusion: {sync: {slop_s: 0.1}}\n")
    with pytest.raises(ConfigError, match="ros__parameters"):
        load_config(no_params)


def test_flat_round_trip_and_overrides():
    flat = config_to_flat(FusionConfig())
    assert config_from_flat(flat) == FusionConfig()
    cfg = load_config(SHIPPED, overrides={"pointcloud.stride": 8})
    assert cfg.pointcloud.stride == 8
    with pytest.raises(ConfigError, match="^pointcloud.strid:"):
        load_config(SHIPPED, overrides={"pointcloud.strid": 8})
    assert set(parameter_docs()) == set(flat)


def test_cli_config_reports_errors(tmp_path, capsys):
    from ldf_ros.cli import main
    assert main(["config", "--config", str(SHIPPED)]) == 0
    assert "sync.slop_s = 0.02" in capsys.readouterr().out
    assert main(["config", "--config", str(write(tmp_path, {"sync": {"queue_size": -1}}))]) == 2
    assert "sync.queue_size" in capsys.readouterr().err


def test_readme_parameter_table_is_current():
    from ldf_ros.cli import parameters_markdown
    readme = (SHIPPED.parent.parent / "README.md").read_text()
    assert parameters_markdown(config_to_flat(FusionConfig()), parameter_docs()) in readme
