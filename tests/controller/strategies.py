"""Hypothesis strategies for random fleets, prices, budgets, snapshots and proposals."""

from __future__ import annotations

import functools
from datetime import timedelta
from typing import Any

from hypothesis import strategies as st

from controller.config import GovernorConfig, parse_config
from controller.decisions import (
    Alert,
    Proposal,
    ReplicaCap,
    ReplicaFloor,
    ReplicaProposal,
    WeightProposal,
)
from controller.snapshot import AppSnapshot, Snapshot, VersionSnapshot
from tests.controller.fleet import T0, lognormal_histogram

TEAMS = ("red", "blue", "green")


SCALING: tuple[dict[str, Any], ...] = (
    {},
    {"scale_to_zero": True, "idle_before_zero_s": 0, "downscale_delay_s": 0},
    {"capacity_rps_per_replica": 20.0, "scale_to_zero": True, "idle_before_zero_s": 30},
    {"capacity_rps_per_replica": 5.0, "downscale_delay_s": 0, "max_upscale_step": 1},
)
ROLLOUT: tuple[dict[str, Any], ...] = (
    {},
    {"min_requests": 1, "step_min_duration_s": 0, "deadline_s": 20, "drain_s": 0},
    {"min_requests": 20, "step_min_duration_s": 10, "drain_s": 10, "steps": [50, 100]},
)


MIN_REPLICAS = st.integers(0, 3)
MAX_ABOVE_MIN = st.integers(0, 5)
INITIAL = st.integers(1, 3)
APP_COUNT = st.integers(1, 3)
VERSION_COUNT = st.integers(1, 3)
HAS_CANDIDATE = st.booleans()
TEAM = st.sampled_from(TEAMS)
TEAM_SETS = st.sets(TEAM)
PRIORITY = st.integers(-2, 2)
SLO_MS = st.sampled_from([50.0, 200.0, 1000.0])
GPU = st.sampled_from(["cpu", "a10"])
GPUS = st.sampled_from([0, 0.5, 1, 2])
SCALINGS = st.sampled_from(SCALING)
ROLLOUTS = st.sampled_from(ROLLOUT)
TEAM_BUDGET = st.floats(0, 20)
TOTAL_BUDGET = st.none() | st.floats(0, 40)
CPU_PRICE = st.floats(0, 2)
GPU_PRICE = st.floats(0, 5)


def _version_doc(draw: st.DrawFn, name: str) -> dict[str, Any]:
    """One version's config with consistent bounds."""
    lo = draw(MIN_REPLICAS)
    return {
        "name": name,
        "deployment": f"d_{name}",
        "min_replicas": lo,
        "max_replicas": max(lo, 1) + draw(MAX_ABOVE_MIN),
        "initial_replicas": draw(INITIAL),
    }


@st.composite
def configs(draw: st.DrawFn) -> GovernorConfig:
    """A random valid fleet config: apps, versions, priorities, prices and budgets."""
    apps = []
    for i in range(draw(APP_COUNT)):
        names = [f"v{j}" for j in range(draw(VERSION_COUNT))]
        candidate = names[-1] if len(names) > 1 and draw(HAS_CANDIDATE) else None
        apps.append(
            {
                "name": f"app{i}",
                "team": draw(TEAM),
                "priority": draw(PRIORITY),
                "slo": {"latency_p95_ms": draw(SLO_MS)},
                "versions": [_version_doc(draw, n) for n in names],
                "candidate": candidate,
                "resources": {"gpu_type": draw(GPU), "gpus_per_replica": draw(GPUS)},
                "scaling": draw(SCALINGS),
                "rollout": draw(ROLLOUTS),
            }
        )
    teams = {
        t: {"per_hour": draw(TEAM_BUDGET), "priority": draw(PRIORITY)} for t in draw(TEAM_SETS)
    }
    return parse_config(
        {
            "prices": {"cpu": draw(CPU_PRICE), "a10": draw(GPU_PRICE)},
            "budgets": {"total_per_hour": draw(TOTAL_BUDGET), "teams": teams},
            "applications": apps,
        }
    )


