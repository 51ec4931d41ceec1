"""Live calibration against a fake replica: doubling then bisection finds its capacity."""

from __future__ import annotations

import pytest

from controller.calibration.live import Send, calibrate_live, measure_shape
from controller.config import AppConfig
from controller.errors import GovernorError
from controller.sim.replay import ReplayRequest, ReplayResult, StreamResult
from tests.controller.fleet import app_doc, make_config

STEP_S = 400.0
"""Long steps: the fake reads the offered rate from the count of Poisson arrivals."""
FAST_S, SLOW_S = 0.05, 1.0
COSTS = (0.01, 1e-4, 4e-3)
"""The fake replica's work per request, per prompt token and per output token (seconds)."""
SHAPES = ((400, 10), (100, 50), (1700, 0), (700, 0))
"""Capacities 11.1, 4.55, 5.56 and 12.5 req/s: each at least 4% from a rate the search tries."""


def capacity_of(prompt: int, output: int) -> float:
    """Requests per second the fake replica serves within the SLO at one shape."""
    a, b, c = COSTS
    return 1.0 / (a + b * prompt + c * output)


def replica(sent: list[float] | None = None, status_beyond: int = 200) -> Send:
    """A fake replica: answers in 50 ms below its capacity, in 1 s (or with an error) above."""

    def send(requests: list[ReplayRequest]) -> list[ReplayResult]:
        rate = len(requests) / STEP_S
        if sent is not None:
            sent.append(rate)
        shape = requests[0]
        latency, status = FAST_S, 200
        if rate >= capacity_of(shape.prompt_tokens, shape.output_tokens):
            latency, status = (SLOW_S, 200) if status_beyond == 200 else (FAST_S, status_beyond)
        return [ReplayResult(r.at_s, r.at_s, r.at_s + latency, status) for r in requests]

    return send


def app() -> AppConfig:
    """An app with a 200 ms p95 SLO, 1% errors allowed, planned at 70%."""
    return make_config(app_doc(versions=("v1",), slo_ms=200)).applications[0]


@pytest.mark.parametrize(("prompt", "output"), SHAPES)
def test_the_search_finds_the_capacity_within_the_refine_tolerance(prompt: int,
                                                                   output: int) -> None:
    point = measure_shape(replica(), app(), prompt, output, start_rps=1.0, max_rps=512.0,
                          step_s=STEP_S, refine=2)
    true = capacity_of(prompt, output)
    # The last doubling [lo, 2 lo] bisected twice leaves a bracket a quarter of lo wide.
    assert point.capacity_rps <= true <= point.capacity_rps * 1.25
    # Little's law at 70% of it: rate x the 50 ms the answers took.
    assert point.in_flight == pytest.approx(point.capacity_rps * 0.7 * FAST_S)


def test_the_search_doubles_then_bisects() -> None:
    sent: list[float] = []
    point = measure_shape(replica(sent), app(), 400, 10, start_rps=1.0, max_rps=512.0,
                          step_s=STEP_S, refine=2)
    assert [round(r) for r in sent] == [1, 2, 4, 8, 16, 12, 10]
    assert point.capacity_rps == 10.0


def test_errors_beyond_the_budget_count_as_beyond_the_slo() -> None:
    point = measure_shape(replica(status_beyond=503), app(), 400, 10, start_rps=1.0,
                          max_rps=512.0, step_s=STEP_S, refine=2)
    assert point.capacity_rps == 10.0


def test_a_first_step_beyond_the_slo_halves_down_until_one_is_within() -> None:
    sent: list[float] = []
    point = measure_shape(replica(sent), app(), 400, 10, start_rps=32.0, max_rps=512.0,
                          step_s=STEP_S, refine=2)
    assert capacity_of(400, 10) == pytest.approx(11.1, abs=0.05)
    assert sent[:3] == pytest.approx([32.0, 16.0, 8.0], rel=0.05)
    assert point.capacity_rps == 10.0, "8 within, then bisected twice towards 16: 12 out, 10 in"


def test_a_shape_no_rate_serves_is_an_error_naming_it() -> None:
    def slow(requests: list[ReplayRequest]) -> list[ReplayResult]:
        return [ReplayResult(r.at_s, r.at_s, r.at_s + SLOW_S, 200) for r in requests]

    with pytest.raises(GovernorError, match=r"100 in / 0 out: even 0\.25 req/s breaks the SLO"):
        measure_shape(slow, app(), 100, 0, start_rps=4.0, max_rps=512.0, step_s=STEP_S,
                      refine=2)


def test_the_search_never_sends_more_than_max_rps() -> None:
    sent: list[float] = []
    point = measure_shape(replica(sent), app(), 0, 0, start_rps=1.0, max_rps=8.0,
                          step_s=STEP_S, refine=2)
    assert [round(r) for r in sent] == [1, 2, 4, 8]
    assert point.capacity_rps == 8.0, "served within the SLO at the highest rate allowed"


def test_calibrate_live_fits_the_work_model_of_the_measured_shapes() -> None:
    lines: list[str] = []
    cal = calibrate_live(replica(), app(), "generation", SHAPES, "fake replica",
                         step_s=STEP_S, done=lines.append)
    assert cal.kind == "generation" and cal.source == "fake replica"
    assert [(p.prompt_tokens, p.output_tokens) for p in cal.points] == list(SHAPES)
    assert cal.slo == {
        "latency_ms": 200.0,
        "ttft_ms": None,
        "tpot_ms": None,
        "max_error_rate": 0.01,
        "target_attainment": 0.99,
    }
    assert cal.target_utilization == 0.7
    assert cal.in_flight_per_replica == cal.points[1].in_flight, "the reference shape's"
    assert (cal.work.reference_prompt_tokens, cal.work.reference_output_tokens) == (100, 50)
    # Every point is low by at most a quarter: the fit predicts each shape's capacity that
    # closely, and errs on the safe side on average.
    for prompt, output in SHAPES:
        predicted = cal.predicted_capacity_rps(prompt, output)
        assert 0.75 * capacity_of(prompt, output) <= predicted <= 1.1 * capacity_of(prompt, output)
    assert cal.fit_error < 0.25
    assert lines[0] == "400 in / 10 out at 1.00 req/s: p95 50 ms, errors 0.0% (within the SLO)"
    assert any(line.endswith("(beyond the SLO)") for line in lines)


def streaming_replica(capacity_rps: float) -> Send:
    """A generation replica whose answers end in 100 ms at any rate, but whose first token
    comes 50 ms after the send below `capacity_rps` and 2 s after it above."""

    def send(requests: list[ReplayRequest]) -> list[StreamResult]:
        ttft = 0.05 if len(requests) / STEP_S < capacity_rps else 2.0
        return [
            StreamResult(r.at_s, r.at_s, r.at_s + ttft + 0.05, 200, first_s=r.at_s + ttft, tokens=10)
            for r in requests
        ]

    return send


def test_a_generation_shape_is_held_to_the_slo_time_to_first_token() -> None:
    doc = app_doc(versions=("v1",), slo_ms=5000)
    doc["slo"]["ttft_p95_ms"] = 500
    chat = make_config(doc).applications[0]
    lines: list[str] = []
    point = measure_shape(streaming_replica(6.0), chat, 100, 10, start_rps=1.0, max_rps=64.0,
                          step_s=STEP_S, refine=2, done=lines.append)
    assert point.capacity_rps == 5.0, "4 within, 8 beyond on TTFT alone, then 6 out and 5 in"
    assert lines[0].startswith("100 in / 10 out at 1.00 req/s: p95 100 ms, TTFT p95 50 ms")
