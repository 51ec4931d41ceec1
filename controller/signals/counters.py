"""Per-version counters read from Prometheus expositions, and their increase over a window.

Each scrape is read once, line by line, into numbers per series; a few of those readings
are kept as the window's baselines, never the texts they were read from.
"""

from __future__ import annotations

import math
import re
import sys
from array import array
from collections import deque
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from controller.signals import metric_names as m
from controller.snapshot import LatencyHistogram

CHECKPOINTS_PER_WINDOW = 4
"""Baselines kept per window: an increase is taken over one window plus at most a quarter
of one and a scrape interval, and memory holds at most six readings of the fleet however
often it is scraped."""


@dataclass(frozen=True, slots=True)
class VersionCounters:
    """Monotonic counters of one (application, version), summed over replicas."""

    requests: float = 0.0
    errors: float = 0.0
    bounds_ms: tuple[float, ...] = ()
    """Upper bounds of the latency buckets, ascending."""
    buckets: array[float] = field(default_factory=lambda: array("d"))
    """Requests that took at most each bound (cumulative), as many as `bounds_ms`."""
    shed: float = 0.0
    """Requests refused for overload before they reached the version (not in `requests`)."""
    tokens: dict[str, tuple[tuple[float, ...], array[float]]] = field(default_factory=dict)
    """Token latency histograms (`ttft`, `tpot`) of a generation version: bounds, counts."""


@dataclass(frozen=True, slots=True)
class DeploymentCounters:
    """Counters and gauges of one (application, deployment), summed over replicas."""

    batched_inputs: float = 0.0
    batch_count: float = 0.0
    ongoing: float = 0.0
    input_tokens: float = 0.0
    output_tokens: float = 0.0


@dataclass(frozen=True)
class FleetCounters:
    """Everything one scrape said, keyed by (application, version) or (application, deployment)."""

    versions: dict[tuple[str, str], VersionCounters] = field(default_factory=dict)
    deployments: dict[tuple[str, str], DeploymentCounters] = field(default_factory=dict)


