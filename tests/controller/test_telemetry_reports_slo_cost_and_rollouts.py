"""The daemon's metrics tell an operator SLO state, cost against budget and rollout verdicts."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import pytest

from controller.config import SLO
from controller.decisions import Alert, Plan, ReplicaDecision, WeightDecision
from controller.slo import attainment, burn_rate, count_within
from controller.snapshot import AppSnapshot, LatencyHistogram, Snapshot, VersionSnapshot
from controller.telemetry import Telemetry
from tests.controller.sample_config import governor_config

NOW = datetime(2026, 1, 1, tzinfo=UTC)
HIST = LatencyHistogram(bounds_ms=(100.0, 200.0, 400.0, math.inf), counts=(50.0, 80.0, 90.0, 90.0))


def config() -> Any:
    return governor_config(
        budgets={"total_per_hour": 3.0, "teams": {"search": {"per_hour": 2.0}}},
        applications=[
            {
                "name": "embed",
                "team": "search",
                "slo": {"latency_p95_ms": 200, "target_attainment": 0.9},
                "versions": [
                    {"name": "v1", "deployment": "model_v1"},
                    {"name": "v2", "deployment": "model_v2", "min_replicas": 0},
                ],
            }
        ],
    )


def snapshot(**v1: Any) -> Snapshot:
    fields = {
        "running_replicas": 2,
        "starting_replicas": 1,
        "request_rate": 10.0,
        "request_count": 100.0,
        "error_count": 10.0,
        "error_rate": 0.1,
        "latency_histogram": HIST,
        "latency_p95_ms": 250.0,
        **v1,
    }
    versions = (
        VersionSnapshot("embed", "v1", "model_v1", **fields),
        VersionSnapshot("embed", "v2", "model_v2", running_replicas=0, request_count=0.0),
    )
    app = AppSnapshot("embed", versions, weights={"v1": 100, "v2": 0})
    return Snapshot(now=NOW, apps=(app,))


PLAN = Plan(
    replicas=(
        ReplicaDecision("embed", "v1", 3, ("load",)),
        ReplicaDecision("embed", "v2", 0, ("idle",)),
    ),
    weights=(WeightDecision("embed", {"v1": 100, "v2": 0}, ("stable",)),),
    alerts=(Alert("embed", "budget", "SLO at risk: the budget caps v1 at 3"),),
    cost_per_hour=1.5,
)


def value(t: Telemetry, name: str, **labels: str) -> float | None:
    return t.registry.get_sample_value(name, labels)


def test_count_within_interpolates_inside_the_bucket() -> None:
    assert count_within(HIST, 100) == 50
    assert count_within(HIST, 150) == 65
    assert count_within(HIST, 1000) == 90
    assert count_within(HIST, 50) == 25


def test_attainment_counts_slow_and_failed_requests_as_misses() -> None:
    slo = SLO(latency_p95_ms=200, target_attainment=0.9)
    app = snapshot().app("embed")
    assert app is not None
    assert attainment(app, slo) == pytest.approx(0.8)
    assert burn_rate(0.8, slo) == pytest.approx(2.0)
    assert burn_rate(1.0, SLO(latency_p95_ms=1, target_attainment=1)) == 0.0


def test_attainment_is_unknown_when_counts_are_missing_or_there_is_no_traffic() -> None:
    slo = SLO(latency_p95_ms=200)
    missing = snapshot(request_count=None).app("embed")
    idle = snapshot(request_count=0.0).app("embed")
    assert missing is not None and idle is not None
    assert attainment(missing, slo) is None
    assert attainment(idle, slo) is None


def test_slo_cost_budget_and_replica_gauges() -> None:
    t = Telemetry()
    t.record(config(), snapshot(), PLAN, {})
    assert value(t, "governor_slo_attainment_ratio", app="embed") == pytest.approx(0.8)
    assert value(t, "governor_slo_error_budget_burn_rate", app="embed") == pytest.approx(2.0)
    assert value(t, "governor_slo_target_attainment_ratio", app="embed") == 0.9
    assert value(t, "governor_error_ratio", app="embed", version="v1") == pytest.approx(0.1)
    assert value(t, "governor_desired_replicas", app="embed", version="v1") == 3
    assert value(t, "governor_running_replicas", app="embed", version="v1") == 2
    assert value(t, "governor_starting_replicas", app="embed", version="v1") == 1
    assert value(t, "governor_observed_traffic_weight_percent", app="embed", version="v1") == 100
    # 3 planned replicas at 0.5/h; 3 observed (2 running + 1 starting).
    assert value(t, "governor_cost_per_hour", app="embed", team="search") == 1.5
    assert value(t, "governor_team_cost_per_hour", team="search") == 1.5
    assert value(t, "governor_observed_cost_per_hour", app="embed", team="search") == 1.5
    assert value(t, "governor_cost_per_1k_requests", app="embed") == pytest.approx(1.5 / 36)
    assert value(t, "governor_team_cost_per_1k_requests", team="search") == pytest.approx(1.5 / 36)
    assert value(t, "governor_budget_headroom_per_hour", scope="total") == 1.5
    assert value(t, "governor_budget_headroom_per_hour", scope="search") == 0.5
    assert value(t, "governor_plan_alerts", app="embed") == 1
    assert value(t, "governor_control_interval_seconds") == 5


def test_unknown_attainment_is_exported_as_nan_not_as_a_guess() -> None:
    t = Telemetry()
    t.record(config(), snapshot(request_count=None), PLAN, {})
    assert math.isnan(value(t, "governor_slo_attainment_ratio", app="embed") or 0.0)
    assert math.isnan(value(t, "governor_slo_error_budget_burn_rate", app="embed") or 0.0)


def token_config(**slo: float) -> Any:
    doc = config()
    app = doc.applications[0]
    return doc.model_copy(
        update={"applications": [app.model_copy(update={"slo": app.slo.model_copy(update=slo)})]}
    )


def test_token_latency_burn_is_reported_for_each_target_the_slo_sets() -> None:
    t = Telemetry()
    # 90 sequences: TTFT 50 within 100 ms, 30 more within 200 ms; TPOT all within 100 ms.
    tpot = LatencyHistogram((100.0, math.inf), (90.0, 90.0))
    snap = snapshot(ttft_histogram=HIST, tpot_histogram=tpot)
    t.record(token_config(ttft_p95_ms=100.0, tpot_p95_ms=100.0), snap, PLAN, {})
    ttft = value(t, "governor_slo_token_burn_rate", app="embed", measure="ttft")
    assert ttft == pytest.approx((1 - 50 / 90) / 0.1)
    assert value(t, "governor_slo_token_burn_rate", app="embed", measure="tpot") == 0.0


def test_token_burn_is_nan_without_sequences_and_absent_without_a_target() -> None:
    t = Telemetry()
    t.record(token_config(ttft_p95_ms=100.0), snapshot(), PLAN, {})
    assert math.isnan(value(t, "governor_slo_token_burn_rate", app="embed", measure="ttft") or 0)
    assert value(t, "governor_slo_token_burn_rate", app="embed", measure="tpot") is None
    t.record(config(), snapshot(), PLAN, {})
    assert value(t, "governor_slo_token_burn_rate", app="embed", measure="ttft") is None


def test_each_new_rollout_verdict_is_counted_once() -> None:
    t = Telemetry()
    views = [
        {"phase": "canary", "step": 0, "verdict": None},
        {"phase": "canary", "step": 0, "verdict": "inconclusive"},
        {"phase": "canary", "step": 0, "verdict": "inconclusive"},
        {"phase": "canary", "step": 1, "verdict": "pass"},
        {"phase": "canary", "step": 1, "verdict": "pass"},
        {"phase": "rolling-back", "step": None, "verdict": "fail"},
    ]
    for view in views:
        t.record(config(), snapshot(), PLAN, {"embed": view})
    counted = {
        r: value(t, "governor_rollout_verdicts_total", app="embed", result=r)
        for r in ("inconclusive", "pass", "fail")
    }
    assert counted == {"inconclusive": 1, "pass": 1, "fail": 1}
    assert value(t, "governor_rollout_phase", app="embed", phase="rolling-back") == 1


def test_a_verdict_standing_when_the_daemon_starts_is_not_counted_again() -> None:
    t = Telemetry()
    t.record(config(), snapshot(), PLAN, {"embed": {"phase": "promoted", "verdict": "pass"}})
    assert value(t, "governor_rollout_verdicts_total", app="embed", result="pass") is None
