# Server: the real kube-apiserver and etcd (scripts/build-k8s.sh).
"""The RayService patch carries the resourceVersion it was built from: a write by someone
else between our read and our patch gets a real 409 from the API server, and our change
is rebuilt on a fresh read and lands exactly once, keeping the other writer's change.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from kubernetes import client as k8s

from kuberay.client import RayServiceClient
from kuberay.retry import Backoff
from kuberay.status import RayService
from tests.kuberay.conftest import NAME, NAMESPACE, rayservice_object
from tests.kuberay.control_plane import PatchStatuses, seed_rayservice

pytestmark = pytest.mark.k8s


class RecordingCustomObjects(k8s.CustomObjectsApi):  # type: ignore[misc]
    """CustomObjectsApi that remembers the HTTP status of every patch it sent."""

    def __init__(self, api: k8s.ApiClient) -> None:
        super().__init__(api)
        self.recorded = PatchStatuses()

    @property
    def patch_statuses(self) -> list[int]:
        """Statuses of the patches sent so far."""
        return self.recorded.statuses

    def patch_namespaced_custom_object(self, *args: Any, **kwargs: Any) -> Any:
        """Send the patch and record how the server answered it."""
        return self.recorded.send(super().patch_namespaced_custom_object, *args, **kwargs)


def client_on(api: k8s.ApiClient) -> tuple[RayServiceClient, RecordingCustomObjects]:
    """A RayService client whose patches are recorded; no back-off sleeps."""
    recording = RecordingCustomObjects(api)
    client = RayServiceClient(
        recording, NAMESPACE, backoff=Backoff(attempts=3), sleep=lambda s: None, max_conflicts=50
    )
    return client, recording


def stored(api: k8s.ApiClient) -> dict[str, Any]:
    """The RayService as etcd has it."""
    return dict(
        k8s.CustomObjectsApi(api).get_namespaced_custom_object(
            "ray.io", "v1", NAMESPACE, "rayservices", NAME
        )
    )


def test_a_write_between_read_and_patch_gets_a_real_409_and_the_patch_lands_once(
    admin_api: k8s.ApiClient,
) -> None:
    seed_rayservice(admin_api, rayservice_object())
    generation = stored(admin_api)["metadata"]["generation"]
    client, recording = client_on(admin_api)
    other = k8s.CustomObjectsApi(admin_api)
    seen: list[dict[str, str]] = []

    def render(current: RayService) -> str:
        seen.append(dict(current.annotations))
        if len(seen) == 1:  # someone else (a person, the operator) writes after our read
            other.patch_namespaced_custom_object(
                "ray.io",
                "v1",
                NAMESPACE,
                "rayservices",
                NAME,
                {"metadata": {"annotations": {"someone": "else"}}},
            )
        return "applications: []\n"

    outcome = client.patch_serve_config(NAME, render)

    assert recording.patch_statuses == [409, 200]
    assert outcome.patched and outcome.attempts == 2
    assert seen[1] == {"someone": "else"}, "the rebuilt patch saw the other write"
    obj = stored(admin_api)
    assert obj["metadata"]["annotations"] == {"someone": "else"}
    assert obj["spec"]["serveConfigV2"] == "applications: []\n"
    assert obj["metadata"]["generation"] == generation + 1, "the spec changed exactly once"


def test_two_writers_racing_on_one_rayservice_each_land_every_change_once(
    admin_api: k8s.ApiClient,
) -> None:
    seed_rayservice(admin_api, rayservice_object())
    rounds = 15
    writers = [client_on(admin_api) for _ in range(2)]
    start = threading.Barrier(len(writers))

    def bump(current: RayService) -> dict[str, Any]:
        count = int(current.annotations.get("count", "0"))
        return {"metadata": {"annotations": {"count": str(count + 1)}}}

    def write(client: RayServiceClient) -> None:
        start.wait()
        for _ in range(rounds):
            client.update(NAME, bump)

    threads = [threading.Thread(target=write, args=(c,)) for c, _ in writers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)

    statuses = [s for _, recording in writers for s in recording.patch_statuses]
    assert statuses.count(200) == len(writers) * rounds
    assert set(statuses) <= {200, 409}
    assert stored(admin_api)["metadata"]["annotations"]["count"] == str(len(writers) * rounds)
