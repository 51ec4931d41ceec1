"""Synthetic fleets for the decision-core tests: configs, snapshots and a closed loop.

`Loop` plays the daemon without Ray: each tick it asks a world model for a snapshot of the
replicas and weights the last plan asked for (an instant, perfect actuator), calls
`decide`, and keeps the agents' state. Time moves only through `Loop.now`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from scipy.stats import lognorm

from controller.agents.base import AgentState
from controller.config import GovernorConfig, parse_config
from controller.decide import TickDecision, decide
from controller.snapshot import (
    AppSnapshot,
    LatencyHistogram,
    OperatorCommand,
    Snapshot,
    VersionSnapshot,
)
from serving.metrics import LATENCY_BUCKETS_MS, TOKEN_TIME_BUCKETS_MS

T0 = datetime(2026, 1, 1, tzinfo=UTC)
BOUNDS_MS = (10.0, 25, 50, 75, 100, 125, 150, 200, 250, 300, 400, 500, 750, 1000, 2000, math.inf)
TOKEN_BOUNDS_MS = {
    "ttft": (*(float(b) for b in LATENCY_BUCKETS_MS), math.inf),
    "tpot": (*(float(b) for b in TOKEN_TIME_BUCKETS_MS), math.inf),
}
"""The generation replicas' TTFT and TPOT buckets."""


def app_doc(
    name: str = "embed",
    versions: Sequence[str] = ("v1", "v2"),
    slo_ms: float = 200,
    min_replicas: int = 1,
    max_replicas: int = 10,
    **extra: Any,
) -> dict[str, Any]:
    """One application's config document (versions deploy as `<app>_<version>`)."""
    doc: dict[str, Any] = {
        "name": name,
        "slo": {"latency_p95_ms": slo_ms},
        "versions": [
            {
                "name": v,
                "deployment": f"{name}_{v}",
                "min_replicas": min_replicas,
                "max_replicas": max_replicas,
            }
            for v in versions
        ],
    }
    doc.update(extra)
    return doc


def make_config(*apps: dict[str, Any], **top: Any) -> GovernorConfig:
    """A validated GovernorConfig over `apps` (one default app when none is given)."""
    doc: dict[str, Any] = {"prices": {"cpu": 1.0}, "applications": list(apps) or [app_doc()]}
    doc.update(top)
    return parse_config(doc)


def lognormal_histogram(
    n: float, median_ms: float, sigma: float = 0.3, bounds: Sequence[float] = BOUNDS_MS
) -> LatencyHistogram:
    """Expected cumulative bucket counts of `n` log-normal latencies."""
    dist = lognorm(s=sigma, scale=median_ms)
    counts = tuple(n if math.isinf(b) else n * float(dist.cdf(b)) for b in bounds)
    return LatencyHistogram(tuple(bounds), counts)


def version(
    app: str = "embed",
    name: str = "v1",
    replicas: int | None = 1,
    rate: float | None = 10.0,
    p95_ms: float | None = 100.0,
    **fields: Any,
) -> VersionSnapshot:
    """A version snapshot with running = target = `replicas` (fields override)."""
    base: dict[str, Any] = {
        "app": app,
        "version": name,
        "deployment": f"{app}_{name}",
        "running_replicas": replicas,
        "starting_replicas": 0 if replicas is not None else None,
        "target_replicas": replicas,
        "request_rate": rate,
        "latency_p95_ms": p95_ms,
        "queue_length": 0.0 if rate is not None else None,
    }
    base.update(fields)
    return VersionSnapshot(**base)


def app_snapshot(*versions: VersionSnapshot, weights: dict[str, int] | None = None) -> AppSnapshot:
    """One app made of `versions` (all of the same app)."""
    name = versions[0].app if versions else "embed"
    return AppSnapshot(name=name, versions=tuple(versions), weights=weights)


def fleet(
    *apps: AppSnapshot,
    now: datetime = T0,
    window_s: float = 30.0,
    commands: Iterable[OperatorCommand] = (),
) -> Snapshot:
    """A snapshot of several apps."""
    return Snapshot(now=now, apps=tuple(apps), window_s=window_s, commands=tuple(commands))


