"""`governor release` on the local default: admission, canary, promotion, retirement.

Under steady load, a refused release changes nothing; then the bundled model is released
as v3 from the command line with --wait: it is admitted, deployed as an application of its
own, promoted, and the old stable is retired. No request fails, and v1's replicas are never
restarted while it serves.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from controller.cli import app
from controller.release_cli import EXIT_PROMOTED, EXIT_REFUSED
from tests.conftest import RayServeCluster
from tests.integration.governed_fleet import (
    APP,
    Load,
    daemon_running,
    describe,
    governor_config,
    wait_until,
)

pytestmark = pytest.mark.integration

V1_APP, V3_APP = f"{APP}-v1", f"{APP}-v3"
ROLLOUT = {
    "steps": [50, 100],
    "step_min_duration_s": 6,
    "min_requests": 40,
    "max_latency_ratio": 1.5,
    "deadline_s": 180,
    "drain_s": 5,
}
POLICY = {"allowed_sources": ["bundled:"], "required_meta": ["owner"]}


class PidWatch:
    """Samples the process ids of v1's replicas every second while its application exists."""

    def __init__(self, cluster: RayServeCluster) -> None:
        self.cluster = cluster
        self.samples: list[set[int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if V1_APP in self.cluster.applications():
                    self.samples.append(self.cluster.replica_pids(V1_APP, "model_v1"))
            except (KeyError, OSError):
                pass  # the application is being deleted as it is read
            self._stop.wait(1.0)

    def __enter__(self) -> PidWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def _release(config_path: Path, *args: str) -> tuple[int, str]:
    result = CliRunner(env={"COLUMNS": "300"}).invoke(
        app, ["release", APP, *args, "--meta", "owner=search", "-c", str(config_path)]
    )
    return result.exit_code, " ".join(result.output.split())


def test_a_release_goes_through_admission_canary_and_promotion_with_no_failed_request(
    fleet: RayServeCluster, tmp_path: Path
) -> None:
    config, _ = governor_config(
        fleet, tmp_path, rollout=ROLLOUT, scaling={"capacity_rps_per_replica": 1000.0}
    )
    config = config.model_copy(update={"releases": config.releases.model_validate(POLICY)})
    config_path = tmp_path / "governor.yaml"
    config_path.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    v1_pids = fleet.replica_pids(V1_APP, "model_v1")
    with daemon_running(config) as running, PidWatch(fleet) as watch:
        # Light enough that loading v3 on these two cores sheds nothing from v1.
        load = Load(fleet, rate=8.0, seconds=150, words=4, inputs=8).start()
        apps_before = set(fleet.applications())

        code, said = _release(
            config_path, "--version", "v3", "--model", "/tmp/elsewhere", "--wait", "--timeout", "60"
        )
        assert code == EXIT_REFUSED, said
        assert "refused: source: model source '/tmp/elsewhere' is not under" in said
        assert set(fleet.applications()) == apps_before
        assert running.daemon.config.app(APP).candidate is None

        code, said = _release(
            config_path,
            "--version", "v3", "--model", "bundled:all-MiniLM-L6-v2",
            "--wait", "--timeout", "300",
        )  # fmt: skip
        assert code == EXIT_PROMOTED, f"{said}\n{describe(running.reports[-1])}"
        assert "canary step 1/2 at weight 50%" in said and "promoted: " in said
        wait_until(lambda: V1_APP not in fleet.applications(), 60, "v1 to be retired", running)
        results = load.wait()

    assert all(r.ok for r in results), [r.error for r in results if not r.ok][:3]
    before_retirement = [pids for pids in watch.samples if pids]
    assert before_retirement and all(v1_pids <= pids for pids in before_retirement)
    assert fleet.replica_pids(V3_APP, "model_v3")
    assert running.daemon.config.app(APP).stable_version == "v3"
    history = CliRunner(env={"COLUMNS": "300"}).invoke(
        app, ["release", "history", APP, "-c", str(config_path)]
    )
    table = " ".join(history.output.split())
    assert "promoted (retired v1)" in table and "refused" in table, table
    kinds = [e for e in running.daemon.events.recent if e["kind"] == "release"]
    assert [e["outcome"] for e in kinds] == ["refused", "admitted", "promoted", "retired"]
    assert {e["actor"] for e in kinds} == {kinds[0]["actor"]}
