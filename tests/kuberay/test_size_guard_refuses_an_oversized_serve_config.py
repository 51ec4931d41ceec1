# Server: the stand-in (tests/kuberay/fake_apiserver.py), which counts patches: none may
# be sent.
"""A serveConfigV2 over the bound is refused with the shard, its size and the bound; nothing lands."""

from __future__ import annotations

import pytest

from kuberay.actuator import KubeRayActuator, dump_serve_config
from kuberay.client import RayServiceClient
from kuberay.errors import TooLargeError
from kuberay.shards import RayServiceShards
from tests.kuberay.fake_apiserver import FakeApiServer
from tests.kuberay.fleet import (
    SELECTOR,
    fleet_config,
    fleet_plan,
    fleet_snapshot,
    seed_fleet,
    serve_config_of,
)


def test_a_config_over_the_bound_is_refused_and_no_shard_is_written(
    apiserver: FakeApiServer, rs_client: RayServiceClient
) -> None:
    seed_fleet(apiserver)
    before = {n: serve_config_of(apiserver, n) for n in ("fleet-a", "fleet-b")}
    # fleet-b is full already: one more digit does not fit.
    bound = len(dump_serve_config(before["fleet-b"]).encode())
    actuator = KubeRayActuator(
        rs_client,
        RayServiceShards(rs_client, selector=SELECTOR),
        fleet_config(),
        max_serve_config_bytes=bound,
    )

    with pytest.raises(TooLargeError) as err:
        actuator.apply(fleet_plan(embed=2, chat=10), fleet_snapshot())

    message = str(err.value)
    assert "rayservice governor/fleet-b would be" in message
    assert f"over the {bound}-byte bound" in message
    assert "kuberay.max_serve_config_bytes" in message and "nothing was written" in message
    assert apiserver.count("PATCH", "/rayservices/") == 0, "fleet-a fits, and waits too"
    assert {n: serve_config_of(apiserver, n) for n in before} == before
