"""Per-version applications: rendered from the config's versions, added and retired alone."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from controller.actuators.local import LocalActuator
from controller.actuators.serve_config import render_serve_config
from controller.config import parse_config
from controller.decisions import Plan, ReplicaDecision, WeightDecision
from controller.errors import ConfigError
from controller.snapshot import Snapshot
from controller.transports.ray_dashboard import RayDashboardClient
from tests.controller.fake_serve import FakeServe
from tests.controller.sample_config import PER_VERSION_SERVE_CONFIG, per_version_config

NOW = datetime(2026, 1, 1, tzinfo=UTC)
EMPTY = Snapshot(now=NOW, apps=())
V3 = {
    "name": "v3",
    "deployment": "model_v3",
    "application": "embed-v3",
    "model": "/models/minilm-distilled",
    "min_replicas": 0,
}


def _plan(replicas: dict[str, int], weights: dict[str, int]) -> Plan:
    return Plan(
        replicas=tuple(ReplicaDecision("embed", v, n, ("test",)) for v, n in replicas.items()),
        weights=(WeightDecision("embed", weights, ("test",)),),
    )


def _apps(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {a["name"]: a for a in doc["applications"]}


def _router(doc: dict[str, Any]) -> dict[str, Any]:
    (router,) = _apps(doc)["embed"]["deployments"]
    return dict(router["user_config"])


def test_a_new_version_is_rendered_from_another_versions_application() -> None:
    config = per_version_config([V3])
    plan = _plan({"v1": 2, "v2": 1, "v3": 2}, {"v1": 100, "v2": 0, "v3": 0})
    doc = render_serve_config(PER_VERSION_SERVE_CONFIG, plan, config)
    apps = _apps(doc)
    v3 = apps["embed-v3"]
    assert v3["import_path"] == "serving.app:build_version"
    assert v3["route_prefix"] is None
    assert v3["args"]["version"] == {
        "name": "v3",
        "model": "/models/minilm-distilled",
        "device": "cpu",
    }
    (deployment,) = v3["deployments"]
    assert deployment["name"] == "model_v3"
    assert deployment["num_replicas"] == 2
    assert deployment["user_config"] == {"max_batch_size": 32}
    assert v3["runtime_env"] == apps["embed-v1"]["runtime_env"]
    assert _router(doc)["versions"] == {"v1": "embed-v1", "v2": "embed-v2", "v3": "embed-v3"}
    assert apps["embed-v1"]["args"] == PER_VERSION_SERVE_CONFIG["applications"][1]["args"]


def test_a_retired_version_leaves_the_config_and_the_router_table() -> None:
    config = per_version_config()
    config = parse_config(
        {
            **config.model_dump(mode="json", exclude_unset=True),
            "applications": [
                {
                    **config.applications[0].model_dump(mode="json", exclude_unset=True),
                    "versions": [config.applications[0].versions[0].model_dump(mode="json")],
                }
            ],
        }
    )
    doc = render_serve_config(PER_VERSION_SERVE_CONFIG, _plan({"v1": 1}, {"v1": 100}), config)
    assert "embed-v2" not in _apps(doc)
    router = _router(doc)
    assert router["versions"] == {"v1": "embed-v1"}
    assert router["weights"] == {"v1": 100}


def test_adding_a_version_submits_its_application_and_changes_no_other_versions_code() -> None:
    serve = FakeServe()
    client = RayDashboardClient("http://dash", transport=serve.transport(), token="")
    before = LocalActuator(per_version_config(), client, PER_VERSION_SERVE_CONFIG)
    before.apply(_plan({"v1": 2, "v2": 0}, {"v1": 100, "v2": 0}), EMPTY)
    assert set(serve.apps) == {"embed", "embed-v1", "embed-v2"}
    after = LocalActuator(per_version_config([V3]), client, PER_VERSION_SERVE_CONFIG)
    result = after.apply(_plan({"v1": 2, "v2": 0, "v3": 1}, {"v1": 100, "v2": 0, "v3": 0}), EMPTY)
    assert "embed-v3" in serve.apps
    assert serve.restarted == []
    assert serve.apps["embed-v1"]["deployments"]["model_v1"]["target_num_replicas"] == 2
    assert serve.apps["embed-v2"]["deployments"]["model_v2"]["target_num_replicas"] == 0
    assert any("embed-v3" in change for change in result.changes)
    assert (
        after.apply(
            _plan({"v1": 2, "v2": 0, "v3": 1}, {"v1": 100, "v2": 0, "v3": 0}), EMPTY
        ).changes
        == ()
    )


def test_retiring_a_version_deletes_its_application() -> None:
    serve = FakeServe()
    client = RayDashboardClient("http://dash", transport=serve.transport(), token="")
    LocalActuator(per_version_config([V3]), client, PER_VERSION_SERVE_CONFIG).apply(
        _plan({"v1": 1, "v2": 1, "v3": 1}, {"v1": 0, "v2": 0, "v3": 100}), EMPTY
    )
    only_v3 = per_version_config()
    only_v3 = parse_config(
        {
            "prices": {"cpu": 0.5},
            "applications": [
                {
                    "name": "embed",
                    "slo": {"latency_p95_ms": 200},
                    "versions": [V3],
                }
            ],
        }
    )
    LocalActuator(only_v3, client, PER_VERSION_SERVE_CONFIG).apply(
        _plan({"v3": 1}, {"v3": 100}), EMPTY
    )
    assert set(serve.apps) == {"embed", "embed-v3"}
    router = serve.apps["embed"]["deployed_app_config"]["deployments"][0]["user_config"]
    assert router == {"weights": {"v3": 100}, "versions": {"v3": "embed-v3"}}
    assert serve.restarted == []


@pytest.mark.parametrize(
    ("versions", "message"),
    [
        (
            [
                {"name": "v1", "deployment": "model_v1", "application": "embed-v1"},
                {"name": "v2", "deployment": "model_v2"},
            ],
            "either every version names its own Serve application or none does",
        ),
        (
            [
                {"name": "v1", "deployment": "model_v1", "application": "x"},
                {"name": "v2", "deployment": "model_v2", "application": "x"},
            ],
            "'x' would hold two versions",
        ),
        (
            [{"name": "v1", "deployment": "model_v1", "application": "embed"}],
            "'embed' would hold two versions, or a version and the router",
        ),
    ],
)
def test_version_applications_that_cannot_work_are_refused(
    versions: list[dict[str, Any]], message: str
) -> None:
    doc = {
        "applications": [{"name": "embed", "slo": {"latency_p95_ms": 200}, "versions": versions}]
    }
    with pytest.raises(ConfigError, match=message):
        parse_config(doc)
