"""The arbiter's precedence: bounds > budget > floors > scaling, with reasons."""

from __future__ import annotations

from controller.arbiter import arbitrate, normalize_weights
from controller.decisions import (
    Alert,
    Proposal,
    ReplicaCap,
    ReplicaFloor,
    ReplicaProposal,
    WeightProposal,
)
from controller.snapshot import Snapshot
from tests.controller.fleet import app_doc, app_snapshot, fleet, make_config, snapshot, version

CONFIG = make_config(app_doc(min_replicas=1, max_replicas=6))


def observed(v1: int = 2, v2: int = 1, weights: dict[str, int] | None = None) -> Snapshot:
    """The default app observed with these replica counts."""
    return snapshot(
        version(name="v1", replicas=v1),
        version(name="v2", replicas=v2),
        weights=weights if weights is not None else {"v1": 100, "v2": 0},
    )


def test_every_version_gets_a_decision_and_unproposed_ones_keep_the_observed_count() -> None:
    plan = arbitrate(observed(v1=3, v2=2), [], CONFIG)
    assert plan.replicas_for("embed", "v1") == 3
    assert plan.replicas_for("embed", "v2") == 2
    assert all(d.reasons for d in plan.replicas)
    assert plan.weights_for("embed") == {"v1": 100, "v2": 0}


def test_unobserved_versions_start_at_initial_replicas() -> None:
    plan = arbitrate(snapshot(version(name="v1", replicas=2)), [], CONFIG)
    assert plan.replicas_for("embed", "v2") == 1
    (d,) = [d for d in plan.replicas if d.version == "v2"]
    assert "initial_replicas" in d.reasons[0]


def test_the_largest_replica_proposal_wins() -> None:
    props = [
        ReplicaProposal("embed", "v1", 3, "a", "three"),
        ReplicaProposal("embed", "v1", 5, "b", "five"),
    ]
    plan = arbitrate(observed(), props, CONFIG)
    assert plan.replicas_for("embed", "v1") == 5


def test_a_floor_raises_and_a_cap_beats_the_floor_but_not_the_minimum() -> None:
    props = [
        ReplicaProposal("embed", "v2", 1, "scaling", "one"),
        ReplicaFloor("embed", "v2", 4, "rollout", "room for the next step"),
        ReplicaCap("embed", "v2", 0, "budget", "too expensive"),
    ]
    plan = arbitrate(observed(), props, CONFIG)
    assert plan.replicas_for("embed", "v2") == 1, "min_replicas 1 beats the budget's cap"
    (d,) = [d for d in plan.replicas if d.version == "v2"]
    text = " ".join(d.reasons)
    assert "floor" in text and "cap" in text and "min_replicas" in text


def test_bounds_clamp_any_proposal() -> None:
    props = [
        ReplicaProposal("embed", "v1", 50, "scaling", "lots"),
        ReplicaProposal("embed", "v2", -3, "scaling", "negative"),
    ]
    plan = arbitrate(observed(), props, CONFIG)
    assert plan.replicas_for("embed", "v1") == 6
    assert plan.replicas_for("embed", "v2") == 1


def test_a_version_with_traffic_is_never_at_zero_replicas() -> None:
    config = make_config(app_doc(min_replicas=0))
    props = [
        WeightProposal("embed", {"v1": 80, "v2": 20}, "rollout", "canary"),
        ReplicaProposal("embed", "v2", 0, "scaling", "zero"),
    ]
    assert arbitrate(observed(), props, config).replicas_for("embed", "v2") == 1


def test_a_version_under_rollout_is_never_at_zero_replicas() -> None:
    config = make_config(app_doc(min_replicas=0))
    props = [
        ReplicaFloor("embed", "v2", 1, "rollout", "under canary"),
        ReplicaCap("embed", "v2", 0, "budget", "no money"),
    ]
    assert arbitrate(observed(), props, config).replicas_for("embed", "v2") == 1


def test_scale_to_zero_is_allowed_for_a_serving_version_when_the_config_says_so() -> None:
    config = make_config(app_doc(versions=("v1",), min_replicas=0, scaling={"scale_to_zero": True}))
    props = [ReplicaProposal("embed", "v1", 0, "scaling", "idle")]
    plan = arbitrate(snapshot(version(replicas=1), weights={"v1": 100}), props, config)
    assert plan.replicas_for("embed", "v1") == 0


def test_weights_are_normalized_to_whole_percents_summing_to_100() -> None:
    assert normalize_weights({"a": 1, "b": 1, "c": 1}, ["a", "b", "c"], "a") == {
        "a": 34,
        "b": 33,
        "c": 33,
    }
    assert normalize_weights({"a": -5, "zz": 50}, ["a", "b"], "b") == {"a": 0, "b": 100}
    props = [WeightProposal("embed", {"v1": 3, "v2": 1}, "rollout", "odd weights")]
    plan = arbitrate(observed(), props, CONFIG)
    assert plan.weights_for("embed") == {"v1": 75, "v2": 25}


def test_weights_default_to_the_stable_when_nothing_is_observed_or_proposed() -> None:
    snap = snapshot(version(name="v1"), version(name="v2"), weights=None)
    assert arbitrate(snap, [], CONFIG).weights_for("embed") == {"v1": 100, "v2": 0}


def two_busy_apps(first: str, second: str, wanted: int) -> tuple[Snapshot, list[Proposal]]:
    """Two one-version apps at one replica each, both asking for `wanted` replicas."""
    snap = fleet(
        app_snapshot(version(first, "v1", 1), weights={"v1": 100}),
        app_snapshot(version(second, "v1", 1), weights={"v1": 100}),
    )
    asks: list[Proposal] = [
        ReplicaProposal(first, "v1", wanted, "scaling", "busy"),
        ReplicaProposal(second, "v1", wanted, "scaling", "busy"),
    ]
    return snap, asks


def test_budget_cuts_the_lower_priority_app_first() -> None:
    config = make_config(
        app_doc("gold", versions=("v1",), priority=10),
        app_doc("bronze", versions=("v1",), priority=0),
        prices={"cpu": 1.0},
        budgets={"total_per_hour": 6},
    )
    plan = arbitrate(*two_busy_apps("gold", "bronze", 4), config)
    assert plan.replicas_for("gold", "v1") == 4
    assert plan.replicas_for("bronze", "v1") == 2
    assert plan.cost_per_hour == 6
    (d,) = [d for d in plan.replicas if d.app == "bronze"]
    assert any("total budget 6.00/h took 2" in r for r in d.reasons)


def test_team_budgets_hold_per_team() -> None:
    config = make_config(
        app_doc("a", versions=("v1",), team="red"),
        app_doc("b", versions=("v1",), team="blue"),
        prices={"cpu": 2.0},
        budgets={"teams": {"red": {"per_hour": 4}, "blue": {"per_hour": 100}}},
    )
    plan = arbitrate(*two_busy_apps("a", "b", 5), config)
    assert plan.replicas_for("a", "v1") == 2
    assert plan.replicas_for("b", "v1") == 5


def test_an_impossible_budget_keeps_the_minimum_and_says_so() -> None:
    config = make_config(app_doc(min_replicas=2), budgets={"total_per_hour": 1})
    plan = arbitrate(observed(v1=3, v2=3), [], config)
    assert plan.replicas_for("embed", "v1") == 2
    assert plan.replicas_for("embed", "v2") == 2
    assert any(isinstance(a, Alert) and "over budget" in a.message for a in plan.alerts)
    assert plan.cost_per_hour == 4
