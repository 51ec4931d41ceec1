"""On a fleet, the local actuator writes what changed: counts by the scale API, configs only on change."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from controller.actuators.local import LocalActuator
from controller.config import GovernorConfig
from controller.decisions import Plan, ReplicaDecision, WeightDecision
from controller.snapshot import Snapshot
from controller.transports.ray_dashboard import RayDashboardClient
from tests.controller.fake_serve import FakeServe
from tests.controller.fleet import app_doc, make_config

APPS = [f"app{i:02d}" for i in range(20)]
EMPTY = Snapshot(now=datetime(2026, 1, 1, tzinfo=UTC), apps=())


class RayLikeServe(FakeServe):
    """Resets a deployment's count on a submission only when its entry changed, as Ray does."""

    def _deploy(self, doc: dict[str, Any]) -> None:
        for app in doc["applications"]:
            before = self.apps.get(app["name"]) or {}
            previous = {
                d["name"]: d
                for d in (before.get("deployed_app_config") or {}).get("deployments", [])
            }
            deployments = before.get("deployments") or {}
            for d in app.get("deployments", []):
                entry = deployments.setdefault(d["name"], {"name": d["name"], "replicas": []})
                if previous.get(d["name"]) != d:
                    self._set_replicas(entry, d.get("num_replicas", 1))
            self.apps[app["name"]] = {
                "name": app["name"],
                "status": "RUNNING",
                "deployed_app_config": copy.deepcopy(app),
                "deployments": deployments,
            }


class Recorder(httpx.BaseTransport):
    """Passes requests to `inner` and keeps (method, path, body bytes) of every write."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.writes: list[tuple[str, str, int]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method != "GET":
            self.writes.append((request.method, request.url.path, len(request.content)))
        return self.inner.handle_request(request)

    def bytes_written(self) -> int:
        return sum(n for _, _, n in self.writes)


def serve_config() -> dict[str, Any]:
    return {
        "applications": [
            {
                "name": name,
                "route_prefix": f"/{name}",
                "import_path": "serving.app:build_app",
                "args": {"versions": [{"name": "v1"}, {"name": "v2"}]},
                "deployments": [
                    {"name": "router", "user_config": {"weights": {"v1": 100, "v2": 0}}},
                    {"name": f"{name}_v1", "num_replicas": 1, "user_config": {"max_batch": 8}},
                    {"name": f"{name}_v2", "num_replicas": 1, "user_config": {"max_batch": 8}},
                ],
            }
            for name in APPS
        ]
    }


def config() -> GovernorConfig:
    return make_config(*(app_doc(name, min_replicas=0) for name in APPS))


def plan(
    replicas: dict[tuple[str, str], int] | None = None,
    weights: dict[str, dict[str, int]] | None = None,
) -> Plan:
    """Every app at v1: 2, v2: 1 and weights 100/0, except where overridden."""
    counts = {(a, v): n for a in APPS for v, n in (("v1", 2), ("v2", 1))} | (replicas or {})
    split = {a: {"v1": 100, "v2": 0} for a in APPS} | (weights or {})
    return Plan(
        replicas=tuple(ReplicaDecision(a, v, n, ("test",)) for (a, v), n in counts.items()),
        weights=tuple(WeightDecision(a, w, ("test",)) for a, w in split.items()),
    )


@pytest.fixture
def serve() -> RayLikeServe:
    return RayLikeServe()


@pytest.fixture
def recorder(serve: RayLikeServe) -> Recorder:
    return Recorder(serve.transport())


@pytest.fixture
def actuator(recorder: Recorder) -> LocalActuator:
    client = RayDashboardClient("http://dash", transport=recorder, token="")
    act = LocalActuator(config(), client, serve_config())
    act.apply(plan(), EMPTY)
    recorder.writes.clear()
    return act


def test_a_tick_without_changes_writes_nothing(actuator: LocalActuator, recorder: Recorder) -> None:
    assert not actuator.apply(plan(), EMPTY).changes
    assert recorder.writes == []


def test_one_apps_replica_change_is_one_scale_call_and_no_submission(
    serve: RayLikeServe, actuator: LocalActuator, recorder: Recorder
) -> None:
    result = actuator.apply(plan(replicas={("app07", "v1"): 4}), EMPTY)
    assert recorder.writes == [
        (
            "POST",
            "/api/v1/applications/app07/deployments/app07_v1/scale",
            len(b'{"target_num_replicas":4}'),
        )
    ]
    assert recorder.bytes_written() < 100
    assert result.changes == ("scaled app07/app07_v1: 2 -> 4",)
    assert serve.apps["app07"]["deployments"]["app07_v1"]["target_num_replicas"] == 4


def test_one_apps_weight_change_is_one_submission_of_the_whole_config(
    serve: RayLikeServe, actuator: LocalActuator, recorder: Recorder
) -> None:
    desired = plan(weights={"app07": {"v1": 90, "v2": 10}})
    result = actuator.apply(desired, EMPTY)
    assert [(m, p) for m, p, _ in recorder.writes] == [("PUT", "/api/serve/applications/")]
    submitted = serve.puts[-1]
    # Ray's REST API is declarative: an application left out of the PUT would be deleted.
    assert [a["name"] for a in submitted["applications"]] == APPS
    assert recorder.bytes_written() == len(json.dumps(submitted, separators=(",", ":")).encode())
    assert result.changes == ("applied the Serve config (changed: app07)",)
    router = serve.apps["app07"]["deployed_app_config"]["deployments"][0]
    assert router["user_config"]["weights"] == {"v1": 90, "v2": 10}
    assert serve.apps["app07"]["deployments"]["app07_v1"]["target_num_replicas"] == 2
    recorder.writes.clear()
    assert not actuator.apply(desired, EMPTY).changes
    assert recorder.writes == []


def test_a_submission_re_zeroes_a_version_of_another_app_that_ray_reset(
    serve: RayLikeServe, actuator: LocalActuator, recorder: Recorder
) -> None:
    # app03/v2 went to 3 with a submission, then to 0 through the scale API: its entry in
    # the next submission says 1, which Ray applies, so it must be scaled to 0 again.
    actuator.apply(
        plan(replicas={("app03", "v2"): 3}, weights={"app03": {"v1": 50, "v2": 50}}), EMPTY
    )
    actuator.apply(
        plan(replicas={("app03", "v2"): 0}, weights={"app03": {"v1": 50, "v2": 50}}), EMPTY
    )
    assert serve.apps["app03"]["deployments"]["app03_v2"]["target_num_replicas"] == 0
    recorder.writes.clear()
    actuator.apply(
        plan(
            replicas={("app03", "v2"): 0},
            weights={"app03": {"v1": 50, "v2": 50}, "app09": {"v1": 90, "v2": 10}},
        ),
        EMPTY,
    )
    assert [(m, p) for m, p, _ in recorder.writes] == [
        ("PUT", "/api/serve/applications/"),
        ("POST", "/api/v1/applications/app03/deployments/app03_v2/scale"),
    ]
    assert serve.apps["app03"]["deployments"]["app03_v2"]["target_num_replicas"] == 0
    assert serve.apps["app09"]["deployments"]["app09_v1"]["target_num_replicas"] == 2