_DEPLOYMENT_FIELDS = (
    m.BATCHED_INPUTS,
    m.BATCH_SIZE_COUNT,
    m.ONGOING,
    m.INPUT_TOKENS,
    m.OUTPUT_TOKENS,
)
"""The series of DeploymentCounters, in the order of its fields."""
_DEPLOYMENT_INDEX = {name: i for i, name in enumerate(_DEPLOYMENT_FIELDS)}
_TOKEN_BUCKETS = {m.TTFT_BUCKET: "ttft", m.TPOT_BUCKET: "tpot"}
_READ = {
    m.REQUESTS,
    m.ERRORS,
    m.SHED,
    m.PROXY_SHED,
    m.LATENCY_BUCKET,
    *_TOKEN_BUCKETS,
    *_DEPLOYMENT_FIELDS,
}
_VERSION_TOTALS = {m.REQUESTS: 0, m.ERRORS: 1, m.SHED: 2, m.PROXY_SHED: 2}
"""The summed counters of a version, by their index in `_Reading.versions` (both shed
series add up to one)."""
_TOTALS = len(set(_VERSION_TOTALS.values()))
_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"([^"\\]*(?:\\.[^"\\]*)*)"')
_ESCAPE = re.compile(r"\\(.)")
_ESCAPES = {"n": "\n", "\\": "\\", '"': '"'}
_NO_VERSION = VersionCounters()


def parse_expositions(texts: Iterable[str], apps: Collection[str] | None = None) -> FleetCounters:
    """Sum the governed series of Prometheus text expositions (one per node), of `apps` if given."""
    reading = _Reading(apps)
    for text in texts:
        for line in text.splitlines():
            sample = _sample(line)
            if sample is not None:
                reading.add(*sample)
    return reading.counters()


def _sample(line: str) -> tuple[str, str, float] | None:
    """(name, label text, value) of a sample line; None for a blank line or a comment."""
    line = line.strip()
    if not line or line[0] == "#":
        return None
    brace = line.find("{")
    if brace >= 0:
        close = line.rfind("}")
        name, labels, rest = line[:brace].rstrip(), line[brace + 1 : close], line[close + 1 :]
        fields = rest.split() if close > brace else []
    else:
        name, *fields = line.split()
        labels = ""
    if not 1 <= len(fields) <= 2 or not _NAME.fullmatch(name):
        raise ValueError(f"not a Prometheus sample line: {line[:120]!r}")
    try:
        return name, labels, float(fields[0])
    except ValueError:
        raise ValueError(f"not a Prometheus sample value: {line[:120]!r}") from None


def _labels(text: str) -> dict[str, str]:
    if "\\" not in text:
        # Without escapes a quote only opens or closes a value: split, no regex (the hot path).
        parts = text.split('"')
        return {k.strip(" \t,="): v for k, v in zip(parts[:-1:2], parts[1::2], strict=True)}
    return {key: _ESCAPE.sub(_unescaped, value) for key, value in _LABEL.findall(text)}


def _unescaped(escape: re.Match[str]) -> str:
    return _ESCAPES.get(escape[1], escape[0])


def _bound(le: str) -> float:
    return math.inf if le in ("+Inf", "inf", "Inf") else float(le)


class _Reading:
    """The sums of one scrape's governed series while its lines are read."""

    def __init__(self, apps: Collection[str] | None) -> None:
        self.apps = apps
        self.versions: dict[tuple[str, str], list[float]] = {}
        self.buckets: dict[tuple[str, str], dict[float, float]] = {}
        self.token_buckets: dict[tuple[str, str], dict[str, dict[float, float]]] = {}
        self.deployments: dict[tuple[str, str], list[float]] = {}

    def add(self, name: str, label_text: str, value: float) -> None:
        """Add one sample, if it is of a series the sources read."""
        if name not in _READ:
            return
        labels = _labels(label_text)
        app = labels.get(m.APP_LABEL, "")
        if self.apps is not None and app not in self.apps:
            return
        # Interned: the readings kept as baselines share one copy of each name.
        index = _DEPLOYMENT_INDEX.get(name)
        if index is not None:
            key = (sys.intern(app), sys.intern(labels.get(m.DEPLOYMENT_LABEL, "")))
            sums = self.deployments.get(key)
            if sums is None:
                sums = self.deployments[key] = [0.0] * len(_DEPLOYMENT_FIELDS)
            sums[index] += value
            return
        version = labels.get(m.VERSION_LABEL)
        if version is None:
            return
        key = (sys.intern(app), sys.intern(version))
        total = _VERSION_TOTALS.get(name)
        if total is not None:
            self._totals(key)[total] += value
        elif name == m.LATENCY_BUCKET and "le" in labels:
            self._totals(key)
            bound = _bound(labels["le"])
            buckets = self.buckets.setdefault(key, {})
            buckets[bound] = buckets.get(bound, 0.0) + value
        elif name in _TOKEN_BUCKETS and "le" in labels:
            self._totals(key)
            bound = _bound(labels["le"])
            of_version = self.token_buckets.setdefault(key, {})
            buckets = of_version.setdefault(_TOKEN_BUCKETS[name], {})
            buckets[bound] = buckets.get(bound, 0.0) + value

    def _totals(self, key: tuple[str, str]) -> list[float]:
        """The [requests, errors, shed] sums of one version."""
        totals = self.versions.get(key)
        if totals is None:
            totals = self.versions[key] = [0.0] * _TOTALS
        return totals

    def counters(self) -> FleetCounters:
        """What was read, as counters per version and per deployment."""
        layouts: dict[tuple[float, ...], tuple[float, ...]] = {}
        versions = {}
        for key, (requests, errors, shed) in self.versions.items():
            buckets = self.buckets.get(key, {})
            bounds = tuple(sorted(buckets))
            # Versions share one tuple of bounds: the data plane buckets them all alike.
            bounds = layouts.setdefault(bounds, bounds)
            counts = array("d", [buckets[b] for b in bounds])
            tokens = {
                kind: (tuple(sorted(found)), array("d", [found[b] for b in sorted(found)]))
                for kind, found in self.token_buckets.get(key, {}).items()
            }
            versions[key] = VersionCounters(requests, errors, bounds, counts, shed, tokens)
        deployments = {key: DeploymentCounters(*sums) for key, sums in self.deployments.items()}
        return FleetCounters(versions, deployments)


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
    shed: float = 0.0
    ttft: LatencyHistogram | None = None
    tpot: LatencyHistogram | None = None


def _histogram_increase(
    bounds: tuple[float, ...],
    counts: Iterable[float],
    old_bounds: tuple[float, ...],
    old_counts: Iterable[float],
) -> LatencyHistogram | None:
    """The increase of a cumulative histogram between two reads; None without buckets."""
    if not bounds:
        return None
    if old_bounds == bounds:
        before: Iterable[float] = old_counts
    else:
        by_bound = dict(zip(old_bounds, old_counts, strict=True))
        before = [by_bound.get(b, 0.0) for b in bounds]
    # Per-bucket resets can break monotonicity; keep the cumulative shape.
    fixed: list[float] = []
    for now_count, old_count in zip(counts, before, strict=True):
        c = increase(now_count, old_count)
        fixed.append(max(c, fixed[-1]) if fixed else c)
    return LatencyHistogram(bounds_ms=bounds, counts=tuple(fixed))


def version_window(
    new: VersionCounters, old: VersionCounters | None, seconds: float
) -> VersionWindow:
    """The increase of one version's counters over `seconds` (old None: since start)."""
    base = old if old is not None else _NO_VERSION

    def tokens(kind: str) -> LatencyHistogram | None:
        bounds, counts = new.tokens.get(kind, ((), array("d")))
        old_bounds, old_counts = base.tokens.get(kind, ((), array("d")))
        return _histogram_increase(bounds, counts, old_bounds, old_counts)

    return VersionWindow(
        seconds=seconds,
        requests=increase(new.requests, base.requests),
        errors=increase(new.errors, base.errors),
        histogram=_histogram_increase(new.bounds_ms, new.buckets, base.bounds_ms, base.buckets),
        shed=increase(new.shed, base.shed),
        ttft=tokens("ttft"),
        tpot=tokens("tpot"),
    )


class CounterBaselines:
    """A few readings of the fleet's counters, so that increases are taken over a window.

    The first reading of each `window_s / CHECKPOINTS_PER_WINDOW` slot of time is kept,
    and none older than the newest one a window old.
    """

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self.slot_s = window_s / CHECKPOINTS_PER_WINDOW
        self._kept: deque[tuple[datetime, FleetCounters]] = deque()

    def baseline(self, now: datetime) -> tuple[datetime, FleetCounters] | None:
        """The newest reading at least a window old, else the oldest one before `now`."""
        chosen = None
        for at, counters in self._kept:
            if at >= now:
                break
            if (now - at).total_seconds() >= self.window_s or chosen is None:
                chosen = (at, counters)
        return chosen

    def add(self, at: datetime, counters: FleetCounters) -> None:
        """Keep `counters` if it is the first reading of its slot; forget what no window needs."""
        kept = self._kept
        while len(kept) > 1 and (at - kept[1][0]).total_seconds() >= self.window_s:
            kept.popleft()
        if not kept or self._slot(at) > self._slot(kept[-1][0]):
            kept.append((at, counters))

    def _slot(self, at: datetime) -> int:
        return math.floor(at.timestamp() / self.slot_s)
