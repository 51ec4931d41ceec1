"""Schemas of the agents' persisted state, and the UTC ISO-8601 times it holds.

Every state is plain JSON (dicts, lists, str, int, float, bool, None): the daemon writes
it to a file or an annotation and hands it back after a restart. Times are strings in
UTC ISO-8601; `+Inf` histogram bounds are stored as `None` because JSON has no infinity.

The TypedDicts are also the schema a saved state is parsed through (`state_check`):
strict types, finite numbers, times that parse, phases and kinds from their sets.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, ConfigDict, Field, with_config
from typing_extensions import TypedDict

STRICT = ConfigDict(strict=True, allow_inf_nan=False)
"""How a saved state is parsed: no coercion between types, no NaN or infinity."""

PHASES = ("idle", "canary", "promoted", "rolling-back", "rolled-back", "aborted")
CAPACITY_KINDS = ("calibrated", "measured", "proven")
VERDICTS = ("pass", "fail", "inconclusive", "abort")


def _iso_time(text: str) -> str:
    from_iso(text)
    return text


def _one_of(allowed: tuple[str, ...]) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value not in allowed:
            raise ValueError(f"{value!r} is not one of {', '.join(allowed)}")
        return value

    return check


IsoTime = Annotated[str, AfterValidator(_iso_time)]
"""UTC ISO-8601 text."""
Phase = Annotated[str, AfterValidator(_one_of(PHASES))]
CapacityKind = Annotated[str, AfterValidator(_one_of(CAPACITY_KINDS))]
VerdictResult = Annotated[str, AfterValidator(_one_of(VERDICTS))]
Count = Annotated[int, Field(ge=0)]
Amount = Annotated[float, Field(ge=0)]


@with_config(STRICT)
class PendingChange(TypedDict):
    """A replica change the scaling guardrails are holding back until its delay passes."""

    direction: Annotated[int, Field(ge=-1, le=1)]
    """+1 scale up, -1 scale down."""
    since: IsoTime
    from_replicas: Count
    """The count it would change from; a different observed count starts over."""
    bound: Count
    """The most conservative recommendation seen while pending (min up, max down)."""


@with_config(STRICT)
class QueueReading(TypedDict):
    """Requests waiting beyond what one version's replicas hold, as read at one tick."""

    at: IsoTime
    queue: float


@with_config(STRICT)
class VersionScalingState(TypedDict, total=False):
    """What the scaling agent remembers of one version."""

    level: float
    """Smoothed demand in work units (Holt level): replica-seconds of work per second."""
    trend_per_s: float
    """Smoothed change of demand per second (Holt trend)."""
    observed_at: IsoTime
    capacity: Annotated[float, Field(gt=0)]
    """Work units one replica does per second within the SLO (1.0 when calibrated right)."""
    capacity_kind: CapacityKind
    """calibrated | measured | proven (a lower bound: a load seen served within the SLO)."""
    capacity_at: IsoTime
    """When `capacity` was last learned or relaxed towards the calibration."""
    in_flight: Amount
    """Requests one replica was seen holding while it met the SLO under load."""
    running_seen: Count
    """Running replicas at the last tick (a change means replicas drain or join)."""
    changed_at: IsoTime
    """The last tick at which the running replicas changed."""
    changed_up: bool
    """Whether that change added replicas."""
    watched_since: IsoTime
    """The first tick this version was observed at (nothing is learned before a window)."""
    breached_at: IsoTime
    """The last tick with a latency breach."""
    queued_at: IsoTime
    """The last tick with requests waiting beyond what the replicas hold."""
    demand: list[Amount]
    """Highest demand (work units) of each `window_s` bucket, oldest first."""
    demand_at: IsoTime
    """Start of the newest bucket of `demand`."""
    queue: list[QueueReading]
    """Recent readings of the backlog beyond what the replicas hold: its growth."""
    pending: PendingChange
    idle_since: IsoTime
    """Since when the version has seen neither requests nor queue."""


@with_config(STRICT)
class ScalingState(TypedDict, total=False):
    """The scaling agent's state: one entry per `app/version`."""

    versions: dict[str, VersionScalingState]


@with_config(STRICT)
class HistogramCounts(TypedDict):
    """Cumulative latency buckets summed over analysis windows (None bound = +Inf)."""

    bounds_ms: list[float | None]
    counts: list[Amount]


@with_config(STRICT)
class _WindowCountsShed(TypedDict, total=False):
    shed: Amount
    """Requests refused for overload (503): not in `requests`, and no error of the version.
    Absent in state saved before it was counted: none."""
    ttft: HistogramCounts
    """Generation: time-to-first-token buckets (absent for encoders)."""
    tpot: HistogramCounts
    """Generation: time-per-output-token buckets (absent for encoders)."""


@with_config(STRICT)
class WindowCounts(_WindowCountsShed):
    """One version's observations summed over the disjoint windows of a canary step."""

    requests: Amount
    errors: Amount
    windows: Count
    histogram: HistogramCounts | None


@with_config(STRICT)
class Verdict(TypedDict):
    """The last analysis outcome: pass, fail, inconclusive or abort, and why."""

    result: VerdictResult
    reason: str
    at: IsoTime


@with_config(STRICT)
class RolloutAppState(TypedDict, total=False):
    """Where one application's rollout stands."""

    phase: Phase
    """idle | canary | promoted | rolling-back | rolled-back | aborted."""
    stable: str
    """The stable version as this agent knows it (changes on promotion)."""
    config_stable: str
    """The config's stable version when `stable` was set; a config edit overrides `stable`."""
    candidate: str
    step_index: Count
    weight: Annotated[int, Field(ge=0, le=100)]
    """Percent of traffic the candidate gets now."""
    started_at: IsoTime
    step_started_at: IsoTime
    traffic_since: IsoTime
    """When the router was first seen giving the candidate this step's weight."""
    last_sample_at: IsoTime
    canary: WindowCounts
    stable_counts: WindowCounts
    baseline: WindowCounts
    """The stable's counts from an earlier step, for steps where the stable gets no traffic."""
    verdict: Verdict
    phase_since: IsoTime
    draining: dict[str, IsoTime]
    """Versions that left the traffic, and since when they carry none."""
    last_command_at: IsoTime


@with_config(STRICT)
class RolloutState(TypedDict, total=False):
    """The rollout agent's state: one entry per application."""

    apps: dict[str, RolloutAppState]


@with_config(STRICT)
class BudgetState(TypedDict, total=False):
    """The budget agent's state: since when each `app/version` has been held by a cap."""

    capped_since: dict[str, IsoTime]


def utc(t: datetime) -> datetime:
    """`t` as an aware UTC time (a naive time is taken to be UTC already)."""
    if t.tzinfo is UTC:
        return t
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def to_iso(t: datetime) -> str:
    """UTC ISO-8601 text of `t`."""
    return utc(t).isoformat()


def from_iso(text: str) -> datetime:
    """The aware UTC time written by `to_iso`."""
    return utc(datetime.fromisoformat(text))


def seconds_since(text: str | None, now: datetime) -> float | None:
    """Seconds from the ISO time `text` to `now`, or None when `text` is None."""
    if text is None:
        return None
    return (utc(now) - from_iso(text)).total_seconds()
