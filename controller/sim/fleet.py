"""Many applications simulated at once under one `decide()`: `governor simulate --fleet N`.

Application i copies the config's template application (its SLO, scaling and
calibration) and replays trace i mod 8 of the suite, rotated in time by a different
offset for each copy, so no two applications peak together by construction. Every
simulation advances to the next control tick; then one snapshot of the whole fleet goes
through the daemon's own `decide`, under team and total budgets set below what the fleet
asks for at its peaks, and each application gets its part of the plan.

Budgets are sized from each application's own mean demand in replicas (its trace's mean
rate times the calibrated work of its mean request, at the target utilization, never
below the minimum replicas). A budget pays for the minimum replicas plus a fraction of
the mean need above them: `total_fraction` for the total, `team_fraction` for every other
team (the rest get ten times their need), so budgets bind whenever demand rises towards
its mean, and the minimums always fit. Team priorities cycle 0..2, and application
priorities 0..2 within a team.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

import numpy as np

from controller.agents.base import AgentState
from controller.budget_fit import team_priority
from controller.config import AppConfig, GovernorConfig
from controller.decide import decide
from controller.decisions import BudgetCut, ReplicaDecision, WeightDecision
from controller.sim.engine import SimResult, SimSettings, Simulation
from controller.sim.errors import SimInputError
from controller.sim.metrics import outcomes, replica_seconds
from controller.sim.observe import build_snapshot
from controller.sim.policies.base import Action
from controller.sim.policies.governor import GovernorPolicy
from controller.sim.profile import Profile
from controller.sim.slo import request_slo
from controller.sim.suite import SuiteKind, suite_traces
from controller.sim.trace import Trace
from controller.snapshot import AppSnapshot, ClusterSnapshot, Snapshot

APPS_PER_TEAM = 10
PRIORITY_LEVELS = 3

FleetProgress = Callable[[float, float], None]
"""Called after each tick with (simulated seconds done, seconds of the longest trace)."""


@dataclass(frozen=True)
class FleetOptions:
    """How large the fleet is and how tight its budgets are."""

    apps: int
    volume: float = 0.25
    """Each application's traffic, as a multiple of its suite trace's recorded volume."""
    seed: int = 0
    team_fraction: float = 0.8
    """A budgeted team's share of its applications' mean need above their minimums."""
    total_fraction: float = 1.0
    """The total budget's share of the fleet's mean need above its minimums."""


@dataclass(frozen=True)
class FleetMember:
    """One application of the fleet: its config, trace and the suite trace it came from."""

    app: AppConfig
    trace: Trace
    shape: str
    mean_need: float
    """Replicas its mean demand needs at the target utilization (at least its minimum)."""


@dataclass
class FleetResult:
    """Per-application results and what the budget did, tick by tick."""

    config: GovernorConfig
    members: list[FleetMember]
    results: list[SimResult]
    priority: list[int]
    """Each member's place in the order of who yields first (see `priority_of`)."""
    ticks: int
    decide_s: list[float]
    cut_replica_s: dict[int, float] = field(default_factory=dict)
    """Replica-seconds the budget withheld from what the other stages asked, by priority."""
    asked_replica_s: dict[int, float] = field(default_factory=dict)
    """Replica-seconds the other stages asked for, by priority."""
    wall_s: float = 0.0


def rotate(trace: Trace, offset_s: float) -> Trace:
    """The trace shifted by `offset_s` in time and wrapped around its own length."""
    if len(trace) == 0:
        return trace
    span = float(trace.arrival_s[-1]) + 1e-6
    shifted = (trace.arrival_s + offset_s) % span
    order = np.argsort(shifted, kind="stable")
    return replace(
        trace,
        arrival_s=shifted[order],
        prompt_tokens=trace.prompt_tokens[order],
        output_tokens=trace.output_tokens[order],
    )


def mean_need(app: AppConfig, trace: Trace) -> float:
    """Replicas the trace's mean demand needs at the app's target utilization."""
    work = app.scaling.work_model
    if work is None:
        raise SimInputError(
            f"application {app.name!r} needs scaling.calibration or capacity_rps_per_replica "
            "to size a fleet's budgets"
        )
    if len(trace) == 0 or trace.duration_s <= 0:
        return float(max(1, app.versions[0].min_replicas))
    per_request = (
        work.per_request_s
        + work.per_prompt_token_s * float(trace.prompt_tokens.mean())
        + work.per_output_token_s * float(trace.output_tokens.mean())
    )
    need = len(trace) / trace.duration_s * per_request / app.scaling.target_utilization
    floor = app.version(app.stable_version).min_replicas
    return max(need, float(max(floor, 1)))