def snapshot(
    *versions: VersionSnapshot,
    weights: dict[str, int] | None = None,
    now: datetime = T0,
    window_s: float = 30.0,
    commands: Iterable[OperatorCommand] = (),
) -> Snapshot:
    """A snapshot of one app made of `versions` (all of the same app)."""
    app = app_snapshot(*versions, weights=weights)
    return fleet(app, now=now, window_s=window_s, commands=commands)


@dataclass
class Loop:
    """The decision core in a closed loop over a world model, with a hand-moved clock."""

    config: GovernorConfig
    observe: Callable[[Loop], Snapshot]
    interval_s: float = 5.0
    now: datetime = T0
    replicas: dict[tuple[str, str], int] = field(default_factory=dict)
    weights: dict[str, dict[str, int]] = field(default_factory=dict)
    states: dict[str, AgentState] = field(default_factory=dict)
    commands: list[OperatorCommand] = field(default_factory=list)
    history: list[TickDecision] = field(default_factory=list)

    def __post_init__(self) -> None:
        for app in self.config.applications:
            self.weights.setdefault(
                app.name, {v.name: 100 if v.name == app.stable_version else 0 for v in app.versions}
            )
            for v in app.versions:
                self.replicas.setdefault((app.name, v.name), v.initial_replicas)

    def tick(self) -> TickDecision:
        """Observe, decide, apply the plan at once, then move the clock one interval."""
        snap = replace(self.observe(self), now=self.now, commands=tuple(self.commands))
        self.commands = []
        decision = decide(snap, self.states, self.config)
        self.states = decision.states
        for d in decision.plan.replicas:
            self.replicas[(d.app, d.version)] = d.replicas
        for w in decision.plan.weights:
            self.weights[w.app] = dict(w.weights)
        self.history.append(decision)
        self.now += timedelta(seconds=self.interval_s)
        return decision

    def run(self, seconds: float) -> TickDecision:
        """Tick for `seconds` of fake time; returns the last decision."""
        last = self.tick()
        for _ in range(int(seconds / self.interval_s) - 1):
            last = self.tick()
        return last

    def restart(self) -> None:
        """What a restarted daemon has: the state as it was persisted, nothing else."""
        self.states = json.loads(json.dumps(self.states))

    def abort(self, app: str = "embed") -> None:
        """Queue an operator's abort-rollout for the next tick."""
        self.commands.append(OperatorCommand("abort-rollout", app, self.now))


@dataclass
class CanaryWorld:
    """Traffic split by weights; each version has its own latency and error rate."""

    rate: float = 20.0
    median_ms: dict[str, float] = field(default_factory=lambda: {"v1": 80.0, "v2": 80.0})
    error_rate: dict[str, float] = field(default_factory=lambda: {"v1": 0.001, "v2": 0.001})
    shed_share: dict[str, float] = field(default_factory=dict)
    """Share of what a version is offered that its router sheds for overload (none)."""
    ttft_median_ms: dict[str, float] = field(default_factory=dict)
    """Generation versions: median time to first token (none: an encoder)."""
    tpot_median_ms: dict[str, float] = field(default_factory=dict)
    """Generation versions: median time per output token."""
    app: str = "embed"
    window_s: float = 30.0

    def __call__(self, loop: Loop) -> Snapshot:
        """The window the router saw under the loop's current weights and replicas."""
        weights = loop.weights[self.app]
        out = []
        for name, median in self.median_ms.items():
            replicas = loop.replicas[(self.app, name)]
            share = weights.get(name, 0) / 100 if replicas > 0 else 0.0
            offered = self.rate * share
            shed_rate = offered * self.shed_share.get(name, 0.0)
            n = (offered - shed_rate) * self.window_s
            hist = lognormal_histogram(n, median)
            tokens = {
                f"{kind}_histogram": lognormal_histogram(
                    n, medians[name], bounds=TOKEN_BOUNDS_MS[kind]
                )
                for kind, medians in (("ttft", self.ttft_median_ms), ("tpot", self.tpot_median_ms))
                if name in medians
            }
            out.append(
                version(
                    self.app,
                    name,
                    replicas,
                    rate=offered - shed_rate,
                    shed_rate=shed_rate,
                    p95_ms=hist.quantile(0.95),
                    request_count=n,
                    error_count=n * self.error_rate[name],
                    error_rate=self.error_rate[name] if n else 0.0,
                    latency_histogram=hist,
                    **tokens,
                )
            )
        return snapshot(*out, weights=dict(weights), window_s=self.window_s)
