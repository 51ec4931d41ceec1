"""The daemon's /metrics stays within its series budget on a 1,000-application fleet.

The budget is the one docs/prometheus.md states; a change that exports more per
application, version or team must change both.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import generate_latest

from controller.config import GovernorConfig, parse_config
from controller.decisions import Plan, ReplicaDecision, WeightDecision
from controller.snapshot import AppSnapshot, Snapshot, VersionSnapshot
from controller.telemetry import Telemetry

FIXED = 284
PER_TEAM = 9
PER_APP = 2
PER_DETAILED_APP = 9 + 2 * 4
"""Nine series, and a verdict counter (`_total` and `_created`) per result seen."""
PER_DETAILED_VERSION = 8

APPS, TEAMS = 1000, 20
IN_ROLLOUT, BREACHING, SCALING = range(0, 10), range(10, 30), range(30, 60)
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def budget(apps: int, teams: int, detailed_apps: int, detailed_versions: int) -> int:
    """The most series docs/prometheus.md allows for a fleet of this shape."""
    return (
        FIXED
        + PER_TEAM * teams
        + PER_APP * apps
        + PER_DETAILED_APP * detailed_apps
        + PER_DETAILED_VERSION * detailed_versions
    )


def name(i: int) -> str:
    return f"app{i:04d}"


def fleet_config() -> GovernorConfig:
    return parse_config(
        {
            "prices": {"A100": 2.5},
            "budgets": {
                "total_per_hour": 10000,
                "teams": {f"team{t}": {"per_hour": 500} for t in range(TEAMS)},
            },
            "applications": [
                {
                    "name": name(i),
                    "team": f"team{i % TEAMS}",
                    "slo": {"latency_p95_ms": 200},
                    "resources": {"gpu_type": "A100", "gpus_per_replica": 1},
                    "versions": [
                        {"name": "v1", "deployment": f"{name(i)}_v1"},
                        {"name": "v2", "deployment": f"{name(i)}_v2", "min_replicas": 0},
                    ],
                }
                for i in range(APPS)
            ],
        }
    )


def tick(at: datetime, calm: bool = False) -> tuple[Snapshot, Plan, dict[str, dict[str, Any]]]:
    """One tick of the fleet; unless `calm`, some apps roll out, breach or scale."""
    apps, replicas, weights, rollout = [], [], [], {}
    for i in range(APPS):
        breaching = not calm and i in BREACHING
        canary = not calm and i in IN_ROLLOUT
        split = {"v1": 90, "v2": 10} if canary else {"v1": 100, "v2": 0}
        v1 = VersionSnapshot(
            name(i), "v1", f"{name(i)}_v1",
            running_replicas=2, starting_replicas=0, target_replicas=2,
            request_rate=10.0, latency_p95_ms=350.0 if breaching else 80.0, error_rate=0.0,
        )  # fmt: skip
        v2 = VersionSnapshot(
            name(i), "v2", f"{name(i)}_v2",
            running_replicas=1 if canary else 0, starting_replicas=0,
            target_replicas=1 if canary else 0,
        )  # fmt: skip
        apps.append(AppSnapshot(name(i), (v1, v2), weights=split))
        scaling = not calm and i in SCALING
        replicas.append(ReplicaDecision(name(i), "v1", 3 if scaling else 2, ("test",)))
        replicas.append(ReplicaDecision(name(i), "v2", 1 if canary else 0, ("test",)))
        weights.append(WeightDecision(name(i), split, ("test",)))
        if canary:
            rollout[name(i)] = {"phase": "canary", "step": 0, "verdict": "inconclusive"}
    plan = Plan(replicas=tuple(replicas), weights=tuple(weights), cost_per_hour=5000.0)
    return Snapshot(now=at, apps=tuple(apps)), plan, rollout


def exported(t: Telemetry) -> list[str]:
    """Every series line of one scrape."""
    text = generate_latest(t.registry).decode()
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def a_running_daemon() -> Telemetry:
    """Telemetry as the daemon leaves it: ticks counted and timed, an error seen."""
    t = Telemetry()
    t.ticks.labels("ok").inc()
    t.tick_seconds.observe(0.2)
    t.errors.labels("temporary", "act").inc()
    return t


def test_a_1000_app_fleet_stays_within_the_budget() -> None:
    config, t = fleet_config(), a_running_daemon()
    for step in range(3):
        t.record(config, *tick(T0 + timedelta(seconds=5 * step)))
    detailed_apps = len(IN_ROLLOUT) + len(BREACHING) + len(SCALING)
    detailed_versions = 2 * len(IN_ROLLOUT) + 2 * len(BREACHING) + len(SCALING)
    series = exported(t)
    assert t.registry.get_sample_value("governor_detailed_versions") == detailed_versions
    assert len(series) <= budget(APPS, TEAMS, detailed_apps, detailed_versions)
    # Well under what one series set per version would make (32 per app before).
    assert len(series) < 4 * APPS


def test_series_of_finished_decisions_are_removed_after_the_hold() -> None:
    config, t = fleet_config(), a_running_daemon()
    t.record(config, *tick(T0))
    busy = len(exported(t))
    t.record(config, *tick(T0 + timedelta(seconds=t.hold_s - 5), calm=True))
    assert len(exported(t)) == busy
    t.record(config, *tick(T0 + timedelta(seconds=t.hold_s + 5), calm=True))
    series = exported(t)
    assert len(series) <= budget(APPS, TEAMS, 0, 0)
    assert not [s for s in series if 'version="' in s]
    assert t.registry.get_sample_value("governor_detailed_versions") == 0


def test_per_version_series_only_where_a_decision_is() -> None:
    config, t = fleet_config(), a_running_daemon()
    t.record(config, *tick(T0))

    def has(metric: str, app: int, version: str) -> bool:
        labels = {"app": name(app), "version": version}
        return t.registry.get_sample_value(metric, labels) is not None

    assert has("governor_traffic_weight_percent", 0, "v2")  # rollout: every version
    assert has("governor_latency_p95_ms", 10, "v1") and has("governor_running_replicas", 10, "v2")
    assert has("governor_desired_replicas", 30, "v1")  # scaling: the version that changes
    assert not has("governor_desired_replicas", 30, "v2")
    assert not has("governor_desired_replicas", 500, "v1")  # quiet
    # Aggregates and the per-app burn and cost are there for every app and team.
    assert t.registry.get_sample_value(
        "governor_cost_per_hour", {"app": name(500), "team": "team0"}
    )
    assert t.registry.get_sample_value("governor_team_apps_at_risk", {"team": "team10"}) == 1
    assert (
        t.registry.get_sample_value("governor_team_desired_replicas", {"team": "team0"})
        == 2 * 50 + 1 + 1
    )
    assert t.registry.get_sample_value("governor_rollouts", {"phase": "canary"}) == len(IN_ROLLOUT)


def test_the_cap_keeps_rollouts_and_risks_before_changes() -> None:
    config = fleet_config()
    t = Telemetry(max_detailed_versions=2 * len(IN_ROLLOUT) + 2 * len(BREACHING))
    t.record(config, *tick(T0))
    assert t.registry.get_sample_value("governor_detail_overflow_versions") == len(SCALING)
    labels = {"app": name(0), "version": "v2"}
    assert t.registry.get_sample_value("governor_traffic_weight_percent", labels) == 10
    labels = {"app": name(30), "version": "v1"}
    assert t.registry.get_sample_value("governor_desired_replicas", labels) is None


def test_applications_leaving_the_config_leave_the_metrics() -> None:
    config, t = fleet_config(), a_running_daemon()
    t.record(config, *tick(T0))
    smaller = config.model_copy(update={"applications": config.applications[:100]})
    t.record(smaller, *tick(T0 + timedelta(seconds=5)))
    apps = {s.split('app="')[1].split('"')[0] for s in exported(t) if 'app="' in s}
    assert apps == {name(i) for i in range(100)}
