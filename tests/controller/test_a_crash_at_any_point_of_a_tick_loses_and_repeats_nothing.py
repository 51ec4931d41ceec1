"""A daemon killed at every point of a tick, over a whole canary under steady load.

Points: after observing, after deciding, after saving the state, after each write the
actuator sends, after applying. Each is hit once for every state of the fleet and the
saved rollout, so every step of the canary is crossed by crashes at every point.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tests.controller.crash_world import Crash, CrashWorld, Faults, canary_config

MAX_TICKS = 3000


@dataclass
class Run:
    """What a canary run under crashes left behind."""

    world: CrashWorld
    crashes: list[str]
    ticks: int
    candidate_weights: list[int] = field(default_factory=list)
    saved_steps: list[tuple[str, int]] = field(default_factory=list)
    restarts: list[float] = field(default_factory=list)


def _sample(run: Run) -> None:
    run.candidate_weights.append(run.world.clients.weights().get("v2", 0))
    saved = run.world.saved_rollout() if Path(run.world.config.state_path).exists() else {}
    if saved:
        step = (saved.get("phase", "idle"), int(saved.get("step_index", 0)))
        if not run.saved_steps or run.saved_steps[-1] != step:
            run.saved_steps.append(step)


def _state_of(world: CrashWorld) -> tuple[object, ...]:
    """The fleet and the saved rollout: a crash point is hit once for each."""
    saved = world.saved_rollout() if Path(world.config.state_path).exists() else {}
    return (
        tuple(sorted(world.replicas().items())),
        tuple(sorted(world.clients.weights().items())),
        (saved.get("phase"), saved.get("step_index"), saved.get("weight")),
    )


def run_canary(tmp: Path, crash: bool) -> Run:
    """Drive the canary to its end, killing and restarting the daemon as `Faults` says."""
    config = canary_config(tmp / "state.json")
    world = CrashWorld(tmp, config)
    faults = Faults(lambda: _state_of(world), enabled=crash)
    world.faults = faults
    run = Run(world, faults.crashes, 0)
    daemon = world.daemon()
    while run.ticks < MAX_TICKS:
        run.ticks += 1
        faults.begin_tick()
        try:
            report = daemon.tick()
            assert report.error is None, report.error
        except Crash:
            run.restarts.append((world.clock.now() - world.started).total_seconds())
            daemon = world.daemon()
        world.advance(config.interval_s)
        _sample(run)
        if world.saved_rollout().get("phase") == "promoted" and world.clients.weights() == {
            "v1": 0,
            "v2": 100,
        }:
            break
    return run


def test_a_canary_killed_at_every_point_promotes_with_no_failed_request(tmp_path: Path) -> None:
    run = run_canary(tmp_path, crash=True)
    world = run.world
    assert world.saved_rollout()["phase"] == "promoted", run.saved_steps
    assert len(set(run.crashes)) >= 7, sorted(set(run.crashes))
    assert world.clients.failed == 0
    # Weights only ever move forward, and each step was decided once: the saved step
    # never goes back to one already left.
    assert run.candidate_weights == sorted(run.candidate_weights)
    assert run.saved_steps == sorted(set(run.saved_steps), key=run.saved_steps.index)
    canary_steps = [step for phase, step in run.saved_steps if phase == "canary"]
    assert canary_steps == sorted(set(canary_steps))


def test_a_restarted_daemon_cuts_no_capacity_before_a_full_window(tmp_path: Path) -> None:
    run = run_canary(tmp_path, crash=True)
    window = run.world.config.window_s
    downs = []
    last = {"model_v1": 1, "model_v2": 1}  # as deployed before the first tick
    for at, deployment, n in run.world.scale_calls:
        if n < last[deployment] and any(0 <= at - r < window for r in run.restarts):
            downs.append((at, deployment, last[deployment], n))
        last[deployment] = n
    assert len(run.restarts) >= 20
    assert downs == []


def test_the_same_canary_without_crashes_ends_the_same(tmp_path: Path) -> None:
    calm = run_canary(tmp_path / "calm", crash=False)
    assert calm.crashes == []
    assert calm.world.saved_rollout()["phase"] == "promoted"
    assert calm.world.clients.failed == 0
