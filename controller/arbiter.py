"""Merges every agent's proposals into one Plan that keeps the hard invariants.

Precedence, strongest first:
1. bounds: `min_replicas..max_replicas`, and at least one replica for a version that
   gets traffic or is under rollout (a version of an app that allows scale to zero may
   sit at 0 while it has weight: the scaling agent brings it back when requests arrive);
2. budget: `ReplicaCap`s, then the arbiter's own fit to the total and team budgets, where
   replicas yield in priority order (`costs.fit_to_budget`);
3. floors (`ReplicaFloor`, e.g. a rollout sizing its candidate or holding a draining one);
4. scaling (`ReplicaProposal`; several for one version: the largest wins).

A version nobody proposes for keeps its observed target (else running, else
`initial_replicas`). Weights are whole percents that sum to exactly 100 over the app's
configured versions. When the bounds alone exceed a budget the plan keeps the minimum and
says so in an Alert. Every decision carries the reasons that shaped it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from controller.agents.costs import Claim, Fit, fit_to_budget, team_priority
from controller.agents.guardrails import clamp
from controller.config import AppConfig, GovernorConfig, VersionConfig
from controller.decisions import (
    Alert,
    Plan,
    Proposal,
    ReplicaCap,
    ReplicaDecision,
    ReplicaFloor,
    ReplicaProposal,
    WeightDecision,
    WeightProposal,
)
from controller.snapshot import AppSnapshot, Snapshot

AGENT = "arbiter"


@dataclass(frozen=True)
class Draft:
    """One version's replicas after bounds, floors and caps, before the budget."""

    app: str
    version: str
    observed: int | None
    replicas: int
    hard: int
    """The least the invariants allow."""
    floor: int
    proposed: int | None
    """The largest ReplicaProposal, if any."""
    reasons: tuple[str, ...]


def normalize_weights(
    weights: Mapping[str, float], versions: Sequence[str], fallback: str
) -> dict[str, int]:
    """Whole, non-negative percents over `versions` summing to 100 (largest remainder)."""
    clean = {v: max(0.0, float(weights.get(v, 0) or 0)) for v in versions}
    total = sum(clean.values())
    if total <= 0:
        return {v: 100 if v == fallback else 0 for v in versions}
    exact = {v: clean[v] * 100 / total for v in versions}
    out = {v: int(exact[v]) for v in versions}
    by_remainder = sorted(versions, key=lambda v: (-(exact[v] - out[v]), versions.index(v)))
    for v in by_remainder[: 100 - sum(out.values())]:
        out[v] += 1
    return out


def resolve_weights(
    app: AppConfig, observed: AppSnapshot | None, proposals: Sequence[Proposal]
) -> WeightDecision:
    """The app's weights: the first agent's proposal, else the observed ones, else the stable."""
    names = [v.name for v in app.versions]
    fallback = app.stable_version
    seen = observed.weights if observed is not None else None
    wanted = [p for p in proposals if isinstance(p, WeightProposal) and p.app == app.name]
    if wanted:
        chosen = wanted[0]
        weights = normalize_weights(chosen.weights, names, fallback)
        reasons = [f"{chosen.agent}: {chosen.reason}"]
        if weights != {v: chosen.weights.get(v, 0) for v in names}:
            reasons.append(f"normalized {chosen.weights} to {weights}")
        reasons += [
            f"ignored {p.agent}'s {p.weights}: {chosen.agent} proposed first"
            for p in wanted[1:]
            if normalize_weights(p.weights, names, fallback) != weights
        ]
    elif seen is not None:
        weights = normalize_weights(seen, names, fallback)
        reasons = [f"no proposal: keep the observed weights {weights}"]
    else:
        weights = normalize_weights({}, names, fallback)
        reasons = [f"no proposal and no observed weights: all traffic to {fallback}"]
    return WeightDecision(app.name, weights, tuple(reasons))


def _observed_replicas(snapshot: Snapshot, app: str, version: str) -> int | None:
    seen = snapshot.version(app, version)
    if seen is None:
        return None
    return seen.target_replicas if seen.target_replicas is not None else seen.running_replicas


def _hard_minimum(app: AppConfig, version: VersionConfig, weight: int, floor: int) -> int:
    """min_replicas, raised to 1 for a version that serves traffic or is under rollout."""
    may_idle_at_zero = version.min_replicas == 0 and app.scaling.scale_to_zero
    serving = weight > 0 and not may_idle_at_zero
    return max(version.min_replicas, 1 if serving or floor >= 1 else 0)


