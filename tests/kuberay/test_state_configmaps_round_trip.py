# Server: the stand-in (tests/kuberay/fake_apiserver.py), which counts the requests (only the
# changed keys are sent) and injects a conflict; the same store in real ConfigMaps:
# test_state_configmaps_on_the_real_api_server.py.
"""Agent state survives in ConfigMaps split by application, with a schema; only changes are sent."""

from __future__ import annotations

import json
from typing import Any

import pytest

from controller.errors import PermanentError
from kuberay.client import RayServiceClient
from kuberay.configmaps import MAX_DATA_BYTES, ConfigMapClient, data_bytes
from kuberay.errors import TooLargeError
from kuberay.shards import RayServiceShards
from kuberay.state_store import (
    STATE_ANNOTATION,
    STATE_KEY,
    AnnotationMigration,
    ConfigMapStateStore,
    data_key,
    join_apps,
    partition_of,
    split_by_app,
)
from tests.controller.clock import ManualClock
from tests.kuberay.conftest import NAME, NAMESPACE, rayservice_object
from tests.kuberay.fake_apiserver import FakeApiServer

CONFIGMAPS = r"/configmaps"
STATE = "governor-state"
APPS = ("embed", "chat")
AGENTS: dict[str, dict[str, Any]] = {
    "rollout": {
        "apps": {
            "embed": {"phase": "canary", "weight": 5, "started_at": "2026-01-01T00:00:00+00:00"},
            "chat": {"phase": "idle"},
        }
    },
    "scaling": {
        "versions": {
            "embed/v1": {"level": 1.5, "demand": [1.0, 1.5]},
            "embed/v2": {"level": 0.1},
            "chat/v1": {"level": 3.0},
        }
    },
    "budget": {"capped_since": {}, "note": "kept as it is"},
}


def make_store(
    cm_client: ConfigMapClient, clock: ManualClock, **kwargs: Any
) -> ConfigMapStateStore:
    """A store for APPS on the stand-in."""
    return ConfigMapStateStore(cm_client, APPS, clock, **kwargs)


def configmap(apiserver: FakeApiServer, name: str = STATE) -> dict[str, Any]:
    """A stored ConfigMap."""
    return apiserver.get("configmaps", NAMESPACE, name)


def test_split_and_join_are_inverse_and_keyed_by_application() -> None:
    common, per_app = split_by_app(AGENTS, set(APPS))

    assert set(per_app) == {"embed", "chat"}
    assert per_app["chat"] == {
        "rollout": {"apps": {"chat": {"phase": "idle"}}},
        "scaling": {"versions": {"chat/v1": {"level": 3.0}}},
    }
    assert common["budget"] == {"capped_since": {}, "note": "kept as it is"}
    assert join_apps(common, per_app.values()) == AGENTS


def test_saving_unchanged_state_writes_nothing(
    apiserver: FakeApiServer, cm_client: ConfigMapClient, clock: ManualClock
) -> None:
    store = make_store(cm_client, clock)
    store.load()
    store.save(AGENTS)
    clock.advance(10)
    store.save(AGENTS)

    assert apiserver.count("POST", CONFIGMAPS) == 1
    assert apiserver.count("PATCH", CONFIGMAPS) == 0


def test_a_change_to_one_application_sends_only_its_key(
    apiserver: FakeApiServer, cm_client: ConfigMapClient, clock: ManualClock
) -> None:
    store = make_store(cm_client, clock)
    store.load()
    store.save(AGENTS)
    changed = json.loads(json.dumps(AGENTS))
    changed["scaling"]["versions"]["chat/v1"]["level"] = 4.0

    store.save(changed)

    (patch,) = apiserver.sent("PATCH", CONFIGMAPS)
    assert list(patch.body["data"]) == ["app.chat"]
    assert patch.body["metadata"]["resourceVersion"]
    assert patch.headers["content-type"] == "application/merge-patch+json"
    assert make_store(cm_client, clock).load() == changed


def test_an_application_that_leaves_is_removed_from_the_configmap(
    apiserver: FakeApiServer, cm_client: ConfigMapClient, clock: ManualClock
) -> None:
    store = make_store(cm_client, clock)
    store.load()
    store.save(AGENTS)
    without_chat = json.loads(json.dumps(AGENTS))
    del without_chat["rollout"]["apps"]["chat"]
    del without_chat["scaling"]["versions"]["chat/v1"]

    store.save(without_chat)

    assert "app.chat" not in configmap(apiserver)["data"]
    assert make_store(cm_client, clock).load() == without_chat


def test_a_daemon_that_is_not_the_leader_does_not_write(
    apiserver: FakeApiServer, cm_client: ConfigMapClient, clock: ManualClock
) -> None:
    store = make_store(cm_client, clock, may_write=lambda: False)
    store.load()

    store.save(AGENTS)

    assert apiserver.count("POST", CONFIGMAPS) + apiserver.count("PATCH", CONFIGMAPS) == 0


