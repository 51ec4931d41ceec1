"""The daemon's loop: survives failures, backs off, honours dry-run and leadership."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from controller.actuators.base import ApplyResult
from controller.actuators.state_file import FileStateStore
from controller.daemon import Daemon
from controller.decide import TickDecision
from controller.decisions import Plan, ReplicaDecision, WeightDecision
from controller.errors import PermanentError, TemporaryError
from controller.signals.commands import CommandInbox
from controller.snapshot import AppSnapshot, Snapshot, VersionSnapshot
from tests.controller.clock import ManualClock
from tests.controller.sample_config import governor_config

PLAN = Plan(
    replicas=(ReplicaDecision("embed", "v1", 2, ("more load",)),),
    weights=(WeightDecision("embed", {"v1": 100, "v2": 0}, ("stable",)),),
)


class Source:
    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.fail: Exception | None = None
        self.replicas: int | None = 1

    def observe(self) -> Snapshot:
        if self.fail is not None:
            raise self.fail
        versions = tuple(
            VersionSnapshot("embed", v, f"model_{v}", target_replicas=self.replicas)
            for v in ("v1", "v2")
        )
        return Snapshot(now=self.clock.now(), apps=(AppSnapshot("embed", versions),))


class Actuator:
    def __init__(self) -> None:
        self.calls = 0
        self.fail: Exception | None = None

    def apply(self, plan: Plan, snapshot: Snapshot) -> ApplyResult:
        self.calls += 1
        if self.fail is not None:
            raise self.fail
        return ApplyResult(changes=("did it",))


def counting_decide(
    snapshot: Snapshot, states: Mapping[str, dict[str, Any]], config: Any
) -> TickDecision:
    ticks = int(states.get("counter", {}).get("ticks", 0)) + 1
    seen = [c.action for c in snapshot.commands]
    return TickDecision(plan=PLAN, states={"counter": {"ticks": ticks, "seen": seen}}, proposals=())


def make(tmp_path: Path, **config: Any) -> tuple[Daemon, Source, Actuator, ManualClock]:
    clock = ManualClock()
    source, actuator = Source(clock), Actuator()
    cfg = governor_config(state_path=str(tmp_path / "state.json"), **config)
    daemon = Daemon(
        cfg,
        source,
        actuator,
        FileStateStore(cfg.state_path),
        clock,
        inbox=CommandInbox.beside_state(cfg.state_path),
        decide_fn=counting_decide,
    )
    return daemon, source, actuator, clock


def test_a_failing_source_is_reported_and_the_next_tick_runs(tmp_path: Path) -> None:
    daemon, source, actuator, _ = make(tmp_path)
    source.fail = RuntimeError("boom")
    report = daemon.tick()
    assert report.error == "observe: unexpected RuntimeError: boom"
    assert actuator.calls == 0
    source.fail = None
    assert daemon.tick().error is None
    assert actuator.calls == 1
    assert daemon.telemetry.errors.labels("unexpected", "observe")._value.get() == 1


def test_a_temporary_apply_error_backs_off_then_retries(tmp_path: Path) -> None:
    daemon, _, actuator, clock = make(tmp_path)
    actuator.fail = TemporaryError("dashboard down", retry_after_s=4)
    first = daemon.tick()
    assert first.applied is not None and first.applied.held.startswith("temporary error")
    actuator.fail = None
    clock.advance(2)
    second = daemon.tick()
    assert second.applied is not None and "backing off" in second.applied.held
    assert actuator.calls == 1
    clock.advance(3)
    assert daemon.tick().applied == ApplyResult(changes=("did it",))
    assert actuator.calls == 2


def test_a_permanent_apply_error_fails_the_tick_but_not_the_loop(tmp_path: Path) -> None:
    daemon, _, actuator, _ = make(tmp_path)
    actuator.fail = PermanentError("forbidden")
    assert daemon.tick().error == "act: forbidden"
    actuator.fail = None
    assert daemon.tick().error is None


def test_dry_run_decides_but_never_applies(tmp_path: Path) -> None:
    daemon, _, actuator, _ = make(tmp_path, dry_run=True)
    report = daemon.tick()
    assert report.plan == PLAN
    assert report.applied is not None and report.applied.held == "dry run: nothing applied"
    assert actuator.calls == 0


def test_a_follower_does_not_act(tmp_path: Path) -> None:
    daemon, _, actuator, _ = make(tmp_path)
    daemon.is_leader = lambda: False
    assert daemon.tick().applied == ApplyResult(held="not the leader: nothing applied")
    assert actuator.calls == 0


def test_state_survives_a_restart(tmp_path: Path) -> None:
    daemon, _, _, _ = make(tmp_path)
    daemon.tick()
    daemon.tick()
    restarted, _, _, _ = make(tmp_path)
    assert restarted.states["counter"]["ticks"] == 2
    restarted.tick()
    assert restarted.states["counter"]["ticks"] == 3


def test_operator_commands_reach_the_agents_once(tmp_path: Path) -> None:
    daemon, _, _, _ = make(tmp_path)
    CommandInbox.beside_state(tmp_path / "state.json").submit("abort-rollout", "embed")
    daemon.tick()
    assert daemon.states["counter"]["seen"] == ["abort-rollout"]
    daemon.tick()
    assert daemon.states["counter"]["seen"] == []


def test_a_command_is_saved_before_the_apply_and_handled_once(tmp_path: Path) -> None:
    daemon, _, actuator, _ = make(tmp_path)
    CommandInbox.beside_state(tmp_path / "state.json").submit("abort-rollout", "embed")
    actuator.fail = PermanentError("forbidden")
    report = daemon.tick()
    assert report.error == "act: forbidden"
    saved = FileStateStore(tmp_path / "state.json").load()
    assert saved["counter"]["seen"] == ["abort-rollout"]  # its effect outlives the failed apply
    actuator.fail = None
    daemon.tick()
    assert daemon.states["counter"]["seen"] == []


def test_unknown_command_actions_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown action"):
        CommandInbox("/nonexistent").submit("delete-everything", "embed")


def test_a_plan_made_without_seeing_the_replicas_is_not_applied(tmp_path: Path) -> None:
    daemon, source, actuator, _ = make(tmp_path)
    source.replicas = None
    report = daemon.tick()
    assert report.applied is not None
    assert report.applied.held == "replicas not observed for embed/v1, embed/v2: nothing applied"
    assert actuator.calls == 0


def test_a_new_leader_resumes_from_the_saved_state_not_its_own(tmp_path: Path) -> None:
    leader, _, _, _ = make(tmp_path)
    standby, _, _, _ = make(tmp_path)
    standby.is_leader = lambda: False
    standby.tick()  # decides on its own view while following
    leader.tick()
    leader.tick()
    assert leader.states["counter"]["ticks"] == 2
    standby.is_leader = lambda: True
    standby.tick()
    assert standby.states["counter"]["ticks"] == 3


def test_the_snapshot_says_since_when_this_process_observes(tmp_path: Path) -> None:
    daemon, _, _, clock = make(tmp_path)
    first = daemon.tick().snapshot
    assert first is not None and first.observing_since == clock.now() and first.warming_up
    clock.advance(daemon.config.window_s)
    later = daemon.tick().snapshot
    assert later is not None and later.observing_since == first.now and not later.warming_up
