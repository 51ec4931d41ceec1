"""The local actuator against a stand-in dashboard: idempotent and level-triggered."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from controller.actuators.local import LocalActuator, covers
from controller.decisions import Plan, ReplicaDecision, WeightDecision
from controller.errors import PermanentError, TemporaryError
from controller.snapshot import Snapshot
from controller.transports.ray_dashboard import RayDashboardClient
from tests.controller.fake_serve import FakeServe
from tests.controller.sample_config import SERVE_CONFIG, governor_config

NOW = datetime(2026, 1, 1, tzinfo=UTC)
EMPTY = Snapshot(now=NOW, apps=())


def plan(v1: int, v2: int, weights: dict[str, int]) -> Plan:
    return Plan(
        replicas=(
            ReplicaDecision("embed", "v1", v1, ("test",)),
            ReplicaDecision("embed", "v2", v2, ("test",)),
        ),
        weights=(WeightDecision("embed", weights, ("test",)),),
    )


@pytest.fixture
def serve() -> FakeServe:
    return FakeServe()


@pytest.fixture
def actuator(serve: FakeServe) -> LocalActuator:
    client = RayDashboardClient("http://dash", transport=serve.transport(), token="")
    return LocalActuator(governor_config(), client, SERVE_CONFIG)


def test_applying_the_same_plan_twice_changes_nothing_the_second_time(
    serve: FakeServe, actuator: LocalActuator
) -> None:
    first = actuator.apply(plan(3, 1, {"v1": 90, "v2": 10}), EMPTY)
    second = actuator.apply(plan(3, 1, {"v1": 90, "v2": 10}), EMPTY)
    assert first.changes and not second.changes
    assert len(serve.puts) == 1
    router = serve.apps["embed"]["deployed_app_config"]["deployments"][0]
    assert router["user_config"]["weights"] == {"v1": 90, "v2": 10}
    assert serve.apps["embed"]["deployments"]["model_v1"]["target_num_replicas"] == 3


def test_zero_replicas_go_through_the_scale_api_and_the_config_keeps_one(
    serve: FakeServe, actuator: LocalActuator
) -> None:
    actuator.apply(plan(2, 0, {"v1": 100, "v2": 0}), EMPTY)
    deployed = {d["name"]: d for d in serve.puts[-1]["applications"][0]["deployments"]}
    assert deployed["model_v2"]["num_replicas"] == 1
    assert serve.scales == [("embed", "model_v2", 0)]
    assert not actuator.apply(plan(2, 0, {"v1": 100, "v2": 0}), EMPTY).changes


def test_replica_drift_is_corrected_without_resubmitting_the_config(
    serve: FakeServe, actuator: LocalActuator
) -> None:
    actuator.apply(plan(2, 1, {"v1": 100, "v2": 0}), EMPTY)
    FakeServe._set_replicas(serve.apps["embed"]["deployments"]["model_v1"], 1)
    result = actuator.apply(plan(2, 1, {"v1": 100, "v2": 0}), EMPTY)
    assert len(serve.puts) == 1
    assert serve.scales[-1] == ("embed", "model_v1", 2)
    assert result.changes == ("scaled embed/model_v1: 1 -> 2",)


def test_server_errors_are_temporary_and_bad_requests_permanent(
    serve: FakeServe, actuator: LocalActuator
) -> None:
    serve.fail_next = 503
    with pytest.raises(TemporaryError):
        actuator.apply(plan(1, 1, {"v1": 100, "v2": 0}), EMPTY)
    serve.fail_next = 400
    with pytest.raises(PermanentError, match="injected failure"):
        actuator.apply(plan(1, 1, {"v1": 100, "v2": 0}), EMPTY)


def test_missing_token_is_reported_with_how_to_fix_it(serve: FakeServe) -> None:
    serve.fail_next = 401
    client = RayDashboardClient("http://dash", transport=serve.transport(), token="")
    with pytest.raises(PermanentError, match="RAY_AUTH_TOKEN"):
        client.get_applications()


def test_covers_ignores_keys_ray_adds_and_matches_deployments_by_name() -> None:
    desired = {"deployments": [{"name": "a", "num_replicas": 2}]}
    deployed = {"deployments": [{"name": "b"}, {"name": "a", "num_replicas": 2, "extra": 1}]}
    assert covers(desired, deployed)
    assert not covers({"deployments": [{"name": "a", "num_replicas": 3}]}, deployed)


def test_replica_changes_use_the_scale_api_with_scale_downs_first(
    serve: FakeServe, actuator: LocalActuator
) -> None:
    actuator.apply(plan(1, 2, {"v1": 100, "v2": 0}), EMPTY)
    serve.scales.clear()
    result = actuator.apply(plan(2, 1, {"v1": 100, "v2": 0}), EMPTY)
    assert len(serve.puts) == 1  # only counts changed: no re-submission
    assert serve.scales == [("embed", "model_v2", 1), ("embed", "model_v1", 2)]
    assert result.changes == (
        "scaled embed/model_v2: 2 -> 1",
        "scaled embed/model_v1: 1 -> 2",
    )


def test_a_weight_change_resubmits_the_config_with_the_current_counts(
    serve: FakeServe, actuator: LocalActuator
) -> None:
    actuator.apply(plan(1, 1, {"v1": 100, "v2": 0}), EMPTY)
    actuator.apply(plan(3, 1, {"v1": 100, "v2": 0}), EMPTY)
    actuator.apply(plan(3, 1, {"v1": 50, "v2": 50}), EMPTY)
    assert len(serve.puts) == 2
    submitted = {d["name"]: d for d in serve.puts[-1]["applications"][0]["deployments"]}
    assert submitted["model_v1"]["num_replicas"] == 3
    assert serve.apps["embed"]["deployments"]["model_v1"]["target_num_replicas"] == 3
