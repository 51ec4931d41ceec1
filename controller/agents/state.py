"""Schemas of the agents' persisted state, and the UTC ISO-8601 times it holds.

Every state is plain JSON (dicts, lists, str, int, float, bool, None): the daemon writes
it to a file or an annotation and hands it back after a restart. Times are strings in
UTC ISO-8601; `+Inf` histogram bounds are stored as `None` because JSON has no infinity.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TypedDict


class PendingChange(TypedDict):
    """A replica change the scaling guardrails are holding back until its delay passes."""

    direction: int
    """+1 scale up, -1 scale down."""
    since: str
    from_replicas: int
    """The count it would change from; a different observed count starts over."""
    bound: int
    """The most conservative recommendation seen while pending (min up, max down)."""


class QueueReading(TypedDict):
    """Requests waiting beyond what one version's replicas hold, as read at one tick."""

    at: str
    queue: float


class VersionScalingState(TypedDict, total=False):
    """What the scaling agent remembers of one version."""

    level: float
    """Smoothed demand in work units (Holt level): replica-seconds of work per second."""
    trend_per_s: float
    """Smoothed change of demand per second (Holt trend)."""
    observed_at: str
    capacity: float
    """Work units one replica does per second within the SLO (1.0 when calibrated right)."""
    capacity_kind: str
    """calibrated | measured | proven (a lower bound: a load seen served within the SLO)."""
    capacity_at: str
    """When `capacity` was last learned or relaxed towards the calibration."""
    in_flight: float
    """Requests one replica was seen holding while it met the SLO under load."""
    running_seen: int
    """Running replicas at the last tick (a change means replicas drain or join)."""
    changed_at: str
    """The last tick at which the running replicas changed."""
    changed_up: bool
    """Whether that change added replicas."""
    watched_since: str
    """The first tick this version was observed at (nothing is learned before a window)."""
    breached_at: str
    """The last tick with a latency breach."""
    queued_at: str
    """The last tick with requests waiting beyond what the replicas hold."""
    demand: list[float]
    """Highest demand (work units) of each `window_s` bucket, oldest first."""
    demand_at: str
    """Start of the newest bucket of `demand`."""
    queue: list[QueueReading]
    """Recent readings of the backlog beyond what the replicas hold: its growth."""
    pending: PendingChange
    idle_since: str
    """Since when the version has seen neither requests nor queue."""


class ScalingState(TypedDict, total=False):
    """The scaling agent's state: one entry per `app/version`."""

    versions: dict[str, VersionScalingState]


class HistogramCounts(TypedDict):
    """Cumulative latency buckets summed over analysis windows (None bound = +Inf)."""

    bounds_ms: list[float | None]
    counts: list[float]


class WindowCounts(TypedDict):
    """One version's observations summed over the disjoint windows of a canary step."""

    requests: float
    errors: float
    windows: int
    histogram: HistogramCounts | None


class Verdict(TypedDict):
    """The last analysis outcome: pass, fail, inconclusive or abort, and why."""

    result: str
    reason: str
    at: str


class RolloutAppState(TypedDict, total=False):
    """Where one application's rollout stands."""

    phase: str
    """idle | canary | promoted | rolling-back | rolled-back | aborted."""
    stable: str
    """The stable version as this agent knows it (changes on promotion)."""
    config_stable: str
    """The config's stable version when `stable` was set; a config edit overrides `stable`."""
    candidate: str
    step_index: int
    weight: int
    """Percent of traffic the candidate gets now."""
    started_at: str
    step_started_at: str
    traffic_since: str
    """When the router was first seen giving the candidate this step's weight."""
    last_sample_at: str
    canary: WindowCounts
    stable_counts: WindowCounts
    baseline: WindowCounts
    """The stable's counts from an earlier step, for steps where the stable gets no traffic."""
    verdict: Verdict
    phase_since: str
    draining: dict[str, str]
    """Versions that left the traffic, and since when they carry none."""
    last_command_at: str


class RolloutState(TypedDict, total=False):
    """The rollout agent's state: one entry per application."""

    apps: dict[str, RolloutAppState]


class BudgetState(TypedDict, total=False):
    """The budget agent's state: since when each `app/version` has been held by a cap."""

    capped_since: dict[str, str]


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
