"""Fixtures of the integration tests: the governed application on the session's Serve."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import RayServeCluster
from tests.integration.governed_fleet import RUNNING, serve_config


@pytest.fixture
def fleet(ray_serve: RayServeCluster) -> Iterator[RayServeCluster]:
    """APP deployed fresh (v1 and v2 at one replica, weights 100/0); removed afterwards."""
    ray_serve.deploy(serve_config(ray_serve.http_port))
    ray_serve.wait_for_status(RUNNING)
    yield ray_serve
    with ray_serve.rest() as client:
        client.delete("/api/serve/applications/")
