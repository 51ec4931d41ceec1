"""From counter increases over a window to snapshot fields, the same for every source."""

from __future__ import annotations

import dataclasses
import math

import pytest

from controller.signals import metric_names as m
from controller.signals.embedded import EmbeddedSource
from controller.signals.window import CounterWindow, window_fields
from controller.sim.observe import (
    LATENCY_BOUNDS_MS,
    FleetStatus,
    Observations,
    PipelineSettings,
    VersionCounters,
    version_snapshot,
)
from controller.snapshot import LatencyHistogram, VersionSnapshot
from controller.transports.ray_dashboard import RayDashboardClient
from tests.controller.clock import ManualClock
from tests.controller.fake_serve import FakeServe
from tests.controller.sample_config import SERVE_CONFIG, governor_config

INF = math.inf
LATENCY = LatencyHistogram((50.0, 100.0, INF), (100.0, 290.0, 300.0))
"""300 requests: 100 within 50 ms, 190 in (50, 100], 10 above 100 ms."""


def test_window_fields_turns_increases_into_rates_quantiles_and_means() -> None:
    ttft = LatencyHistogram((100.0, 500.0, INF), (200.0, 300.0, 300.0))
    tpot = LatencyHistogram((10.0, 50.0, INF), (0.0, 300.0, 300.0))
    window = CounterWindow(
        seconds=30.0, requests=300.0, errors=3.0, latency=LATENCY, ttft=ttft, tpot=tpot,
        prompt_tokens=9000.0, output_tokens=1500.0, batches=60.0, batched_inputs=240.0,
    )
    fields = window_fields(window)
    assert fields == {
        "request_rate": 10.0,
        "request_count": 300.0,
        "error_count": 3.0,
        "error_rate": 0.01,
        "latency_histogram": LATENCY,
        # Ranks 150 and 285 fall in (50, 100], interpolated as PromQL does; rank 297 is
        # in the +Inf bucket, which answers its lower bound.
        "latency_p50_ms": pytest.approx(50 + 50 * 50 / 190),
        "latency_p95_ms": pytest.approx(50 + 50 * 185 / 190),
        "latency_p99_ms": 100.0,
        # TTFT rank 285 in (100, 500]: 100 + 400 x 85/100; TPOT rank 285 in (10, 50].
        "ttft_ms": pytest.approx(100 + 400 * 85 / 100),
        "tpot_ms": pytest.approx(10 + 40 * 285 / 300),
        "ttft_histogram": ttft,
        "tpot_histogram": tpot,
        "prompt_token_rate": 300.0,
        "output_token_rate": 50.0,
        "batch_size": 4.0,
    }


def test_empty_histograms_leave_quantiles_missing() -> None:
    empty = LatencyHistogram((50.0, INF), (0.0, 0.0))
    fields = window_fields(CounterWindow(30.0, 0.0, 0.0, latency=empty, ttft=empty, tpot=None))
    assert fields == {"request_rate": 0.0, "request_count": 0.0, "error_count": 0.0,
                      "error_rate": 0.0}


def test_counters_that_are_absent_leave_their_fields_missing() -> None:
    fields = window_fields(CounterWindow(10.0, 50.0, 0.0, batches=0.0, batched_inputs=0.0))
    assert fields == {"request_rate": 5.0, "request_count": 50.0, "error_count": 0.0,
                      "error_rate": 0.0}
    no_inputs = window_fields(CounterWindow(10.0, 50.0, 0.0, batches=5.0))
    assert "batch_size" not in no_inputs


@pytest.mark.parametrize("seconds", [0.0, -5.0])
def test_a_window_of_no_time_gives_nothing(seconds: float) -> None:
    assert window_fields(CounterWindow(seconds, 300.0, 3.0, latency=LATENCY)) == {}


# The simulated observation path and the embedded source, fed the same counters.


def answered(c: VersionCounters, n: int, latency_ms: float, prompt: int, output: int) -> None:
    """Count `n` answered requests of one latency and shape."""
    for _ in range(n):
        c.record(latency_ms, None, None, prompt, output)


