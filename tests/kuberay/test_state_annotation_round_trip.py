"""Agent state survives in a namespaced annotation on the RayService, with a schema."""

from __future__ import annotations

import json
from typing import Any

import pytest

from controller.errors import PermanentError
from kuberay.client import RayServiceClient
from kuberay.state_store import STATE_ANNOTATION, AnnotationStateStore
from tests.controller.clock import ManualClock
from tests.kuberay.conftest import NAME, NAMESPACE, rayservice_object
from tests.kuberay.fake_apiserver import FakeApiServer

PATCH = rf"/rayservices/{NAME}$"
AGENTS = {
    "rollout": {"embed": {"phase": "canary", "step": 1, "since": "2026-01-01T00:00:00Z"}},
    "scaling": {"embed/v1": {"last_change": 12.5}},
}


@pytest.fixture
def store(rs_client: RayServiceClient, clock: ManualClock) -> AnnotationStateStore:
    """A store on the seeded RayService."""
    return AnnotationStateStore(rs_client, NAME, clock)


def annotation(apiserver: FakeApiServer) -> str | None:
    """The raw state annotation, if any."""
    meta = apiserver.get("rayservices", NAMESPACE, NAME)["metadata"]
    value = (meta.get("annotations") or {}).get(STATE_ANNOTATION)
    return value if isinstance(value, str) else None


def test_saved_state_loads_back_the_same(
    apiserver: FakeApiServer,
    store: AnnotationStateStore,
    rs_client: RayServiceClient,
    clock: ManualClock,
    rayservice: dict[str, Any],
) -> None:
    assert store.load() == {}

    store.save(AGENTS)

    fresh = AnnotationStateStore(rs_client, NAME, clock)  # a restarted daemon
    assert fresh.load() == AGENTS
    doc = json.loads(annotation(apiserver) or "")
    assert doc["schema_version"] == 1
    assert doc["saved_at"] == "2026-01-01T00:00:00Z"
    assert STATE_ANNOTATION.startswith("governor.ray.io/")


def test_saving_unchanged_state_writes_nothing(
    apiserver: FakeApiServer,
    store: AnnotationStateStore,
    clock: ManualClock,
    rayservice: dict[str, Any],
) -> None:
    store.save(AGENTS)
    clock.advance(10)
    store.save(AGENTS)

    assert apiserver.count("PATCH", PATCH) == 1


def test_the_state_write_does_not_touch_the_spec(
    apiserver: FakeApiServer, store: AnnotationStateStore, rayservice: dict[str, Any]
) -> None:
    store.save(AGENTS)

    obj = apiserver.get("rayservices", NAMESPACE, NAME)
    assert obj["spec"] == rayservice["spec"]
    assert obj["metadata"]["generation"] == rayservice["metadata"]["generation"]


def test_a_daemon_that_is_not_the_leader_does_not_write(
    apiserver: FakeApiServer,
    rs_client: RayServiceClient,
    clock: ManualClock,
    rayservice: dict[str, Any],
) -> None:
    store = AnnotationStateStore(rs_client, NAME, clock, may_write=lambda: False)

    store.save(AGENTS)

    assert apiserver.count("PATCH", PATCH) == 0
    assert annotation(apiserver) is None


def test_a_conflicting_write_is_retried_on_a_fresh_read(
    apiserver: FakeApiServer, store: AnnotationStateStore, rayservice: dict[str, Any]
) -> None:
    apiserver.add_fault("PATCH", PATCH, status=409)

    store.save(AGENTS)

    assert store.load() == AGENTS
    assert apiserver.count("PATCH", PATCH, status=200) == 1


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("not json", "not JSON"),
        (json.dumps({"schema_version": 9, "saved_at": "x", "agents": {}}), "schema_version 9"),
        (json.dumps({"schema_version": 1, "agents": {}}), "saved_at"),
        (
            json.dumps(
                {"schema_version": 1, "saved_at": "2026-01-01T01:00:00+01:00", "agents": {}}
            ),
            "UTC",
        ),
        (
            json.dumps({"schema_version": 1, "saved_at": "2026-01-01T00:00:00Z", "agents": []}),
            "agents",
        ),
    ],
)
def test_a_state_that_breaks_the_schema_is_refused_with_the_reason(
    apiserver: FakeApiServer, store: AnnotationStateStore, value: str, message: str
) -> None:
    obj = rayservice_object()
    obj["metadata"]["annotations"] = {STATE_ANNOTATION: value}
    apiserver.seed(obj)

    with pytest.raises(PermanentError, match=message):
        store.load()


def test_an_unreadable_old_state_is_replaced_by_a_valid_one(
    apiserver: FakeApiServer, store: AnnotationStateStore
) -> None:
    obj = rayservice_object()
    obj["metadata"]["annotations"] = {STATE_ANNOTATION: "garbage"}
    apiserver.seed(obj)

    store.save(AGENTS)

    assert store.load() == AGENTS


def test_a_state_too_big_for_an_annotation_is_refused(
    apiserver: FakeApiServer, store: AnnotationStateStore, rayservice: dict[str, Any]
) -> None:
    huge = {"scaling": {"history": ["x" * 1000] * 300}}

    with pytest.raises(PermanentError, match="bytes"):
        store.save(huge)
    assert apiserver.count("PATCH", PATCH) == 0
