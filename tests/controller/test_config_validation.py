"""A bad daemon config is refused with the field's path and the reason."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from controller.cli import app
from controller.config import load_config
from controller.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, doc: object) -> Path:
    p = tmp_path / "governor.yaml"
    p.write_text(yaml.safe_dump(doc))
    return p


def base() -> dict:
    """The shipped local config, its calibration files named by absolute path."""
    doc = yaml.safe_load((REPO / "configs/governor.local.yaml").read_text())
    for app_doc in doc["applications"]:
        scaling = app_doc.get("scaling", {})
        if "calibration" in scaling:
            scaling["calibration"] = str(REPO / "configs" / scaling["calibration"])
    return doc


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO / "configs").glob("governor.*.yaml")))
def test_every_shipped_daemon_config_is_valid(name: str) -> None:
    load_config(REPO / "configs" / name)


def test_a_wrong_type_names_the_field_path(tmp_path: Path) -> None:
    doc = base()
    doc["applications"][0]["slo"]["latency_p95_ms"] = "fast"
    with pytest.raises(ConfigError, match=r"applications\[0\]\.slo\.latency_p95_ms"):
        load_config(write(tmp_path, doc))


def test_min_above_max_replicas_is_refused(tmp_path: Path) -> None:
    doc = base()
    doc["applications"][0]["versions"][0]["min_replicas"] = 5
    with pytest.raises(ConfigError, match=r"min_replicas \(5\) is above max_replicas \(3\)"):
        load_config(write(tmp_path, doc))


def test_unknown_keys_are_refused_not_ignored(tmp_path: Path) -> None:
    doc = base()
    doc["intervall_s"] = 3
    with pytest.raises(ConfigError, match="intervall_s"):
        load_config(write(tmp_path, doc))


def test_a_gpu_type_without_a_price_is_refused(tmp_path: Path) -> None:
    doc = base()
    doc["applications"][0]["resources"]["gpu_type"] = "H100"
    with pytest.raises(ConfigError, match="'H100' has no price"):
        load_config(write(tmp_path, doc))


def test_rollout_steps_must_rise_to_100(tmp_path: Path) -> None:
    doc = base()
    doc["applications"][0]["rollout"]["steps"] = [10, 5, 100]
    with pytest.raises(ConfigError, match="increase strictly"):
        load_config(write(tmp_path, doc))


def test_a_candidate_must_be_a_known_version(tmp_path: Path) -> None:
    doc = base()
    doc["applications"][0]["candidate"] = "v9"
    with pytest.raises(ConfigError, match="candidate 'v9' is not one of the versions"):
        load_config(write(tmp_path, doc))


def test_not_yaml_and_missing_file_are_refused(tmp_path: Path) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text("applications: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(p)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.yaml")


@pytest.mark.parametrize(
    "command", [["run", "--once"], ["plan"], ["status"], ["rollout", "abort", "embeddings"]]
)
def test_every_command_exits_2_on_a_bad_config_and_applies_nothing(
    tmp_path: Path, command: list[str]
) -> None:
    doc = base()
    doc["interval_s"] = -1
    doc["state_path"] = str(tmp_path / "state" / "state.json")
    path = write(tmp_path, doc)
    result = CliRunner().invoke(app, [*command, "--config", str(path)])
    assert result.exit_code == 2
    assert "interval_s" in result.output
    assert not (tmp_path / "state").exists()
