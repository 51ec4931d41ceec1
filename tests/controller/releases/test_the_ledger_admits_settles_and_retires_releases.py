"""The release ledger: admission, the rollout's verdict, retirement after drain."""

from __future__ import annotations

from typing import Any

import pytest

from controller.agents.base import AgentState, json_copy
from controller.decide import decide
from controller.releases.ledger import (
    LEDGER,
    OUTCOMES,
    VERSION_NAME_PATTERN,
    check_ledger,
    deployment_name,
    effective_config,
    step,
)
from serving import spec
from tests.controller.releases.ledger_world import config, release, rollout, snapshot


def _admitted() -> dict[str, AgentState]:
    """States after v3 was admitted."""
    done = step(snapshot(commands=(release(),)), {}, config())
    return {LEDGER: done.ledger}


def test_an_admitted_release_adds_its_version_as_the_candidate() -> None:
    done = step(snapshot(commands=(release(),)), {}, config())
    (record,) = done.ledger["releases"]
    assert record["status"] == "canary" and record["actor"] == "ci@example.com"
    app = done.config.app("embed")
    v3 = app.version("v3")
    assert (v3.application, v3.deployment, v3.model) == (
        "embed-v3",
        "model_v3",
        "/models/minilm-v3",
    )
    assert (v3.min_replicas, v3.max_replicas) == (1, 4)
    assert app.candidate == "v3" and app.stable_version == "v1"
    assert [(e.outcome, e.version) for e in done.events] == [("admitted", "v3")]


def test_the_agents_decide_under_the_effective_config_in_the_same_tick() -> None:
    decision = decide(snapshot(commands=(release(),)), {}, config())
    assert decision.config is not None and decision.config.app("embed").candidate == "v3"
    assert decision.plan.replicas_for("embed", "v3") is not None
    assert decision.states[LEDGER]["releases"][0]["status"] == "canary"
    assert decision.states["rollout"]["apps"]["embed"]["candidate"] == "v3"


@pytest.mark.parametrize(
    ("command", "rule", "says"),
    [
        (release(model="s3://elsewhere/v3"), "source", "'s3://elsewhere/v3' is not under"),
        (release(meta={}), "metadata", "'owner' is missing"),
        (release(version="v2"), "version", "already has or had a version 'v2'"),
        (release(version="bad name"), "version", "must match"),
        (release(app="nope"), "application", "'nope' is not governed here"),
    ],
)
def test_a_refused_release_changes_nothing_and_names_the_rule(
    command: Any, rule: str, says: str
) -> None:
    base = config()
    done = step(snapshot(commands=(command,)), {}, base)
    (record,) = done.ledger["releases"]
    assert record["status"] == "refused"
    assert record["reason"].startswith(f"{rule}: ") and says in record["reason"]
    assert done.config.model_dump() == base.model_dump()
    assert [e.outcome for e in done.events] == ["refused"]
    assert decide(snapshot(commands=(command,)), {}, base).plan == decide(snapshot(), {}, base).plan


def test_a_one_application_layout_refuses_releases() -> None:
    from tests.controller.sample_config import governor_config

    done = step(snapshot(commands=(release(),)), {}, governor_config())
    assert done.ledger["releases"][0]["reason"].startswith("layout: ")


def test_a_second_release_waits_for_the_first() -> None:
    states = _admitted()
    done = step(snapshot(commands=(release("v4"),)), states, config())
    assert done.ledger["releases"][1]["reason"].startswith(
        "in-progress: embed is still releasing v3"
    )


