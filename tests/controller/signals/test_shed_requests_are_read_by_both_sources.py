"""Requests shed for overload are read per version by both sources, as a rate of their own:
not in the request rate, not in the error rate, and the same figure from either source."""

from __future__ import annotations

import pytest

from controller.signals import metric_names as m
from controller.signals.counters import parse_expositions
from controller.signals.embedded import EmbeddedSource
from controller.signals.prometheus import query_failures
from controller.snapshot import VersionSnapshot
from controller.transports.ray_dashboard import RayDashboardClient
from tests.controller.clock import ManualClock
from tests.controller.fake_serve import FakeServe
from tests.controller.promql_names import metric_names_in
from tests.controller.sample_config import SERVE_CONFIG, governor_config
from tests.controller.signals.test_prometheus_source_reads_the_fleet import make

WINDOW_S = 30.0
V1 = 'application="embed",deployment="router",version="v1"'


def exposition(requests: float, errors: float, shed: dict[str, float]) -> str:
    """The router's counters for v1 (shed by endpoint; none: no shed series at all)."""
    lines = [
        "# TYPE ray_governor_requests_total counter",
        f"ray_governor_requests_total{{{V1}}} {requests}",
        "# TYPE ray_governor_request_errors_total counter",
        f"ray_governor_request_errors_total{{{V1}}} {errors}",
    ]
    if shed:
        lines.append("# TYPE ray_governor_requests_shed_total counter")
    lines += [
        f'ray_governor_requests_shed_total{{{V1},endpoint="{endpoint}",replica="r{i}"}} {n}'
        for i, (endpoint, n) in enumerate(shed.items())
    ]
    return "\n".join(lines) + "\n"


def embedded_v1(before: str, after: str) -> VersionSnapshot:
    """v1 as the embedded source sees it after two scrapes a window apart."""
    serve, clock = FakeServe(), ManualClock()
    serve._deploy(SERVE_CONFIG)
    texts = [before]
    client = RayDashboardClient("http://dash", transport=serve.transport(), token="")
    source = EmbeddedSource(governor_config(), client, lambda: texts, clock)
    source.observe()
    clock.advance(WINDOW_S)
    texts[0] = after
    v1 = source.observe().version("embed", "v1")
    assert v1 is not None
    return v1


def test_the_embedded_source_reads_the_shed_rate_apart_from_requests_and_errors() -> None:
    v1 = embedded_v1(
        exposition(100, 0, {"embeddings": 10, "completions": 0}),
        exposition(400, 3, {"embeddings": 70, "completions": 15}),
    )
    assert v1.shed_rate == pytest.approx(75 / WINDOW_S)
    assert v1.request_rate == pytest.approx(300 / WINDOW_S)
    assert v1.error_rate == pytest.approx(3 / 300)


def test_no_shed_series_yet_is_a_shed_rate_of_zero_not_missing() -> None:
    v1 = embedded_v1(exposition(100, 0, {}), exposition(400, 0, {}))
    assert v1.shed_rate == 0.0


def test_the_shed_counter_is_summed_over_replicas_and_endpoints() -> None:
    counters = parse_expositions(
        [exposition(10, 0, {"embeddings": 4}), exposition(5, 0, {"completions": 2})]
    )
    assert counters.versions[("embed", "v1")].shed == 6
    assert counters.versions[("embed", "v1")].requests == 15


def test_the_prometheus_source_reads_the_shed_rate_per_version() -> None:
    source, fake, _ = make()
    fake.answers["shed_rate"] = [({"application": "embed", "version": "v1"}, 2.5)]
    snap = source.observe()
    v1, v2 = snap.version("embed", "v1"), snap.version("embed", "v2")
    assert v1 is not None and v2 is not None
    assert v1.shed_rate == 2.5
    assert (v1.request_rate, v1.error_rate) == (10.0, pytest.approx(0.1))
    assert v2.shed_rate == 0.0
    assert query_failures(snap.problems) == []


def test_an_application_that_never_shed_has_no_series_and_no_problem() -> None:
    source, _, _ = make()
    snap = source.observe()
    v1 = snap.version("embed", "v1")
    assert v1 is not None and v1.shed_rate == 0.0
    assert query_failures(snap.problems) == []


def test_a_failed_shed_query_leaves_only_the_shed_rate_missing() -> None:
    source, fake, _ = make()
    fake.fail["shed_rate"] = "500"
    snap = source.observe()
    v1 = snap.version("embed", "v1")
    assert v1 is not None and v1.shed_rate is None and v1.request_rate == 10.0
    assert query_failures(snap.problems) == [("shed_rate", "http_error")]


def test_both_sources_read_the_same_series_into_the_same_rate() -> None:
    source, fake, _ = make()
    assert metric_names_in(source.queries.shed_rate.expr) == {m.SHED, m.PROXY_SHED}
    fake.answers["shed_rate"] = [({"application": "embed", "version": "v1"}, 75 / WINDOW_S)]
    from_prometheus = source.observe().version("embed", "v1")
    from_ray = embedded_v1(
        exposition(100, 0, {"embeddings": 10}), exposition(400, 0, {"embeddings": 85})
    )
    assert from_prometheus is not None
    assert from_prometheus.shed_rate == pytest.approx(from_ray.shed_rate)


def proxy_shed(n: float, version: str = "v1") -> str:
    """The proxy's refusals to the embed application, drawn to `version` by the weights."""
    return (
        "# TYPE ray_governor_proxy_requests_shed_total counter\n"
        f'ray_governor_proxy_requests_shed_total{{application="embed",model="minilm",'
        f'version="{version}",component="proxy"}} {n}\n'
    )


def test_requests_the_proxy_refused_are_shed_requests_of_the_version_drawn() -> None:
    v1 = embedded_v1(
        exposition(100, 0, {"embeddings": 10}) + proxy_shed(5),
        exposition(400, 0, {"embeddings": 40}) + proxy_shed(95),
    )
    assert v1.shed_rate == pytest.approx((30 + 90) / WINDOW_S)
    assert v1.request_rate == pytest.approx(300 / WINDOW_S), "refusals are no requests served"
    counters = parse_expositions([proxy_shed(7, "v2")])
    assert counters.versions[("embed", "v2")].shed == 7
    assert counters.versions[("embed", "v2")].requests == 0
