"""Enforcing the Role on the stand-in: it is enough for the daemon, and a gap is named."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client as k8s

from controller.decisions import Plan
from controller.errors import PermanentError
from kuberay.target import build_kuberay_target
from tests.controller.clock import ManualClock
from tests.controller.sample_config import governor_config
from tests.kuberay.conftest import NAME, NAMESPACE, plan, rendered, snapshot
from tests.kuberay.fake_apiserver import FakeApiServer


def test_the_role_is_enough_for_everything_the_daemon_does(
    apiserver: FakeApiServer, api: k8s.ApiClient, clock: ManualClock, rayservice: dict[str, Any]
) -> None:
    apiserver.rbac = rendered("Role")["rules"]
    config = governor_config(target="kuberay", kuberay={"namespace": NAMESPACE, "rayservice": NAME})
    target = build_kuberay_target(config, clock, api=api, identity="a")
    try:
        assert target.is_leader()
        target.source.observe()
        target.store.save({"scaling": {"x": 1}})
        assert target.store.load() == {"scaling": {"x": 1}}
        target.actuator.apply(plan(2, 1, {"v1": 90, "v2": 10}), snapshot(1, 1))
        target.actuator.apply(Plan(), snapshot(2, 1))
        client = target.actuator.client
        client.list()
        client.get_status(NAME)
        list(client.watch(NAME, timeout_s=1))
        clock.advance(5)
        assert target.elector is not None and target.elector.try_acquire_or_renew()
    finally:
        target.close()

    assert [(r.method, r.path) for r in apiserver.requests if r.status == 403] == []
    verbs = {r.method for r in apiserver.requests}
    assert verbs == {"GET", "PATCH", "POST", "PUT"}, "every granted kind of call was made"


def test_a_role_without_patch_fails_with_a_message_naming_it(
    apiserver: FakeApiServer, api: k8s.ApiClient, clock: ManualClock, rayservice: dict[str, Any]
) -> None:
    rules = [dict(r) for r in rendered("Role")["rules"]]
    rules[0]["verbs"] = ["get", "list", "watch"]
    apiserver.rbac = rules
    config = governor_config(target="kuberay", kuberay={"namespace": NAMESPACE, "rayservice": NAME})
    target = build_kuberay_target(config, clock, api=api, identity="a")
    try:
        with pytest.raises(PermanentError) as err:
            target.actuator.apply(plan(2, 1), snapshot(1, 1))
    finally:
        target.close()

    assert "may not 'patch' 'rayservices' (apiGroup ray.io)" in str(err.value)
    assert 'cannot patch resource "rayservices"' in str(err.value)
