"""Replica batching: hand-computed latencies for encoders and continuous batching."""

from __future__ import annotations

import numpy as np
import pytest

from controller.sim.capacity import EPOCH
from controller.sim.engine import simulate
from controller.sim.policies.static import StaticPolicy
from controller.sim.trace import Trace
from tests.controller.sim import world


def trace(times: list[float], prompt: list[int], output: list[int]) -> Trace:
    return Trace(np.asarray(times, dtype=float), np.asarray(prompt), np.asarray(output), EPOCH)


def test_partial_batch_waits_for_the_batch_window_then_runs_together() -> None:
    profile = world.encoder(service_ms=100.0, max_batch=4, wait_ms=5.0)
    result = simulate(trace([0.0, 0.001, 1.0], [10] * 3, [1] * 3), profile, world.app(),
                      StaticPolicy(1))
    # Two requests 1 ms apart share one batch that starts when the 5 ms wait ends and
    # costs 2 x 100 ms; the third arrives alone a second later.
    assert result.done_s[0] == pytest.approx(0.005 + 0.2)
    assert result.done_s[1] == pytest.approx(0.005 + 0.2)
    assert result.done_s[2] == pytest.approx(1.0 + 0.005 + 0.1)


def test_full_batch_starts_without_waiting() -> None:
    profile = world.encoder(service_ms=10.0, max_batch=2, wait_ms=50.0)
    result = simulate(trace([0.0, 0.0], [10, 10], [1, 1]), profile, world.app(),
                      StaticPolicy(1))
    assert result.done_s.tolist() == pytest.approx([0.02, 0.02])


def test_a_lone_generation_request_prefills_then_decodes_each_token() -> None:
    profile = world.generation(prefill_ms_per_token=0.1, step_ms=10.0)
    result = simulate(trace([0.0], [1000], [11]), profile, world.app(slo_ms=10_000),
                      StaticPolicy(1))
    assert result.first_token_s[0] == pytest.approx(0.1)
    assert result.done_s[0] == pytest.approx(0.1 + 10 * 0.010)


def test_a_new_prompt_joins_at_the_next_step_and_pauses_decoding_for_its_prefill() -> None:
    profile = world.generation(prefill_ms_per_token=0.1, step_ms=10.0)
    # A: 100-token prompt (10 ms prefill), 101 tokens out. B arrives at 25 ms.
    result = simulate(trace([0.0, 0.025], [100, 200], [101, 2]), profile,
                      world.app(slo_ms=10_000), StaticPolicy(1))
    # A decodes from 10 ms; the step running at 25 ms ends at 30 ms, then B's 20 ms
    # prefill runs (30..50 ms) and B's one decode step shares A's step (50..60 ms).
    assert result.first_token_s[1] == pytest.approx(0.050)
    assert result.done_s[1] == pytest.approx(0.060)
    # A lost 20 ms to B's prefill: 10 ms + 100 steps x 10 ms + 20 ms.
    assert result.done_s[0] == pytest.approx(0.010 + 1.0 + 0.020)


def test_decode_step_grows_with_the_batch() -> None:
    profile = world.generation(prefill_ms_per_token=0.0001, step_ms=10.0, per_seq_ms=5.0)
    result = simulate(trace([0.0, 0.0], [1, 1], [3, 3]), profile, world.app(slo_ms=10_000),
                      StaticPolicy(1))
    # Both decode together once the second prompt is in: 2 steps of 10 + 2 x 5 ms.
    step = 0.010 + 2 * 0.005
    assert result.done_s.tolist() == pytest.approx([result.first_token_s[1] + 2 * step] * 2)


def test_requests_past_the_queue_limit_are_rejected_and_missed() -> None:
    from controller.sim.metrics import outcomes
    from controller.sim.slo import request_slo

    profile = world.encoder(service_ms=1000.0, queue_limit=2)
    app = world.app(slo_ms=5000)
    result = simulate(trace([0.0] * 5, [1] * 5, [1] * 5), profile, app, StaticPolicy(1))
    # One in service, two queued, two rejected.
    assert result.rejected.tolist() == [False, False, False, True, True]
    met = outcomes(result, request_slo(app, profile)).met
    assert met.tolist() == [True, True, True, False, False]
