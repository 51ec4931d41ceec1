"""Fitting replica counts to the total and team budgets, lowest priority first.

The arbiter's last stage. Each budget scope (a team, then the total) removes replicas one
at a time until its cost fits: first the surplus above rollout floors, then down to the
hard minimums. The next replica to go is the one with the lowest (team, app) priority, then
the largest surplus, then the highest price; a heap per scope finds it, so a fit costs
O(removed x log n) rather than a scan of the scope per removed replica. Costs are summed
exactly in the decimals they were configured in (`_Exact`), so a plan never exceeds a
budget by a rounding error and never loses a replica to one.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from controller.config import AppConfig, GovernorConfig

Key = tuple[str, str]
"""(application, version)."""


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
    key: Key = field(init=False, repr=False, compare=False)
    """(application, version)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", (self.app, self.version))


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


@dataclass(frozen=True)
class _Exact:
    """Money per hour as whole units of 10^-places, read from each amount's decimal form.

    Prices and budgets are written in decimal (0.1/h, 3 replicas, a 0.3/h budget), so they
    are summed as the decimals they were written as: the sums are exact, a plan fits a
    budget it fits on paper, and no order of cuts changes a fit.
    """

    places: int

    @classmethod
    def of(cls, *amounts: float) -> _Exact:
        """Enough decimal places for every one of `amounts` (finite, from the config)."""
        # A fleet has a handful of distinct prices: read each one once.
        exponents = (Decimal(repr(a)).as_tuple().exponent for a in set(amounts))
        return cls(max((-e for e in exponents if isinstance(e, int)), default=0))

    def units(self, amount: float) -> int:
        """`amount` in whole units of 10^-places."""
        return int(Decimal(repr(amount)).scaleb(self.places))


def _cut_to(
    alloc: dict[Key, int], scope: Sequence[Claim], limit: float, level: Mapping[Key, int]
) -> bool:
    """Remove replicas, lowest priority and largest surplus first, until the scope fits.

    Returns whether it fits.
    """
    prices = {c.price for c in scope}
    exact = _Exact.of(limit, *prices)
    per_price = {p: exact.units(p) for p in prices}
    price = {c.key: per_price[c.price] for c in scope}
    cost = sum(alloc[c.key] * price[c.key] for c in scope)
    cap = exact.units(limit)
    if cost <= cap:
        return True

    def entry(i: int, c: Claim) -> tuple[tuple[int, int], int, float, str, str, int]:
        return (c.priority, -(alloc[c.key] - level[c.key]), -c.price, c.app, c.version, i)

    heap = [
        entry(i, c) for i, c in enumerate(scope) if price[c.key] > 0 and alloc[c.key] > level[c.key]
    ]
    heapq.heapify(heap)
    while heap and cost > cap:
        i = heapq.heappop(heap)[-1]
        victim = scope[i]
        alloc[victim.key] -= 1
        cost -= price[victim.key]
        if alloc[victim.key] > level[victim.key]:
            heapq.heappush(heap, entry(i, victim))
    return cost <= cap


def fit_to_budget(
    claims: Sequence[Claim], total_per_hour: float | None, teams: Mapping[str, float]
) -> Fit:
    """Cut claims until every team budget and the total fit: surplus first, then floors."""
    alloc = {c.key: max(c.want, c.hard) for c in claims}
    floor_level = {c.key: max(c.hard, min(c.floor, alloc[c.key])) for c in claims}
    hard_level = {c.key: c.hard for c in claims}
    by_team: dict[str, list[Claim]] = {}
    for c in claims:
        by_team.setdefault(c.team, []).append(c)
    scopes: list[tuple[str, Sequence[Claim], float]] = [
        (f"team {team} budget", by_team.get(team, []), limit)
        for team, limit in sorted(teams.items())
    ]
    if total_per_hour is not None:
        scopes.append(("total budget", claims, total_per_hour))
    unmet = []
    cuts: dict[Key, list[str]] = {}
    for label, scope, limit in scopes:
        before = {c.key: alloc[c.key] for c in scope}
        _cut_to(alloc, scope, limit, floor_level)
        fits = _cut_to(alloc, scope, limit, hard_level)
        for c in scope:
            if alloc[c.key] < before[c.key]:
                cuts.setdefault(c.key, []).append(
                    f"{label} {limit:.2f}/h took {before[c.key] - alloc[c.key]} "
                    f"({before[c.key]} -> {alloc[c.key]}; "
                    f"team priority {c.priority[0]}, app priority {c.priority[1]})"
                )
        if not fits:
            unmet.append(
                f"{label} {limit:.2f}/h is below what the minimum replicas cost "
                f"({cost_of(alloc, scope):.2f}/h)"
            )
    floors_cut = tuple(c.key for c in claims if alloc[c.key] < floor_level[c.key])
    return Fit(alloc, tuple(unmet), floors_cut, {k: tuple(v) for k, v in cuts.items()})
