"""`scaling.calibration` names a file, relative to the config's folder, that sets the work model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.config import WorkModel, load_config
from controller.errors import ConfigError
from tests.controller.fleet import app_doc

WORK = {"per_request_s": 0.002, "per_prompt_token_s": 1.5e-4,
        "reference_prompt_tokens": 32.0}


def write_config(folder: Path, **scaling: Any) -> Path:
    """A daemon config in `folder` whose one application has these scaling fields."""
    folder.mkdir(parents=True, exist_ok=True)
    doc = {"prices": {"cpu": 1.0}, "applications": [app_doc(scaling=scaling)]}
    path = folder / "governor.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def write_calibration(path: Path, doc: object) -> None:
    """A calibration document at `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc))


def test_load_config_reads_the_calibration_relative_to_the_configs_folder(
    tmp_path: Path,
) -> None:
    write_calibration(tmp_path / "conf" / "cal" / "encoder.yaml",
                      {"kind": "encoder", "work": WORK, "in_flight_per_replica": 4.5})
    config = load_config(write_config(tmp_path / "conf", calibration="cal/encoder.yaml"))
    scaling = config.applications[0].scaling
    assert scaling.work == WorkModel(**WORK)
    assert scaling.in_flight_per_replica == 4.5
    assert scaling.calibration == "cal/encoder.yaml"
    assert scaling.work_model == WorkModel(**WORK)


def test_an_absolute_calibration_path_is_read_as_it_is(tmp_path: Path) -> None:
    cal = tmp_path / "elsewhere" / "cal.yaml"
    write_calibration(cal, {"work": WORK})
    config = load_config(write_config(tmp_path / "conf", calibration=str(cal)))
    assert config.applications[0].scaling.work == WorkModel(**WORK)
    assert config.applications[0].scaling.in_flight_per_replica is None


def test_every_shipped_calibration_is_readable_by_its_config() -> None:
    repo = Path(__file__).resolve().parents[3]
    for path in sorted((repo / "configs").glob("governor.*.yaml")):
        for app in load_config(path).applications:
            if app.scaling.calibration is not None:
                assert app.scaling.work is not None, (path.name, app.name)


def test_a_missing_calibration_file_names_the_config_and_the_field(tmp_path: Path) -> None:
    path = write_config(tmp_path, calibration="cal/absent.yaml")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    absent = tmp_path / "cal" / "absent.yaml"
    assert message.startswith(f"{path}: applications[0].scaling.calibration: {absent}: ")
    assert "cannot read the calibration" in message


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("work: [\n", "not valid YAML"),
        ("kind: encoder\n", "has no `work` mapping (write it with governor calibrate)"),
        ("- work\n", "has no `work` mapping"),
    ],
    ids=["not yaml", "no work", "not a mapping"],
)
def test_an_invalid_calibration_file_names_the_config_and_the_field(
    tmp_path: Path, text: str, reason: str
) -> None:
    (tmp_path / "cal.yaml").write_text(text)
    path = write_config(tmp_path, calibration="cal.yaml")
    with pytest.raises(ConfigError, match=r"applications\[0\]\.scaling\.calibration") as err:
        load_config(path)
    assert str(err.value).startswith(f"{path}: ")
    assert reason in str(err.value)


def test_a_bad_work_model_in_a_calibration_is_refused_with_its_field_path(
    tmp_path: Path,
) -> None:
    write_calibration(tmp_path / "cal.yaml", {"work": {**WORK, "per_request_s": -1}})
    path = write_config(tmp_path, calibration="cal.yaml")
    with pytest.raises(ConfigError, match=r"applications\[0\]\.scaling\.work\.per_request_s") as err:
        load_config(path)
    assert str(err.value).startswith(f"{path}: ")


def test_a_work_model_that_costs_nothing_is_refused(tmp_path: Path) -> None:
    write_calibration(tmp_path / "cal.yaml", {"work": {"per_request_s": 0}})
    with pytest.raises(ConfigError, match="a request of the reference mix must cost some work"):
        load_config(write_config(tmp_path, calibration="cal.yaml"))


def test_a_calibration_measured_for_another_slo_is_refused_naming_both(tmp_path: Path) -> None:
    # app_doc's SLO is a 200 ms p95 at the default 99% attainment.
    write_calibration(tmp_path / "cal.yaml", {
        "kind": "encoder", "work": WORK,
        "slo": {"latency_ms": 300.0, "target_attainment": 0.99},
    })
    with pytest.raises(ConfigError) as err:
        load_config(write_config(tmp_path, calibration="cal.yaml"))
    message = str(err.value)
    assert "applications[0].scaling.calibration" in message
    assert "measured for slo.latency_p95_ms 300.0, the application's is 200" in message


def test_a_calibration_for_the_same_slo_is_accepted(tmp_path: Path) -> None:
    write_calibration(tmp_path / "cal.yaml", {
        "kind": "encoder", "work": WORK,
        "slo": {"latency_ms": 200.0, "ttft_ms": None, "target_attainment": 0.99},
    })
    config = load_config(write_config(tmp_path, calibration="cal.yaml"))
    assert config.applications[0].scaling.work == WorkModel(**WORK)
