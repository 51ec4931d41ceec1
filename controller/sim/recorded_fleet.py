"""A recorded fleet of N applications: what Prometheus and Ray's exporters say about it.

Benchmarks time the signal sources on fleets of any size without a cluster, and tests
compare the sources' answers on them. Everything is built from the config and a seed, so
the same inputs give the same answers. Each application's first version serves; other
versions serve by chance (a canary), and errors and generated tokens appear by chance, so
every branch of the sources is taken somewhere in a large fleet.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import httpx

from controller.config import AppConfig, GovernorConfig, parse_config
from controller.signals import metric_names as m
from controller.signals.promql import QUANTILES, QuerySet, build_queries, duration_seconds
from controller.snapshot import LatencyHistogram
from controller.transports.prometheus_api import Sample

LATENCY_BOUNDS_MS = (
    1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 75.0, 100.0, 150.0, 200.0, 300.0, 500.0,
    750.0, 1000.0, 1500.0, 2500.0, 5000.0, 10000.0, 30000.0, 60000.0, math.inf,
)  # fmt: skip
"""The data plane's request-latency buckets (`serving/metrics.py`) plus +Inf."""
SESSION = "session_2026-01-01_00-00-00_000000_1"


def fleet_config(apps: int, versions: int = 2, **overrides: Any) -> GovernorConfig:
    """A config of `apps` applications `app-00001`... with versions v1... on `<app>_v1`..."""
    doc: dict[str, Any] = {
        "prices": {"cpu": 0.5},
        "applications": [
            {
                "name": f"app-{i:05d}",
                "slo": {"latency_p95_ms": 300},
                "versions": [
                    {"name": f"v{j}", "deployment": f"app-{i:05d}_v{j}", "max_replicas": 8}
                    for j in range(1, versions + 1)
                ],
            }
            for i in range(1, apps + 1)
        ],
    }
    doc.update(overrides)
    return parse_config(doc)


@dataclass(frozen=True)
class _Traffic:
    """What one version of one application does, per second, in the recorded fleet."""

    rate: float
    errors: float
    median_ms: float
    batch_size: float
    prompt_tokens: float
    output_tokens: float
    ongoing: float
    replicas: int
    weight: int


def _fleet_traffic(config: GovernorConfig, seed: int) -> dict[str, list[_Traffic]]:
    """Each application's versions' traffic, drawn from `seed` and the application's name."""
    return {app.name: _app_traffic(app, seed) for app in config.applications}


def _app_traffic(app: AppConfig, seed: int) -> list[_Traffic]:
    rng = random.Random(f"{seed}/{app.name}")
    generates = rng.random() < 0.3
    erring = rng.random() < 0.5
    serving = [i == 0 or rng.random() < 0.3 for i in range(len(app.versions))]
    weights = [rng.randint(1, 100) if s else 0 for s in serving]
    scale = 100 / sum(weights)
    traffic = []
    for i, serves in enumerate(serving):
        rate = rng.uniform(0.5, 50.0) if serves else 0.0
        traffic.append(
            _Traffic(
                rate=rate,
                errors=rate * rng.uniform(0.0, 0.02) if erring else 0.0,
                median_ms=rng.uniform(20.0, 400.0),
                batch_size=rng.uniform(1.0, 8.0),
                prompt_tokens=rate * rng.uniform(10.0, 500.0),
                output_tokens=rate * rng.uniform(10.0, 300.0) if generates else 0.0,
                ongoing=float(rng.randint(0, 10)) if serves else 0.0,
                replicas=rng.randint(1, 4) if serves else 0,
                weight=round(weights[i] * scale),
            )
        )
    return traffic


def _latency_counts(requests: float, median_ms: float) -> tuple[float, ...]:
    """Cumulative bucket counts of `requests` latencies around `median_ms` (log-logistic)."""
    counts = []
    for bound in LATENCY_BOUNDS_MS:
        share = 1.0 if bound == math.inf else 1.0 / (1.0 + (median_ms / bound) ** 4)
        counts.append(requests * share)
    return tuple(counts)


def _le(bound: float) -> str:
    return "+Inf" if bound == math.inf else repr(bound)


