"""The fleet simulation: N apps under one decide, shared budgets, bounded sample memory."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from controller.cli import app as cli
from controller.config import load_config
from controller.sim.engine import SimSettings, Simulation
from controller.sim.fleet import (
    FleetOptions,
    FleetSimulation,
    fleet_config,
    fleet_members,
    rotate,
    summarize_fleet,
)
from controller.sim.observe import PipelineSettings, build_snapshot
from controller.sim.policies.static import StaticPolicy
from controller.sim.profile import load_profile
from controller.sim.trace import Trace, repo_root
from tests.controller.sim import world

ROOT = repo_root()
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
CONFIG = ROOT / "configs/governor.sim.minilm.yaml"
PROFILE = ROOT / "configs/profiles/minilm-cpu.yaml"


def steady(rate: float, seconds: float) -> Trace:
    """Evenly spaced requests of 32 prompt tokens."""
    arrival = np.arange(0.0, seconds, 1.0 / rate)
    tokens = np.full(arrival.size, 32, dtype=np.int64)
    return Trace(arrival, tokens, np.zeros(arrival.size, dtype=np.int64), EPOCH)


def first(trace: Trace, seconds: float) -> Trace:
    """The requests of the trace's first `seconds`."""
    keep = trace.arrival_s < seconds
    return replace(
        trace,
        arrival_s=trace.arrival_s[keep],
        prompt_tokens=trace.prompt_tokens[keep],
        output_tokens=trace.output_tokens[keep],
    )


def test_rotation_keeps_every_request_and_wraps_around() -> None:
    trace = steady(rate=2.0, seconds=100.0)
    turned = rotate(trace, 30.0)
    assert len(turned) == len(trace)
    assert np.all(np.diff(turned.arrival_s) >= 0)
    assert sorted(turned.prompt_tokens.tolist()) == sorted(trace.prompt_tokens.tolist())
    assert turned.arrival_s[0] < 1.0 and turned.arrival_s[-1] <= trace.arrival_s[-1] + 1e-6


def test_bounded_samples_give_the_same_snapshots_as_the_whole_history() -> None:
    trace = steady(rate=20.0, seconds=300.0)
    app = world.app()
    pipeline = PipelineSettings(window_s=30.0)
    snaps = []
    for keep in (None, 100.0):
        sim = Simulation(
            trace,
            world.encoder(),
            app,
            StaticPolicy(2),
            SimSettings(pipeline=pipeline, keep_s=keep),
        )
        sim.start(ticks=False)
        taken = []
        for t in np.arange(10.0, 300.0, 10.0):
            sim.advance(float(t))
            view = sim.view()
            taken.append(
                build_snapshot(
                    view.obs,
                    app,
                    float(t),
                    trace.start,
                    view.statuses,
                    view.weights,
                    pipeline,
                    view.startup_s,
                )
            )
        snaps.append((taken, len(sim.obs.times)))
    (whole, kept_all), (bounded, kept_few) = snaps
    assert whole == bounded
    assert kept_all == 291 and kept_few <= 2 * 100 + 1


@pytest.fixture(scope="module")
def small_fleet() -> tuple[FleetSimulation, dict]:
    base = load_config(CONFIG)
    profile = load_profile(PROFILE).model_copy(update={"host_parallelism": None})
    # Twice the recorded volume for five minutes: most apps need more than one replica.
    options = FleetOptions(apps=12, volume=2.0, team_fraction=0.6, total_fraction=0.7)
    members = fleet_members(base.applications[0], "encoder", options, profile.encoder.max_tokens)
    members = [replace(m, trace=first(m.trace, 300.0)) for m in members]
    config = fleet_config(base, members, options)
    sim = FleetSimulation(config, members, profile, SimSettings(keep_s=120.0))
    result = sim.run()
    return sim, summarize_fleet(result, profile)


def test_every_app_gets_its_own_traffic_and_the_budgets_bind(small_fleet) -> None:
    sim, summary = small_fleet
    assert summary["apps"] == 12
    shapes = {m.shape for m in sim.members}
    assert len(shapes) == 8, "the first eight apps replay the eight traces of the suite"
    starts = {float(m.trace.arrival_s[len(m.trace) // 2]) for m in sim.members}
    assert len(starts) == 12, "copies of one shape are shifted in time"
    budgets = sim.config.budgets
    assert budgets.total_per_hour is not None and budgets.teams
    asked = sum(row["replica_hours_asked"] for row in summary["priorities"])
    cut = sum(row["replica_hours_cut"] for row in summary["priorities"])
    assert 0 < cut < asked, "budgets below the fleet's mean need cut some replicas"
    for row in summary["priorities"]:
        assert 0 <= row["replica_hours_cut"] <= row["replica_hours_asked"]
        assert 0 <= row["attainment"] <= 1
    assert sum(t["apps"] for t in summary["teams"]) == 12


def test_simulate_fleet_prints_teams_and_priorities_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "fleet.json"
    result = CliRunner().invoke(
        cli,
        [
            "simulate",
            "--config",
            str(CONFIG),
            "--profile",
            str(PROFILE),
            "--fleet",
            "3",
            "--volume",
            "0.02",
            "--json",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "per team" in result.output and "budget shared by priority" in result.output
    doc = json.loads(out.read_text())
    assert doc["apps"] == 3 and doc["teams"][0]["team"] == "team-0000"
    assert doc["requests"] > 0 and 0 <= doc["attainment"] <= 1
