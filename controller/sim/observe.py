"""What a metrics pipeline would see of the simulated fleet, and the Snapshot built from it.

The fleet keeps cumulative counters (requests, errors, latency buckets, batch sizes) and
gauges (requests ongoing at replicas, waiting at the router) as a Prometheus exporter
would; every `sample_s` they are sampled. A policy only ever reads samples that a real
pipeline would have by then: metrics are reported every `report_s` (Ray's metrics report
interval), rates and quantiles are taken between two reports at least a window apart, as
`controller/signals/` does. Replica counts come from the live status API.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from controller.config import AppConfig
from controller.signals.window import CounterWindow, window_fields
from controller.snapshot import (
    AppSnapshot,
    ClusterSnapshot,
    LatencyHistogram,
    Snapshot,
    VersionSnapshot,
)

INF = float("inf")
LATENCY_BOUNDS_MS: tuple[float, ...] = (
    1, 2, 5, 10, 20, 50, 100, 200, 300, 400, 500, 1000, 2000, 5000, 10000, 60000, 120000,
    300000, 600000, 3600000, INF,
)  # fmt: skip
"""Ray Serve's default request-latency buckets (DEFAULT_LATENCY_BUCKET_MS) plus +Inf."""
TTFT_BOUNDS_MS: tuple[float, ...] = (
    1, 5, 10, 20, 40, 60, 80, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000, 20000,
    40000, 80000, 160000, 640000, 2560000, INF,
)  # fmt: skip
"""vLLM's `time_to_first_token_seconds` buckets, in ms."""
TPOT_BOUNDS_MS: tuple[float, ...] = (
    10, 25, 50, 75, 100, 150, 200, 300, 400, 500, 750, 1000, 2500, 5000, 7500, 10000, 20000,
    40000, 80000, INF,
)  # fmt: skip
"""vLLM's `time_per_output_token_seconds` buckets, in ms."""


@dataclass
class VersionCounters:
    """Cumulative counters and live gauges of one version, as its exporters hold them."""

    requests: float = 0.0
    errors: float = 0.0
    latency: list[float] = field(default_factory=lambda: [0.0] * len(LATENCY_BOUNDS_MS))
    ttft: list[float] = field(default_factory=lambda: [0.0] * len(TTFT_BOUNDS_MS))
    tpot: list[float] = field(default_factory=lambda: [0.0] * len(TPOT_BOUNDS_MS))
    batch_sum: float = 0.0
    batch_count: float = 0.0
    prompt_tokens: float = 0.0
    output_tokens: float = 0.0
    ongoing_at_replicas: int = 0
    queued_at_router: int = 0

    def record(
        self,
        latency_ms: float,
        ttft_ms: float | None,
        tpot_ms: float | None,
        prompt_tokens: int = 0,
        output_tokens: int = 0,
    ) -> None:
        """Count one answered request with its latencies and tokens."""
        self.requests += 1
        self.prompt_tokens += prompt_tokens
        self.output_tokens += output_tokens
        self.latency[bisect.bisect_left(LATENCY_BOUNDS_MS, latency_ms)] += 1
        if ttft_ms is not None:
            self.ttft[bisect.bisect_left(TTFT_BOUNDS_MS, ttft_ms)] += 1
        if tpot_ms is not None:
            self.tpot[bisect.bisect_left(TPOT_BOUNDS_MS, tpot_ms)] += 1

    def record_error(self) -> None:
        """Count one request answered with an error (rejected)."""
        self.requests += 1
        self.errors += 1


@dataclass(frozen=True)
class Sample:
    """One version's counters and gauges at one instant."""

    t: float
    requests: float
    errors: float
    latency: tuple[float, ...]
    ttft: tuple[float, ...]
    tpot: tuple[float, ...]
    batch_sum: float
    batch_count: float
    prompt_tokens: float
    output_tokens: float
    ongoing_at_replicas: int
    queued_at_router: int
    running: int
    starting: int
    target: int


