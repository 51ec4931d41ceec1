"""The invariants every plan keeps, checked independently of the arbiter's code."""

from __future__ import annotations

from collections.abc import Sequence

from controller.config import GovernorConfig
from controller.decisions import Plan, Proposal, ReplicaFloor

EPS = 1e-6


def check_plan(plan: Plan, config: GovernorConfig, proposals: Sequence[Proposal]) -> None:
    """Assert bounds, weights, serving minimums, cost and budget invariants of `plan`."""
    expected = {(a.name, v.name) for a in config.applications for v in a.versions}
    decided = [(d.app, d.version) for d in plan.replicas]
    assert sorted(decided) == sorted(expected), "one decision per configured version"
    assert sorted(w.app for w in plan.weights) == sorted(a.name for a in config.applications)
    floors = {
        (p.app, p.version) for p in proposals if isinstance(p, ReplicaFloor) and p.replicas >= 1
    }
    cost = 0.0
    hard_cost: dict[str, float] = {}
    hard_total = 0.0
    for app in config.applications:
        weights = plan.weights_for(app.name)
        assert weights is not None
        assert set(weights) == {v.name for v in app.versions}
        assert all(isinstance(w, int) and w >= 0 for w in weights.values()), weights
        assert sum(weights.values()) == 100, weights
        price = config.replica_price(app)
        for v in app.versions:
            n = plan.replicas_for(app.name, v.name)
            assert n is not None and v.min_replicas <= n <= v.max_replicas, (v, n)
            may_idle = v.min_replicas == 0 and app.scaling.scale_to_zero
            serving = weights[v.name] > 0 and not may_idle
            under_rollout = (app.name, v.name) in floors
            if serving or under_rollout:
                assert n >= 1, f"{app.name}/{v.name} has traffic or a rollout but 0 replicas"
            hard = max(v.min_replicas, 1 if serving or under_rollout else 0)
            hard_cost[app.team] = hard_cost.get(app.team, 0.0) + hard * price
            hard_total += hard * price
            cost += n * price
    for d in plan.replicas:
        assert d.reasons, f"{d.app}/{d.version} has no reason"
    assert abs(plan.cost_per_hour - cost) < EPS
    budgets = config.budgets
    feasible = all(
        hard_cost.get(team, 0.0) <= b.per_hour + EPS for team, b in budgets.teams.items()
    ) and (budgets.total_per_hour is None or hard_total <= budgets.total_per_hour + EPS)
    if not feasible:
        assert any("over budget" in a.message for a in plan.alerts)
        return
    if budgets.total_per_hour is not None:
        assert cost <= budgets.total_per_hour + EPS, (cost, budgets.total_per_hour)
    for team, b in budgets.teams.items():
        spent = sum(
            (plan.replicas_for(a.name, v.name) or 0) * config.replica_price(a)
            for a in config.applications
            if a.team == team
            for v in a.versions
        )
        assert spent <= b.per_hour + EPS, (team, spent, b.per_hour)
