"""Per-version counters read from Prometheus expositions, and deltas over a window."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from prometheus_client.parser import text_string_to_metric_families

from controller.signals import metric_names as m
from controller.snapshot import LatencyHistogram


@dataclass
class VersionCounters:
    """Monotonic counters of one (application, version), summed over replicas."""

    requests: float = 0.0
    errors: float = 0.0
    latency_buckets: dict[float, float] = field(default_factory=dict)


@dataclass
class DeploymentCounters:
    """Counters and gauges of one (application, deployment), summed over replicas."""

    batched_inputs: float = 0.0
    batch_count: float = 0.0
    ongoing: float = 0.0
    input_tokens: float = 0.0
    output_tokens: float = 0.0


@dataclass
class FleetCounters:
    """Everything one scrape said, keyed by (application, version) or (application, deployment)."""

    versions: dict[tuple[str, str], VersionCounters] = field(default_factory=dict)
    deployments: dict[tuple[str, str], DeploymentCounters] = field(default_factory=dict)


_DEPLOYMENT_FIELDS = {
    m.ONGOING: "ongoing",
    m.BATCHED_INPUTS: "batched_inputs",
    m.BATCH_SIZE_COUNT: "batch_count",
    m.INPUT_TOKENS: "input_tokens",
    m.OUTPUT_TOKENS: "output_tokens",
}


def parse_expositions(texts: Iterable[str]) -> FleetCounters:
    """Sum the governed series of several Prometheus text expositions (one per node)."""
    fleet = FleetCounters()
    for text in texts:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                _add(fleet, sample.name, sample.labels, float(sample.value))
    return fleet


def _add(fleet: FleetCounters, name: str, labels: dict[str, str], value: float) -> None:
    app = labels.get(m.APP_LABEL, "")
    field_name = _DEPLOYMENT_FIELDS.get(name)
    if field_name is not None:
        dep = fleet.deployments.setdefault(
            (app, labels.get(m.DEPLOYMENT_LABEL, "")), DeploymentCounters()
        )
        setattr(dep, field_name, getattr(dep, field_name) + value)
        return
    version = labels.get(m.VERSION_LABEL)
    if version is None:
        return
    key = (app, version)
    if name == m.REQUESTS:
        fleet.versions.setdefault(key, VersionCounters()).requests += value
    elif name == m.ERRORS:
        fleet.versions.setdefault(key, VersionCounters()).errors += value
    elif name == m.LATENCY_BUCKET and "le" in labels:
        le = math.inf if labels["le"] in ("+Inf", "inf", "Inf") else float(labels["le"])
        buckets = fleet.versions.setdefault(key, VersionCounters()).latency_buckets
        buckets[le] = buckets.get(le, 0.0) + value


def increase(new: float, old: float) -> float:
    """The growth of a counter between two reads (one that went down restarted from 0)."""
    return new - old if new >= old else new


@dataclass(frozen=True)
class VersionWindow:
    """What one version did between two scrapes."""

    seconds: float
    requests: float
    errors: float
    histogram: LatencyHistogram | None


def version_window(
    new: VersionCounters, old: VersionCounters | None, seconds: float
) -> VersionWindow:
    """The increase of one version's counters over `seconds` (old None: since start)."""
    base = old or VersionCounters()
    histogram = None
    if new.latency_buckets:
        bounds = tuple(sorted(new.latency_buckets))
        counts = tuple(
            increase(new.latency_buckets[b], base.latency_buckets.get(b, 0.0)) for b in bounds
        )
        # Per-bucket resets can break monotonicity; keep the cumulative shape.
        fixed: list[float] = []
        for c in counts:
            fixed.append(max(c, fixed[-1]) if fixed else c)
        histogram = LatencyHistogram(bounds_ms=bounds, counts=tuple(fixed))
    return VersionWindow(
        seconds=seconds,
        requests=increase(new.requests, base.requests),
        errors=increase(new.errors, base.errors),
        histogram=histogram,
    )


class ScrapeHistory:
    """Recent scrapes, so that rates are taken over a window rather than one interval."""

    def __init__(self, keep_s: float) -> None:
        self.keep_s = keep_s
        self._scrapes: deque[tuple[datetime, FleetCounters]] = deque()

    def add(self, at: datetime, counters: FleetCounters) -> None:
        """Remember one scrape; forget those older than needed."""
        self._scrapes.append((at, counters))
        while len(self._scrapes) > 2 and (at - self._scrapes[1][0]).total_seconds() >= self.keep_s:
            self._scrapes.popleft()

    def baseline(self, now: datetime, window_s: float) -> tuple[datetime, FleetCounters] | None:
        """The newest scrape at least `window_s` old, else the oldest one before `now`."""
        chosen = None
        for at, counters in self._scrapes:
            if at >= now:
                break
            if (now - at).total_seconds() >= window_s or chosen is None:
                chosen = (at, counters)
        return chosen
