# Server: the stand-in (tests/kuberay/fake_apiserver.py), with an in-memory Serve playing the
# KubeRay operator's in-place apply, which needs a running Ray head.
"""The real daemon, decide() and the KubeRay target against the stand-in API server.

The head's Serve API is the in-memory FakeServe; `kuberay_applies` plays the KubeRay
operator, which submits a changed serveConfigV2 to the active cluster in place.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s

from controller.config import GovernorConfig
from controller.daemon import Daemon
from kuberay.state_store import STATE_KEY
from kuberay.target import ClusterTarget, build_kuberay_target
from tests.controller.clock import ManualClock
from tests.controller.fake_serve import FakeServe
from tests.controller.sample_config import governor_config
from tests.kuberay.conftest import (
    NAME,
    NAMESPACE,
    SERVE_CONFIG,
    deployed,
    deployments,
    upgrading_status,
)
from tests.kuberay.fake_apiserver import FakeApiServer


def config(v1_min: int) -> GovernorConfig:
    """A KubeRay config whose plan is known without metrics: v1 raised to its minimum."""
    return governor_config(
        target="kuberay",
        kuberay={"namespace": NAMESPACE, "rayservice": NAME, "dashboard_url": "http://head:8265"},
        applications=[
            {
                "name": "embed",
                "slo": {"latency_p95_ms": 200},
                "versions": [
                    {"name": "v1", "deployment": "model_v1", "min_replicas": v1_min},
                    {"name": "v2", "deployment": "model_v2", "min_replicas": 0},
                ],
            }
        ],
    )


@pytest.fixture
def serve() -> FakeServe:
    """The active cluster's Serve, running the RayService's initial config."""
    fake = FakeServe()
    fake._deploy(SERVE_CONFIG)
    return fake


def kuberay_applies(apiserver: FakeApiServer, serve: FakeServe) -> None:
    """What the KubeRay operator does with a changed serveConfigV2: submit it in place."""
    serve._deploy(deployed(apiserver))


class Node:
    """One daemon with its KubeRay target."""

    def __init__(
        self,
        cfg: GovernorConfig,
        identity: str,
        api: k8s.ApiClient,
        clock: ManualClock,
        serve: FakeServe,
    ) -> None:
        self.target: ClusterTarget = build_kuberay_target(
            cfg, clock, api=api, identity=identity, dashboard_transport=serve.transport()
        )
        self.daemon = Daemon(
            cfg,
            self.target.source,
            self.target.actuator,
            self.target.store,
            clock,
            is_leader=self.target.is_leader,
        )

    def renew(self) -> None:
        """One election round at the test clock's time (the background one runs on wall time)."""
        assert self.target.elector is not None
        self.target.elector.try_acquire_or_renew()


@pytest.fixture
def nodes(
    apiserver: FakeApiServer,
    api: k8s.ApiClient,
    clock: ManualClock,
    serve: FakeServe,
    rayservice: dict[str, Any],
) -> Iterator[list[Node]]:
    """Two daemons that want different minimums for v1 (2 and 3), against one Lease."""
    made = [Node(config(2), "a", api, clock, serve), Node(config(3), "b", api, clock, serve)]
    yield made
    for n in made:
        n.target.close()


def test_a_daemon_tick_applies_its_plan_to_the_rayservice(
    apiserver: FakeApiServer, nodes: list[Node], serve: FakeServe, clock: ManualClock
) -> None:
    a = nodes[0]

    report = a.daemon.tick()

    assert report.error is None and report.applied is not None
    assert report.applied.held is None
    assert "serveConfigV2: embed/model_v1 num_replicas 1 -> 2" in report.applied.changes
    deps = deployments(deployed(apiserver))
    assert deps["model_v1"]["num_replicas"] == 2
    assert deps["router"]["user_config"]["weights"] == {"v1": 100, "v2": 0}
    state = apiserver.get("configmaps", NAMESPACE, "governor-state")["data"]
    assert set(json.loads(state[STATE_KEY])["agents"]) >= {"scaling", "rollout"}
    assert json.loads(state["app.embed"])["agents"]["scaling"]["versions"]["embed/v1"]

    kuberay_applies(apiserver, serve)
    clock.advance(5)
    a.renew()
    again = a.daemon.tick()

    assert again.error is None and again.applied is not None
    assert again.applied.changes == (), "the same plan, already in place, changes nothing"
    spec_patches = [
        r
        for r in apiserver.requests
        if r.method == "PATCH" and r.status == 200 and "spec" in r.body
    ]
    assert len(spec_patches) == 1


def test_two_daemons_one_lease_exactly_one_acts_and_the_other_takes_over(
    apiserver: FakeApiServer, nodes: list[Node], serve: FakeServe, clock: ManualClock
) -> None:
    a, b = nodes
    for _ in range(3):
        ra, rb = a.daemon.tick(), b.daemon.tick()
        assert ra.applied is not None and ra.applied.held is None
        assert rb.applied is not None and rb.applied.held == "not the leader: nothing applied"
        assert deployments(deployed(apiserver))["model_v1"]["num_replicas"] == 2
        kuberay_applies(apiserver, serve)
        clock.advance(5)
        a.renew()
        b.renew()

    a.target.close()  # a shuts down and releases the lease
    stopped = clock.now()
    clock.advance(1)
    b.renew()
    rb = b.daemon.tick()

    assert rb.applied is not None and rb.applied.held is None
    assert deployments(deployed(apiserver))["model_v1"]["num_replicas"] == 3
    assert (clock.now() - stopped).total_seconds() <= 15
    lease = apiserver.get("leases", NAMESPACE, "governor-leader")
    assert lease["spec"]["holderIdentity"] == "b"


def test_upgrade_in_progress_holds_the_daemon(apiserver: FakeApiServer, nodes: list[Node]) -> None:
    apiserver.set_status(NAMESPACE, NAME, upgrading_status())

    report = nodes[0].daemon.tick()

    assert report.applied is not None and report.applied.held is not None
    assert "UpgradeInProgress" in report.applied.held
    spec = yaml.safe_load(apiserver.get("rayservices", NAMESPACE, NAME)["spec"]["serveConfigV2"])
    assert deployments(spec)["model_v1"]["num_replicas"] == 1
