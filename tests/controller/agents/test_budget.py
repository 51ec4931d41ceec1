"""The budget: the arbiter fits the plan in priority order; the agent names the SLO at risk."""

from __future__ import annotations

from collections.abc import Sequence

from controller.agents.budget import BudgetAgent
from controller.arbiter import arbitrate
from controller.config import GovernorConfig
from controller.decide import decide
from controller.decisions import Alert, Plan, Proposal, ReplicaFloor, ReplicaProposal
from controller.snapshot import Snapshot
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


def review(
    snap: Snapshot, state: dict, config: GovernorConfig, asks: Sequence[Proposal]
) -> tuple[Plan, list[Alert], dict]:
    """The arbiter's plan for `asks` and the budget agent's review of it."""
    plan = arbitrate(snap, asks, config)
    alerts, next_state = BudgetAgent().review(snap, state, config, plan)
    return plan, list(alerts), next_state


def test_no_cut_and_no_alert_while_the_plan_fits() -> None:
    plan, alerts, state = review(
        SNAP, {}, CONFIG, [ReplicaProposal("chat", "v1", 3, "scaling", "x")]
    )
    assert plan.budget_cuts == ()
    assert alerts == []
    assert state == {"capped_since": {}}


def test_the_lower_priority_app_is_cut_and_its_slo_named_at_risk() -> None:
    wants = [
        ReplicaProposal("chat", "v1", 4, "scaling", "busy"),
        ReplicaProposal("batch", "v1", 4, "scaling", "busy"),
    ]
    plan, alerts, state = review(SNAP, {}, CONFIG, wants)
    assert (plan.replicas_for("chat", "v1"), plan.replicas_for("batch", "v1")) == (4, 2)
    (cut,) = plan.budget_cuts
    assert (cut.app, cut.asked, cut.allowed, cut.proposed) == ("batch", 4, 2, 4)
    assert "total budget 9.00/h took 2" in cut.cuts[0]
    (alert,) = alerts
    assert alert.app == "batch" and "SLO p95 <= 2000 ms at risk" in alert.message
    assert "allows 2 of the 4" in alert.message
    assert "batch/v1" in state["capped_since"]


def test_the_plan_fits_and_its_decisions_say_which_budget_took_replicas() -> None:
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
    assert any(r.startswith("budget: total budget 5.00/h took") for r in batch.reasons)
    assert "batch/v1" in decision.states["budget"]["capped_since"]


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
    plan, alerts, _ = review(snap, {}, config, asks)
    cut = {c.version: c.allowed for c in plan.budget_cuts}
    assert cut == {"v1": 1, "v2": 2}, "v1's surplus above its minimum goes first"
    assert any("rollout floor of 3" in a.message for a in alerts)


def test_capped_since_survives_ticks() -> None:
    wants = [ReplicaProposal("batch", "v1", 8, "scaling", "busy")]
    _, _, first = review(SNAP, {}, CONFIG, wants)
    later = fleet(*SNAP.apps, now=SNAP.now.replace(minute=5))
    _, alerts, second = review(later, first, CONFIG, wants)
    assert second["capped_since"] == first["capped_since"]
    assert any("capped for 300s" in a.message for a in alerts)