def exposition(c: VersionCounters) -> str:
    """What Ray's exporters would show of `c` (app embed, version v1, deployment model_v1)."""
    version = 'application="embed",version="v1"'
    deployment = 'application="embed",deployment="model_v1"'
    lines = [
        f"# TYPE {m.REQUESTS} counter",
        f'{m.REQUESTS}{{{version},deployment="router"}} {c.requests!r}',
        f"# TYPE {m.ERRORS} counter",
        f'{m.ERRORS}{{{version},deployment="router"}} {c.errors!r}',
        "# TYPE ray_governor_request_latency_ms histogram",
    ]
    total = 0.0
    for bound, count in zip(LATENCY_BOUNDS_MS, c.latency, strict=True):
        total += count
        le = "+Inf" if bound == INF else repr(float(bound))
        lines.append(f'{m.LATENCY_BUCKET}{{{version},le="{le}"}} {total!r}')
    lines += [
        f"ray_governor_request_latency_ms_count{{{version}}} {total!r}",
        f"ray_governor_request_latency_ms_sum{{{version}}} 0",
        f"# TYPE {m.BATCHED_INPUTS} counter",
        f"{m.BATCHED_INPUTS}{{{deployment}}} {c.batch_sum!r}",
        "# TYPE ray_governor_batch_size histogram",
        f"{m.BATCH_SIZE_COUNT}{{{deployment}}} {c.batch_count!r}",
        f"# TYPE {m.INPUT_TOKENS} counter",
        f"{m.INPUT_TOKENS}{{{deployment}}} {c.prompt_tokens!r}",
        f"# TYPE {m.OUTPUT_TOKENS} counter",
        f"{m.OUTPUT_TOKENS}{{{deployment}}} {c.output_tokens!r}",
        f"# TYPE {m.ONGOING} gauge",
        f"{m.ONGOING}{{{deployment}}} {c.ongoing_at_replicas + c.queued_at_router}",
    ]
    return "\n".join(lines) + "\n"


def embedded_snapshot(before: str, after: str) -> VersionSnapshot:
    """The embedded source's v1 after two scrapes 30 s apart."""
    serve, clock, texts = FakeServe(), ManualClock(), [before]
    serve._deploy(SERVE_CONFIG)
    client = RayDashboardClient("http://dash", transport=serve.transport(), token="")
    source = EmbeddedSource(governor_config(), client, lambda: texts, clock)
    source.observe()
    clock.advance(30)
    texts[0] = after
    v1 = source.observe().version("embed", "v1")
    assert v1 is not None
    return v1


def simulated_snapshot(before: VersionCounters, after: VersionCounters) -> VersionSnapshot:
    """The simulated pipeline's v1 from samples of `before` at 0 s and `after` at 30 s."""
    obs = Observations(("v1",))
    obs.add(0.0, "v1", before, 1, 0, 1)
    obs.add(30.0, "v1", after, 1, 0, 1)
    app = governor_config().applications[0]
    return version_snapshot(obs, app, "v1", 30.0, FleetStatus(1, 0, 1),
                            PipelineSettings(report_s=10.0, window_s=30.0), None)


def test_the_simulated_and_embedded_sources_report_the_same_fields() -> None:
    before = VersionCounters()
    answered(before, 40, 30.0, 12, 0)
    before.batch_sum, before.batch_count = 40.0, 10.0
    after = dataclasses.replace(before, latency=list(before.latency))
    answered(after, 250, 30.0, 12, 0)
    answered(after, 40, 150.0, 120, 30)
    answered(after, 10, 700.0, 400, 0)
    for _ in range(6):
        after.record_error()
    after.batch_sum, after.batch_count = 40.0 + 306.0, 10.0 + 51.0
    after.ongoing_at_replicas, after.queued_at_router = 4, 2

    sim = simulated_snapshot(before, after)
    real = embedded_snapshot(exposition(before), exposition(after))
    assert sim.request_rate == pytest.approx(306 / 30)
    assert sim.prompt_token_rate == pytest.approx((250 * 12 + 40 * 120 + 10 * 400) / 30)
    assert sim.output_token_rate == pytest.approx(40 * 30 / 30)
    assert sim.batch_size == 6.0 and sim.queue_length == 6.0
    assert sim.latency_p95_ms is not None and 100 < sim.latency_p95_ms <= 200
    window = ("request_rate", "request_count", "error_count", "error_rate",
              "latency_histogram", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms",
              "ttft_ms", "tpot_ms", "prompt_token_rate", "output_token_rate", "batch_size",
              "queue_length", "running_replicas", "starting_replicas", "target_replicas",
              "app", "version", "deployment")
    assert {f: getattr(real, f) for f in window} == {f: getattr(sim, f) for f in window}
