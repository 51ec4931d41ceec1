"""Every query is built in one place from the configured labels, job, matchers and window."""

from __future__ import annotations

import pytest

from controller.config import PrometheusSource as PrometheusConfig
from controller.errors import ConfigError
from controller.signals.promql import MAX_LISTED_APPS, build_queries, duration_seconds
from tests.controller.promql_names import exported_names, metric_names_in
from tests.controller.sample_config import governor_config


def test_default_queries_read_the_data_plane_series_per_application_and_version() -> None:
    q = build_queries(PrometheusConfig(), ["embed"])
    sel = '{application=~"embed"}'
    assert q.request_rate.expr == (
        f"sum by (application, version) (rate(ray_governor_requests_total{sel}[1m]))"
    )
    _, p95 = q.quantiles["latency_p95"]
    assert p95.expr == (
        "histogram_quantile(0.95, sum by (le, application, version) "
        f"(rate(ray_governor_request_latency_ms_bucket{sel}[1m])))"
    )
    assert q.queue.expr == (
        f"sum by (application, deployment) (ray_serve_num_ongoing_requests_at_replicas{sel})"
    )
    assert len({query.name for query in q.all()}) == len(q.all())


def test_token_rates_are_read_per_deployment_like_the_batch_size() -> None:
    q = build_queries(PrometheusConfig(), ["chat"])
    sel = '{application=~"chat"}'
    assert q.prompt_token_rate.expr == (
        f"sum by (application, deployment) (rate(ray_governor_input_tokens_total{sel}[1m]))"
    )
    assert q.output_token_rate.expr == (
        f"sum by (application, deployment) (rate(ray_governor_output_tokens_total{sel}[1m]))"
    )
    assert q.prompt_token_rate.by == q.output_token_rate.by == ("application", "deployment")


def test_every_query_runs_once_freshness_first_then_router_then_model_then_replicas() -> None:
    names = [query.name for query in build_queries(PrometheusConfig(), ["embed"]).all()]
    assert names == [
        "freshness",
        "request_rate",
        "error_rate",
        "shed_rate",
        "latency_p50",
        "latency_p95",
        "latency_p99",
        "latency_buckets",
        "queue",
        "batch_size",
        "prompt_token_rate",
        "output_token_rate",
        "ttft_buckets",
        "tpot_buckets",
        "replicas",
        "weights",
    ]


def test_every_query_reads_only_series_the_project_exports() -> None:
    exported = exported_names()
    for query in build_queries(PrometheusConfig(), ["embed"]).all():
        names = metric_names_in(query.expr)
        assert names and names <= exported, f"{query.name}: {names - exported}"


def test_labels_job_matchers_and_window_are_configurable() -> None:
    config = PrometheusConfig(
        app_label="app",
        version_label="model_version",
        deployment_label="dep",
        job="ray-head",
        match_labels={"cluster": "prod-eu"},
        rate_window="2m",
    )
    q = build_queries(config, ["chat", "embed"])
    sel = '{app=~"chat|embed",job="ray-head",cluster="prod-eu"}'
    assert q.error_rate.expr == (
        f"sum by (app, model_version) (rate(ray_governor_request_errors_total{sel}[2m]))"
    )
    assert q.error_rate.by == ("app", "model_version")
    assert q.batch_size.by == ("app", "dep")
    assert q.output_token_rate.expr == (
        f"sum by (app, dep) (rate(ray_governor_output_tokens_total{sel}[2m]))"
    )
    assert all(sel in query.expr for query in q.all())


def test_application_names_are_escaped_inside_the_regex_matcher() -> None:
    q = build_queries(PrometheusConfig(), ["a.b", 'we"ird'])
    assert 'application=~"a\\\\.b|we\\"ird"' in q.request_rate.expr


def test_a_fleet_too_large_to_list_is_selected_whole_with_the_other_matchers() -> None:
    listed = [f"app-{i:05d}" for i in range(MAX_LISTED_APPS)]
    assert "app-00255" in build_queries(PrometheusConfig(), listed).request_rate.expr
    config = PrometheusConfig(job="ray", match_labels={"cluster": "prod-eu"})
    q = build_queries(config, [f"app-{i:05d}" for i in range(10_000)])
    sel = '{application!="",job="ray",cluster="prod-eu"}'
    assert all(sel in query.expr and "app-0" not in query.expr for query in q.all())
    assert max(len(query.expr) for query in q.all()) < 300


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("1m", 60), ("1m30s", 90), ("2h", 7200), ("500ms", 0.5)]
)
def test_durations_are_read_like_promql(text: str, seconds: float) -> None:
    assert duration_seconds(text) == seconds


def test_a_window_that_is_not_a_promql_duration_is_refused_at_load() -> None:
    with pytest.raises(ConfigError, match=r"signals\.prometheus\.rate_window"):
        governor_config(signals={"kind": "prometheus", "prometheus": {"rate_window": "1 minute"}})
