"""The source's PromQL runs on a real Prometheus scraping a stand-in exporter of the fleet's series.

No Ray here: the exporter publishes the series the data plane and Ray publish, under the
same names and labels, at a known rate, so the answers can be checked exactly.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from controller.clock import SystemClock
from controller.prometheus_config import scrape_config
from controller.signals.prometheus import PrometheusSource, query_failures
from controller.snapshot import LatencyHistogram
from tests.conftest import free_port
from tests.controller.promql_names import RULES, dashboard, dashboard_exprs, rules_with
from tests.controller.sample_config import governor_config
from tests.prometheus_server import PrometheusServer

pytestmark = pytest.mark.prometheus

BUCKETS_MS = (10.0, 25.0, 50.0, 100.0, 200.0, 400.0)
LATENCIES_MS = (8.0, 20.0, 30.0, 45.0, 60.0, 80.0, 90.0, 150.0, 160.0, 300.0)
RATE = 20.0
PROMPT_TOKENS = 12
OUTPUT_TOKENS = 3
"""Tokens each request reads and writes: the model counts them per batch of 4 requests."""


class StandInExporter:
    """Publishes one router's and one model's series; `run` drives RATE requests per second."""

    def __init__(self, port: int) -> None:
        r = CollectorRegistry()
        route = ["application", "deployment", "version"]
        self.requests = Counter("ray_governor_requests", "", route, registry=r)
        self.errors = Counter("ray_governor_request_errors", "", route, registry=r)
        self.latency = Histogram(
            "ray_governor_request_latency_ms", "", route, buckets=BUCKETS_MS, registry=r
        )
        model = ["application", "deployment", "version"]
        self.batch = Histogram("ray_governor_batch_size", "", model, registry=r)
        self.batched = Counter("ray_governor_batched_inputs", "", model, registry=r)
        self.input_tokens = Counter("ray_governor_input_tokens", "", model, registry=r)
        self.output_tokens = Counter("ray_governor_output_tokens", "", model, registry=r)
        self.ongoing = Gauge(
            "ray_serve_num_ongoing_requests_at_replicas",
            "",
            ["application", "deployment"],
            registry=r,
        )
        self.healthy = Gauge(
            "ray_serve_deployment_replica_healthy", "", ["application", "deployment"], registry=r
        )
        self.weight = Gauge(
            "ray_governor_route_weight", "", ["application", "deployment", "version"], registry=r
        )
        self.server, self.thread = start_http_server(port, addr="127.0.0.1", registry=r)
        self.stop = threading.Event()
        self.sent = 0

    def run(self) -> None:
        router = ("embed", "router", "v1")
        self.ongoing.labels("embed", "model_v1").set(3)
        self.healthy.labels("embed", "model_v1").set(2)
        self.weight.labels("embed", "router", "v1").set(100)
        self.weight.labels("embed", "router", "v2").set(0)
        start = time.monotonic()
        for i in itertools.count():
            if self.stop.wait(max(0.0, start + i / RATE - time.monotonic())):
                return
            self.requests.labels(*router).inc()
            if i % 10 == 9:
                self.errors.labels(*router).inc()
            else:
                self.latency.labels(*router).observe(LATENCIES_MS[i % len(LATENCIES_MS)])
            if i % 4 == 3:
                self.batch.labels("embed", "model_v1", "v1").observe(4)
                self.batched.labels("embed", "model_v1", "v1").inc(4)
                self.input_tokens.labels("embed", "model_v1", "v1").inc(4 * PROMPT_TOKENS)
                self.output_tokens.labels("embed", "model_v1", "v1").inc(4 * OUTPUT_TOKENS)
            self.sent += 1

    def close(self) -> None:
        self.stop.set()
        self.server.shutdown()


Fleet = tuple[StandInExporter, PrometheusServer]


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    exporter = StandInExporter(free_port())
    driver = threading.Thread(target=exporter.run, daemon=True)
    driver.start()
    sd = tmp_path / "sd.json"
    sd.write_text(
        f'[{{"labels": {{"job": "ray"}}, "targets": ["127.0.0.1:{exporter.server.server_port}"]}}]'
    )
    server = PrometheusServer(
        scrape_config(str(sd), None, "1s", [str(RULES)]), tmp_path, free_port()
    )
    server.start()
    try:
        yield exporter, server
    finally:
        server.stop()
        exporter.close()
        driver.join(timeout=5)


def test_the_source_reads_rates_quantiles_and_gauges_from_a_real_prometheus(fleet: Fleet) -> None:
    _, server = fleet
    server.wait_until("sum(rate(ray_governor_requests_total[5s]))", lambda r: bool(r), timeout_s=30)
    time.sleep(10)
    config = governor_config(
        signals={
            "kind": "prometheus",
            "prometheus": {"url": server.url, "rate_window": "10s", "job": "ray"},
        }
    )
    source = PrometheusSource(config, SystemClock())
    try:
        snap = source.observe()
    finally:
        source.close()
    assert snap.problems == ()
    v1 = snap.version("embed", "v1")
    assert v1 is not None
    assert v1.request_rate == pytest.approx(RATE, rel=0.1)
    assert v1.error_rate == pytest.approx(0.1, abs=0.03)
    assert v1.request_count == pytest.approx(RATE * 10, rel=0.1)
    true_p95 = sorted(LATENCIES_MS)[int(0.95 * len(LATENCIES_MS)) - 1]
    bucket = next(b for b in BUCKETS_MS if true_p95 <= b)
    assert v1.latency_p95_ms is not None and v1.latency_p95_ms <= bucket
    assert v1.latency_p50_ms is not None and v1.latency_p50_ms < v1.latency_p95_ms
    assert isinstance(v1.latency_histogram, LatencyHistogram)
    assert v1.latency_histogram.bounds_ms[-1] == float("inf")
    assert (v1.queue_length, v1.batch_size, v1.running_replicas) == (3.0, 4.0, 2)
    prompt, output, requests = v1.prompt_token_rate, v1.output_token_rate, v1.request_rate
    assert prompt is not None and output is not None and requests is not None
    assert prompt == pytest.approx(RATE * PROMPT_TOKENS, rel=0.1)
    assert output == pytest.approx(RATE * OUTPUT_TOKENS, rel=0.1)
    # One scrape reads the router's and the model's counters: their rates agree to a batch.
    assert prompt / requests == pytest.approx(PROMPT_TOKENS, rel=0.05)
    assert output / requests == pytest.approx(OUTPUT_TOKENS, rel=0.05)
    app = snap.app("embed")
    assert app is not None and app.weights == {"v1": 100, "v2": 0}
    v2 = snap.version("embed", "v2")
    assert v2 is not None and v2.request_rate == 0.0 and v2.latency_p95_ms is None
    assert v2.prompt_token_rate is None and v2.output_token_rate is None


def test_a_silent_exporter_then_a_stopped_server_leave_fields_missing(fleet: Fleet) -> None:
    exporter, server = fleet
    server.wait_until("sum(rate(ray_governor_requests_total[3s]))", lambda r: bool(r))
    config = governor_config(
        signals={"kind": "prometheus", "prometheus": {"url": server.url, "rate_window": "3s"}}
    )
    source = PrometheusSource(config, SystemClock())
    try:
        exporter.close()
        server.wait_until('up{job="ray"} == 0', lambda r: bool(r))
        time.sleep(4)
        snap = source.observe()
        v1 = snap.version("embed", "v1")
        assert v1 is not None and v1.request_rate is None and v1.queue_length is None
        assert ("request_rate", "empty") in query_failures(snap.problems)
        server.stop()
        snap = source.observe()
        assert {r for _, r in query_failures(snap.problems)} == {"unreachable"}
    finally:
        source.close()


def test_every_dashboard_and_rule_expression_is_valid_promql(fleet: Fleet) -> None:
    _, server = fleet
    exprs = [e for _, e in dashboard_exprs(dashboard())] + [r["expr"] for r in rules_with("expr")]
    for expr in exprs:
        concrete = expr.replace("$__rate_interval", "1m").replace("$app", ".*")
        answer = server.query(concrete)
        assert answer["status"] == "success", f"{expr}: {answer}"
    rules = server.wait_until("ALERTS", lambda r: True)
    assert isinstance(rules, list)
