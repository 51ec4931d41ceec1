# Server: the real kube-apiserver and etcd (scripts/build-k8s.sh).
"""Agent state in real ConfigMaps: it loads back as saved, a former leader's late write
meets the server's 409 and is kept, and a 10,000-application state is split into
ConfigMaps the server accepts.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client as k8s

from kuberay.configmaps import MAX_DATA_BYTES, ConfigMapClient
from kuberay.state_store import STATE_KEY, ConfigMapStateStore, data_key
from tests.controller.clock import ManualClock
from tests.kuberay.conftest import NAMESPACE
from tests.kuberay.control_plane import PatchStatuses
from tests.kuberay.test_state_configmaps_round_trip import AGENTS, APPS, STATE, _fleet_state

pytestmark = pytest.mark.k8s


class RecordingCoreV1(k8s.CoreV1Api):  # type: ignore[misc]
    """CoreV1Api that remembers the HTTP status of every ConfigMap patch it sent."""

    def __init__(self, api: k8s.ApiClient) -> None:
        super().__init__(api)
        self.recorded = PatchStatuses()

    @property
    def patch_statuses(self) -> list[int]:
        """Statuses of the patches sent so far."""
        return self.recorded.statuses

    def patch_namespaced_config_map(self, *args: Any, **kwargs: Any) -> Any:
        """Send the patch and record how the server answered it."""
        return self.recorded.send(super().patch_namespaced_config_map, *args, **kwargs)


def configmaps_on(core: k8s.CoreV1Api) -> ConfigMapClient:
    """A ConfigMap client in NAMESPACE that does not sleep between retries."""
    return ConfigMapClient(core, NAMESPACE, sleep=lambda s: None)


def stored_data(api: k8s.ApiClient, name: str = STATE) -> dict[str, str]:
    """A ConfigMap's data as etcd has it."""
    return dict(k8s.CoreV1Api(api).read_namespaced_config_map(name, NAMESPACE).data or {})


def test_saved_state_loads_back_the_same(admin_api: k8s.ApiClient, clock: ManualClock) -> None:
    client = configmaps_on(k8s.CoreV1Api(admin_api))
    store = ConfigMapStateStore(client, APPS, clock)
    assert store.load() == {}

    store.save(AGENTS)

    assert ConfigMapStateStore(client, APPS, clock).load() == AGENTS  # a restarted daemon
    data = stored_data(admin_api)
    assert set(data) == {STATE_KEY, "app.embed", "app.chat"}
    assert json.loads(data[STATE_KEY])["saved_at"] == "2026-01-01T00:00:00Z"


def test_a_former_leaders_late_write_meets_a_409_and_is_kept(
    admin_api: k8s.ApiClient, clock: ManualClock
) -> None:
    core = RecordingCoreV1(admin_api)
    store = ConfigMapStateStore(configmaps_on(core), APPS, clock)
    store.load()
    store.save(AGENTS)
    late = stored_data(admin_api)[data_key("embed")].replace("canary", "promoted")
    k8s.CoreV1Api(admin_api).patch_namespaced_config_map(
        STATE, NAMESPACE, {"data": {data_key("embed"): late}}
    )
    changed = json.loads(json.dumps(AGENTS))
    changed["scaling"]["versions"]["chat/v1"]["level"] = 9.0

    store.save(changed)

    assert core.patch_statuses == [409, 200]
    assert ConfigMapStateStore(configmaps_on(core), APPS, clock).load() == changed


def test_a_ten_thousand_application_state_fits_in_configmaps_the_server_accepts(
    admin_api: k8s.ApiClient, clock: ManualClock
) -> None:
    agents = _fleet_state(10_000)
    names = [f"app-{i:05d}" for i in range(10_000)]
    client = configmaps_on(k8s.CoreV1Api(admin_api))
    store = ConfigMapStateStore(client, names, clock)
    store.load()

    store.save(agents)

    partitions = json.loads(stored_data(admin_api)[STATE_KEY])["partitions"]
    assert partitions > 1
    for p in range(partitions):
        data = stored_data(admin_api, STATE if p == 0 else f"{STATE}-{p}")
        assert sum(len(v.encode()) for v in data.values()) < MAX_DATA_BYTES
    assert ConfigMapStateStore(client, names, clock).load() == agents
