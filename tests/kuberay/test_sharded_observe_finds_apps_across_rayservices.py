# Server: the stand-in (tests/kuberay/fake_apiserver.py), which counts the reads per
# shard and injects a 403 on one shard.
"""Observing a fleet spread over RayServices: each is read and parsed once, apps found anywhere."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from kubernetes import client as k8s

import kuberay.shards
from kuberay.client import RayServiceClient
from kuberay.dashboards import Dashboards
from kuberay.shards import RayServiceShards
from kuberay.signals import RayServiceSource
from kuberay.target import build_kuberay_target
from tests.controller.clock import ManualClock
from tests.controller.fake_serve import FakeServe
from tests.kuberay.fake_apiserver import FakeApiServer
from tests.kuberay.fleet import (
    APPS,
    SELECTOR,
    SHARDS,
    app_doc,
    fleet_config,
    seed_fleet,
    shard_object,
)


@pytest.fixture
def fleet(apiserver: FakeApiServer) -> FakeApiServer:
    """The stand-in with both shards seeded."""
    seed_fleet(apiserver)
    return apiserver


def test_every_application_is_found_in_the_shard_that_holds_it(
    fleet: FakeApiServer, rs_client: RayServiceClient, clock: ManualClock
) -> None:
    source = RayServiceSource(RayServiceShards(rs_client, selector=SELECTOR), fleet_config(), clock)

    snap = source.observe()

    assert snap.problems == ()
    for app in APPS:
        v1 = snap.version(app, "v1")
        assert v1 is not None and (v1.target_replicas, v1.running_replicas) == (1, 1)
        found = snap.app(app)
        assert found is not None and found.status == "RUNNING"
        assert found.weights == {"v1": 100, "v2": 0}
    assert snap.cluster.total_gpus == 4, "the shards' clusters add up"
    assert fleet.count("GET", r"/rayservices$") == 1, "one list reads every shard"


def test_each_shard_is_parsed_once_and_not_again_while_its_config_is_unchanged(
    fleet: FakeApiServer,
    rs_client: RayServiceClient,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    parsed: list[str] = []
    real = kuberay.shards.parse_serve_config

    def counting(text: str | None, where: str) -> dict[str, Any]:
        parsed.append(where)
        return real(text, where)

    monkeypatch.setattr(kuberay.shards, "parse_serve_config", counting)
    source = RayServiceSource(RayServiceShards(rs_client, selector=SELECTOR), fleet_config(), clock)

    source.observe()
    assert sorted(parsed) == ["rayservice governor/fleet-a", "rayservice governor/fleet-b"]
    source.observe()
    assert len(parsed) == 2, "unchanged configs are not parsed again"

    changed = shard_object("fleet-b", ("chat", "rank", "extra"))
    fleet.seed(changed)
    source.observe()
    assert parsed[2:] == ["rayservice governor/fleet-b"]


def test_named_shards_are_read_one_by_one_and_one_that_fails_leaves_only_its_apps_missing(
    fleet: FakeApiServer, rs_client: RayServiceClient, clock: ManualClock
) -> None:
    shards = RayServiceShards(rs_client, names=["fleet-a", "fleet-b"])
    fleet.add_fault("GET", r"/rayservices/fleet-b$", status=403)

    snap = RayServiceSource(shards, fleet_config(), clock).observe()

    embed = snap.version("embed", "v1")
    assert embed is not None and embed.target_replicas == 1
    for app in SHARDS["fleet-b"]:
        v1 = snap.version(app, "v1")
        assert v1 is not None and v1.target_replicas is None
    (problem,) = snap.problems
    assert problem.startswith("rayservice governor/fleet-b:") and "forbidden" in problem


def test_an_application_in_two_rayservices_is_a_problem_and_left_missing(
    fleet: FakeApiServer, rs_client: RayServiceClient, clock: ManualClock
) -> None:
    fleet.seed(shard_object("fleet-a", ("embed", "chat")))

    snap = RayServiceSource(
        RayServiceShards(rs_client, selector=SELECTOR), fleet_config(), clock
    ).observe()

    chat = snap.version("chat", "v1")
    assert chat is not None and chat.target_replicas is None
    assert snap.problems == ("application chat is in several rayservices ['fleet-a', 'fleet-b']",)


def test_an_application_in_no_rayservice_is_named(
    apiserver: FakeApiServer, rs_client: RayServiceClient, clock: ManualClock
) -> None:
    apiserver.seed(shard_object("fleet-a", ("embed",)))

    snap = RayServiceSource(
        RayServiceShards(rs_client, selector=SELECTOR), fleet_config(), clock
    ).observe()

    assert (
        "application chat is in none of the rayservices in governor selected by"
        in (snap.problems[0])
    )


def test_each_shard_s_serve_status_comes_from_its_own_head(
    fleet: FakeApiServer, rs_client: RayServiceClient, clock: ManualClock
) -> None:
    heads = {name: FakeServe() for name in SHARDS}
    for name, apps in SHARDS.items():
        heads[name]._deploy({"applications": [app_doc(a) for a in apps]})
    heads["fleet-b"]._set_replicas(heads["fleet-b"].apps["rank"]["deployments"]["model_v1"], 3)

    def route(request: httpx.Request) -> httpx.Response:
        return heads[request.url.host.removesuffix("-head-svc")]._handle(request)

    dashboards = Dashboards(
        "http://{rayservice}-head-svc:8265", transport=httpx.MockTransport(route), token=""
    )
    source = RayServiceSource(
        RayServiceShards(rs_client, selector=SELECTOR), fleet_config(), clock, dashboards.for_shard
    )
    try:
        snap = source.observe()
    finally:
        dashboards.close()

    rank = snap.version("rank", "v1")
    assert rank is not None and (rank.target_replicas, rank.running_replicas) == (3, 3)
    embed = snap.version("embed", "v1")
    assert embed is not None and embed.running_replicas == 1


def test_the_target_reads_the_shards_the_config_names(
    fleet: FakeApiServer, api: k8s.ApiClient, clock: ManualClock
) -> None:
    config = fleet_config(rayservice_selector=None, rayservices=["fleet-a", "fleet-b"])
    target = build_kuberay_target(config, clock, api=api, identity="a")
    try:
        snap = target.source.observe()
    finally:
        target.close()

    assert snap.problems == ()
    assert fleet.count("GET", r"/rayservices/fleet-a$") == 1
    assert fleet.count("GET", r"/rayservices/fleet-b$") == 1