def test_a_conflicting_write_is_retried_on_a_fresh_read(
    apiserver: FakeApiServer, cm_client: ConfigMapClient, clock: ManualClock
) -> None:
    store = make_store(cm_client, clock)
    store.load()
    store.save(AGENTS)
    changed = json.loads(json.dumps(AGENTS))
    changed["rollout"]["apps"]["embed"]["weight"] = 25
    apiserver.add_fault("PATCH", rf"/configmaps/{STATE}$", status=409)

    store.save(changed)

    assert apiserver.count("PATCH", CONFIGMAPS, status=409) == 1
    assert apiserver.count("PATCH", CONFIGMAPS, status=200) == 1
    assert make_store(cm_client, clock).load() == changed


def test_a_write_by_someone_else_is_kept_when_it_is_not_ours_to_change(
    apiserver: FakeApiServer, cm_client: ConfigMapClient, clock: ManualClock
) -> None:
    store = make_store(cm_client, clock)
    store.load()
    store.save(AGENTS)
    # A former leader's last write lands after our read: we conflict, re-read, and write
    # only what differs from what is there now.
    other = configmap(apiserver)
    other["data"]["app.embed"] = other["data"]["app.embed"].replace("canary", "promoted")
    apiserver.seed(other)
    changed = json.loads(json.dumps(AGENTS))
    changed["scaling"]["versions"]["chat/v1"]["level"] = 9.0

    store.save(changed)

    assert apiserver.count("PATCH", CONFIGMAPS, status=409) == 1
    second = apiserver.sent("PATCH", CONFIGMAPS)[-1]
    assert set(second.body["data"]) == {"app.chat", "app.embed"}
    assert make_store(cm_client, clock).load() == changed


def _fleet_state(apps: int) -> dict[str, dict[str, Any]]:
    """An agents' state the size a fleet of `apps` applications (two versions each) has."""
    demand = [round(0.1 * i, 3) for i in range(30)]
    return {
        "rollout": {
            "apps": {f"app-{i:05d}": {"phase": "idle", "stable": "v1"} for i in range(apps)}
        },
        "scaling": {
            "versions": {
                f"app-{i:05d}/{v}": {
                    "level": 1.25,
                    "trend_per_s": 0.001,
                    "observed_at": "2026-01-01T00:00:00+00:00",
                    "capacity": 1.0,
                    "capacity_kind": "calibrated",
                    "demand": demand,
                    "demand_at": "2026-01-01T00:00:00+00:00",
                }
                for i in range(apps)
                for v in ("v1", "v2")
            }
        },
        "budget": {"capped_since": {}},
    }


def test_a_ten_thousand_application_state_is_split_under_the_configmap_limit(
    apiserver: FakeApiServer, cm_client: ConfigMapClient, clock: ManualClock
) -> None:
    agents = _fleet_state(10_000)
    names = [f"app-{i:05d}" for i in range(10_000)]
    store = ConfigMapStateStore(cm_client, names, clock)
    store.load()

    store.save(agents)

    index = json.loads(configmap(apiserver)["data"][STATE_KEY])
    partitions = index["partitions"]
    assert partitions > 1
    sizes = []
    for p in range(partitions):
        cm = configmap(apiserver, STATE if p == 0 else f"{STATE}-{p}")
        sizes.append(data_bytes(cm["data"]))
        assert cm["metadata"]["labels"]["app.kubernetes.io/part-of"] == "governor"
    assert max(sizes) <= store.max_bytes < MAX_DATA_BYTES
    assert ConfigMapStateStore(cm_client, names, clock).load() == agents

    changed = json.loads(json.dumps(agents))
    changed["scaling"]["versions"]["app-04242/v1"]["level"] = 7.5
    before = len(apiserver.requests)
    store.save(changed)

    writes = [r for r in apiserver.requests[before:] if r.method in ("PATCH", "POST")]
    assert len(writes) == 1 and list(writes[0].body["data"]) == ["app.app-04242"]
    home = partition_of("app-04242", partitions)
    assert writes[0].path.endswith(STATE if home == 0 else f"{STATE}-{home}")


def test_a_copy_left_by_an_interrupted_move_loses_to_the_applications_own_partition(
    apiserver: FakeApiServer, cm_client: ConfigMapClient, clock: ManualClock
) -> None:
    store = make_store(cm_client, clock, max_bytes=400)
    store.load()
    store.save(AGENTS)
    index = json.loads(configmap(apiserver)["data"][STATE_KEY])
    assert index["partitions"] == 2, "two applications that do not fit together are split"
    moved = next(a for a in APPS if partition_of(a, 2) == 1)
    # The move wrote the new copy; a crash left an older copy in partition 0.
    stale = json.loads(configmap(apiserver, f"{STATE}-1")["data"][data_key(moved)])
    stale["agents"]["scaling"]["versions"] = {f"{moved}/v1": {"level": -1.0}}
    left = configmap(apiserver)
    left["data"][data_key(moved)] = json.dumps(stale)
    apiserver.seed(left)

    fresh = make_store(cm_client, clock, max_bytes=400)
    assert fresh.load() == AGENTS
    fresh.save(AGENTS)
    assert data_key(moved) not in configmap(apiserver)["data"], "the stale copy is cleaned up"


