"""A straightforward arbiter: every look-up a scan, every budget step a full re-sum.

It states the plan's rules in the plainest form, with no indexes, heaps or running sums,
so that the indexed arbiter can be checked against it on small fleets.
"""

from __future__ import annotations

from collections.abc import Sequence

from controller.agents.guardrails import clamp
from controller.arbiter import AGENT, normalize_weights, resolve_weights
from controller.config import GovernorConfig
from controller.decisions import (
    Alert,
    Plan,
    Proposal,
    ReplicaCap,
    ReplicaDecision,
    ReplicaFloor,
    ReplicaProposal,
    WeightProposal,
)
from controller.snapshot import Snapshot

EPSILON = 1e-9


def _scan_version(snapshot: Snapshot, app: str, version: str):  # type: ignore[no-untyped-def]
    for a in snapshot.apps:
        if a.name == app:
            for v in a.versions:
                if v.version == version:
                    return v
    return None


def _draft(app, version, weight, snapshot, proposals):  # type: ignore[no-untyped-def]
    def targets(p) -> bool:  # type: ignore[no-untyped-def]
        return p.app == app.name and p.version == version.name

    seen = _scan_version(snapshot, app.name, version.name)
    observed = None
    if seen is not None:
        observed = (
            seen.target_replicas if seen.target_replicas is not None else seen.running_replicas
        )
    wants = [p for p in proposals if isinstance(p, ReplicaProposal) and targets(p)]
    floors = [p for p in proposals if isinstance(p, ReplicaFloor) and targets(p)]
    caps = [p for p in proposals if isinstance(p, ReplicaCap) and targets(p)]
    reasons = [f"{p.agent}: {p.reason}" for p in wants]
    proposed = max((p.replicas for p in wants), default=None)
    if proposed is not None:
        n = proposed
    elif observed is not None:
        n = observed
        reasons.append(f"no proposal: keep the observed {observed}")
    else:
        n = version.initial_replicas
        reasons.append(f"not observed and no proposal: initial_replicas {n}")
    top = max(floors, key=lambda f: f.replicas, default=None)
    floor = top.replicas if top is not None else 0
    if top is not None and floor > n:
        reasons.append(f"raised {n} -> {floor} by {top.agent}'s floor: {top.reason}")
        n = floor
    low = min(caps, key=lambda c: c.replicas, default=None)
    if low is not None and low.replicas < n:
        reasons.append(f"cut {n} -> {max(low.replicas, 0)} by {low.agent}'s cap: {low.reason}")
        n = low.replicas
    may_idle = version.min_replicas == 0 and app.scaling.scale_to_zero
    hard = max(version.min_replicas, 1 if (weight > 0 and not may_idle) or floor >= 1 else 0)
    bounded = clamp(n, hard, version.max_replicas)
    if bounded > n:
        why = f"min_replicas {version.min_replicas}"
        if hard > version.min_replicas:
            why = "one replica for a version with traffic or under rollout"
        reasons.append(f"raised {n} -> {bounded}: {why}")
    elif bounded < n:
        reasons.append(f"lowered {n} -> {bounded}: max_replicas {version.max_replicas}")
    return bounded, hard, floor, proposed, reasons


def _fit(claims, total, teams):  # type: ignore[no-untyped-def]
    """Remove one replica at a time, re-summing the scope's cost before each removal."""
    alloc = {c["key"]: max(c["want"], c["hard"]) for c in claims}
    floor_level = {c["key"]: max(c["hard"], min(c["floor"], alloc[c["key"]])) for c in claims}
    hard_level = {c["key"]: c["hard"] for c in claims}
    scopes = [
        (f"team {t} budget", [c for c in claims if c["team"] == t], limit)
        for t, limit in sorted(teams.items())
    ]
    if total is not None:
        scopes.append(("total budget", claims, total))
    unmet, cuts = [], {}

    def cost(scope):  # type: ignore[no-untyped-def]
        return sum(alloc[c["key"]] * c["price"] for c in scope)

    for label, scope, limit in scopes:
        before = dict(alloc)
        for level in (floor_level, hard_level):
            while cost(scope) > limit + EPSILON:
                movable = [c for c in scope if c["price"] > 0 and alloc[c["key"]] > level[c["key"]]]
                if not movable:
                    break
                victim = min(
                    movable,
                    key=lambda c: (
                        c["priority"],
                        -(alloc[c["key"]] - level[c["key"]]),
                        -c["price"],
                        c["key"],
                    ),
                )
                alloc[victim["key"]] -= 1
        for c in scope:
            if alloc[c["key"]] < before[c["key"]]:
                cuts.setdefault(c["key"], []).append(
                    f"{label} {limit:.2f}/h took {before[c['key']] - alloc[c['key']]} "
                    f"({before[c['key']]} -> {alloc[c['key']]}; "
                    f"team priority {c['priority'][0]}, app priority {c['priority'][1]})"
                )
        if cost(scope) > limit + EPSILON:
            unmet.append(
                f"{label} {limit:.2f}/h is below what the minimum replicas cost "
                f"({cost(scope):.2f}/h)"
            )
    return alloc, unmet, cuts


def reference_plan(
    snapshot: Snapshot, proposals: Sequence[Proposal], config: GovernorConfig
) -> Plan:
    """The plan by the rules, computed the slow and obvious way."""
    weights, drafts = [], []
    for app in config.applications:
        observed = next((a for a in snapshot.apps if a.name == app.name), None)
        decision = resolve_weights(
            app, observed, [p for p in proposals if isinstance(p, WeightProposal)]
        )
        weights.append(decision)
        team = config.budgets.teams.get(app.team)
        priority = (team.priority if team else 0, app.priority)
        price = (app.resources.gpus_per_replica or 1.0) * config.prices[app.resources.gpu_type]
        for version in app.versions:
            w = decision.weights.get(version.name, 0)
            bounded, hard, floor, _, reasons = _draft(app, version, w, snapshot, proposals)
            drafts.append(
                {
                    "key": (app.name, version.name),
                    "team": app.team,
                    "priority": priority,
                    "price": price,
                    "want": bounded,
                    "floor": floor,
                    "hard": hard,
                    "reasons": reasons,
                }
            )
    teams = {t: b.per_hour for t, b in config.budgets.teams.items()}
    alloc, unmet, cuts = _fit(drafts, config.budgets.total_per_hour, teams)
    decisions = [
        ReplicaDecision(
            *d["key"],
            alloc[d["key"]],
            (*d["reasons"], *(f"budget: {c}" for c in cuts.get(d["key"], ()))),
        )
        for d in drafts
    ]
    alerts = [p for p in proposals if isinstance(p, Alert)]
    alerts += [
        Alert(app="*", agent=AGENT, message=f"over budget: {line}; kept the minimum replicas")
        for line in unmet
    ]
    return Plan(
        replicas=tuple(decisions),
        weights=tuple(weights),
        alerts=tuple(alerts),
        cost_per_hour=sum(alloc[d["key"]] * d["price"] for d in drafts),
    )


__all__ = ["normalize_weights", "reference_plan"]
