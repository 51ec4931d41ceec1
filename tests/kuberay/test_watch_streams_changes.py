"""Watching a RayService yields its current state, then each change."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from controller.errors import PermanentError
from kuberay.client import RayServiceClient
from tests.kuberay.conftest import NAME, NAMESPACE, upgrading_status
from tests.kuberay.fake_apiserver import FakeApiServer


def test_a_watch_sees_the_object_then_its_status_change(
    apiserver: FakeApiServer, rs_client: RayServiceClient, rayservice: dict[str, Any]
) -> None:
    seen = []
    for event in rs_client.watch(NAME, timeout_s=5):
        seen.append(event)
        if len(seen) == 1:
            threading.Thread(
                target=apiserver.set_status, args=(NAMESPACE, NAME, upgrading_status())
            ).start()
        if len(seen) == 2:
            break

    assert [e.type for e in seen] == ["ADDED", "MODIFIED"]
    assert not seen[0].service.status.upgrade_in_progress
    assert seen[1].service.status.upgrade_in_progress
    assert apiserver.requests[0].query["fieldSelector"] == [f"metadata.name={NAME}"]


def test_a_watch_from_a_resource_version_sees_only_later_changes(
    apiserver: FakeApiServer, rs_client: RayServiceClient, rayservice: dict[str, Any]
) -> None:
    since = rs_client.get(NAME).resource_version
    apiserver.set_status(NAMESPACE, NAME, upgrading_status())

    events = list(rs_client.watch(NAME, timeout_s=1, resource_version=since))

    assert [e.type for e in events] == ["MODIFIED"]


def test_a_forbidden_watch_names_the_watch_verb(
    apiserver: FakeApiServer, rs_client: RayServiceClient
) -> None:
    apiserver.add_fault("GET", r"/rayservices$", status=403)

    with pytest.raises(PermanentError, match="may not 'watch' 'rayservices'"):
        list(rs_client.watch(NAME, timeout_s=1))
