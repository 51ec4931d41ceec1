"""Merges every agent's proposals into one Plan that keeps the hard invariants.

Precedence, strongest first:
1. bounds: `min_replicas..max_replicas`, and at least one replica for a version that
   gets traffic or is under rollout (a version of an app that allows scale to zero may
   sit at 0 while it has weight: the scaling agent brings it back when requests arrive);
   while the controller warms up after a start (`Snapshot.warming_up`: less than a full
   window observed), the observed count is a bound too, so nothing, the budget included,
   cuts capacity on data that covers part of a window;
2. budget: the arbiter's last stage fits the whole draft to the total and team budgets,
   where replicas yield in priority order (`budget_fit.fit_to_budget`); `ReplicaCap`s
   from agents apply before it;
3. floors (`ReplicaFloor`, e.g. a rollout sizing its candidate or holding a draining one);
4. scaling (`ReplicaProposal`; several for one version: the largest wins).

A version nobody proposes for keeps its observed target (else running, else
`initial_replicas`). Weights are whole percents that sum to exactly 100 over the app's
configured versions. When the bounds alone exceed a budget the plan keeps the minimum and
says so in an Alert. Every decision carries the reasons that shaped it, and every version
the budget cut is listed in `Plan.budget_cuts` for the budget agent's alerts.

Proposals are indexed by (app, version) once per tick and the plan is drafted once, so
a tick is linear in the fleet and the proposals.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from controller.agents.guardrails import clamp
from controller.budget_fit import Claim, Fit, Key, fit_to_budget, team_priority
from controller.config import AppConfig, GovernorConfig, VersionConfig
from controller.decisions import (
    Alert,
    BudgetCut,
    Plan,
    Proposal,
    ReplicaCap,
    ReplicaDecision,
    ReplicaFloor,
    ReplicaProposal,
    WeightDecision,
    WeightProposal,
)
from controller.snapshot import AppSnapshot, Snapshot, VersionSnapshot

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


@dataclass
class Proposals:
    """One tick's proposals indexed by what they target, in the order they were made."""

    wants: dict[Key, list[ReplicaProposal]] = field(default_factory=dict)
    floors: dict[Key, list[ReplicaFloor]] = field(default_factory=dict)
    caps: dict[Key, list[ReplicaCap]] = field(default_factory=dict)
    weights: dict[str, list[WeightProposal]] = field(default_factory=dict)
    alerts: list[Alert] = field(default_factory=list)


def index_proposals(proposals: Sequence[Proposal]) -> Proposals:
    """Group proposals by (app, version), weights by app, in one pass."""
    out = Proposals()
    for p in proposals:
        if isinstance(p, ReplicaProposal):
            out.wants.setdefault((p.app, p.version), []).append(p)
        elif isinstance(p, ReplicaFloor):
            out.floors.setdefault((p.app, p.version), []).append(p)
        elif isinstance(p, ReplicaCap):
            out.caps.setdefault((p.app, p.version), []).append(p)
        elif isinstance(p, WeightProposal):
            out.weights.setdefault(p.app, []).append(p)
        else:
            out.alerts.append(p)
    return out


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


def _observed_replicas(seen: VersionSnapshot | None) -> int | None:
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
    seen: VersionSnapshot | None,
    asks: Proposals,
    warming_up: bool = False,
) -> Draft:
    key = (app.name, version.name)
    observed = _observed_replicas(seen)
    wants = asks.wants.get(key, [])
    floors = asks.floors.get(key, [])
    caps = asks.caps.get(key, [])
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
    least = _hard_minimum(app, version, weight, floor)
    hard = least
    if warming_up and observed is not None:
        hard = max(least, min(observed, version.max_replicas))
    bounded = clamp(n, hard, version.max_replicas)
    warm_up = "no capacity is cut until a full window has been observed since the start"
    if hard > least and bounded <= n:
        reasons.append(f"at least the observed {hard}: {warm_up}")
    if bounded > n:
        why = f"min_replicas {version.min_replicas}"
        if hard > least:
            why = warm_up
        elif hard > version.min_replicas:
            why = "one replica for a version with traffic or under rollout"
        reasons.append(f"raised {n} -> {bounded}: {why}")
    elif bounded < n:
        reasons.append(f"lowered {n} -> {bounded}: max_replicas {version.max_replicas}")
    return Draft(app.name, version.name, observed, bounded, hard, floor, proposed, tuple(reasons))


def draft_plan(
    snapshot: Snapshot, proposals: Sequence[Proposal], config: GovernorConfig
) -> tuple[list[WeightDecision], list[Draft], list[Claim]]:
    """Weights, per-version replicas after bounds, floors and caps, and their budget claims."""
    asks = index_proposals(proposals)
    weights, drafts, claims = [], [], []
    for app in config.applications:
        observed = snapshot.app(app.name)
        decision = resolve_weights(app, observed, asks.weights.get(app.name, ()))
        weights.append(decision)
        priority = team_priority(config, app)
        price = config.replica_price(app)
        for version in app.versions:
            w = decision.weights.get(version.name, 0)
            seen = observed.version(version.name) if observed is not None else None
            d = _draft(app, version, w, seen, asks, snapshot.warming_up)
            drafts.append(d)
            claims.append(
                Claim(d.app, d.version, app.team, priority, price, d.replicas, d.floor, d.hard)
            )
    return weights, drafts, claims


def fit_claims(claims: Sequence[Claim], config: GovernorConfig) -> Fit:
    """The claims fitted to the configured budgets."""
    budgets = config.budgets
    teams = {name: b.per_hour for name, b in budgets.teams.items()}
    return fit_to_budget(claims, budgets.total_per_hour, teams)


def _budget_notes(config: GovernorConfig, claims: Sequence[Claim], fit: Fit) -> list[str]:
    cost = sum(fit.replicas[c.key] * c.price for c in claims)
    notes = [f"fleet cost {cost:.2f}/h"]
    if config.budgets.total_per_hour is not None:
        notes[0] += f" of total budget {config.budgets.total_per_hour:.2f}/h"
    spent: dict[str, float] = {}
    for c in claims:
        spent[c.team] = spent.get(c.team, 0.0) + fit.replicas[c.key] * c.price
    for team, budget in sorted(config.budgets.teams.items()):
        notes.append(f"team {team} {spent.get(team, 0.0):.2f}/h of {budget.per_hour:.2f}/h")
    return notes


def _budget_cut(d: Draft, claim: Claim, fit: Fit) -> BudgetCut | None:
    allowed = fit.replicas[claim.key]
    if allowed >= d.replicas:
        return None
    cuts = fit.cuts.get(claim.key, ())
    return BudgetCut(d.app, d.version, d.replicas, allowed, d.proposed, d.floor, claim.price, cuts)


def arbitrate(snapshot: Snapshot, proposals: Sequence[Proposal], config: GovernorConfig) -> Plan:
    """One Plan for every configured version and app that keeps every invariant."""
    weights, drafts, claims = draft_plan(snapshot, proposals, config)
    fit = fit_claims(claims, config)
    decisions, budget_cuts = [], []
    for d, claim in zip(drafts, claims, strict=True):
        n = fit.replicas[claim.key]
        reasons = list(d.reasons)
        reasons += [f"budget: {cut}" for cut in fit.cuts.get(claim.key, ())]
        decisions.append(ReplicaDecision(d.app, d.version, n, tuple(reasons)))
        cut = _budget_cut(d, claim, fit)
        if cut is not None:
            budget_cuts.append(cut)
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
        budget_cuts=tuple(budget_cuts),
    )
