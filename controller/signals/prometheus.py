"""The Prometheus signal source: PromQL over the HTTP query API, per application and version.

Rates, latency quantiles, errors, queue, batch size and token rates come from Prometheus.
Replica counts, weights and start-up times come from `replicas_from` (the embedded or
KubeRay source) when one is given, else from Ray's replica-health and the router's weight
series.
A query that fails, answers nothing or answers with old samples leaves its fields missing
and adds one line to `Snapshot.problems` naming the query and the reason.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import httpx

from controller.clock import Clock
from controller.config import AppConfig, GovernorConfig, VersionConfig
from controller.signals.base import FollowsConfig, SignalSource
from controller.signals.promql import Query, QuerySet, build_queries, duration_seconds
from controller.snapshot import (
    AppSnapshot,
    ClusterSnapshot,
    LatencyHistogram,
    Snapshot,
    VersionSnapshot,
)
from controller.transports.prometheus_api import (
    InstantQueries,
    PrometheusClient,
    QueryFailed,
    Sample,
)

EMPTY = "empty"
STALE = "stale"

_METRIC_FIELDS = (
    "request_rate",
    "latency_p50_ms",
    "latency_p95_ms",
    "latency_p99_ms",
    "error_rate",
    "request_count",
    "error_count",
    "latency_histogram",
    "queue_length",
    "batch_size",
    "prompt_token_rate",
    "output_token_rate",
    "shed_rate",
    "ttft_ms",
    "tpot_ms",
    "ttft_histogram",
    "tpot_histogram",
)
_FAILURE_LINE = re.compile(r"^prometheus query (?P<query>\S+) failed \((?P<reason>\w+)\): ")


@dataclass(frozen=True)
class QueryFailure:
    """One query that gave no usable answer at one tick."""

    query: str
    reason: str
    detail: str

    def line(self) -> str:
        """The line this failure adds to `Snapshot.problems`."""
        return f"prometheus query {self.query} failed ({self.reason}): {self.detail}"


def query_failures(problems: Iterable[str]) -> list[tuple[str, str]]:
    """(query, reason) of every Prometheus query failure among a snapshot's problem lines."""
    found = []
    for line in problems:
        match = _FAILURE_LINE.match(line)
        if match:
            found.append((match["query"], match["reason"]))
    return found


Series = dict[tuple[str, ...], float]
"""Values of one query, keyed by the query's `by` labels."""


@dataclass(frozen=True)
class _Answers:
    """One tick's answers, indexed once so that each application is a few look-ups."""

    series: dict[str, Series]
    """By query name: the series of governed applications."""
    apps: dict[str, set[str]]
    """By query name: the applications the answer has series of."""
    buckets: dict[str, dict[tuple[str, str], dict[float, float]]]
    """By bucket query name, then (application, version): bucket counts by upper bound."""


