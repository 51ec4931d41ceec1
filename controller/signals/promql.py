"""Every PromQL query the Prometheus source runs, built in one place from its config."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from controller.config import PrometheusSource as PrometheusConfig
from controller.signals import metric_names as m

QUANTILES = {"latency_p50": 0.50, "latency_p95": 0.95, "latency_p99": 0.99}
MAX_LISTED_APPS = 256
"""Up to this many governed applications are named in each query's selector; beyond it
the queries select every application and the source keeps the governed ones. Prometheus
turns a listed regex into index look-ups only up to 256 alternatives: a longer list adds
to the text and parsing of every query without narrowing what it reads."""

_DURATION = re.compile(r"([0-9]+)(ms|s|m|h|d|w|y)")
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
_REGEX_SPECIAL = re.compile(r"([.^$*+?()\[\]{}|\\])")


def duration_seconds(text: str) -> float:
    """Seconds in a PromQL duration such as `30s`, `1m` or `1h30m`."""
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a PromQL duration: {text!r}")
    return sum(int(n) * _UNIT_S[u] for n, u in parts)


def _string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _any_of(values: Sequence[str]) -> str:
    return "|".join(_REGEX_SPECIAL.sub(r"\\\1", v) for v in values)


@dataclass(frozen=True)
class Query:
    """One named query; `by` are the labels that key each series of its result, app first."""

    name: str
    expr: str
    by: tuple[str, ...]


@dataclass(frozen=True)
class QuerySet:
    """The queries of one tick, for the governed applications."""

    request_rate: Query
    error_rate: Query
    shed_rate: Query
    quantiles: dict[str, tuple[float, Query]]
    token_buckets: dict[str, Query]
    """`ttft` and `tpot`: increase of generation versions' token latency buckets."""
    latency_buckets: Query
    queue: Query
    batch_size: Query
    prompt_token_rate: Query
    output_token_rate: Query
    replicas: Query
    weights: Query
    freshness: Query

    def bucket_queries(self) -> tuple[str, ...]:
        """Names of the queries whose answers are histogram buckets by version and `le`."""
        return (self.latency_buckets.name, *(q.name for q in self.token_buckets.values()))

    def all(self) -> tuple[Query, ...]:
        """Every query, in the order the source runs them."""
        return (
            self.freshness,
            self.request_rate,
            self.error_rate,
            self.shed_rate,
            *(q for _, q in self.quantiles.values()),
            self.latency_buckets,
            self.queue,
            self.batch_size,
            self.prompt_token_rate,
            self.output_token_rate,
            *self.token_buckets.values(),
            self.replicas,
            self.weights,
        )


def _app_matcher(label: str, apps: Sequence[str]) -> str:
    if len(apps) > MAX_LISTED_APPS:
        return f'{label}!=""'
    return f"{label}=~{_string(_any_of(sorted(apps)))}"


def build_queries(config: PrometheusConfig, apps: Sequence[str]) -> QuerySet:
    """The queries over the series of `apps`, with the configured labels, job and window."""
    app, dep, ver = config.app_label, config.deployment_label, config.version_label
    matchers = [_app_matcher(app, apps)]
    if config.job is not None:
        matchers.append(f"job={_string(config.job)}")
    matchers += [f"{k}={_string(v)}" for k, v in sorted(config.match_labels.items())]
    sel = "{" + ",".join(matchers) + "}"
    w = config.rate_window
    by_version = (app, ver)
    by_deployment = (app, dep)

    def rate(series: str, by: tuple[str, ...]) -> str:
        return f"sum by ({', '.join(by)}) (rate({series}{sel}[{w}]))"

    def rate_of_any(names: tuple[str, ...], by: tuple[str, ...]) -> str:
        # `or` keeps the series of both: theirs never share a label set (the router's carry
        # `deployment`, `replica` and `endpoint`; the proxy's do not).
        either = " or ".join(f"rate({name}{sel}[{w}])" for name in names)
        return f"sum by ({', '.join(by)}) ({either})"

    def buckets(name: str, series: str) -> Query:
        return Query(
            name, f"sum by (le, {app}, {ver}) (increase({series}{sel}[{w}]))", (*by_version, "le")
        )

    quantiles = {
        name: (
            q,
            Query(
                name,
                f"histogram_quantile({q}, {rate(m.LATENCY_BUCKET, ('le', *by_version))})",
                by_version,
            ),
        )
        for name, q in QUANTILES.items()
    }
    return QuerySet(
        request_rate=Query("request_rate", rate(m.REQUESTS, by_version), by_version),
        error_rate=Query("error_rate", rate(m.ERRORS, by_version), by_version),
        shed_rate=Query("shed_rate", rate_of_any((m.SHED, m.PROXY_SHED), by_version), by_version),
        quantiles=quantiles,
        token_buckets={
            kind: buckets(f"{kind}_buckets", series)
            for kind, series in (("ttft", m.TTFT_BUCKET), ("tpot", m.TPOT_BUCKET))
        },
        latency_buckets=buckets("latency_buckets", m.LATENCY_BUCKET),
        queue=Query("queue", f"sum by ({app}, {dep}) ({m.ONGOING}{sel})", by_deployment),
        batch_size=Query(
            "batch_size",
            f"{rate(m.BATCHED_INPUTS, by_deployment)} / {rate(m.BATCH_SIZE_COUNT, by_deployment)}",
            by_deployment,
        ),
        prompt_token_rate=Query(
            "prompt_token_rate", rate(m.INPUT_TOKENS, by_deployment), by_deployment
        ),
        output_token_rate=Query(
            "output_token_rate", rate(m.OUTPUT_TOKENS, by_deployment), by_deployment
        ),
        replicas=Query(
            "replicas", f"sum by ({app}, {dep}) ({m.REPLICA_HEALTHY}{sel})", by_deployment
        ),
        weights=Query("weights", f"max by ({app}, {ver}) ({m.ROUTE_WEIGHT}{sel})", by_version),
        # The newest raw sample of the router's counter: rates over a window can still
        # answer from samples that stopped arriving long ago (a lagging remote write).
        freshness=Query("freshness", f"max by ({app}) (timestamp({m.REQUESTS}{sel}))", (app,)),
    )
