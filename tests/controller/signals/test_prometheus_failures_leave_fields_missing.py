"""A query that fails, answers nothing or answers with old samples leaves its fields missing."""

from __future__ import annotations

import pytest

from controller.decisions import Plan
from controller.signals.prometheus import query_failures
from controller.telemetry import Telemetry
from tests.controller.signals.test_prometheus_source_reads_the_fleet import make


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("timeout", "timeout"),
        ("refused", "unreachable"),
        ("500", "http_error"),
        ("non-json", "bad_response"),
        ("bad-data", "query_error"),
        ("matrix", "bad_response"),
        ("malformed", "bad_response"),
    ],
)
def test_a_failed_latency_query_leaves_latency_missing_and_names_itself(
    mode: str, reason: str
) -> None:
    source, fake, _ = make()
    fake.fail["latency_p95"] = mode
    snap = source.observe()
    v1 = snap.version("embed", "v1")
    assert v1 is not None
    assert v1.latency_p95_ms is None
    assert v1.latency_p50_ms == 75.0 or reason in ("timeout", "unreachable")
    assert ("latency_p95", reason) in query_failures(snap.problems)
    line = next(p for p in snap.problems if "latency_p95" in p)
    assert line.startswith(f"prometheus query latency_p95 failed ({reason}): ")


@pytest.mark.parametrize(
    ("query", "prompt", "output"),
    [("prompt_token_rate", None, 30.0), ("output_token_rate", 120.0, None)],
)
def test_a_failed_token_query_leaves_only_its_rate_missing(
    query: str, prompt: float | None, output: float | None
) -> None:
    source, fake, _ = make()
    fake.fail[query] = "500"
    snap = source.observe()
    v1 = snap.version("embed", "v1")
    assert v1 is not None
    assert (v1.prompt_token_rate, v1.output_token_rate) == (prompt, output)
    assert v1.request_rate == 10.0 and v1.batch_size == 4.0
    assert query_failures(snap.problems) == [(query, "http_error")]


def test_an_unreachable_server_is_asked_once_and_every_field_is_missing() -> None:
    source, fake, _ = make()
    fake.fail["*"] = "timeout"
    snap = source.observe()
    assert fake.asked == ["freshness"]
    v1 = snap.version("embed", "v1")
    assert v1 is not None
    missing = ("request_rate", "error_rate", "latency_p95_ms", "queue_length", "batch_size")
    for field in (*missing, "prompt_token_rate", "output_token_rate"):
        assert getattr(v1, field) is None, field
    assert v1.running_replicas == 2
    failed = query_failures(snap.problems)
    assert {r for _, r in failed} == {"timeout"}
    asked_later = {"request_rate", "latency_p95", "queue", "batch_size"}
    assert {q for q, _ in failed} >= {*asked_later, "prompt_token_rate", "output_token_rate"}
    assert any("not asked" in p for p in snap.problems)


def test_an_empty_answer_is_missing_not_zero() -> None:
    source, fake, _ = make()
    fake.answers["request_rate"] = []
    fake.answers["queue"] = []
    fake.answers["prompt_token_rate"] = []
    snap = source.observe()
    v1 = snap.version("embed", "v1")
    assert v1 is not None
    assert v1.request_rate is None and v1.request_count is None and v1.error_rate is None
    assert v1.queue_length is None and v1.prompt_token_rate is None
    assert v1.latency_p95_ms == 180.0 and v1.output_token_rate == 30.0
    failed = query_failures(snap.problems)
    assert sorted(failed) == [
        ("prompt_token_rate", "empty"),
        ("queue", "empty"),
        ("request_rate", "empty"),
    ]
    assert any("no series for application embed" in p for p in snap.problems)


def test_an_answer_evaluated_too_long_ago_is_stale() -> None:
    source, fake, _ = make(max_sample_age_s=60)
    fake.eval_age_s["batch_size"] = 120
    fake.eval_age_s["output_token_rate"] = 120
    snap = source.observe()
    v1 = snap.version("embed", "v1")
    assert v1 is not None and v1.batch_size is None and v1.request_rate == 10.0
    assert v1.output_token_rate is None and v1.prompt_token_rate == 120.0
    assert query_failures(snap.problems) == [
        ("batch_size", "stale"),
        ("output_token_rate", "stale"),
    ]


def test_an_application_whose_newest_sample_is_old_has_every_metric_missing() -> None:
    source, fake, clock = make(max_sample_age_s=60)
    fake.answers["freshness"] = [({"application": "embed"}, clock.now().timestamp() - 300)]
    snap = source.observe()
    v1 = snap.version("embed", "v1")
    assert v1 is not None
    assert v1.request_rate is None and v1.latency_p95_ms is None and v1.queue_length is None
    assert v1.prompt_token_rate is None and v1.output_token_rate is None
    assert v1.running_replicas == 2
    assert query_failures(snap.problems) == [("freshness", "stale")]
    assert "newest sample is 300s old" in snap.problems[-1]


def test_the_next_observation_recovers_once_the_server_answers_again() -> None:
    source, fake, clock = make()
    fake.fail["*"] = "refused"
    assert source.observe().version("embed", "v1").request_rate is None  # type: ignore[union-attr]
    del fake.fail["*"]
    clock.advance(5)
    fake.answers = {
        **fake.answers,
        "freshness": [({"application": "embed"}, clock.now().timestamp())],
    }
    snap = source.observe()
    assert snap.version("embed", "v1").request_rate == 10.0  # type: ignore[union-attr]
    assert query_failures(snap.problems) == []


def test_failures_are_counted_by_query_and_reason_in_the_daemon_metrics() -> None:
    source, fake, _ = make()
    fake.fail["queue"] = "500"
    fake.answers["request_rate"] = []
    telemetry = Telemetry()
    snap = source.observe()
    telemetry.record(source.config, snap, Plan(), {})
    telemetry.record(source.config, snap, Plan(), {})
    value = telemetry.registry.get_sample_value
    labels = {"query": "queue", "reason": "http_error"}
    assert value("governor_signal_query_failures_total", labels) == 2
    assert (
        value("governor_signal_query_failures_total", {"query": "request_rate", "reason": "empty"})
        == 2
    )