SIGNALS: tuple[dict[str, Any], ...] = (
    {},
    {"request_rate": 0.0, "latency_p95_ms": None, "queue_length": 0.0, "error_rate": 0.0},
    {"request_rate": 0.0, "queue_length": 4.0},
    {
        "request_rate": 0.5,
        "latency_p95_ms": 20.0,
        "request_count": 40.0,
        "error_count": 0.0,
        "latency_histogram": lognormal_histogram(40, 80),
        "queue_length": 0.0,
    },
    {
        "request_rate": 40.0,
        "latency_p95_ms": 150.0,
        "request_count": 900.0,
        "error_count": 3.0,
        "latency_histogram": lognormal_histogram(900, 90),
        "queue_length": 1.0,
        "startup_s": 60.0,
    },
    {
        "request_rate": 300.0,
        "latency_p95_ms": 3000.0,
        "error_rate": 0.5,
        "latency_histogram": lognormal_histogram(400, 3000),
        "queue_length": 40.0,
        "startup_s": 0.0,
    },
    {
        "request_rate": 5.0,
        "latency_p95_ms": 400.0,
        "request_count": 150.0,
        "error_count": 40.0,
        "latency_histogram": lognormal_histogram(150, 250),
    },
)
"""Coherent-enough bundles of signals; any field left out is missing."""


COUNTS = st.none() | st.integers(0, 8)
STARTING = st.none() | st.integers(0, 2)
BUNDLES = st.sampled_from(SIGNALS)
ONE_IN_TEN = st.integers(0, 9)


def _version(draw: st.DrawFn, app: str, name: str) -> VersionSnapshot:
    """A version observed with replica counts and a bundle of signals, any possibly missing."""
    return VersionSnapshot(
        app=app,
        version=name,
        deployment=f"d_{name}",
        running_replicas=draw(COUNTS),
        starting_replicas=draw(STARTING),
        target_replicas=draw(COUNTS),
        **draw(BUNDLES),
    )


@functools.cache
def weight_maps(names: tuple[str, ...]) -> st.SearchStrategy[dict[str, int] | None]:
    """Weights as agents or routers might hand them: any ints, stray keys, or none at all."""
    keys = st.sampled_from([*names, "ghost"])
    return st.none() | st.dictionaries(keys, st.integers(-10, 120), max_size=4)


@st.composite
def snapshots(draw: st.DrawFn, config: GovernorConfig, tick: int = 0) -> Snapshot:
    """A snapshot of `config`'s fleet where apps, versions and fields may be missing."""
    apps = []
    for app in config.applications:
        if draw(ONE_IN_TEN) == 0:
            continue
        names = tuple(v.name for v in app.versions)
        versions = tuple(_version(draw, app.name, n) for n in names if draw(ONE_IN_TEN) > 0)
        apps.append(AppSnapshot(app.name, versions, draw(weight_maps(names))))
    return Snapshot(now=T0 + timedelta(seconds=15 * tick), apps=tuple(apps), window_s=10.0)


KINDS = st.sampled_from(["want", "floor", "cap", "weights", "alert"])
REPLICAS = st.integers(-2, 12)
PROPOSAL_COUNT = st.integers(0, 12)


@st.composite
def proposal_lists(draw: st.DrawFn, config: GovernorConfig) -> list[Proposal]:
    """Random proposals of every kind for the fleet's versions."""
    targets = [(a.name, v.name) for a in config.applications for v in a.versions]
    where = st.sampled_from(targets)
    out: list[Proposal] = []
    for _ in range(draw(PROPOSAL_COUNT)):
        app, version = draw(where)
        n, kind = draw(REPLICAS), draw(KINDS)
        if kind == "want":
            out.append(ReplicaProposal(app, version, n, "scaling", "random"))
        elif kind == "floor":
            out.append(ReplicaFloor(app, version, n, "rollout", "random"))
        elif kind == "cap":
            out.append(ReplicaCap(app, version, n, "budget", "random"))
        elif kind == "weights":
            names = tuple(v.name for v in config.app(app).versions)
            weights = draw(weight_maps(names)) or {}
            out.append(WeightProposal(app, weights, "rollout", "random"))
        else:
            out.append(Alert(app, "scaling", "random"))
    return out
