"""A saved state is parsed through its schema: bad parts are rebuilt, a bad file refused."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from controller.errors import PermanentError
from tests.controller.crash_world import CrashWorld, canary_config


def mid_canary(tmp: Path) -> CrashWorld:
    """A world whose canary has reached 50% and whose state is saved."""
    world = CrashWorld(tmp, canary_config(tmp / "state.json"))
    daemon = world.daemon()
    for _ in range(200):
        daemon.tick()
        world.advance(world.config.interval_s)
        if world.clients.weights().get("v2") == 50:
            return world
    raise AssertionError("the canary never reached 50%")


def edit_state(world: CrashWorld, change: Callable[[dict[str, Any]], None]) -> None:
    """Change the saved document in place, as a person or a bad disk would."""
    path = Path(world.config.state_path)
    doc = json.loads(path.read_text())
    change(doc["agents"])
    path.write_text(json.dumps(doc))


def resets(world: CrashWorld) -> list[dict[str, Any]]:
    """The state-reset events recorded so far."""
    return [e for e in world.events.recent if e["kind"] == "state-reset"]


def test_a_step_past_the_configured_steps_is_rebuilt_from_the_router(tmp_path: Path) -> None:
    world = mid_canary(tmp_path)
    edit_state(world, lambda a: a["rollout"]["apps"]["embed"].update(step_index=99))
    daemon = world.daemon()
    for _ in range(3):
        assert daemon.tick().error is None
        world.advance(5)
    assert [e["agent"] for e in resets(world)] == ["rollout"]
    assert "step_index: 99 is past the 4 rollout steps" in resets(world)[0]["message"]
    assert daemon.telemetry.state_resets.labels("rollout")._value.get() == 1
    assert world.clients.weights()["v2"] == 50  # resumed at the router's step, not step 1
    assert world.saved_rollout()["step_index"] == 2


@pytest.mark.parametrize(
    ("change", "agent", "named"),
    [
        (
            lambda a: a["scaling"]["versions"]["embed/v1"].update(observed_at="yesterday"),
            "scaling",
            "versions.embed/v1.observed_at",
        ),
        (
            lambda a: a["scaling"]["versions"].update({"embed/v1": "garbage"}),
            "scaling",
            "versions.embed/v1",
        ),
        (lambda a: a["rollout"]["apps"].update(embed="a string"), "rollout", "apps.embed"),
        (lambda a: a.update(rollout="a string"), "rollout", "apps"),
        (
            lambda a: a["rollout"]["apps"]["embed"].update(started_at="2026-13-45"),
            "rollout",
            "apps.embed.started_at",
        ),
        (lambda a: a["budget"].update(capped_since={"embed/v1": 5}), "budget", "capped_since"),
    ],
)
def test_a_broken_part_is_dropped_with_an_event_and_the_ticks_go_on(
    tmp_path: Path, change: Callable[[dict[str, Any]], None], agent: str, named: str
) -> None:
    world = mid_canary(tmp_path)
    edit_state(world, change)
    daemon = world.daemon()
    assert daemon.rollouts()["embed"]["phase"] in ("canary", "idle")
    for _ in range(3):
        assert daemon.tick().error is None
        world.advance(5)
    found = resets(world)
    assert [e["agent"] for e in found] == [agent]
    assert named in found[0]["message"]
    assert world.clients.weights()["v2"] >= 50
    assert world.clients.failed == 0


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("{not json", "cannot read the saved state"),
        ("[" * 100_000, "cannot read the saved state"),
        ('{"schema_version": 99, "agents": {}}', "schema_version 99"),
        ('{"schema_version": 1, "agents": []}', "no `agents` mapping"),
    ],
)
def test_an_unreadable_state_file_is_refused_at_start_naming_the_file(
    tmp_path: Path, text: str, why: str
) -> None:
    world = CrashWorld(tmp_path, canary_config(tmp_path / "state.json"))
    Path(world.config.state_path).write_text(text)
    with pytest.raises(PermanentError, match=why) as refused:
        world.daemon()
    assert str(world.config.state_path) in str(refused.value)
