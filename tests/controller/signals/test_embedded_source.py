"""The embedded source turns Serve status and Ray metrics into a snapshot, never guessing."""

from __future__ import annotations

import pytest

from controller.errors import TemporaryError
from controller.signals.counters import parse_expositions
from controller.signals.embedded import EmbeddedSource, metrics_urls_from_service_discovery
from controller.transports.ray_dashboard import RayDashboardClient
from tests.controller.clock import ManualClock
from tests.controller.fake_serve import FakeServe
from tests.controller.sample_config import SERVE_CONFIG, governor_config


def exposition(requests: float, errors: float, buckets: dict[str, float], batches: float) -> str:
    lines = [
        "# TYPE ray_governor_requests_total counter",
        f'ray_governor_requests_total{{application="embed",deployment="router",version="v1"}} {requests}',
        "# TYPE ray_governor_request_errors_total counter",
        f'ray_governor_request_errors_total{{application="embed",deployment="router",version="v1"}} {errors}',
        "# TYPE ray_governor_request_latency_ms histogram",
    ]
    for le, count in buckets.items():
        lines.append(
            f'ray_governor_request_latency_ms_bucket{{application="embed",version="v1",le="{le}"}} {count}'
        )
    lines += [
        f'ray_governor_request_latency_ms_count{{application="embed",version="v1"}} {requests}',
        'ray_governor_request_latency_ms_sum{application="embed",version="v1"} 0',
        "# TYPE ray_governor_batch_size histogram",
        f'ray_governor_batch_size_sum{{application="embed",deployment="model_v1"}} {batches * 3.5}',
        "# TYPE ray_governor_batched_inputs_total counter",
        f'ray_governor_batched_inputs_total{{application="embed",deployment="model_v1"}} {batches * 4}',
        f'ray_governor_batch_size_count{{application="embed",deployment="model_v1"}} {batches}',
        "# TYPE ray_serve_num_ongoing_requests_at_replicas gauge",
        'ray_serve_num_ongoing_requests_at_replicas{application="embed",deployment="model_v1"} 3',
    ]
    return "\n".join(lines) + "\n"


class Metrics:
    def __init__(self) -> None:
        self.texts: list[str] = []
        self.fail = False

    def __call__(self) -> list[str]:
        if self.fail:
            raise TemporaryError("connection refused")
        return self.texts


@pytest.fixture
def world() -> tuple[FakeServe, Metrics, ManualClock, EmbeddedSource]:
    serve, metrics, clock = FakeServe(), Metrics(), ManualClock()
    serve._deploy(SERVE_CONFIG)
    client = RayDashboardClient("http://dash", transport=serve.transport(), token="")
    return serve, metrics, clock, EmbeddedSource(governor_config(), client, metrics, clock)


def test_rates_and_quantiles_come_from_counter_increases_over_the_window(world) -> None:  # type: ignore[no-untyped-def]
    _, metrics, clock, source = world
    metrics.texts = [exposition(100, 0, {"50": 50, "100": 90, "+Inf": 100}, 10)]
    first = source.observe()
    assert first.version("embed", "v1").request_rate is None  # one scrape: no rate yet
    clock.advance(30)
    metrics.texts = [exposition(400, 3, {"50": 150, "100": 380, "+Inf": 400}, 60)]
    snap = source.observe()
    v1 = snap.version("embed", "v1")
    assert v1.request_rate == pytest.approx(10.0)
    assert v1.error_rate == pytest.approx(0.01)
    assert v1.request_count == 300
    # 300 requests: 100 <= 50 ms, 190 in (50, 100], 10 above: p50 between 50 and 100 ms.
    assert 50 < v1.latency_p50_ms < 100
    # rank 285 falls in the (50, 100] bucket, interpolated as PromQL does: 50 + 50 * 185/190.
    assert v1.latency_p95_ms == pytest.approx(50 + 50 * 185 / 190)
    assert v1.batch_size == pytest.approx(4.0)
    assert v1.queue_length == 3
    assert v1.running_replicas == 1 and v1.target_replicas == 1
    assert snap.app("embed").weights == {"v1": 100, "v2": 0}
    assert snap.problems == ()


def test_failed_metrics_leave_fields_missing_and_say_why(world) -> None:  # type: ignore[no-untyped-def]
    _, metrics, _clock, source = world
    metrics.fail = True
    snap = source.observe()
    v1 = snap.version("embed", "v1")
    assert v1.request_rate is None and v1.latency_p95_ms is None
    assert v1.running_replicas == 1  # the status API still answered
    assert any("connection refused" in p for p in snap.problems)


def test_failed_status_leaves_replicas_missing(world) -> None:  # type: ignore[no-untyped-def]
    serve, _metrics, _, source = world
    serve.fail_next = 503
    snap = source.observe()
    assert snap.version("embed", "v1").running_replicas is None
    assert any("serve status" in p for p in snap.problems)


def test_a_counter_reset_counts_from_zero_instead_of_going_negative() -> None:
    from controller.signals.counters import version_window

    old = parse_expositions([exposition(500, 0, {"+Inf": 500}, 0)]).versions[("embed", "v1")]
    new = parse_expositions([exposition(20, 0, {"+Inf": 20}, 0)]).versions[("embed", "v1")]
    assert version_window(new, old, 10).requests == 20


def test_service_discovery_file_lists_metrics_urls(tmp_path) -> None:  # type: ignore[no-untyped-def]
    sd = tmp_path / "sd.json"
    sd.write_text('[{"labels": {"job": "ray"}, "targets": ["127.0.0.1:8080", "10.0.0.2:8080"]}]')
    assert metrics_urls_from_service_discovery(sd) == [
        "http://127.0.0.1:8080/metrics",
        "http://10.0.0.2:8080/metrics",
    ]
    assert metrics_urls_from_service_discovery(tmp_path / "absent.json") == []
