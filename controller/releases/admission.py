"""Admission of a release: every rule of the release policy it breaks.

Pure: no I/O and no clock; the time comes in as `now`. Each rule is checked on its own and
every refusal is returned, in the order of `RULES`, so a release is refused once with
everything that stands in its way.

The budget rule prices the canary as the arbiter prices a plan: `GovernorConfig.replica_price`
per replica, and a team's spend now is the cost of the arbiter's draft with no proposals
(each version keeps its observed replicas, within its bounds), summed exactly in the
decimals the prices were written in, as `budget_fit` sums them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from controller.arbiter import draft_plan
from controller.budget_fit import Claim
from controller.config import AppConfig, GovernorConfig
from controller.releases.policy import ReleasePolicy
from controller.releases.request import ReleaseRequest
from controller.snapshot import Snapshot

RULES = ("source", "metadata", "score", "budget", "gpu-type", "gpus-per-replica", "freeze")
"""Every rule a refusal may name, in the order they are checked."""


@dataclass(frozen=True)
class Refusal:
    """One rule a release breaks: which rule, and the value that broke it."""

    rule: str
    """One of RULES."""
    message: str
    """What broke the rule, naming the value."""


def admit(
    request: ReleaseRequest,
    app: AppConfig,
    config: GovernorConfig,
    policy: ReleasePolicy,
    snapshot: Snapshot,
    now: datetime,
) -> list[Refusal]:
    """Every rule of the policy the release breaks (empty: admitted)."""
    if request.app != app.name:
        raise ValueError(f"the request releases {request.app!r}, not the application {app.name!r}")
    if now.utcoffset() is None:
        raise ValueError(f"now must carry a time zone, got the naive {now.isoformat()}")
    refusals = [*_source(request, policy), *_metadata(request, policy), *_scores(request, policy)]
    if policy.budget_covers_canary:
        refusals += _budget(app, config, snapshot)
    refusals += _team_limits(app, policy)
    refusals += _freeze(app, policy, now)
    return refusals


def _source(request: ReleaseRequest, policy: ReleasePolicy) -> list[Refusal]:
    allowed = policy.allowed_sources
    if not allowed or request.model.startswith(tuple(allowed)):
        return []
    return [
        Refusal(
            "source",
            f"model source {request.model!r} is not under an allowed prefix: {list(allowed)}",
        )
    ]


def _metadata(request: ReleaseRequest, policy: ReleasePolicy) -> list[Refusal]:
    out = []
    for key in policy.required_meta:
        if key not in request.meta:
            out.append(Refusal("metadata", f"required metadata {key!r} is missing"))
        elif not request.meta[key].strip():
            out.append(Refusal("metadata", f"required metadata {key!r} is empty"))
    return out


def _scores(request: ReleaseRequest, policy: ReleasePolicy) -> list[Refusal]:
    out = []
    for name, minimum in policy.min_scores.items():
        score = request.scores.get(name)
        if score is None:
            out.append(
                Refusal("score", f"score {name!r} is missing (the policy asks for >= {minimum:g})")
            )
        elif not math.isfinite(score) or score < minimum:
            out.append(
                Refusal("score", f"score {name!r} is {score:g}, below the minimum {minimum:g}")
            )
    return out


def canary_replicas(app: AppConfig, snapshot: Snapshot) -> int:
    """Replicas the canary holds at its last step: as many as the stable version runs now.

    The stable version's observed target, else its `min_replicas`; at least one.
    """
    stable = app.stable_version
    seen = snapshot.version(app.name, stable)
    if seen is not None and seen.target_replicas is not None:
        return max(seen.target_replicas, 1)
    return max(app.version(stable).min_replicas, 1)


def _cost(claims: Iterable[Claim]) -> Decimal:
    """Cost per hour of the claims' replicas, summed exactly."""
    return sum((Decimal(repr(c.price)) * c.want for c in claims), Decimal(0))


def _budget(app: AppConfig, config: GovernorConfig, snapshot: Snapshot) -> list[Refusal]:
    replicas = canary_replicas(app, snapshot)
    canary = Decimal(repr(config.replica_price(app))) * replicas
    _, _, claims = draft_plan(snapshot, (), config)
    noun = "replica adds" if replicas == 1 else "replicas add"
    adds = f"the canary's {replicas} {noun} {canary:.2f}/h"
    out = []
    team = config.budgets.teams.get(app.team)
    if team is not None:
        spend = _cost(c for c in claims if c.team == app.team)
        if spend + canary > Decimal(repr(team.per_hour)):
            out.append(
                Refusal(
                    "budget",
                    f"team {app.team!r} spends {spend:.2f}/h; {adds}, over its budget of "
                    f"{team.per_hour:.2f}/h",
                )
            )
    total = config.budgets.total_per_hour
    if total is not None:
        spend = _cost(claims)
        if spend + canary > Decimal(repr(total)):
            out.append(
                Refusal(
                    "budget",
                    f"the fleet spends {spend:.2f}/h; {adds}, over the total budget of "
                    f"{total:.2f}/h",
                )
            )
    return out


def _team_limits(app: AppConfig, policy: ReleasePolicy) -> list[Refusal]:
    limits = policy.teams.get(app.team)
    if limits is None:
        return []
    out = []
    gpu_type = app.resources.gpu_type
    if limits.gpu_types is not None and gpu_type not in limits.gpu_types:
        out.append(
            Refusal(
                "gpu-type",
                f"application {app.name!r} runs on gpu type {gpu_type!r}; team {app.team!r} "
                f"may use only {limits.gpu_types}",
            )
        )
    gpus = app.resources.gpus_per_replica
    most = limits.max_gpus_per_replica
    if most is not None and gpus > most:
        out.append(
            Refusal(
                "gpus-per-replica",
                f"application {app.name!r} holds {gpus:g} GPUs per replica; team {app.team!r} "
                f"may hold at most {most:g}",
            )
        )
    return out


def _freeze(app: AppConfig, policy: ReleasePolicy, now: datetime) -> list[Refusal]:
    return [
        Refusal(
            "freeze",
            f"releases are frozen from {w.start.isoformat()} to {w.end.isoformat()}: "
            f"{w.reason or 'no reason given'}",
        )
        for w in policy.freeze
        if w.freezes(app.name, app.team, now)
    ]
