"""The budget agent: caps in priority order, and alerts that name the SLO at risk."""

from __future__ import annotations

from controller.agents.budget import BudgetAgent
from controller.decide import decide
from controller.decisions import Alert, ReplicaCap, ReplicaFloor, ReplicaProposal
from tests.controller.fleet import app_doc, app_snapshot, fleet, make_config, version

CONFIG = make_config(
    app_doc("chat", versions=("v1",), team="ml", priority=5, slo_ms=300, max_replicas=8),
    app_doc("batch", versions=("v1",), team="ml", priority=0, slo_ms=2000, max_replicas=8),
    prices={"cpu": 1.5},
    budgets={"total_per_hour": 9.0},
)
SNAP = fleet(
    app_snapshot(version("chat", "v1", 2), weights={"v1": 100}),
    app_snapshot(version("batch", "v1", 2), weights={"v1": 100}),
)


def test_no_cap_while_the_plan_fits() -> None:
    wants = [ReplicaProposal("chat", "v1", 3, "scaling", "x")]
    made, state = BudgetAgent().review(SNAP, {}, CONFIG, wants)
    assert list(made) == []
    assert state == {"capped_since": {}}


def test_the_lower_priority_app_is_capped_and_its_slo_named_at_risk() -> None:
    wants = [
        ReplicaProposal("chat", "v1", 4, "scaling", "busy"),
        ReplicaProposal("batch", "v1", 4, "scaling", "busy"),
    ]
    made, state = BudgetAgent().review(SNAP, {}, CONFIG, wants)
    caps = [p for p in made if isinstance(p, ReplicaCap)]
    assert [(c.app, c.replicas) for c in caps] == [("batch", 2)]
    assert "total budget 9.00/h" in caps[0].reason
    (alert,) = [p for p in made if isinstance(p, Alert)]
    assert alert.app == "batch" and "SLO p95 <= 2000 ms at risk" in alert.message
    assert "allows 2 of the 4" in alert.message
    assert "batch/v1" in state["capped_since"]


def test_the_plan_with_the_budget_agent_fits_and_keeps_its_reasons() -> None:
    config = make_config(
        app_doc("chat", versions=("v1",), priority=5, scaling={"capacity_rps_per_replica": 10}),
        app_doc("batch", versions=("v1",), priority=0, scaling={"capacity_rps_per_replica": 10}),
        prices={"cpu": 1.0},
        budgets={"total_per_hour": 5.0},
    )
    snap = fleet(
        app_snapshot(version("chat", "v1", 4, rate=40.0), weights={"v1": 100}),
        app_snapshot(version("batch", "v1", 4, rate=40.0), weights={"v1": 100}),
    )
    decision = decide(snap, {}, config)
    plan = decision.plan
    assert plan.cost_per_hour <= 5.0
    assert plan.replicas_for("chat", "v1") == 4
    assert plan.replicas_for("batch", "v1") == 1
    assert any(a.app == "batch" and "at risk" in a.message for a in plan.alerts)
    (batch,) = [d for d in plan.replicas if d.app == "batch"]
    assert any("budget's cap" in r for r in batch.reasons)


def test_rollout_floors_yield_after_scaling_surplus_and_are_reported() -> None:
    config = make_config(
        app_doc("chat", versions=("v1", "v2"), priority=5),
        prices={"cpu": 1.0},
        budgets={"total_per_hour": 3.0},
    )
    snap = fleet(
        app_snapshot(
            version("chat", "v1", 2), version("chat", "v2", 1), weights={"v1": 95, "v2": 5}
        )
    )
    asks = [
        ReplicaFloor("chat", "v2", 3, "rollout", "room for 25%"),
        ReplicaProposal("chat", "v1", 2, "scaling", "steady"),
    ]
    made, _ = BudgetAgent().review(snap, {}, config, asks)
    caps = {p.version: p.replicas for p in made if isinstance(p, ReplicaCap)}
    assert caps == {"v1": 1, "v2": 2}, "v1's surplus above its minimum goes first"
    assert any(isinstance(p, Alert) and "rollout floor of 3" in p.message for p in made)


def test_capped_since_survives_ticks() -> None:
    wants = [ReplicaProposal("batch", "v1", 8, "scaling", "busy")]
    _, first = BudgetAgent().review(SNAP, {}, CONFIG, wants)
    later = fleet(*SNAP.apps, now=SNAP.now.replace(minute=5))
    made, second = BudgetAgent().review(later, first, CONFIG, wants)
    assert second["capped_since"] == first["capped_since"]
    assert any(isinstance(p, Alert) and "capped for 300s" in p.message for p in made)
