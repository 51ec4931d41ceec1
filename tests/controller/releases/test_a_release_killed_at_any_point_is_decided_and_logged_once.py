"""A daemon killed at each point of the tick that reads a release request.

After a restart the request is recorded exactly once, its version is deployed, and the
event log holds its admission exactly once, whether the crash came before the state was
saved (the request is read again), after it (the request is skipped, the missed event is
logged at start) or after the apply.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from controller.actuators.local import LocalActuator
from controller.actuators.state_file import FileStateStore
from controller.daemon import Daemon
from controller.events import EventLog
from controller.releases.ledger import LEDGER
from controller.signals.commands import CommandInbox
from controller.signals.embedded import EmbeddedSource
from controller.telemetry import Telemetry
from controller.transports.ray_dashboard import RayDashboardClient
from tests.controller.clock import ManualClock
from tests.controller.fake_serve import FakeServe
from tests.controller.releases.ledger_world import T0, release
from tests.controller.sample_config import PER_VERSION_SERVE_CONFIG, per_version_config

POINTS = ("observed", "decided", "saved", "applied")


class Crash(BaseException):
    """The daemon's process dies here."""


def _daemon(tmp: Path, serve: FakeServe, clock: ManualClock, crash_at: str | None) -> Daemon:
    config = per_version_config(
        state_path=str(tmp / "state.json"), releases={"allowed_sources": ["/models/"]}
    )
    client = RayDashboardClient("http://dash", transport=serve.transport(), token="")

    def checkpoint(point: str) -> None:
        if point == crash_at:
            raise Crash(point)

    return Daemon(
        config,
        EmbeddedSource(config, client, lambda: [], clock),
        LocalActuator(config, client, PER_VERSION_SERVE_CONFIG),
        FileStateStore(config.state_path),
        clock,
        Telemetry(),
        EventLog(tmp / "events.jsonl"),
        CommandInbox(tmp / "commands"),
        checkpoint=checkpoint,
    )


@pytest.mark.parametrize("point", POINTS)
def test_a_release_survives_a_crash_at_each_point_of_its_tick(tmp_path: Path, point: str) -> None:
    serve = FakeServe()
    serve._deploy(PER_VERSION_SERVE_CONFIG)
    clock = ManualClock(T0)
    _daemon(tmp_path, serve, clock, None).tick()  # the fleet before the request
    command = release()
    CommandInbox(tmp_path / "commands").submit("release", "embed", command.args)
    with pytest.raises(Crash):
        _daemon(tmp_path, serve, clock, point).tick()
    clock.advance(3)
    restarted = _daemon(tmp_path, serve, clock, None)
    for _ in range(3):
        report = restarted.tick()
        assert report.error is None, report.error
        clock.advance(3)
    saved = FileStateStore(tmp_path / "state.json").load()[LEDGER]["releases"]
    assert [(r["id"], r["status"]) for r in saved] == [("r-v3", "canary")]
    assert CommandInbox(tmp_path / "commands").pending() == []
    assert "embed-v3" in serve.apps
    assert serve.restarted == []
    logged = EventLog(tmp_path / "events.jsonl").logged("release", "release_id", "outcome")
    assert logged == {("r-v3", "admitted")}
    lines = (tmp_path / "events.jsonl").read_text().splitlines()
    kinds = Counter('"kind": "release"' in line for line in lines)
    assert kinds[True] == 1, [line for line in lines if '"release"' in line]