def prometheus_answers_for(
    config: GovernorConfig, now_s: float, seed: int
) -> dict[str, list[Sample]]:
    """What Prometheus answers each query of the Prometheus source at `now_s`, by query name."""
    s = config.signals.prometheus
    window_s = duration_seconds(s.rate_window)
    fleet = _fleet_traffic(config, seed)
    rng = random.Random(seed)
    answers: dict[str, list[Sample]] = {q.name: [] for q in _queries(config).all()}

    def add(query: str, labels: dict[str, str], value: float) -> None:
        answers[query].append(Sample(labels, now_s, value))

    for app in config.applications:
        add("freshness", {s.app_label: app.name}, now_s - rng.uniform(0.0, 10.0))
        for v, t in zip(app.versions, fleet[app.name], strict=True):
            by_version = {s.app_label: app.name, s.version_label: v.name}
            by_deployment = {s.app_label: app.name, s.deployment_label: v.deployment}
            add("queue", by_deployment, t.ongoing)
            add("replicas", by_deployment, float(t.replicas))
            add("weights", by_version, float(t.weight))
            if t.rate <= 0:
                continue
            add("request_rate", by_version, t.rate)
            if t.errors > 0:
                add("error_rate", by_version, t.errors)
            counts = _latency_counts(t.rate * window_s, t.median_ms)
            histogram = LatencyHistogram(LATENCY_BOUNDS_MS, counts)
            for name, q in QUANTILES.items():
                quantile = histogram.quantile(q)
                add(name, by_version, math.nan if quantile is None else quantile)
            for bound, count in zip(LATENCY_BOUNDS_MS, counts, strict=True):
                add("latency_buckets", {**by_version, "le": _le(bound)}, count)
            add("batch_size", by_deployment, t.batch_size)
            add("prompt_token_rate", by_deployment, t.prompt_tokens)
            if t.output_tokens > 0:
                add("output_token_rate", by_deployment, t.output_tokens)
    return answers


def _queries(config: GovernorConfig) -> QuerySet:
    return build_queries(config.signals.prometheus, [a.name for a in config.applications])


class RecordedPrometheus:
    """Answers the Prometheus source's queries from recorded answers, as PrometheusClient does."""

    def __init__(self, config: GovernorConfig, answers: dict[str, list[Sample]]) -> None:
        self.by_expr = {q.expr: answers.get(q.name, []) for q in _queries(config).all()}

    def query(self, expr: str) -> list[Sample]:
        """The recorded answer of `expr`."""
        return list(self.by_expr[expr])

    def close(self) -> None:
        """Nothing to release."""


def prometheus_client_for(config: GovernorConfig, now_s: float, seed: int) -> RecordedPrometheus:
    """A query client answering the source's queries about the recorded fleet at `now_s`."""
    return RecordedPrometheus(config, prometheus_answers_for(config, now_s, seed))


def prometheus_transport_for(
    config: GovernorConfig, now_s: float, seed: int
) -> httpx.MockTransport:
    """An httpx transport answering the source's queries like Prometheus's HTTP API would."""
    answers = prometheus_answers_for(config, now_s, seed)
    bodies = {}
    for q in _queries(config).all():
        result = [
            {"metric": x.labels, "value": [x.timestamp, _number(x.value)]}
            for x in answers.get(q.name, [])
        ]
        doc = {"status": "success", "data": {"resultType": "vector", "result": result}}
        bodies[q.expr] = json.dumps(doc).encode()

    def handle(request: httpx.Request) -> httpx.Response:
        expr = parse_qs(request.content.decode())["query"][0]
        return httpx.Response(
            200, content=bodies[expr], headers={"content-type": "application/json"}
        )

    return httpx.MockTransport(handle)


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    return "+Inf" if value == math.inf else repr(value)


def metrics_texts_for(
    config: GovernorConfig, seed: int, scrape_index: int, nodes: int = 1
) -> list[str]:
    """Ray's exporters' text at scrape `scrape_index` (one per node): counters grow per scrape."""
    elapsed = scrape_index * config.interval_s
    fleet = _fleet_traffic(config, seed)
    families: list[dict[str, list[str]]] = [{} for _ in range(nodes)]
    for i, app in enumerate(config.applications):
        out = families[i % nodes]
        for v, t in zip(app.versions, fleet[app.name], strict=True):
            _router_lines(out, app, v.name, t, elapsed)
            _model_lines(out, app, v.name, v.deployment, t, elapsed)
    return [_exposition(f) for f in families]


def _labels(app: str, deployment: str, **more: str) -> str:
    pairs = {
        "SessionName": SESSION,
        m.APP_LABEL: app,
        m.DEPLOYMENT_LABEL: deployment,
        **more,
    }
    return ",".join(f'{k}="{v}"' for k, v in pairs.items())