def fleet_members(
    template: AppConfig, kind: SuiteKind, options: FleetOptions, limit: int | None
) -> list[FleetMember]:
    """N copies of the template app, each on its own rotated trace of the suite."""
    if options.apps < 1:
        raise SimInputError(f"a fleet needs at least one application, got {options.apps}")
    suite = suite_traces(
        kind,
        volume=options.volume,
        seed=options.seed,
        max_context_tokens=limit if kind == "generation" else None,
        max_prompt_tokens=limit if kind == "encoder" else None,
    )
    start = suite[0].trace.start
    copies = math.ceil(options.apps / len(suite))
    members = []
    for i in range(options.apps):
        shape = suite[i % len(suite)]
        span = shape.trace.duration_s
        trace = rotate(shape.trace, span * (i // len(suite)) / copies)
        trace = replace(trace, start=start, source=f"{shape.name} rotated")
        team = i // APPS_PER_TEAM
        app = template.model_copy(
            update={
                "name": f"{template.name}-{i:05d}",
                "team": f"team-{team:04d}",
                "priority": i % PRIORITY_LEVELS,
            }
        )
        members.append(FleetMember(app, trace, shape.name, mean_need(app, trace)))
    return members


def fleet_config(
    base: GovernorConfig, members: Sequence[FleetMember], options: FleetOptions
) -> GovernorConfig:
    """The base config governing every member, with budgets that bind above mean demand."""
    need_cost: dict[str, float] = {}
    floor_cost: dict[str, float] = {}
    for m in members:
        price = base.replica_price(m.app)
        floor = max(1, m.app.version(m.app.stable_version).min_replicas)
        need_cost[m.app.team] = need_cost.get(m.app.team, 0.0) + m.mean_need * price
        floor_cost[m.app.team] = floor_cost.get(m.app.team, 0.0) + floor * price

    def budget(floor: float, need: float, fraction: float) -> float:
        return floor + fraction * (need - floor)

    teams: dict[str, Any] = {}
    for k, team in enumerate(sorted(need_cost)):
        fraction = options.team_fraction if k % 2 == 0 else 10.0
        teams[team] = {
            "per_hour": budget(floor_cost[team], need_cost[team], fraction),
            "priority": k % PRIORITY_LEVELS,
        }
    doc = base.model_dump(mode="json", exclude_none=True)
    doc["applications"] = [m.app.model_dump(mode="json", exclude_none=True) for m in members]
    total = budget(sum(floor_cost.values()), sum(need_cost.values()), options.total_fraction)
    doc["budgets"] = {"total_per_hour": total, "teams": teams}
    return GovernorConfig.model_validate(doc)


def priority_of(config: GovernorConfig, app: AppConfig) -> int:
    """One number for who yields first: team priority, then app priority."""
    team, own = team_priority(config, app)
    return team * PRIORITY_LEVELS + own


class FleetSimulation:
    """N discrete-event simulations stepped together, one decision per tick for all."""

    def __init__(
        self,
        config: GovernorConfig,
        members: Sequence[FleetMember],
        profile: Profile,
        settings: SimSettings,
    ) -> None:
        self.config = config
        self.members = list(members)
        policy = GovernorPolicy(config)
        self.sims = [Simulation(m.trace, profile, m.app, policy, settings) for m in members]
        self.start = members[0].trace.start
        self.states: dict[str, AgentState] = {}
        self.priority = [priority_of(config, m.app) for m in members]

    def _snapshot(self, t: float) -> Snapshot:
        apps: list[AppSnapshot] = []
        for sim in self.sims:
            view = sim.view()
            one = build_snapshot(
                view.obs,
                sim.app,
                t,
                self.start,
                view.statuses,
                view.weights,
                view.pipeline,
                view.startup_s,
                sim.app.resources.gpu_type,
            )
            apps.extend(one.apps)
        return Snapshot(
            now=self.start + timedelta(seconds=t),
            apps=tuple(apps),
            cluster=ClusterSnapshot(gpu_type=self.sims[0].app.resources.gpu_type),
            window_s=self.config.window_s,
        )

    def run(self, progress: FleetProgress | None = None) -> FleetResult:
        """Simulate every member to its end; one decide per control interval."""
        wall = time.perf_counter()
        for sim in self.sims:
            sim.start(ticks=False)
        index = {m.app.name: i for i, m in enumerate(self.members)}
        longest = max(m.trace.duration_s for m in self.members)
        result = FleetResult(self.config, self.members, [], self.priority, 0, [])
        interval = self.config.interval_s
        t = 0.0
        running = list(range(len(self.sims)))
        while running:
            t += interval
            running = [i for i in running if not self.sims[i].advance(t)]
            if not running:
                break
            snapshot = self._snapshot(t)
            began = time.perf_counter()
            tick = decide(snapshot, self.states, self.config)
            result.decide_s.append(time.perf_counter() - began)
            self.states = tick.states
            self._apply(tick.plan.replicas, tick.plan.weights, index)
            self._account(result, tick.plan.budget_cuts, tick.plan.replicas, index, interval)
            result.ticks += 1
            if progress is not None:
                progress(min(t, longest), longest)
        result.results = [sim.result() for sim in self.sims]
        result.wall_s = time.perf_counter() - wall
        return result

    def _apply(
        self,
        replicas: Sequence[ReplicaDecision],
        weights: Sequence[WeightDecision],
        index: dict[str, int],
    ) -> None:
        wanted: dict[int, dict[str, int]] = {}
        for d in replicas:
            wanted.setdefault(index[d.app], {})[d.version] = d.replicas
        weight_of = {w.app: dict(w.weights) for w in weights}
        for i, sim in enumerate(self.sims):
            if sim.over:
                continue
            sim.apply(Action(replicas=wanted.get(i, {}), weights=weight_of.get(sim.app.name)))

    def _account(
        self,
        result: FleetResult,
        cuts: Sequence[BudgetCut],
        replicas: Sequence[ReplicaDecision],
        index: dict[str, int],
        dt: float,
    ) -> None:
        asked = {(c.app, c.version): c.asked for c in cuts}
        for d in replicas:
            p = self.priority[index[d.app]]
            want = asked.get((d.app, d.version), d.replicas)
            result.asked_replica_s[p] = result.asked_replica_s.get(p, 0.0) + want * dt
            result.cut_replica_s[p] = result.cut_replica_s.get(p, 0.0) + (want - d.replicas) * dt


def summarize_fleet(fleet: FleetResult, profile: Profile) -> dict[str, Any]:
    """Per-team attainment and cost, and how the budget was shared by priority."""
    config = fleet.config
    teams: dict[Any, dict[str, float]] = {}
    by_priority: dict[Any, dict[str, float]] = {}
    target = None
    for member, result, p in zip(fleet.members, fleet.results, fleet.priority, strict=True):
        slo = request_slo(member.app, profile)
        target = slo.target_attainment
        o = outcomes(result, slo)
        cost = replica_seconds(result) / 3600.0 * config.replica_price(member.app)
        for key, acc in ((member.app.team, teams), (p, by_priority)):
            row = acc.setdefault(key, {"requests": 0.0, "met": 0.0, "cost": 0.0, "apps": 0.0})
            row["requests"] += len(result.trace)
            row["met"] += float(o.met.sum())
            row["cost"] += cost
            row["apps"] += 1
    hours = max((r.end_s for r in fleet.results), default=0.0) / 3600.0
    team_rows = []
    for name, row in sorted(teams.items()):
        budget = config.budgets.teams.get(name)
        team_rows.append(
            {
                "team": name,
                "apps": int(row["apps"]),
                "priority": budget.priority if budget else 0,
                "attainment": row["met"] / row["requests"] if row["requests"] else 1.0,
                "cost_per_hour": row["cost"] / hours if hours else 0.0,
                "budget_per_hour": budget.per_hour if budget else None,
            }
        )
    priority_rows = []
    for p, row in sorted(by_priority.items()):
        asked = fleet.asked_replica_s.get(p, 0.0)
        cut = fleet.cut_replica_s.get(p, 0.0)
        priority_rows.append(
            {
                "priority": p,
                "apps": int(row["apps"]),
                "attainment": row["met"] / row["requests"] if row["requests"] else 1.0,
                "cost_per_hour": row["cost"] / hours if hours else 0.0,
                "replica_hours_asked": asked / 3600.0,
                "replica_hours_cut": cut / 3600.0,
                "cut_share": cut / asked if asked else 0.0,
            }
        )
    requests = sum(len(r.trace) for r in fleet.results)
    met = sum(row["met"] for row in teams.values())
    decide_ms = sorted(1000 * s for s in fleet.decide_s)
    return {
        "apps": len(fleet.members),
        "requests": requests,
        "attainment": met / requests if requests else 1.0,
        "target_attainment": target,
        "cost_per_hour": sum(r["cost_per_hour"] for r in team_rows),
        "total_budget_per_hour": config.budgets.total_per_hour,
        "simulated_s": hours * 3600.0,
        "ticks": fleet.ticks,
        "decide_ms_p50": decide_ms[len(decide_ms) // 2] if decide_ms else None,
        "decide_ms_max": decide_ms[-1] if decide_ms else None,
        "wall_s": fleet.wall_s,
        "teams": team_rows,
        "priorities": priority_rows,
    }
