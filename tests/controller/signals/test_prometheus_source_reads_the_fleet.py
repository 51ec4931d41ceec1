"""The Prometheus source turns PromQL answers into the same snapshot the agents already read."""

from __future__ import annotations

import math
from typing import Any

import pytest

from controller.signals.prometheus import PrometheusSource, query_failures
from controller.snapshot import AppSnapshot, Snapshot, VersionSnapshot
from tests.controller.clock import ManualClock
from tests.controller.sample_config import governor_config, per_version_config
from tests.controller.signals.fake_prometheus import FakePrometheus, healthy_answers


def prometheus_config(**settings: Any) -> Any:
    return governor_config(
        signals={"kind": "prometheus", "prometheus": {"rate_window": "30s", **settings}}
    )


class ReplicaSource:
    """Stands in for the embedded source: replicas, weights and status, plus its own rates."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock

    def observe(self) -> Snapshot:
        v1 = VersionSnapshot(
            "embed", "v1", "model_v1", running_replicas=2, starting_replicas=1,
            target_replicas=3, request_rate=999.0, startup_s=12.0,
            prompt_token_rate=999.0, output_token_rate=999.0,
        )  # fmt: skip
        v2 = VersionSnapshot("embed", "v2", "model_v2", running_replicas=0, target_replicas=0)
        app = AppSnapshot("embed", (v1, v2), weights={"v1": 90, "v2": 10}, status="RUNNING")
        return Snapshot(now=self.clock.now(), apps=(app,), problems=("serve status: slow",))


def make(
    replicas_from: bool = True, **settings: Any
) -> tuple[PrometheusSource, FakePrometheus, ManualClock]:
    clock = ManualClock()
    config = prometheus_config(**settings)
    probe = PrometheusSource(config, clock)
    fake = FakePrometheus(probe.queries, lambda: clock.now().timestamp())
    fake.answers = healthy_answers("embed", clock.now().timestamp())
    source = PrometheusSource(
        config,
        clock,
        replicas_from=ReplicaSource(clock) if replicas_from else None,
        transport=fake.transport(),
    )
    return source, fake, clock


def test_rates_quantiles_and_errors_come_from_promql() -> None:
    source, _, clock = make()
    snap = source.observe()
    assert snap.now == clock.now()
    assert snap.window_s == 30
    v1 = snap.version("embed", "v1")
    assert v1 is not None
    assert v1.request_rate == 10.0
    assert v1.request_count == pytest.approx(300.0)
    assert v1.error_rate == pytest.approx(0.1)
    assert v1.error_count == pytest.approx(30.0)
    assert (v1.latency_p50_ms, v1.latency_p95_ms, v1.latency_p99_ms) == (75.0, 180.0, 196.0)
    assert v1.queue_length == 3.0
    assert v1.batch_size == 4.0
    assert (v1.prompt_token_rate, v1.output_token_rate) == (120.0, 30.0)
    hist = v1.latency_histogram
    assert hist is not None
    assert hist.bounds_ms == (50.0, 100.0, 200.0, math.inf)
    assert hist.counts == (120.0, 360.0, 580.0, 600.0)


def test_replicas_weights_and_startup_come_from_the_replica_source() -> None:
    source, fake, _ = make()
    snap = source.observe()
    v1 = snap.version("embed", "v1")
    assert v1 is not None
    assert (v1.running_replicas, v1.starting_replicas, v1.target_replicas) == (2, 1, 3)
    assert v1.startup_s == 12.0
    app = snap.app("embed")
    assert app is not None and app.weights == {"v1": 90, "v2": 10} and app.status == "RUNNING"
    assert "replicas" not in fake.asked and "weights" not in fake.asked
    assert snap.problems == ("serve status: slow",)


def test_a_version_without_series_has_served_nothing_and_has_no_latency() -> None:
    source, _, _ = make()
    v2 = source.observe().version("embed", "v2")
    assert v2 is not None
    assert v2.request_rate == 0.0 and v2.error_rate == 0.0 and v2.request_count == 0.0
    assert v2.latency_p50_ms is None and v2.latency_p95_ms is None
    assert v2.latency_histogram is None
    assert v2.queue_length == 0.0
    assert v2.batch_size is None
    assert v2.prompt_token_rate is None and v2.output_token_rate is None


def test_the_rates_of_the_replica_source_never_leak_into_the_snapshot() -> None:
    source, fake, _ = make()
    fake.fail["request_rate"] = "500"
    fake.fail["prompt_token_rate"] = "500"
    fake.answers["output_token_rate"] = []
    v1 = source.observe().version("embed", "v1")
    assert v1 is not None
    assert v1.request_rate is None
    assert v1.prompt_token_rate is None and v1.output_token_rate is None
    assert v1.running_replicas == 2


def test_without_a_replica_source_replicas_and_weights_come_from_ray_series() -> None:
    source, fake, _ = make(replicas_from=False)
    snap = source.observe()
    assert "replicas" in fake.asked and "weights" in fake.asked
    v1, v2 = snap.version("embed", "v1"), snap.version("embed", "v2")
    assert v1 is not None and v2 is not None
    assert v1.running_replicas == 2 and v2.running_replicas == 0
    assert v1.starting_replicas is None
    app = snap.app("embed")
    assert app is not None and app.weights == {"v1": 100, "v2": 0}
    assert snap.problems == ()


def test_no_error_series_means_no_errors_yet() -> None:
    source, fake, _ = make()
    fake.answers["error_rate"] = []
    snap = source.observe()
    v1 = snap.version("embed", "v1")
    assert v1 is not None and v1.error_rate == 0.0 and v1.error_count == 0.0
    assert snap.problems == ("serve status: slow",)


def test_no_output_token_series_means_an_encoder_and_is_no_problem() -> None:
    source, fake, _ = make()
    fake.answers["output_token_rate"] = []
    snap = source.observe()
    v1 = snap.version("embed", "v1")
    assert v1 is not None
    assert v1.prompt_token_rate == 120.0 and v1.output_token_rate is None
    assert snap.problems == ("serve status: slow",)


def test_token_rates_of_another_application_are_not_this_ones() -> None:
    source, fake, _ = make()
    chat = {"application": "chat", "deployment": "model_v1"}
    fake.answers["prompt_token_rate"] = [(chat, 500.0)]
    fake.answers["output_token_rate"] = [(chat, 80.0)]
    snap = source.observe()
    v1 = snap.version("embed", "v1")
    assert v1 is not None
    assert v1.prompt_token_rate is None and v1.output_token_rate is None
    assert query_failures(snap.problems) == [("prompt_token_rate", "empty")]


def test_with_an_application_per_version_deployment_series_are_read_from_each_ones() -> None:
    clock = ManualClock()
    config = per_version_config(signals={"kind": "prometheus", "prometheus": {"rate_window": "30s"}})
    probe = PrometheusSource(config, clock)
    assert '"embed|embed-v1|embed-v2"' in probe.queries.queue.expr.replace("=~", "")
    fake = FakePrometheus(probe.queries, lambda: clock.now().timestamp())
    fake.answers = healthy_answers("embed", clock.now().timestamp(), per_version=True)
    source = PrometheusSource(config, clock, transport=fake.transport())
    snap = source.observe()
    v1, v2 = snap.version("embed", "v1"), snap.version("embed", "v2")
    assert v1 is not None and v2 is not None
    assert (v1.queue_length, v1.batch_size, v1.running_replicas) == (3.0, 4.0, 2)
    assert (v1.prompt_token_rate, v1.output_token_rate) == (120.0, 30.0)
    assert v1.request_rate == 10.0 and v2.running_replicas == 0
    assert snap.problems == ()