class PrometheusSource:
    """Builds one Snapshot per call from PromQL answers (plus replicas from another source)."""

    def __init__(
        self,
        config: GovernorConfig,
        clock: Clock,
        replicas_from: SignalSource | None = None,
        transport: httpx.BaseTransport | None = None,
        client: InstantQueries | None = None,
    ) -> None:
        self.config = config
        self.settings = config.signals.prometheus
        self.clock = clock
        self.replicas_from = replicas_from
        token_env = self.settings.bearer_token_env
        self.client: InstantQueries = (
            client
            if client is not None
            else PrometheusClient(
                self.settings.url,
                self.settings.timeout_s,
                transport=transport,
                token=os.environ.get(token_env) if token_env else None,
            )
        )
        names = config.serve_apps
        self.governed = frozenset(names)
        self.queries: QuerySet = build_queries(self.settings, names)
        self.window_s = duration_seconds(self.settings.rate_window)
        self.last_failures: tuple[QueryFailure, ...] = ()

    def use_config(self, config: GovernorConfig) -> None:
        """Query for the versions `config` lists from now on."""
        self.config = config
        self.governed = frozenset(config.serve_apps)
        self.queries = build_queries(self.settings, config.serve_apps)
        if isinstance(self.replicas_from, FollowsConfig):
            self.replicas_from.use_config(config)

    def close(self) -> None:
        """Release the HTTP connections."""
        self.client.close()

    def observe(self) -> Snapshot:
        """Read the world once; what Prometheus could not answer is left missing, with a reason."""
        now = self.clock.now()
        base = self.replicas_from.observe() if self.replicas_from is not None else None
        series, failures = self._run(self._wanted(base is None), now.timestamp())
        answers = _index(series, self.queries.bucket_queries())
        stale_apps = self._stale_apps(series.get("freshness"), now.timestamp(), failures)
        apps = tuple(
            self._app(app, base.app(app.name) if base else None, answers, failures, stale_apps)
            for app in self.config.applications
        )
        self.last_failures = tuple(failures)
        return Snapshot(
            now=now,
            apps=apps,
            cluster=base.cluster if base else ClusterSnapshot(),
            window_s=self.window_s,
            problems=(*(base.problems if base else ()), *(f.line() for f in failures)),
            commands=base.commands if base else (),
        )

    def _wanted(self, need_replicas: bool) -> list[Query]:
        q = self.queries
        skip = () if need_replicas else (q.replicas.name, q.weights.name)
        return [query for query in q.all() if query.name not in skip]

    def _run(
        self, queries: Sequence[Query], now_s: float
    ) -> tuple[dict[str, Series], list[QueryFailure]]:
        answers: dict[str, Series] = {}
        failures: list[QueryFailure] = []
        down: QueryFailed | None = None
        for query in queries:
            if down is not None:
                # The server did not answer: asking again would only wait out more timeouts.
                failures.append(QueryFailure(query.name, down.reason, f"not asked: {down}"))
                continue
            try:
                samples = self.client.query(query.expr)
            except QueryFailed as err:
                failures.append(QueryFailure(query.name, err.reason, str(err)))
                if err.server_down:
                    down = err
                continue
            oldest = min((s.timestamp for s in samples), default=now_s)
            age = now_s - oldest
            if age > self.settings.max_sample_age_s:
                failures.append(
                    QueryFailure(
                        query.name,
                        STALE,
                        f"answer evaluated {age:.0f}s ago "
                        f"(limit {self.settings.max_sample_age_s:g}s)",
                    )
                )
                continue
            answers[query.name] = _keyed(query, samples, self.governed)
        return answers, failures

    def _stale_apps(
        self, freshness: Series | None, now_s: float, failures: list[QueryFailure]
    ) -> set[str]:
        stale = set()
        for (app,), newest in (freshness or {}).items():
            age = now_s - newest
            if age > self.settings.max_sample_age_s:
                stale.add(app)
                failures.append(
                    QueryFailure(
                        self.queries.freshness.name,
                        STALE,
                        f"application {app}: newest sample is {age:.0f}s old "
                        f"(limit {self.settings.max_sample_age_s:g}s)",
                    )
                )
        return stale

    def _app(
        self,
        app: AppConfig,
        base: AppSnapshot | None,
        answers: _Answers,
        failures: list[QueryFailure],
        stale_apps: set[str],
    ) -> AppSnapshot:
        q = self.queries
        present = {} if app.name in stale_apps else self._present_for(app, answers, failures)
        versions = []
        for v in app.versions:
            buckets = {
                name: by_version.get((app.name, v.name))
                for name, by_version in answers.buckets.items()
                if name in present
            }
            fields = _version_fields(q, present, app, v, buckets)
            fields = {**fields, **_per_window(fields, self.window_s)}
            metrics: dict[str, Any] = {f: fields.get(f) for f in _METRIC_FIELDS}
            observed = base.version(v.name) if base else None
            if observed is not None:
                versions.append(replace(observed, **metrics))
            else:
                running = _get(present, q.replicas, app.serve_app(v.name), v.deployment)
                versions.append(
                    VersionSnapshot(
                        app=app.name,
                        version=v.name,
                        deployment=v.deployment,
                        running_replicas=None if running is None else round(running),
                        **metrics,
                    )
                )
        weights = base.weights if base else _weights(q, present, app)
        return AppSnapshot(
            name=app.name,
            versions=tuple(versions),
            weights=weights,
            status=base.status if base else None,
        )

    def _present_for(
        self, app: AppConfig, answers: _Answers, failures: list[QueryFailure]
    ) -> dict[str, Series]:
        """The answers that hold series of `app`; a required query without any is a problem."""
        spans = set(app.serve_apps)
        # The error, shed and output-token counters appear with their first increment: an
        # application without errors or overload, or serving an encoder, has no series.
        q = self.queries
        optional = {
            q.freshness.name,
            q.error_rate.name,
            q.shed_rate.name,
            q.output_token_rate.name,
            *(query.name for query in q.token_buckets.values()),
        }
        kept = {}
        for name, series in answers.series.items():
            if name in optional or not spans.isdisjoint(answers.apps[name]):
                kept[name] = series
            else:
                failures.append(
                    QueryFailure(name, EMPTY, f"no series for application {app.name} in the answer")
                )
        return kept


