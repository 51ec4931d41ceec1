"""Fleet cost per hour and the priority order in which replicas yield to a budget.

The budget agent uses `fit_to_budget` to decide its caps; the arbiter uses the same
function as the last word, so a plan never exceeds a budget even without the agent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from controller.config import AppConfig, GovernorConfig

Key = tuple[str, str]
"""(application, version)."""

EPSILON = 1e-9


@dataclass(frozen=True)
class Claim:
    """What one version would like, and how far a budget may push it down."""

    app: str
    version: str
    team: str
    priority: tuple[int, int]
    """(team priority, app priority): the lowest yields first."""
    price: float
    """Cost per hour of one replica."""
    want: int
    floor: int
    """Cut below this only after every surplus above the floors is gone (rollout floors)."""
    hard: int
    """Never cut below this (min_replicas, or one replica for a version that serves)."""

    @property
    def key(self) -> Key:
        """(application, version)."""
        return (self.app, self.version)


@dataclass(frozen=True)
class Fit:
    """Replica counts that fit the budgets, and what still does not fit."""

    replicas: dict[Key, int]
    unmet: tuple[str, ...]
    """One line per budget that the hard minimums alone exceed."""
    floors_cut: tuple[Key, ...]
    """Versions cut below their floor."""
    cuts: dict[Key, tuple[str, ...]]
    """Per version that lost replicas: which budget took how many."""


def team_priority(config: GovernorConfig, app: AppConfig) -> tuple[int, int]:
    """The (team, app) priority that orders who yields to a budget."""
    team = config.budgets.teams.get(app.team)
    return (team.priority if team else 0, app.priority)


def cost_of(replicas: Mapping[Key, int], claims: Sequence[Claim]) -> float:
    """Cost per hour of `replicas` over the versions of `claims`."""
    return sum(replicas.get(c.key, 0) * c.price for c in claims)


def _cut_to(
    alloc: dict[Key, int], scope: Sequence[Claim], limit: float, level: Mapping[Key, int]
) -> None:
    """Remove replicas one at a time, lowest priority and largest surplus first."""
    while cost_of(alloc, scope) > limit + EPSILON:
        movable = [c for c in scope if c.price > 0 and alloc[c.key] > level[c.key]]
        if not movable:
            return
        victim = min(
            movable,
            key=lambda c: (c.priority, -(alloc[c.key] - level[c.key]), -c.price, c.app, c.version),
        )
        alloc[victim.key] -= 1


def fit_to_budget(
    claims: Sequence[Claim], total_per_hour: float | None, teams: Mapping[str, float]
) -> Fit:
    """Cut claims until every team budget and the total fit: surplus first, then floors."""
    alloc = {c.key: max(c.want, c.hard) for c in claims}
    floor_level = {c.key: max(c.hard, min(c.floor, alloc[c.key])) for c in claims}
    hard_level = {c.key: c.hard for c in claims}
    scopes: list[tuple[str, Sequence[Claim], float]] = [
        (f"team {team} budget", [c for c in claims if c.team == team], limit)
        for team, limit in sorted(teams.items())
    ]
    if total_per_hour is not None:
        scopes.append(("total budget", claims, total_per_hour))
    unmet = []
    cuts: dict[Key, list[str]] = {}
    for label, scope, limit in scopes:
        before = dict(alloc)
        _cut_to(alloc, scope, limit, floor_level)
        _cut_to(alloc, scope, limit, hard_level)
        cost = cost_of(alloc, scope)
        for c in scope:
            if alloc[c.key] < before[c.key]:
                cuts.setdefault(c.key, []).append(
                    f"{label} {limit:.2f}/h took {before[c.key] - alloc[c.key]} "
                    f"({before[c.key]} -> {alloc[c.key]}; "
                    f"team priority {c.priority[0]}, app priority {c.priority[1]})"
                )
        if cost > limit + EPSILON:
            unmet.append(
                f"{label} {limit:.2f}/h is below what the minimum replicas cost ({cost:.2f}/h)"
            )
    floors_cut = tuple(c.key for c in claims if alloc[c.key] < floor_level[c.key])
    return Fit(alloc, tuple(unmet), floors_cut, {k: tuple(v) for k, v in cuts.items()})