def test_a_promotion_makes_the_release_stable_and_retires_the_old_stable_after_drain() -> None:
    base = config()
    states = {**_admitted(), "rollout": rollout("promoted", "v3")}
    replicas = {"v1": 1, "v2": 0, "v3": 2}
    done = step(snapshot(10, {"v1": 0, "v2": 0, "v3": 100}, replicas), states, base)
    assert done.ledger["releases"][0]["status"] == "promoted"
    assert [e.outcome for e in done.events] == ["promoted"]
    app = done.config.app("embed")
    assert app.stable_version == "v3" and app.candidate is None
    assert "v1" in [v.name for v in app.versions]
    states = {**states, LEDGER: done.ledger}
    drain = base.app("embed").rollout.drain_s
    held = step(snapshot(10 + drain / 2, {"v1": 0, "v2": 0, "v3": 100}, replicas), states, base)
    assert "v1" in [v.name for v in held.config.app("embed").versions] and not held.events
    states = {**states, LEDGER: held.ledger}
    gone = step(snapshot(10 + drain, {"v1": 0, "v2": 0, "v3": 100}, replicas), states, base)
    assert [(e.outcome, e.version) for e in gone.events] == [("retired", "v1")]
    seen = {e.outcome for e in (*done.events, *held.events, *gone.events)}
    assert seen <= set(OUTCOMES)
    assert [v.name for v in gone.config.app("embed").versions] == ["v2", "v3"]
    assert gone.ledger["retired"] == {"embed": ["v1"]}


def test_traffic_back_on_a_version_restarts_its_drain() -> None:
    base = config()
    states = {**_admitted(), "rollout": rollout("rolled-back", "v3")}
    first = step(snapshot(0, {"v1": 100, "v2": 0, "v3": 0}), states, base)
    states = {**states, LEDGER: first.ledger}
    busy = step(snapshot(5, {"v1": 90, "v2": 0, "v3": 10}), states, base)
    assert "drained_since" not in busy.ledger["releases"][0]
    states = {**states, LEDGER: busy.ledger}
    drain = base.app("embed").rollout.drain_s
    again = step(snapshot(6 + drain / 2, {"v1": 100, "v2": 0, "v3": 0}), states, base)
    assert not again.events


def test_a_rolled_back_release_is_retired_and_the_stable_stays() -> None:
    base = config()
    states = {**_admitted(), "rollout": rollout("rolled-back", "v3", reason="latency regressed")}
    done = step(snapshot(0, {"v1": 100, "v2": 0, "v3": 0}), states, base)
    (record,) = done.ledger["releases"]
    assert record["status"] == "rolled-back" and record["reason"] == "latency regressed"
    states = {**states, LEDGER: done.ledger}
    drain = base.app("embed").rollout.drain_s
    gone = step(snapshot(drain, {"v1": 100, "v2": 0, "v3": 0}), states, base)
    assert [e.outcome for e in gone.events] == ["retired"]
    app = gone.config.app("embed")
    assert [v.name for v in app.versions] == ["v1", "v2"] and app.stable_version == "v1"
    again = step(
        snapshot(drain + 1, commands=(release("v3", id="again"),)),
        {**states, LEDGER: gone.ledger},
        base,
    )
    assert again.ledger["releases"][-1]["reason"].startswith("version: ")


def test_the_saved_ledger_is_parsed_or_dropped_with_the_reason() -> None:
    ledger = _admitted()[LEDGER]
    assert check_ledger(ledger) == (ledger, None)
    broken = {**ledger, "releases": [{**ledger["releases"][0], "status": 3}]}
    kept, reason = check_ledger(broken)
    assert kept == {} and reason is not None and "releases.0.status" in reason
    assert effective_config(config(), kept).model_dump() == config().model_dump()


def test_the_naming_rules_agree_with_the_data_plane() -> None:
    assert VERSION_NAME_PATTERN == spec.VERSION_NAME_PATTERN
    assert deployment_name("v9") == spec.deployment_name("v9")


def test_a_request_read_again_after_a_crash_is_not_decided_twice() -> None:
    states = _admitted()
    again = step(snapshot(1, commands=(release(),)), states, config())
    assert again.ledger["releases"] == states[LEDGER]["releases"]
    assert again.events == ()


def test_an_unchanged_ledger_gives_the_same_config_object_and_others_stay_untouched() -> None:
    base = config()
    ledger = _admitted()[LEDGER]
    first = effective_config(base, ledger)
    assert effective_config(base, ledger) is first
    assert effective_config(base, json_copy(ledger)) is first
    other = step(
        snapshot(1, {"v1": 100, "v2": 0, "v3": 0}),
        {LEDGER: ledger, "rollout": rollout("rolled-back", "v3")},
        base,
    )
    assert effective_config(base, other.ledger) is not first