def _router_lines(
    out: dict[str, list[str]], app: AppConfig, version: str, t: _Traffic, s: float
) -> None:
    router = f"{app.router_deployment}#{app.name}"
    tags = _labels(
        app.name, app.router_deployment,
        endpoint="/", model=app.name, replica=router, version=version,
    )  # fmt: skip
    requests = t.rate * s
    _line(out, m.REQUESTS, "counter", f"{m.REQUESTS}{{{tags}}} {requests!r}")
    if t.errors > 0:
        _line(out, m.ERRORS, "counter", f"{m.ERRORS}{{{tags}}} {t.errors * s!r}")
    family = "ray_governor_request_latency_ms"
    counts = _latency_counts(requests, t.median_ms)
    for bound, count in zip(LATENCY_BOUNDS_MS, counts, strict=True):
        _line(out, family, "histogram", f'{m.LATENCY_BUCKET}{{{tags},le="{_le(bound)}"}} {count!r}')
    _line(out, family, "histogram", f"{family}_count{{{tags}}} {requests!r}")
    _line(out, family, "histogram", f"{family}_sum{{{tags}}} {requests * t.median_ms!r}")


def _model_lines(
    out: dict[str, list[str]],
    app: AppConfig,
    version: str,
    deployment: str,
    t: _Traffic,
    s: float,
) -> None:
    for r in range(t.replicas):
        replica = f"{deployment}#{r:04d}"
        tags = _labels(app.name, deployment, model=app.name, replica=replica, version=version)
        share = s / t.replicas
        batches = t.rate * share / t.batch_size
        _line(out, m.ONGOING, "gauge", f"{m.ONGOING}{{{tags}}} {t.ongoing / t.replicas!r}")
        healthy = "ray_serve_deployment_replica_healthy"
        _line(out, healthy, "gauge", f"{healthy}{{{tags}}} 1.0")
        served = "ray_serve_deployment_request_counter_total"
        _line(out, served, "counter", f'{served}{{{tags},route="/"}} {t.rate * share!r}')
        family = "ray_governor_batch_size"
        _line(out, family, "histogram", f"{m.BATCH_SIZE_COUNT}{{{tags}}} {batches!r}")
        _line(out, family, "histogram", f"{family}_sum{{{tags}}} {batches * t.batch_size!r}")
        inputs = t.rate * share
        _line(out, m.BATCHED_INPUTS, "counter", f"{m.BATCHED_INPUTS}{{{tags}}} {inputs!r}")
        prompt = t.prompt_tokens * share
        _line(out, m.INPUT_TOKENS, "counter", f"{m.INPUT_TOKENS}{{{tags}}} {prompt!r}")
        if t.output_tokens > 0:
            output = t.output_tokens * share
            _line(out, m.OUTPUT_TOKENS, "counter", f"{m.OUTPUT_TOKENS}{{{tags}}} {output!r}")


def _line(out: dict[str, list[str]], family: str, kind: str, line: str) -> None:
    lines = out.get(family)
    if lines is None:
        lines = out[family] = [f"# HELP {family} {family}.", f"# TYPE {family} {kind}"]
    lines.append(line)


def _exposition(families: dict[str, list[str]]) -> str:
    return "".join(line + "\n" for lines in families.values() for line in lines)


def serve_status_for(config: GovernorConfig, seed: int) -> dict[str, Any]:
    """Serve's REST status of the recorded fleet: each version's replicas RUNNING, with weights."""
    fleet = _fleet_traffic(config, seed)
    apps: dict[str, Any] = {}
    for app in config.applications:
        deployments: dict[str, Any] = {}
        weights = {}
        for v, t in zip(app.versions, fleet[app.name], strict=True):
            weights[v.name] = t.weight
            replicas = [
                {"replica_id": f"{v.deployment}#{r:04d}", "state": "RUNNING", "start_time_s": 1.0}
                for r in range(t.replicas)
            ]
            deployments[v.deployment] = {
                "name": v.deployment,
                "status": "HEALTHY",
                "replicas": replicas,
                "target_num_replicas": t.replicas,
            }
        router = {"name": app.router_deployment, "user_config": {"weights": weights}}
        apps[app.name] = {
            "name": app.name,
            "status": "RUNNING",
            "deployed_app_config": {"name": app.name, "deployments": [router]},
            "deployments": deployments,
        }
    return {"applications": apps}


def dashboard_transport_for(config: GovernorConfig, seed: int) -> httpx.MockTransport:
    """An httpx transport answering `GET /api/serve/applications/` with the fleet's status."""
    body = json.dumps(serve_status_for(config, seed)).encode()

    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"content-type": "application/json"})

    return httpx.MockTransport(handle)
