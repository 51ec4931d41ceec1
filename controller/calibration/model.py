"""The calibration file: load points measured on one replica and the work model fitted to them.

Each point is a load test of one request shape (prompt and output tokens): the highest
request rate one replica serves while meeting the SLO, and how many requests it then held
in flight. Work per request is fitted as `per_request_s + per_prompt_token_s x prompt +
per_output_token_s x output` (non-negative least squares on the relative error), so that
one replica at its capacity does one replica-second of work per second, whatever the mix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from scipy.optimize import nnls

from controller.config import WorkModel, format_validation_error, read_yaml
from controller.errors import ConfigError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LoadPoint(_Strict):
    """One measured request shape."""

    prompt_tokens: int = Field(ge=0)
    output_tokens: int = Field(ge=0)
    capacity_rps: float = Field(gt=0)
    """Highest request rate one replica serves within the SLO."""
    in_flight: float = Field(ge=0)
    """Mean requests in flight at one replica at `target_utilization` of that capacity."""


class Calibration(_Strict):
    """What `governor calibrate` measured and fitted."""

    kind: Literal["encoder", "generation"]
    source: str = Field(min_length=1)
    """How it was measured: a profile in the simulator, or a live deployment."""
    slo: dict[str, float | None]
    target_utilization: float = Field(gt=0, le=1)
    points: list[LoadPoint] = Field(min_length=1)
    work: WorkModel
    in_flight_per_replica: float = Field(gt=0)
    """Requests in flight at one replica at target utilization, at the reference shape."""
    fit_error: float = Field(ge=0)
    """Largest relative error of the fitted work model over the points."""

    def predicted_capacity_rps(self, prompt_tokens: float, output_tokens: float) -> float:
        """Requests per second one replica serves within the SLO, by the fitted model."""
        w = self.work
        cost = (
            w.per_request_s
            + w.per_prompt_token_s * prompt_tokens
            + w.per_output_token_s * output_tokens
        )
        return 1.0 / cost


def fit_work(points: list[LoadPoint], reference: LoadPoint) -> tuple[WorkModel, float]:
    """The work model that best explains the points, and its largest relative error."""
    rows = np.array([[1.0, p.prompt_tokens, p.output_tokens] for p in points], dtype=float)
    rates = np.array([p.capacity_rps for p in points], dtype=float)
    scale = rows.max(axis=0)
    scale[scale == 0] = 1.0
    # Relative error: (work(x_i) x r_i - 1); columns scaled so that nnls is well conditioned.
    coef, _ = nnls(rows / scale * rates[:, None], np.ones(len(points)))
    coef = coef / scale
    if coef[0] <= 0 and coef[1] <= 0 and coef[2] <= 0:
        coef[0] = float(np.mean(1.0 / rates))
    model = WorkModel(
        per_request_s=float(coef[0]),
        per_prompt_token_s=float(coef[1]),
        per_output_token_s=float(coef[2]),
        reference_prompt_tokens=reference.prompt_tokens,
        reference_output_tokens=reference.output_tokens,
    )
    predicted = rows @ coef
    error = float(np.max(np.abs(predicted * rates - 1.0)))
    return model, error


def write_calibration(calibration: Calibration, path: Path, header: str) -> None:
    """Write the calibration as YAML, after a comment header saying how it was made."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = yaml.safe_dump(calibration.model_dump(mode="json"), sort_keys=False)
    comment = "".join(f"# {line}\n" for line in header.splitlines())
    path.write_text(comment + body)


def load_calibration(path: Path) -> Calibration:
    """Read a calibration file, or raise ConfigError naming the file and field."""
    doc = read_yaml(path, "calibration")
    try:
        return Calibration.model_validate(doc)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, str(path))) from err
