"""The Governor daemon against a real local Ray Serve running the real model."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import RayServeCluster
from tests.integration.governed_fleet import (
    APP,
    Load,
    daemon_running,
    governor_config,
    targets,
    wait_until,
)

pytestmark = pytest.mark.integration


def test_a_load_step_adds_replicas_and_removes_them_after_the_load_drops(
    fleet: RayServeCluster, tmp_path: Path
) -> None:
    config, _ = governor_config(
        fleet, tmp_path, scaling={"capacity_rps_per_replica": 8.0, "max_upscale_step": 2}
    )
    with daemon_running(config) as running:
        load = Load(fleet, rate=20, seconds=25).start()
        wait_until(
            lambda: targets(fleet)["model_v1"] >= 2, 40, "v1 to scale up under load", running
        )
        peak = targets(fleet)["model_v1"]
        results = load.wait()
        wait_until(lambda: targets(fleet)["model_v1"] == 1, 60, "v1 to scale back down", running)
    assert peak >= 2
    # The step overloads the single replica until it scales out: what its bounded queue
    # cannot hold is shed (503 `overloaded`, counted as demand); nothing else may fail.
    failed = [r for r in results if not r.ok and not r.shed]
    assert failed == [], [(r.status, r.error) for r in failed][:3]
    reasons = [
        reason
        for report in running.reports
        if report.plan
        for d in report.plan.replicas
        if d.version == "v1"
        for reason in d.reasons
    ]
    assert reasons, "every replica decision carries its reasons"


def test_a_budget_for_two_replicas_never_runs_a_third(
    fleet: RayServeCluster, tmp_path: Path
) -> None:
    config, _ = governor_config(
        fleet, tmp_path, scaling={"capacity_rps_per_replica": 4.0, "max_upscale_step": 3}
    )
    config = config.model_copy(
        update={"budgets": config.budgets.model_copy(update={"total_per_hour": 2.0})}
    )
    seen_totals: list[int] = []
    with daemon_running(config) as running:
        # The daemon first retires the idle v2 to make room; v1 may then take the second slot.
        wait_until(lambda: targets(fleet)["model_v2"] == 0, 30, "v2 to be retired", running)
        load = Load(fleet, rate=20, seconds=20).start()
        deadline = time.monotonic() + 25
        while time.monotonic() < deadline:
            seen_totals.append(sum(targets(fleet).values()))
            time.sleep(0.5)
        load.wait()
    assert max(seen_totals) <= 2
    assert (
        max(
            targets_seen := [r.plan.replicas_for(APP, "v1") or 0 for r in running.reports if r.plan]
        )
        == 2
    ), targets_seen
    assert any(r.plan.cost_per_hour <= 2.0 for r in running.reports if r.plan)
    assert all(r.plan.cost_per_hour <= 2.0 + 1e-9 for r in running.reports if r.plan)


def test_plan_and_status_read_the_running_fleet_and_apply_nothing(
    fleet: RayServeCluster, tmp_path: Path
) -> None:
    import yaml
    from typer.testing import CliRunner

    from controller.cli import app

    config, _ = governor_config(fleet, tmp_path)
    path = tmp_path / "governor.yaml"
    path.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    before = fleet.applications()[APP]["last_deployed_time_s"]
    plan = CliRunner().invoke(app, ["plan", "--config", str(path)])
    status = CliRunner().invoke(app, ["status", "--config", str(path)])
    assert plan.exit_code == 0, plan.output
    assert "v1" in plan.output and "v2" in plan.output
    assert "scaling:" in plan.output  # each row carries the reasons behind it
    assert status.exit_code == 0, status.output
    assert "fleet status" in status.output
    assert fleet.applications()[APP]["last_deployed_time_s"] == before
    assert targets(fleet) == {"model_v1": 1, "model_v2": 1}
