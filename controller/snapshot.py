"""The frozen view of the fleet that every agent decides from.

A signal source builds one `Snapshot` per tick. A value that could not be observed is
`None` (missing), never a guess; `Snapshot.problems` says why it is missing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

T = TypeVar("T")
K = TypeVar("K")


@dataclass(frozen=True)
class LatencyHistogram:
    """Request latencies over the observation window as cumulative buckets.

    `bounds_ms[i]` is the upper bound of bucket i (the last may be `inf`);
    `counts[i]` is how many requests took at most `bounds_ms[i]` (cumulative, like
    Prometheus `_bucket` series).
    """

    bounds_ms: tuple[float, ...]
    counts: tuple[float, ...]

    @property
    def total(self) -> float:
        """Number of requests in the window."""
        return self.counts[-1] if self.counts else 0.0

    def quantile(self, q: float) -> float | None:
        """Quantile estimate by linear interpolation inside the bucket (as PromQL does)."""
        total = self.total
        if total <= 0:
            return None
        rank = q * total
        lower_bound, lower_count = 0.0, 0.0
        for bound, count in zip(self.bounds_ms, self.counts, strict=True):
            if count >= rank:
                if bound == float("inf"):
                    return lower_bound
                in_bucket = count - lower_count
                if in_bucket <= 0:
                    return bound
                return lower_bound + (bound - lower_bound) * (rank - lower_count) / in_bucket
            lower_bound, lower_count = bound, count
        return lower_bound


@dataclass(frozen=True)
class VersionSnapshot:
    """What was observed of one model version (one Serve deployment) over the window."""

    app: str
    version: str
    deployment: str
    running_replicas: int | None = None
    starting_replicas: int | None = None
    target_replicas: int | None = None
    request_rate: float | None = None
    """Requests per second served by this version (router's view)."""
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    latency_p99_ms: float | None = None
    error_rate: float | None = None
    """Fraction of requests that failed, 0..1."""
    request_count: float | None = None
    """Requests in the observation window (for sample-size checks)."""
    error_count: float | None = None
    latency_histogram: LatencyHistogram | None = None
    queue_length: float | None = None
    """Requests ongoing or queued at this version (its replicas and the router's queue)."""
    batch_size: float | None = None
    """Mean observed batch size."""
    startup_s: float | None = None
    """Measured replica start-up (model load) time."""
    ttft_ms: float | None = None
    """Generation: p95 time to first token over the window."""
    tpot_ms: float | None = None
    """Generation: p95 time per output token over the window."""
    ttft_histogram: LatencyHistogram | None = None
    """Generation: time-to-first-token buckets over the window (for the canary judge)."""
    tpot_histogram: LatencyHistogram | None = None
    """Generation: time-per-output-token buckets over the window."""
    prompt_token_rate: float | None = None
    """Prompt (input) tokens per second of the requests this version answered."""
    output_token_rate: float | None = None
    """Generated tokens per second of the requests this version answered."""
    shed_rate: float | None = None
    """Requests per second refused for overload (503 + Retry-After) before they reached
    this version's replicas: demand it failed to serve, in neither `request_rate` nor
    `error_rate`."""

    @property
    def heading_to(self) -> int | None:
        """The replica count the version is heading to: its target, else running + starting."""
        if self.target_replicas is not None:
            return self.target_replicas
        if self.running_replicas is None:
            return None
        return self.running_replicas + (self.starting_replicas or 0)


def first_by(items: Iterable[T], key: Callable[[T], K]) -> dict[K, T]:
    """Items by key, the first of equal keys winning as a scan would (O(1) look-ups)."""
    index: dict[K, T] = {}
    for item in items:
        index.setdefault(key(item), item)
    return index


@dataclass(frozen=True)
class AppSnapshot:
    """One Serve application: its versions and the router's current traffic weights."""

    name: str
    versions: tuple[VersionSnapshot, ...]
    weights: dict[str, int] | None = None
    status: str | None = None
    _by_name: dict[str, VersionSnapshot] = field(
        init=False, repr=False, compare=False, hash=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", first_by(self.versions, lambda v: v.version))

    def version(self, name: str) -> VersionSnapshot | None:
        """The snapshot of version `name`, if it was observed."""
        return self._by_name.get(name)


@dataclass(frozen=True)
class ClusterSnapshot:
    """Capacity of the cluster the fleet runs on."""

    total_cpus: float | None = None
    total_gpus: float | None = None
    gpu_type: str | None = None


@dataclass(frozen=True)
class OperatorCommand:
    """A request an operator made by hand (e.g. `governor rollout abort APP`)."""

    action: str
    app: str
    issued_at: datetime
    args: Mapping[str, Any] = field(default_factory=dict)
    """What the action needs beyond the app (a release: its request as JSON)."""


@dataclass(frozen=True)
class Snapshot:
    """Everything an agent may know at one tick; `now` is the only clock agents read."""

    now: datetime
    apps: tuple[AppSnapshot, ...]
    cluster: ClusterSnapshot = field(default_factory=ClusterSnapshot)
    window_s: float = 30.0
    problems: tuple[str, ...] = ()
    """Why fields are missing (a failed source, a stale sample)."""
    commands: tuple[OperatorCommand, ...] = ()
    """Operator commands not yet handled, observed at this tick."""
    observing_since: datetime | None = None
    """When this controller process began observing the fleet (None: long enough ago).

    Until a full window has passed since then, what the signals say covers less than a
    window, so the plan cuts no capacity (`warming_up`)."""
    _by_name: dict[str, AppSnapshot] = field(
        init=False, repr=False, compare=False, hash=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", first_by(self.apps, lambda a: a.name))

    @property
    def warming_up(self) -> bool:
        """True until a full window has been observed since this controller started."""
        if self.observing_since is None:
            return False
        return (self.now - self.observing_since).total_seconds() < self.window_s

    def app(self, name: str) -> AppSnapshot | None:
        """The snapshot of application `name`, if it was observed."""
        return self._by_name.get(name)

    def version(self, app: str, version: str) -> VersionSnapshot | None:
        """The snapshot of one version of one application, if observed."""
        a = self.app(app)
        return a.version(version) if a else None