def _draft(
    app: AppConfig,
    version: VersionConfig,
    weight: int,
    snapshot: Snapshot,
    proposals: Sequence[Proposal],
    apply_caps: bool,
) -> Draft:
    def targets(p: ReplicaProposal | ReplicaFloor | ReplicaCap) -> bool:
        return p.app == app.name and p.version == version.name

    observed = _observed_replicas(snapshot, app.name, version.name)
    wants = [p for p in proposals if isinstance(p, ReplicaProposal) and targets(p)]
    floors = [p for p in proposals if isinstance(p, ReplicaFloor) and targets(p)]
    caps = [p for p in proposals if isinstance(p, ReplicaCap) and targets(p)] if apply_caps else []
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
    hard = _hard_minimum(app, version, weight, floor)
    bounded = clamp(n, hard, version.max_replicas)
    if bounded > n:
        why = f"min_replicas {version.min_replicas}"
        if hard > version.min_replicas:
            why = "one replica for a version with traffic or under rollout"
        reasons.append(f"raised {n} -> {bounded}: {why}")
    elif bounded < n:
        reasons.append(f"lowered {n} -> {bounded}: max_replicas {version.max_replicas}")
    return Draft(app.name, version.name, observed, bounded, hard, floor, proposed, tuple(reasons))


def draft_plan(
    snapshot: Snapshot,
    proposals: Sequence[Proposal],
    config: GovernorConfig,
    apply_caps: bool = True,
) -> tuple[list[WeightDecision], list[Draft]]:
    """Weights and per-version replicas after bounds, floors and (optionally) caps."""
    weights, drafts = [], []
    for app in config.applications:
        decision = resolve_weights(app, snapshot.app(app.name), proposals)
        weights.append(decision)
        for version in app.versions:
            w = decision.weights.get(version.name, 0)
            drafts.append(_draft(app, version, w, snapshot, proposals, apply_caps))
    return weights, drafts


def claims_of(drafts: Sequence[Draft], config: GovernorConfig) -> list[Claim]:
    """The drafts as budget claims: price, priority, and how far each may be cut."""
    claims = []
    for d in drafts:
        app = config.app(d.app)
        claims.append(
            Claim(
                app=d.app,
                version=d.version,
                team=app.team,
                priority=team_priority(config, app),
                price=config.replica_price(app),
                want=d.replicas,
                floor=d.floor,
                hard=d.hard,
            )
        )
    return claims


def fit_drafts(drafts: Sequence[Draft], config: GovernorConfig) -> tuple[list[Claim], Fit]:
    """The drafts fitted to the configured budgets."""
    claims = claims_of(drafts, config)
    budgets = config.budgets
    teams = {name: b.per_hour for name, b in budgets.teams.items()}
    return claims, fit_to_budget(claims, budgets.total_per_hour, teams)


def _budget_notes(config: GovernorConfig, claims: Sequence[Claim], fit: Fit) -> list[str]:
    cost = sum(fit.replicas[c.key] * c.price for c in claims)
    notes = [f"fleet cost {cost:.2f}/h"]
    if config.budgets.total_per_hour is not None:
        notes[0] += f" of total budget {config.budgets.total_per_hour:.2f}/h"
    for team, budget in sorted(config.budgets.teams.items()):
        spent = sum(fit.replicas[c.key] * c.price for c in claims if c.team == team)
        notes.append(f"team {team} {spent:.2f}/h of {budget.per_hour:.2f}/h")
    return notes


def arbitrate(snapshot: Snapshot, proposals: Sequence[Proposal], config: GovernorConfig) -> Plan:
    """One Plan for every configured version and app that keeps every invariant."""
    weights, drafts = draft_plan(snapshot, proposals, config)
    claims, fit = fit_drafts(drafts, config)
    decisions = []
    for d in drafts:
        n = fit.replicas[(d.app, d.version)]
        reasons = list(d.reasons)
        reasons += [f"budget: {cut}" for cut in fit.cuts.get((d.app, d.version), ())]
        decisions.append(ReplicaDecision(d.app, d.version, n, tuple(reasons)))
    alerts = [p for p in proposals if isinstance(p, Alert)]
    alerts += [
        Alert(app="*", agent=AGENT, message=f"over budget: {line}; kept the minimum replicas")
        for line in fit.unmet
    ]
    cost = sum(fit.replicas[c.key] * c.price for c in claims)
    return Plan(
        replicas=tuple(decisions),
        weights=tuple(weights),
        alerts=tuple(alerts),
        cost_per_hour=cost,
        notes=tuple(_budget_notes(config, claims, fit)),
    )