def test_one_application_too_big_for_a_configmap_is_refused_and_nothing_is_written(
    apiserver: FakeApiServer, cm_client: ConfigMapClient, clock: ManualClock
) -> None:
    store = make_store(cm_client, clock)
    store.load()
    huge = json.loads(json.dumps(AGENTS))
    huge["scaling"]["versions"]["embed/v1"]["demand"] = [0.123456789] * 100_000

    with pytest.raises(TooLargeError, match=r"application embed is \d+ bytes, over the 786432"):
        store.save(huge)
    assert apiserver.count("POST", CONFIGMAPS) + apiserver.count("PATCH", CONFIGMAPS) == 0


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("not json", "not JSON"),
        (
            json.dumps({"schema_version": 9, "saved_at": "x", "partitions": 1, "agents": {}}),
            "schema_version 9",
        ),
        (json.dumps({"schema_version": 1, "partitions": 1, "agents": {}}), "saved_at"),
        (
            json.dumps(
                {
                    "schema_version": 1,
                    "saved_at": "2026-01-01T01:00:00+01:00",
                    "partitions": 1,
                    "agents": {},
                }
            ),
            "UTC",
        ),
        (
            json.dumps(
                {
                    "schema_version": 1,
                    "saved_at": "2026-01-01T00:00:00Z",
                    "partitions": 3,
                    "agents": {},
                }
            ),
            "power of two",
        ),
        (
            json.dumps(
                {
                    "schema_version": 1,
                    "saved_at": "2026-01-01T00:00:00Z",
                    "partitions": 1,
                    "agents": [],
                }
            ),
            "agents",
        ),
    ],
)
def test_a_state_that_breaks_the_schema_is_refused_with_the_reason(
    apiserver: FakeApiServer,
    cm_client: ConfigMapClient,
    clock: ManualClock,
    value: str,
    message: str,
) -> None:
    apiserver.seed(
        {
            "kind": "ConfigMap",
            "metadata": {"name": STATE, "namespace": NAMESPACE},
            "data": {STATE_KEY: value},
        }
    )

    with pytest.raises(PermanentError, match=message):
        make_store(cm_client, clock).load()


def test_an_unreadable_old_state_is_replaced_by_a_valid_one(
    apiserver: FakeApiServer, cm_client: ConfigMapClient, clock: ManualClock
) -> None:
    apiserver.seed(
        {
            "kind": "ConfigMap",
            "metadata": {"name": STATE, "namespace": NAMESPACE},
            "data": {STATE_KEY: "garbage", "app.embed": "garbage"},
        }
    )

    make_store(cm_client, clock).save(AGENTS)

    assert make_store(cm_client, clock).load() == AGENTS


def _legacy_annotation(agents: dict[str, Any]) -> str:
    return json.dumps({"schema_version": 1, "saved_at": "2025-12-31T00:00:00Z", "agents": agents})


def test_the_former_annotation_is_read_once_then_the_configmaps_take_over(
    apiserver: FakeApiServer,
    cm_client: ConfigMapClient,
    rs_client: RayServiceClient,
    clock: ManualClock,
) -> None:
    obj = rayservice_object()
    obj["metadata"]["annotations"] = {STATE_ANNOTATION: _legacy_annotation(AGENTS)}
    apiserver.seed(obj)
    migration = AnnotationMigration(rs_client, RayServiceShards(rs_client, names=[NAME]))
    store = make_store(cm_client, clock, migration=migration)

    assert store.load() == AGENTS
    store.save(AGENTS)

    assert make_store(cm_client, clock).load() == AGENTS
    meta = apiserver.get("rayservices", NAMESPACE, NAME)["metadata"]
    assert STATE_ANNOTATION not in (meta.get("annotations") or {})
    # With the ConfigMap there, the RayService is not asked again.
    reads = apiserver.count("GET", rf"/rayservices/{NAME}$")
    assert make_store(cm_client, clock, migration=migration).load() == AGENTS
    assert apiserver.count("GET", rf"/rayservices/{NAME}$") == reads


def test_a_former_annotation_that_breaks_the_schema_is_refused(
    apiserver: FakeApiServer,
    cm_client: ConfigMapClient,
    rs_client: RayServiceClient,
    clock: ManualClock,
) -> None:
    obj = rayservice_object()
    obj["metadata"]["annotations"] = {STATE_ANNOTATION: "not json"}
    apiserver.seed(obj)
    migration = AnnotationMigration(rs_client, RayServiceShards(rs_client, names=[NAME]))

    with pytest.raises(PermanentError, match=f"annotation {STATE_ANNOTATION}: the saved state"):
        make_store(cm_client, clock, migration=migration).load()
