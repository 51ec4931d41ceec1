"""The work model fitted to load points, and the calibration file it is written to."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from controller.calibration.model import (
    Calibration,
    LoadPoint,
    fit_work,
    load_calibration,
    write_calibration,
)
from controller.config import WorkModel
from controller.errors import ConfigError

TRUE = WorkModel(per_request_s=0.01, per_prompt_token_s=1e-4, per_output_token_s=4e-3)
"""10 ms a request, 0.1 ms a prompt token, 4 ms an output token."""


def exact_point(prompt: int, output: int, model: WorkModel = TRUE) -> LoadPoint:
    """The load point a replica with `model`'s costs shows: capacity = 1 / work."""
    work = (model.per_request_s + model.per_prompt_token_s * prompt
            + model.per_output_token_s * output)
    return LoadPoint(prompt_tokens=prompt, output_tokens=output, capacity_rps=1.0 / work,
                     in_flight=2.0)


def test_fit_work_recovers_known_coefficients_from_exact_points() -> None:
    points = [exact_point(p, o) for p, o in ((2048, 16), (1024, 128), (256, 256), (128, 512))]
    model, error = fit_work(points, points[1])
    assert model.per_request_s == pytest.approx(0.01, rel=1e-6)
    assert model.per_prompt_token_s == pytest.approx(1e-4, rel=1e-6)
    assert model.per_output_token_s == pytest.approx(4e-3, rel=1e-6)
    assert (model.reference_prompt_tokens, model.reference_output_tokens) == (1024, 128)
    assert error == pytest.approx(0.0, abs=1e-9)


def test_an_encoder_fit_has_no_output_token_cost() -> None:
    encoder = WorkModel(per_request_s=1e-3, per_prompt_token_s=2e-4)
    points = [exact_point(p, 0, encoder) for p in (8, 32, 72, 128, 256)]
    model, error = fit_work(points, points[1])
    assert model.per_request_s == pytest.approx(1e-3, rel=1e-6)
    assert model.per_prompt_token_s == pytest.approx(2e-4, rel=1e-6)
    assert model.per_output_token_s == 0.0
    assert model.reference_cost_s == pytest.approx(1e-3 + 32 * 2e-4)
    assert error == pytest.approx(0.0, abs=1e-9)


def test_the_fit_error_is_the_largest_relative_miss() -> None:
    # A third shape served at 80% of what the line through the first two predicts: no
    # linear model explains all three, and the error says by how much.
    points = [exact_point(100, 0), exact_point(1000, 0),
              LoadPoint(prompt_tokens=500, output_tokens=0, capacity_rps=0.8 / 0.06, in_flight=1)]
    model, error = fit_work(points, points[0])
    misses = [abs((model.per_request_s + model.per_prompt_token_s * q.prompt_tokens)
                  * q.capacity_rps - 1) for q in points]
    assert error == pytest.approx(max(misses))
    assert 0.05 < error < 0.25


def calibration() -> Calibration:
    """A calibration of exact generation points."""
    points = [exact_point(p, o) for p, o in ((2048, 16), (1024, 128), (256, 256))]
    work, error = fit_work(points, points[1])
    return Calibration(kind="generation", source="a test", slo={"ttft_ms": 1000.0,
                       "tpot_ms": 50.0, "latency_ms": None}, target_utilization=0.8,
                       points=points, work=work, in_flight_per_replica=2.0, fit_error=error)


def test_a_calibration_file_round_trips(tmp_path: Path) -> None:
    cal = calibration()
    path = tmp_path / "nested" / "cal.yaml"
    write_calibration(cal, path, "Written by a test\nReference it as scaling.calibration.")
    text = path.read_text()
    assert text.startswith("# Written by a test\n# Reference it as scaling.calibration.\n")
    assert load_calibration(path) == cal


def test_the_calibration_predicts_a_replicas_capacity_for_a_shape() -> None:
    assert calibration().predicted_capacity_rps(1024, 128) == pytest.approx(
        1 / (0.01 + 0.1024 + 0.512), rel=1e-6)


def test_a_bad_calibration_file_is_a_config_error_naming_file_and_field(tmp_path: Path) -> None:
    path = tmp_path / "cal.yaml"
    doc = calibration().model_dump(mode="json")
    doc["fit_error"] = -1
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError, match=rf"^{path}: fit_error: "):
        load_calibration(path)
    path.write_text("kind: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_calibration(path)
    with pytest.raises(ConfigError, match="cannot read the calibration"):
        load_calibration(tmp_path / "absent.yaml")
