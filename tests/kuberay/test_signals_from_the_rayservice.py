# Server: the stand-in (tests/kuberay/fake_apiserver.py), with an in-memory Serve for the head's
# dashboard, which needs a running Ray head.
"""The replica and status part of the snapshot, from the RayService and the head's Serve API."""

from __future__ import annotations

from typing import Any

from controller.transports.ray_dashboard import RayDashboardClient
from kuberay.shards import RayServiceShards
from kuberay.signals import RayServiceSource, parse_quantity
from tests.controller.clock import ManualClock
from tests.controller.fake_serve import FakeServe
from tests.controller.sample_config import governor_config
from tests.kuberay.conftest import SERVE_CONFIG
from tests.kuberay.fake_apiserver import FakeApiServer


def test_without_the_dashboard_replicas_come_from_the_config_and_deployment_health(
    shards: RayServiceShards, clock: ManualClock, rayservice: dict[str, Any]
) -> None:
    snap = RayServiceSource(shards, governor_config(), clock).observe()

    app = snap.app("embed")
    assert app is not None and app.status == "RUNNING"
    assert app.weights == {"v1": 100, "v2": 0}
    v1, v2 = snap.version("embed", "v1"), snap.version("embed", "v2")
    assert v1 is not None and v2 is not None
    assert (v1.target_replicas, v1.running_replicas, v1.starting_replicas) == (1, 1, 0)
    # UPDATING: how many run is not known, so it is missing rather than guessed.
    assert (v2.target_replicas, v2.running_replicas) == (1, None)
    assert v1.latency_p95_ms is None, "latency comes from Prometheus, not from here"
    assert snap.cluster.total_gpus == 2 and snap.cluster.total_cpus == 20
    assert snap.problems == ()
    assert snap.now == clock.now()


def test_with_the_dashboard_replicas_and_weights_are_what_serve_reports(
    shards: RayServiceShards, clock: ManualClock, rayservice: dict[str, Any]
) -> None:
    serve = FakeServe()
    serve._deploy(SERVE_CONFIG)
    serve._set_replicas(serve.apps["embed"]["deployments"]["model_v1"], 3)
    dashboard = RayDashboardClient("http://head:8265", transport=serve.transport(), token="")

    snap = RayServiceSource(shards, governor_config(), clock, lambda name: dashboard).observe()

    v1 = snap.version("embed", "v1")
    assert v1 is not None
    assert (v1.target_replicas, v1.running_replicas, v1.starting_replicas) == (3, 3, 0)
    app = snap.app("embed")
    assert app is not None and app.weights == {"v1": 100, "v2": 0}


def test_a_rayservice_that_cannot_be_read_leaves_everything_missing(
    apiserver: FakeApiServer, shards: RayServiceShards, clock: ManualClock
) -> None:
    snap = RayServiceSource(shards, governor_config(), clock).observe()

    v1 = snap.version("embed", "v1")
    assert v1 is not None and v1.target_replicas is None and v1.running_replicas is None
    assert len(snap.problems) == 1 and "not found" in snap.problems[0]


def test_an_unreachable_dashboard_is_a_problem_not_a_failure(
    shards: RayServiceShards, clock: ManualClock, rayservice: dict[str, Any]
) -> None:
    serve = FakeServe()
    serve.fail_next = 503
    dashboard = RayDashboardClient("http://head:8265", transport=serve.transport(), token="")

    snap = RayServiceSource(shards, governor_config(), clock, lambda name: dashboard).observe()

    assert any(p.startswith("serve status of governor-fleet:") for p in snap.problems)
    v1 = snap.version("embed", "v1")
    assert v1 is not None and v1.target_replicas == 1


def test_quantities_parse_like_kubernetes() -> None:
    assert parse_quantity("4") == 4
    assert parse_quantity("500m") == 0.5
    assert parse_quantity("2.5") == 2.5
    assert parse_quantity(None) is None
    assert parse_quantity("1Gi") is None
