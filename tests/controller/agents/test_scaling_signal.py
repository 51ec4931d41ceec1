"""The latency a version is steered by: per-token p95s for generation, else end-to-end."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from controller.agents.scaling import ScalingAgent
from controller.agents.scaling.signal import LatencySignal, ms, steering_signal
from controller.config import GovernorConfig
from controller.decisions import ReplicaProposal
from controller.snapshot import VersionSnapshot
from tests.controller.fleet import T0, app_doc, make_config, snapshot, version


def generation_app(**scaling: Any) -> GovernorConfig:
    """One generation app: end-to-end p95 60 s, TTFT p95 1 s, TPOT p95 50 ms."""
    knobs = {"capacity_rps_per_replica": 8.0, "downscale_delay_s": 0} | scaling
    slo = {"latency_p95_ms": 60000, "ttft_p95_ms": 1000, "tpot_p95_ms": 50}
    return make_config(app_doc(versions=("v1",), max_replicas=20, scaling=knobs) | {"slo": slo})


def ticks(config: GovernorConfig, *observed: VersionSnapshot
          ) -> list[tuple[ReplicaProposal, dict[str, Any]]]:
    """The scaling agent fed one snapshot every 5 s: its proposal and state after each."""
    state: dict[str, Any] = {}
    out = []
    for i, v in enumerate(observed):
        snap = snapshot(v, weights={"v1": 100}, now=T0 + timedelta(seconds=5 * i))
        proposals, state = ScalingAgent().propose(snap, state, config)
        (proposal,) = [p for p in proposals if isinstance(p, ReplicaProposal)]
        out.append((proposal, state["versions"]["embed/v1"]))
    return out


def test_a_signal_compares_its_p95_with_its_target() -> None:
    tpot = LatencySignal("TPOT p95", 62.0, 50.0)
    assert tpot.pressure == pytest.approx(1.24) and tpot.breached
    assert str(tpot) == "TPOT p95 62.0 ms"
    at_target = LatencySignal("p95", 200.0, 200.0)
    assert not at_target.breached and at_target.pressure == 1.0
    assert (ms(99.94), ms(100.0), ms(1234.5)) == ("99.9", "100", "1234")


def test_the_end_to_end_p95_steers_when_per_token_latency_is_not_observed() -> None:
    slo = generation_app().applications[0].slo
    assert str(steering_signal(slo, version(p95_ms=70000.0))) == "p95 70000 ms"
    both = version(p95_ms=9000.0, ttft_ms=800.0, tpot_ms=20.0)
    assert str(steering_signal(slo, both)) == "TTFT p95 800 ms", "the one nearest its SLO"
    assert steering_signal(slo, version(p95_ms=None)) is None


def test_a_per_token_p95_without_a_target_does_not_steer() -> None:
    slo = make_config(app_doc()).applications[0].slo
    assert str(steering_signal(slo, version(p95_ms=120.0, ttft_ms=5000.0))) == "p95 120 ms"


def test_generation_steers_by_time_per_output_token_not_answer_length() -> None:
    config = generation_app()
    # 20-21 req/s at 8 per replica planned at 70% needs 3.6-3.75: four replicas are
    # enough, until tokens come late while demand rises (in the first window, which
    # teaches no capacity).
    steady = version(replicas=4, rate=20.0, p95_ms=9000.0, ttft_ms=300.0, tpot_ms=30.0,
                     request_count=600.0)
    late = version(replicas=4, rate=21.0, p95_ms=9000.0, ttft_ms=300.0, tpot_ms=62.0,
                   request_count=630.0)
    proposal, state = ticks(config, steady, late)[-1]
    assert proposal.replicas == 5
    assert "TPOT p95 62.0 ms > SLO 50 ms and demand rising: one more now" in proposal.reason
    assert state["breached_at"] == (T0 + timedelta(seconds=5)).isoformat()


def test_a_tpot_breach_at_steady_demand_teaches_the_knee() -> None:
    config = generation_app()
    steady = [version(replicas=4, rate=20.0, p95_ms=9000.0, ttft_ms=300.0, tpot_ms=30.0,
                      request_count=600.0)] * 7
    late = version(replicas=4, rate=20.0, p95_ms=9000.0, ttft_ms=300.0, tpot_ms=62.0,
                   request_count=600.0)
    proposal, state = ticks(config, *steady, late)[-1]
    # 0.625 units/s per replica at 1.24 x the TPOT SLO: half way from 1.0 to 0.504.
    assert state["capacity_kind"] == "measured"
    assert state["capacity"] == pytest.approx(1.0 + 0.5 * (0.625 / 1.24 - 1.0))
    assert proposal.replicas == 5, "2.5 units/s at 0.7 x 0.752 per replica: ceil(4.75)"


def test_long_answers_are_no_breach_while_tokens_come_on_time() -> None:
    config = generation_app()
    long_answers = version(replicas=6, rate=12.0, p95_ms=70000.0, ttft_ms=200.0, tpot_ms=20.0)
    proposal, state = ticks(config, *[long_answers] * 3)[-1]
    assert proposal.replicas < 6, "light per-token load scales down"
    assert "> SLO" not in proposal.reason
    assert "capacity" not in state and "breached_at" not in state
