"""A synthetic fleet of N applications for scale measurements of the decision core.

The fleet has the shape of a large platform: two versions per application, ten
applications per team, team priorities that differ, a total budget and half of the team
budgets below what the fleet asks for, a fifth of the applications breaching their SLO
and one in fifty in a canary. `SyntheticFleet.snapshot` plays an instant actuator: each
tick observes the replicas and weights that the previous plan asked for, so state carried
between ticks evolves as it does in the daemon.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from controller.config import GovernorConfig, parse_config
from controller.decisions import Plan
from controller.snapshot import AppSnapshot, LatencyHistogram, Snapshot, VersionSnapshot

APPS_PER_TEAM = 10
BREACHING_EVERY = 5
"""One application in five serves above its SLO."""
CANARY_EVERY = 50
"""One application in fifty has a candidate under canary."""
PRICE_PER_HOUR = 2.0
CAPACITY_RPS = 10.0
SLO_MS = 200.0
BOUNDS_MS = (25.0, 50, 100, 150, 200, 300, 500, 1000, math.inf)
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def app_name(i: int) -> str:
    """The name of the i-th application."""
    return f"app-{i:05d}"


def team_name(i: int) -> str:
    """The team of the i-th application."""
    return f"team-{i // APPS_PER_TEAM:04d}"


def base_rate(i: int) -> float:
    """Mean request rate of the i-th application (1 to 60 req/s, spread by a fixed hash)."""
    return 1.0 + (i * 7919 % 60)


def fleet_document(n: int) -> dict[str, Any]:
    """A daemon config document for `n` applications with budgets that bind."""
    apps = []
    for i in range(n):
        name = app_name(i)
        doc: dict[str, Any] = {
            "name": name,
            "team": team_name(i),
            "priority": i % 3,
            "slo": {"latency_p95_ms": SLO_MS},
            "versions": [
                {"name": "v1", "deployment": f"{name}_v1", "min_replicas": 1, "max_replicas": 20},
                {"name": "v2", "deployment": f"{name}_v2", "min_replicas": 0, "max_replicas": 20},
            ],
            "resources": {"gpu_type": "h100", "gpus_per_replica": 1},
            "scaling": {"capacity_rps_per_replica": CAPACITY_RPS, "downscale_delay_s": 30},
            "rollout": {"min_requests": 50, "step_min_duration_s": 30},
        }
        if i % CANARY_EVERY == CANARY_EVERY - 1:
            doc["candidate"] = "v2"
        apps.append(doc)
    teams = sorted({team_name(i) for i in range(n)})
    wanted = {t: 0.0 for t in teams}
    for i in range(n):
        wanted[team_name(i)] += _replicas_wanted(i) * PRICE_PER_HOUR
    team_budgets = {
        t: {"per_hour": wanted[t] * (0.7 if k % 2 == 0 else 2.0), "priority": k % 4}
        for k, t in enumerate(teams)
    }
    return {
        "interval_s": 5,
        "window_s": 30,
        "prices": {"h100": PRICE_PER_HOUR, "cpu": 0.0},
        "budgets": {"total_per_hour": 0.8 * sum(wanted.values()), "teams": team_budgets},
        "applications": apps,
    }


def fleet_config(n: int) -> GovernorConfig:
    """The validated config of `fleet_document(n)`."""
    return parse_config(fleet_document(n), f"<synthetic fleet of {n}>")


def _replicas_wanted(i: int) -> int:
    return max(1, math.ceil(base_rate(i) / (CAPACITY_RPS * 0.7)))


def _histogram(n: float, median_ms: float) -> LatencyHistogram:
    # A log-normal with sigma 0.3 in closed form, so no scipy at this layer.
    counts = []
    for bound in BOUNDS_MS:
        if math.isinf(bound):
            counts.append(n)
        else:
            z = math.log(bound / median_ms) / 0.3
            counts.append(n * 0.5 * (1 + math.erf(z / math.sqrt(2))))
    return LatencyHistogram(BOUNDS_MS, tuple(counts))


@dataclass
class SyntheticFleet:
    """N applications observed tick after tick, following the plans they are given."""

    n: int
    seed: int = 0
    window_s: float = 30.0
    interval_s: float = 5.0
    config: GovernorConfig = field(init=False)
    replicas: dict[tuple[str, str], int] = field(init=False, default_factory=dict)
    weights: dict[str, dict[str, int]] = field(init=False, default_factory=dict)
    elapsed_s: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        self.config = fleet_config(self.n)
        self._rng = np.random.default_rng(self.seed)
        for i, app in enumerate(self.config.applications):
            self.replicas[(app.name, "v1")] = _replicas_wanted(i)
            self.replicas[(app.name, "v2")] = 1 if app.candidate else 0
            self.weights[app.name] = {"v1": 100, "v2": 0}

    @property
    def now(self) -> datetime:
        """The clock of the current tick."""
        return T0 + timedelta(seconds=self.elapsed_s)

    def snapshot(self) -> Snapshot:
        """What the fleet looks like at the current tick."""
        noise = self._rng.normal(1.0, 0.05, size=self.n)
        apps = []
        for i, app in enumerate(self.config.applications):
            rate = base_rate(i) * float(noise[i])
            breaching = i % BREACHING_EVERY == 0
            weights = self.weights[app.name]
            versions = []
            for v in ("v1", "v2"):
                n = self.replicas[(app.name, v)]
                share = rate * weights.get(v, 0) / 100
                capacity = n * CAPACITY_RPS
                load = share / capacity if capacity else 0.0
                median = 60.0 * (1.0 + load) * (3.0 if breaching else 1.0)
                count = share * self.window_s
                hist = _histogram(count, median)
                versions.append(
                    VersionSnapshot(
                        app=app.name,
                        version=v,
                        deployment=f"{app.name}_{v}",
                        running_replicas=n,
                        starting_replicas=0,
                        target_replicas=n,
                        request_rate=share,
                        latency_p50_ms=median if count else None,
                        latency_p95_ms=hist.quantile(0.95) if count else None,
                        error_rate=0.0,
                        request_count=count,
                        error_count=0.0,
                        latency_histogram=hist,
                        queue_length=max(0.0, share * median / 1000),
                        startup_s=30.0,
                    )
                )
            apps.append(AppSnapshot(app.name, tuple(versions), dict(weights)))
        return Snapshot(now=self.now, apps=tuple(apps), window_s=self.window_s)

    def follow(self, plan: Plan, seconds: float | None = None) -> None:
        """Make the plan true at once (an instant actuator) and move the clock on.

        `seconds` defaults to one control interval; a longer step fills the agents'
        per-window memory faster (a warm-up to the state size of a long-running daemon).
        """
        for d in plan.replicas:
            self.replicas[(d.app, d.version)] = d.replicas
        for w in plan.weights:
            self.weights[w.app] = dict(w.weights)
        self.elapsed_s += self.interval_s if seconds is None else seconds
