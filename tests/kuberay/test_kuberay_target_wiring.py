# Server: the stand-in (tests/kuberay/fake_apiserver.py), which counts requests: reading the fleet
# sends none to the Lease, a follower sends no state writes.
"""build_kuberay_target wires the parts from a GovernorConfig; reading never joins the election."""

from __future__ import annotations

import re
from typing import Any, get_args

import httpx
import pytest
from kubernetes import client as k8s

from controller.cli import target_builders
from controller.config import GovernorConfig
from controller.errors import ConfigError
from controller.signals.prometheus import PrometheusSource
from kuberay.signals import RayServiceSource
from kuberay.target import build_kuberay_target
from tests.controller.clock import ManualClock
from tests.controller.sample_config import governor_config
from tests.kuberay.conftest import NAME, NAMESPACE
from tests.kuberay.fake_apiserver import FakeApiServer

KUBERAY = {"namespace": NAMESPACE, "rayservice": NAME}


def test_reading_the_fleet_does_not_touch_the_lease(
    apiserver: FakeApiServer, api: k8s.ApiClient, clock: ManualClock, rayservice: dict[str, Any]
) -> None:
    # `governor plan` and `governor status` read through the same target.
    target = build_kuberay_target(
        governor_config(target="kuberay", kuberay=KUBERAY), clock, api=api, identity="a"
    )
    try:
        assert isinstance(target.source, RayServiceSource)
        target.source.observe()
        target.store.load()
        assert apiserver.count("GET", "/leases") + apiserver.count("POST", "/leases") == 0

        assert target.is_leader()
        assert apiserver.count("POST", "/leases", status=201) == 1
    finally:
        target.close()
    assert "holderIdentity" not in apiserver.get("leases", NAMESPACE, "governor-leader")["spec"]


def test_with_prometheus_signals_replicas_still_come_from_the_rayservice(
    api: k8s.ApiClient, clock: ManualClock, rayservice: dict[str, Any]
) -> None:
    def prometheus(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, json={"status": "success", "data": {"resultType": "vector", "result": []}}
        )

    cfg = governor_config(target="kuberay", kuberay=KUBERAY, signals={"kind": "prometheus"})
    target = build_kuberay_target(
        cfg, clock, api=api, identity="a", prometheus_transport=httpx.MockTransport(prometheus)
    )
    try:
        snap = target.source.observe()
    finally:
        target.close()

    assert isinstance(target.source, PrometheusSource)
    v1 = snap.version("embed", "v1")
    assert v1 is not None and (v1.target_replicas, v1.running_replicas) == (1, 1)
    assert v1.latency_p95_ms is None
    assert any(p.startswith("prometheus") for p in snap.problems)


def test_a_kuberay_target_without_its_section_is_a_config_error(clock: ManualClock) -> None:
    cfg = governor_config().model_copy(update={"target": "kuberay"})

    with pytest.raises(ConfigError, match="kuberay section"):
        build_kuberay_target(cfg, clock)


@pytest.mark.parametrize(
    ("kuberay", "complaint"),
    [
        ({"namespace": NAMESPACE}, "exactly one of rayservice, rayservices or rayservice_selector"),
        (
            {"rayservice": NAME, "rayservice_selector": "a=b"},
            "set: ['rayservice', 'rayservice_selector']",
        ),
        ({"rayservices": ["a", "a"]}, "rayservices repeat: ['a']"),
        (
            {"rayservices": ["a", "b"], "dashboard_url": "http://head:8265"},
            "dashboard_url must contain {rayservice}",
        ),
        ({"rayservice": NAME, "max_serve_config_bytes": 2_000_000}, "max_serve_config_bytes"),
        ({"rayservice": NAME, "state_configmap": "Not_A_Name"}, "state_configmap"),
    ],
)
def test_a_fleet_named_wrongly_is_a_config_error_naming_the_field(
    kuberay: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(complaint)):
        governor_config(target="kuberay", kuberay=kuberay)


def test_a_daemon_that_does_not_hold_the_lease_writes_no_state(
    apiserver: FakeApiServer, api: k8s.ApiClient, clock: ManualClock, rayservice: dict[str, Any]
) -> None:
    other = build_kuberay_target(
        governor_config(target="kuberay", kuberay=KUBERAY), clock, api=api, identity="other"
    )
    target = build_kuberay_target(
        governor_config(target="kuberay", kuberay=KUBERAY), clock, api=api, identity="a"
    )
    try:
        assert other.is_leader()
        assert not target.is_leader()
        target.store.load()
        target.store.save({"scaling": {"versions": {"embed/v1": {"level": 1.0}}}})
    finally:
        target.close()
        other.close()

    assert apiserver.count("POST", "/configmaps") + apiserver.count("PATCH", "/configmaps") == 0


def test_every_target_kind_the_config_accepts_has_a_builder() -> None:
    kinds = set(get_args(GovernorConfig.model_fields["target"].annotation))

    builders = target_builders()

    assert set(builders) == kinds
    assert builders["kuberay"] is build_kuberay_target