def _keyed(query: Query, samples: Sequence[Sample], governed: frozenset[str]) -> Series:
    """The samples of governed applications, summed by the query's `by` labels."""
    app_label, *others = query.by
    series: Series = {}
    for s in samples:
        app = s.labels.get(app_label, "")
        # A fleet too large to list in the selector is selected whole (promql.MAX_LISTED_APPS).
        if app in governed:
            key = (app, *[s.labels.get(label, "") for label in others])
            series[key] = series.get(key, 0.0) + s.value
    return series


def _index(series: dict[str, Series], bucket_queries: Sequence[str]) -> _Answers:
    """One pass over each answer: which applications it has, and buckets by version."""
    apps = {name: {key[0] for key in values} for name, values in series.items()}
    buckets: dict[str, dict[tuple[str, str], dict[float, float]]] = {}
    for name in bucket_queries:
        by_version = buckets[name] = {}
        for (app, version, le), count in (series.get(name) or {}).items():
            if not math.isnan(count):
                bound = math.inf if le in ("+Inf", "Inf", "inf") else float(le)
                by_version.setdefault((app, version), {})[bound] = count
    return _Answers(series, apps, buckets)


def _get(answers: dict[str, Series], query: Query, *key: str) -> float | None:
    series = answers.get(query.name)
    if series is None:
        return None
    value = series.get(tuple(key))
    return None if value is None or math.isnan(value) else value


def _version_fields(
    q: QuerySet,
    answers: dict[str, Series],
    app_cfg: AppConfig,
    v: VersionConfig,
    buckets: dict[str, dict[float, float] | None],
) -> dict[str, Any]:
    app, held = app_cfg.name, app_cfg.serve_app(v.name)
    fields: dict[str, Any] = {}
    if q.request_rate.name in answers:
        # The app's router is scraped: a version without series has served nothing yet.
        rate = _get(answers, q.request_rate, app, v.name) or 0.0
        fields["request_rate"] = rate
        if q.error_rate.name in answers:
            # The error counter appears only with the first error: no series means none yet.
            errors = _get(answers, q.error_rate, app, v.name) or 0.0
            fields["error_rate"] = min(1.0, errors / rate) if rate > 0 else 0.0
            fields["_errors_per_s"] = errors
        if q.shed_rate.name in answers:
            # The shed counter appears only with the first shed request: none yet.
            fields["shed_rate"] = _get(answers, q.shed_rate, app, v.name) or 0.0
    for name, (_, query) in q.quantiles.items():
        fields[f"{name}_ms"] = _get(answers, query, app, v.name)
    histogram = _histogram(buckets.get(q.latency_buckets.name))
    if histogram is not None and histogram.total > 0:
        fields["latency_histogram"] = histogram
    for kind, query in q.token_buckets.items():
        tokens = _histogram(buckets.get(query.name))
        if tokens is not None and tokens.total > 0:
            fields[f"{kind}_histogram"] = tokens
            fields[f"{kind}_ms"] = tokens.quantile(0.95)
    fields["queue_length"] = _get(answers, q.queue, held, v.deployment)
    fields["batch_size"] = _get(answers, q.batch_size, held, v.deployment)
    fields["prompt_token_rate"] = _get(answers, q.prompt_token_rate, held, v.deployment)
    fields["output_token_rate"] = _get(answers, q.output_token_rate, held, v.deployment)
    return fields


def _per_window(fields: dict[str, Any], window_s: float) -> dict[str, Any]:
    counts = {}
    if "request_rate" in fields:
        counts["request_count"] = fields["request_rate"] * window_s
    if "_errors_per_s" in fields:
        counts["error_count"] = fields["_errors_per_s"] * window_s
    return counts


def _histogram(buckets: dict[float, float] | None) -> LatencyHistogram | None:
    if not buckets:
        return None
    bounds = tuple(sorted(buckets))
    counts: list[float] = []
    for b in bounds:
        # Per-bucket extrapolation can dent the cumulative shape; keep it monotonic.
        counts.append(max(buckets[b], counts[-1]) if counts else buckets[b])
    return LatencyHistogram(bounds_ms=bounds, counts=tuple(counts))


def _weights(q: QuerySet, answers: dict[str, Series], app: AppConfig) -> dict[str, int] | None:
    series = answers.get(q.weights.name)
    if not series:
        return None
    found = {
        v.name: round(value)
        for v in app.versions
        if (value := series.get((app.name, v.name))) is not None and not math.isnan(value)
    }
    return found or None
