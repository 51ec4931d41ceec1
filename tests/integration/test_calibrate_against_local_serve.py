"""`governor calibrate --url` against a real local Serve: bounded load steps, a fitted model.

Runs on the real Ray Serve of the test session (tests/conftest.py) with the real MiniLM.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from controller.calibration.model import load_calibration
from controller.cli import app as cli
from controller.config import load_config
from tests.conftest import RayServeCluster
from tests.integration.governed_fleet import MODEL, governor_config

pytestmark = pytest.mark.integration


def test_live_calibration_measures_each_shape_and_writes_a_config_usable_model(
    fleet: RayServeCluster, tmp_path: Path
) -> None:
    config, _ = governor_config(fleet, tmp_path)
    config_path = tmp_path / "governor.yaml"
    config_path.write_text(config.model_dump_json())
    out = tmp_path / "calibration.yaml"
    result = CliRunner().invoke(cli, [
        "calibrate", "--config", str(config_path), "--url", fleet.http_url,
        "--kind", "encoder", "--model", MODEL, "--shape", "8:0", "--shape", "96:0",
        "--step-s", "3", "--max-rps", "64", "--out", str(out),
    ])
    assert result.exit_code == 0, result.output
    calibration = load_calibration(out)
    short, long = calibration.points
    assert 0 < long.capacity_rps <= short.capacity_rps <= 64, "longer inputs cost more"
    assert calibration.work.per_prompt_token_s > 0 or calibration.work.per_request_s > 0
    assert calibration.slo["latency_ms"] == 500
    # The file is what a config references: the governor then plans with its work model.
    doc = config.model_dump(mode="json")
    doc["applications"][0]["scaling"]["calibration"] = str(out)
    (tmp_path / "with.yaml").write_text(json.dumps(doc))
    scaling = load_config(tmp_path / "with.yaml").applications[0].scaling
    assert scaling.work == calibration.work
