"""The release policy: which releases may run, as a declarative part of the config.

It does not import `controller.config` (which imports it): it has its own strict base and
field types, written like the config's.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    ValidationInfo,
    field_validator,
)

PolicyName = Annotated[str, Strict(), Field(min_length=1, pattern=r"^\S(.*\S)?$")]
"""A non-empty name without leading or trailing blanks (an app, a team, a GPU type)."""
SourcePrefix = Annotated[str, Strict(), Field(min_length=1)]
"""The start of a model source, e.g. `bundled:` or `/models/`."""
Score = Annotated[float, Strict(), Field(allow_inf_nan=False)]
"""A finite evaluation score."""
GpuCount = Annotated[float, Strict(), Field(ge=0, allow_inf_nan=False)]
"""A finite number of GPUs of at least zero (fractions allowed)."""


def _date_and_time(value: object) -> object:
    """`value` if it is a datetime or a string (an ISO-8601 time), else ValueError."""
    if isinstance(value, datetime | str):
        return value
    raise ValueError(
        "must be a date and time with a time zone, e.g. 2026-01-01T00:00:00Z, "
        f"got {type(value).__name__} {value!r}"
    )


def _aware(value: datetime) -> datetime:
    """`value` if it carries a time zone, else ValueError."""
    if value.utcoffset() is None:
        raise ValueError(
            f"must carry a time zone, e.g. {value.isoformat()}Z or {value.isoformat()}+00:00; "
            f"got the naive {value.isoformat()}"
        )
    return value


AwareTime = Annotated[datetime, BeforeValidator(_date_and_time), AfterValidator(_aware)]
"""A timezone-aware date and time (a naive one is refused)."""


class _PolicyModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FreezeWindow(_PolicyModel):
    """A time during which no release runs, for some or every application and team."""

    start: AwareTime
    end: AwareTime = Field(description="the first moment releases run again (after start)")
    apps: list[PolicyName] = Field(default_factory=list)
    """The applications it freezes; empty: every application."""
    teams: list[PolicyName] = Field(default_factory=list)
    """The teams it freezes; empty: every team."""
    reason: Annotated[str, Strict()] = ""

    @field_validator("end")
    @classmethod
    def _after_start(cls, end: datetime, info: ValidationInfo) -> datetime:
        start = info.data.get("start")
        if start is not None and end <= start:
            raise ValueError(f"end ({end.isoformat()}) must be after start ({start.isoformat()})")
        return end

    def freezes(self, app: str, team: str, now: datetime) -> bool:
        """Whether the window holds a release of `app` of `team` at `now` (end excluded)."""
        return (
            self.start <= now < self.end
            and (not self.apps or app in self.apps)
            and (not self.teams or team in self.teams)
        )


class TeamLimits(_PolicyModel):
    """What a team's applications may hold per replica."""

    gpu_types: list[PolicyName] | None = None
    """GPU types the team's replicas may use (None: any)."""
    max_gpus_per_replica: GpuCount | None = None
    """The most GPUs one replica may hold (None: any)."""


class ReleasePolicy(_PolicyModel):
    """The rules a release must keep to be admitted; each is checked on its own."""

    allowed_sources: list[SourcePrefix] = Field(default_factory=list)
    """Model source prefixes allowed, e.g. `bundled:`, `/models/`, `hf:acme/`; empty: any."""
    required_meta: list[PolicyName] = Field(default_factory=lambda: ["owner"])
    """Metadata every release must give, non-empty."""
    min_scores: dict[PolicyName, Score] = Field(default_factory=dict)
    """Evaluation score name -> minimum; a release without the score is refused."""
    budget_covers_canary: bool = Field(default=True, strict=True)
    """Refuse a release whose canary would take its team or the fleet over budget."""
    teams: dict[PolicyName, TeamLimits] = Field(default_factory=dict)
    """Per-team limits on the resources of a replica."""
    freeze: list[FreezeWindow] = Field(default_factory=list)
    """Windows during which no release runs."""
