# Server: the stand-in (tests/kuberay/fake_apiserver.py), which counts the requests
# each tick sends to each RayService and injects a failing shard.
"""Writes are the size of what changed: only the shard holding a changed application is patched."""

from __future__ import annotations

import copy

import httpx
import pytest

from controller.errors import ConfigError
from kuberay.actuator import KubeRayActuator
from kuberay.client import RayServiceClient
from kuberay.dashboards import Dashboards
from kuberay.shards import RayServiceShards
from tests.controller.fake_serve import FakeServe
from tests.kuberay.conftest import NAMESPACE, upgrading_status
from tests.kuberay.fake_apiserver import FakeApiServer
from tests.kuberay.fleet import (
    SELECTOR,
    SHARDS,
    app_doc,
    fleet_config,
    fleet_plan,
    fleet_snapshot,
    replicas_of,
    seed_fleet,
    serve_config_of,
    shard_object,
    shard_status,
)

A, B = "/rayservices/fleet-a$", "/rayservices/fleet-b$"


@pytest.fixture
def actuator(apiserver: FakeApiServer, rs_client: RayServiceClient) -> KubeRayActuator:
    """An actuator over both seeded shards, found by their label."""
    seed_fleet(apiserver)
    return KubeRayActuator(
        rs_client, RayServiceShards(rs_client, selector=SELECTOR), fleet_config()
    )


def test_a_plan_changing_one_application_patches_only_its_shard(
    apiserver: FakeApiServer, actuator: KubeRayActuator
) -> None:
    before = serve_config_of(apiserver, "fleet-a")

    result = actuator.apply(fleet_plan(chat=3), fleet_snapshot())

    assert apiserver.count("PATCH", B, status=200) == 1
    assert apiserver.count("PATCH", A) == 0
    assert replicas_of(apiserver, "fleet-b", "chat", "model_v1") == 3
    assert replicas_of(apiserver, "fleet-b", "rank", "model_v1") == 1
    assert serve_config_of(apiserver, "fleet-a") == before
    assert "serveConfigV2: chat/model_v1 num_replicas 1 -> 3" in result.changes
    assert result.held is None


def test_the_same_plan_again_patches_nothing(
    apiserver: FakeApiServer, actuator: KubeRayActuator
) -> None:
    actuator.apply(fleet_plan(chat=3, embed=2), fleet_snapshot())
    again = actuator.apply(fleet_plan(chat=3, embed=2), fleet_snapshot())

    assert again.changes == ()
    assert apiserver.count("PATCH", A) == apiserver.count("PATCH", B) == 1


def test_an_upgrading_shard_holds_alone_and_the_others_are_written(
    apiserver: FakeApiServer, actuator: KubeRayActuator
) -> None:
    status = upgrading_status()
    status["activeServiceStatus"] = shard_status(SHARDS["fleet-a"])["activeServiceStatus"]
    apiserver.set_status(NAMESPACE, "fleet-a", status)

    result = actuator.apply(fleet_plan(embed=2, chat=3), fleet_snapshot())

    assert result.held is not None
    assert result.held.startswith("rayservice fleet-a reports UpgradeInProgress")
    assert apiserver.count("PATCH", A) == 0
    assert replicas_of(apiserver, "fleet-a", "embed", "model_v1") == 1
    assert replicas_of(apiserver, "fleet-b", "chat", "model_v1") == 3
    assert "serveConfigV2: chat/model_v1 num_replicas 1 -> 3" in result.changes


def test_a_conflict_on_one_shard_is_retried_on_a_fresh_read_of_that_shard(
    apiserver: FakeApiServer, actuator: KubeRayActuator
) -> None:
    # KubeRay updates the shard's status between our read and our patch.
    apiserver.add_fault(
        "PATCH",
        B,
        then=lambda: apiserver.set_status(
            NAMESPACE, "fleet-b", copy.deepcopy(shard_status(SHARDS["fleet-b"], gpus="3"))
        ),
    )

    result = actuator.apply(fleet_plan(chat=3), fleet_snapshot())

    assert apiserver.count("PATCH", B, status=409) == 1
    assert apiserver.count("PATCH", B, status=200) == 1
    assert apiserver.count("GET", B) == 1, "only the conflicting shard is read again"
    assert replicas_of(apiserver, "fleet-b", "chat", "model_v1") == 3
    assert result.changes


def test_the_scale_api_of_each_shard_is_its_own_head(
    apiserver: FakeApiServer, rs_client: RayServiceClient
) -> None:
    seed_fleet(apiserver)
    heads = {name: FakeServe() for name in SHARDS}
    for name, apps in SHARDS.items():
        heads[name]._deploy({"applications": [app_doc(a) for a in apps]})

    def route(request: httpx.Request) -> httpx.Response:
        return heads[request.url.host.removesuffix("-head-svc")]._handle(request)

    dashboards = Dashboards(
        "http://{rayservice}-head-svc:8265", transport=httpx.MockTransport(route), token=""
    )
    actuator = KubeRayActuator(
        rs_client,
        RayServiceShards(rs_client, selector=SELECTOR),
        fleet_config(),
        scaler=dashboards.for_shard,
    )
    try:
        first = actuator.apply(fleet_plan(chat=3, embed=2), fleet_snapshot())
        # KubeRay has submitted both configs by the next tick.
        second = actuator.apply(fleet_plan(chat=3, embed=2), fleet_snapshot())
    finally:
        dashboards.close()

    assert not any(c.startswith("scale API") for c in first.changes)
    assert heads["fleet-a"].scales == [("embed", "model_v1", 2)]
    assert heads["fleet-b"].scales == [("chat", "model_v1", 3)]
    assert "scale API: chat/model_v1 1 -> 3" in second.changes


def test_an_application_in_two_shards_is_refused_before_anything_is_written(
    apiserver: FakeApiServer, actuator: KubeRayActuator
) -> None:
    apiserver.seed(shard_object("fleet-a", ("embed", "chat")))

    with pytest.raises(ConfigError, match=r"\[chat\] are each in several RayServices"):
        actuator.apply(fleet_plan(chat=3, embed=2), fleet_snapshot())
    assert apiserver.count("PATCH", "/rayservices/") == 0
