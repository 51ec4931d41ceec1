# Server: the stand-in (tests/kuberay/fake_apiserver.py), which injects 409s and shows the
# request sent; a real 409: test_a_patch_racing_another_writer_lands_once.py.
"""A 409 on patch is answered by a fresh read and a rebuilt patch that lands once."""

from __future__ import annotations

from typing import Any

import pytest

from controller.errors import ConflictError
from kuberay.client import RayServiceClient
from kuberay.status import RayService
from tests.kuberay.conftest import NAME, NAMESPACE
from tests.kuberay.fake_apiserver import FakeApiServer

PATCH = rf"/rayservices/{NAME}$"


def test_injected_409_is_retried_on_a_fresh_read_and_lands_once(
    apiserver: FakeApiServer, rs_client: RayServiceClient, rayservice: dict[str, Any]
) -> None:
    apiserver.add_fault("PATCH", PATCH, status=409)
    seen: list[str] = []

    def render(current: RayService) -> str:
        seen.append(current.resource_version)
        return "applications: []\n"

    outcome = rs_client.patch_serve_config(NAME, render)

    assert outcome.patched and outcome.attempts == 2
    assert apiserver.count("GET", PATCH) == 2
    assert apiserver.count("PATCH", PATCH, status=200) == 1
    assert apiserver.get("rayservices", NAMESPACE, NAME)["spec"]["serveConfigV2"] == (
        "applications: []\n"
    )
    assert outcome.service.serve_config_v2 == "applications: []\n"


def test_the_patch_carries_the_resource_version_it_was_built_from(
    apiserver: FakeApiServer, rs_client: RayServiceClient, rayservice: dict[str, Any]
) -> None:
    rs_client.patch_serve_config(NAME, lambda cur: "applications: []\n")

    patch = next(r for r in apiserver.requests if r.method == "PATCH")
    assert patch.body["metadata"]["resourceVersion"] == rayservice["metadata"]["resourceVersion"]
    assert patch.headers["content-type"] == "application/merge-patch+json"
    assert patch.query["fieldManager"] == ["governor"]


def test_an_unchanged_config_is_not_patched(
    apiserver: FakeApiServer, rs_client: RayServiceClient, rayservice: dict[str, Any]
) -> None:
    outcome = rs_client.patch_serve_config(NAME, lambda cur: cur.serve_config_v2)

    assert not outcome.patched
    assert apiserver.count("PATCH", PATCH) == 0


def test_endless_conflicts_end_in_a_conflict_error(
    apiserver: FakeApiServer, rs_client: RayServiceClient, rayservice: dict[str, Any]
) -> None:
    apiserver.add_fault("PATCH", PATCH, status=409, times=100)

    with pytest.raises(ConflictError, match="still conflicting"):
        rs_client.patch_serve_config(NAME, lambda cur: "applications: []\n")
    assert apiserver.count("PATCH", PATCH) == rs_client.max_conflicts
