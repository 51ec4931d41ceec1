"""`governor calibrate`: one source (a profile or a URL), a file a config can reference."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from controller.calibration.model import load_calibration
from controller.cli import app
from controller.config import load_config

REPO = Path(__file__).resolve().parents[3]
CONFIG = REPO / "configs" / "governor.local.yaml"
PROFILE = REPO / "configs" / "profiles" / "minilm-cpu.yaml"


@pytest.mark.parametrize(
    "source",
    [[], ["--profile", str(PROFILE), "--url", "http://127.0.0.1:9"]],
    ids=["neither", "both"],
)
def test_calibrate_refuses_both_or_neither_source(tmp_path: Path, source: list[str]) -> None:
    out = tmp_path / "cal.yaml"
    result = CliRunner().invoke(app, ["calibrate", "--config", str(CONFIG), "--out", str(out),
                                      *source])
    assert result.exit_code == 2, result.output
    assert "give exactly one of --profile (simulated) or --url (live)" in result.output
    assert not out.exists()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--kind", "decoder"], "--kind 'decoder': expected encoder or generation"),
        (["--shape", "512x128"], "--shape '512x128': expected PROMPT:OUTPUT tokens"),
        (["--shape", "0:128"], "prompt tokens must be >= 1"),
    ],
    ids=["kind", "shape", "empty prompt"],
)
def test_calibrate_refuses_a_bad_live_option(tmp_path: Path, options: list[str],
                                             message: str) -> None:
    out = tmp_path / "cal.yaml"
    result = CliRunner().invoke(app, ["calibrate", "--config", str(CONFIG), "--out", str(out),
                                      "--url", "http://127.0.0.1:9", *options])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not out.exists()


def test_calibrate_a_profile_writes_a_file_a_config_reads(tmp_path: Path) -> None:
    out = tmp_path / "cal" / "minilm.yaml"
    result = CliRunner().invoke(app, ["calibrate", "--config", str(CONFIG), "--profile",
                                      str(PROFILE), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in " ".join(result.output.split())
    cal = load_calibration(out)
    assert cal.kind == "encoder" and len(cal.points) >= 2
    assert out.read_text().startswith("# Written by: governor calibrate ")
    doc = yaml.safe_load(CONFIG.read_text())
    doc["applications"] = doc["applications"][:1]
    doc["applications"][0]["scaling"]["calibration"] = "cal/minilm.yaml"
    (tmp_path / "governor.yaml").write_text(yaml.safe_dump(doc))
    scaling = load_config(tmp_path / "governor.yaml").applications[0].scaling
    assert scaling.work == cal.work
    assert scaling.in_flight_per_replica == cal.in_flight_per_replica
