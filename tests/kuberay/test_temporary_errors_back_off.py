# Server: the stand-in (tests/kuberay/fake_apiserver.py), which injects 5xx answers and timeouts.
"""5xx answers and timeouts are retried with growing back-off, then reported as temporary."""

from __future__ import annotations

from typing import Any

import pytest

from controller.errors import TemporaryError
from kuberay.client import RayServiceClient
from tests.kuberay.conftest import NAME
from tests.kuberay.fake_apiserver import FakeApiServer

ONE = rf"/rayservices/{NAME}$"


@pytest.mark.parametrize("status", [500, 503, 429])
def test_server_errors_are_retried_with_back_off(
    apiserver: FakeApiServer,
    rs_client: RayServiceClient,
    rayservice: dict[str, Any],
    sleeps: list[float],
    status: int,
) -> None:
    apiserver.add_fault("GET", ONE, status=status, times=2)

    service = rs_client.get(NAME)

    assert service.name == NAME
    assert apiserver.count("GET", ONE) == 3
    assert sleeps == [0.5, 1.0]


def test_a_timeout_is_retried(
    apiserver: FakeApiServer,
    rs_client: RayServiceClient,
    rayservice: dict[str, Any],
    sleeps: list[float],
) -> None:
    apiserver.add_fault("GET", ONE, delay_s=1.5)  # the client gives up after 0.5 s

    service = rs_client.get(NAME)

    assert service.name == NAME
    assert apiserver.count("GET", ONE) == 2
    assert sleeps == [0.5]


def test_a_patch_that_times_out_is_retried_and_lands_once(
    apiserver: FakeApiServer,
    rs_client: RayServiceClient,
    rayservice: dict[str, Any],
    sleeps: list[float],
) -> None:
    apiserver.add_fault("PATCH", ONE, status=503)

    outcome = rs_client.patch_serve_config(NAME, lambda cur: "applications: []\n")

    assert outcome.patched
    assert apiserver.count("PATCH", ONE, status=200) == 1
    assert sleeps == [0.5]


def test_persistent_errors_end_as_temporary_with_a_longer_delay(
    apiserver: FakeApiServer,
    rs_client: RayServiceClient,
    rayservice: dict[str, Any],
    sleeps: list[float],
) -> None:
    apiserver.add_fault("GET", ONE, status=503, times=10)

    with pytest.raises(TemporaryError) as err:
        rs_client.get(NAME)

    assert apiserver.count("GET", ONE) == 3
    assert sleeps == [0.5, 1.0]
    assert err.value.retry_after_s >= 2.0
    assert "HTTP 503" in str(err.value)
    assert f"get rayservices.ray.io governor/{NAME}" in str(err.value)


def test_an_unreachable_server_is_temporary(sleeps: list[float]) -> None:
    from kubernetes import client as k8s

    from kuberay.connect import api_client_for_host

    client = RayServiceClient(
        k8s.CustomObjectsApi(api_client_for_host("http://127.0.0.1:9")),
        "governor",
        request_timeout_s=0.5,
        sleep=sleeps.append,
    )

    with pytest.raises(TemporaryError, match=r"get rayservices\.ray\.io"):
        client.get(NAME)
    assert len(sleeps) == 2