class Observations:
    """Samples of every version's counters, taken every `sample_s` seconds."""

    def __init__(
        self, versions: tuple[str, ...], sample_s: float = 1.0, keep_s: float | None = None
    ) -> None:
        self.versions = versions
        self.sample_s = sample_s
        self.keep_s = keep_s
        """Forget samples older than this (None keeps the whole run, for plots)."""
        self.times: list[float] = []
        self.samples: dict[str, list[Sample]] = {v: [] for v in versions}

    def add(
        self, t: float, version: str, c: VersionCounters, running: int, starting: int, target: int
    ) -> None:
        """Record the counters of one version at time `t` (call in time order)."""
        if not self.times or self.times[-1] != t:
            self._forget_before(t)
            self.times.append(t)
        self.samples[version].append(
            Sample(
                t=t,
                requests=c.requests,
                errors=c.errors,
                latency=tuple(c.latency),
                ttft=tuple(c.ttft),
                tpot=tuple(c.tpot),
                batch_sum=c.batch_sum,
                batch_count=c.batch_count,
                prompt_tokens=c.prompt_tokens,
                output_tokens=c.output_tokens,
                ongoing_at_replicas=c.ongoing_at_replicas,
                queued_at_router=c.queued_at_router,
                running=running,
                starting=starting,
                target=target,
            )
        )

    def _forget_before(self, t: float) -> None:
        # Trim in halves, so that each sample is moved O(1) times over a run.
        if self.keep_s is None or len(self.times) < 64 or self.times[0] >= t - 2 * self.keep_s:
            return
        cut = bisect.bisect_left(self.times, t - self.keep_s)
        del self.times[:cut]
        for v in self.versions:
            del self.samples[v][:cut]

    def index_at(self, t: float) -> int | None:
        """Index of the newest sample taken at or before `t`."""
        i = bisect.bisect_right(self.times, t + 1e-9) - 1
        return i if i >= 0 else None

    def at(self, version: str, t: float) -> Sample | None:
        """The newest sample of `version` at or before `t`."""
        i = self.index_at(t)
        return self.samples[version][i] if i is not None else None


def counter_window(new: Sample, old: Sample) -> CounterWindow:
    """How one version's counters grew between two samples."""
    return CounterWindow(
        seconds=new.t - old.t,
        requests=new.requests - old.requests,
        errors=new.errors - old.errors,
        latency=_histogram(LATENCY_BOUNDS_MS, new.latency, old.latency),
        ttft=_histogram(TTFT_BOUNDS_MS, new.ttft, old.ttft),
        tpot=_histogram(TPOT_BOUNDS_MS, new.tpot, old.tpot),
        prompt_tokens=new.prompt_tokens - old.prompt_tokens,
        output_tokens=new.output_tokens - old.output_tokens,
        batches=new.batch_count - old.batch_count,
        batched_inputs=new.batch_sum - old.batch_sum,
    )


def _histogram(
    bounds: tuple[float, ...], new: tuple[float, ...], old: tuple[float, ...]
) -> LatencyHistogram | None:
    counts: list[float] = []
    total = 0.0
    for n, o in zip(new, old, strict=True):
        total += n - o
        counts.append(total)
    if total <= 0:
        return None
    return LatencyHistogram(bounds_ms=bounds, counts=tuple(counts))


@dataclass(frozen=True)
class FleetStatus:
    """Live replica counts of one version (the status API answers without delay)."""

    running: int
    starting: int
    target: int


@dataclass(frozen=True)
class PipelineSettings:
    """How the simulated metrics pipeline delays and windows what it reports."""

    report_s: float = 10.0
    """Metrics reach the exporter every this many seconds (Ray's default report interval)."""
    window_s: float = 30.0
    """Rates and quantiles are taken over at least this many seconds."""


def visible_time(t: float, report_s: float) -> float:
    """The newest instant whose metrics have been reported by time `t`."""
    if report_s <= 0:
        return t
    return (t // report_s) * report_s


def version_snapshot(
    obs: Observations,
    app: AppConfig,
    version: str,
    t: float,
    status: FleetStatus,
    pipeline: PipelineSettings,
    startup_s: float | None,
) -> VersionSnapshot:
    """What the signal source would report of one version at time `t`."""
    deployment = app.version(version).deployment
    fields: dict[str, object] = {}
    seen = visible_time(t, pipeline.report_s)
    now_i = obs.index_at(seen)
    if now_i is not None:
        samples = obs.samples[version]
        new = samples[now_i]
        base_i = obs.index_at(seen - pipeline.window_s)
        old = samples[base_i if base_i is not None else 0]
        fields = window_fields(counter_window(new, old))
        fields["queue_length"] = float(new.ongoing_at_replicas + new.queued_at_router)
    return VersionSnapshot(
        app=app.name,
        version=version,
        deployment=deployment,
        running_replicas=status.running,
        starting_replicas=status.starting,
        target_replicas=status.target,
        startup_s=startup_s,
        **fields,  # type: ignore[arg-type]
    )


def build_snapshot(
    obs: Observations,
    app: AppConfig,
    t: float,
    start: datetime,
    statuses: dict[str, FleetStatus],
    weights: dict[str, int],
    pipeline: PipelineSettings,
    startup_s: dict[str, float | None],
    gpu_type: str | None = None,
) -> Snapshot:
    """The Snapshot the daemon would observe at simulated second `t`."""
    versions = tuple(
        version_snapshot(obs, app, v.name, t, statuses[v.name], pipeline, startup_s.get(v.name))
        for v in app.versions
    )
    return Snapshot(
        now=start + timedelta(seconds=t),
        apps=(
            AppSnapshot(name=app.name, versions=versions, weights=dict(weights), status="RUNNING"),
        ),
        cluster=ClusterSnapshot(gpu_type=gpu_type),
        window_s=pipeline.window_s,
    )
