# Server: the real kube-apiserver and etcd (scripts/build-k8s.sh), restarted in the test.
"""The daemon holds no watch: every tick reads its RayServices afresh (`get` by name or one
`list` by label selector). So what must survive an API server restart is that read: while
the server is down the shard is reported unread (its applications missing, nothing
written), and the same client reads, writes and renews the Lease again once it is back,
with the data etcd kept.
"""

from __future__ import annotations

import pytest
from kubernetes import client as k8s

from controller.errors import TemporaryError
from kuberay.target import build_kuberay_target
from tests.controller.clock import ManualClock
from tests.controller.sample_config import governor_config
from tests.kuberay.conftest import NAME, NAMESPACE, plan, rayservice_object, snapshot
from tests.kuberay.control_plane import ControlPlane, seed_rayservice

pytestmark = pytest.mark.k8s


def test_ticks_report_the_shard_unread_during_a_restart_and_resume_after_it(
    cluster: ControlPlane, admin_api: k8s.ApiClient, clock: ManualClock
) -> None:
    seed_rayservice(admin_api, rayservice_object())
    config = governor_config(
        target="kuberay",
        kuberay={"namespace": NAMESPACE, "rayservice": NAME, "request_timeout_s": 2},
    )
    api = cluster.client()
    target = build_kuberay_target(config, clock, api=api, identity="a")
    try:
        assert target.is_leader()
        before = target.source.observe().version("embed", "v1")
        assert before is not None and before.target_replicas == 1

        cluster.stop_apiserver()
        try:
            down = target.source.observe()
            missing = down.version("embed", "v1")
            assert missing is not None and missing.target_replicas is None
            assert any(p.startswith(f"rayservice {NAMESPACE}/{NAME}:") for p in down.problems)
            with pytest.raises(TemporaryError):
                target.actuator.client.get(NAME)
            assert target.elector is not None and not target.elector.try_acquire_or_renew()
        finally:
            cluster.start_apiserver()

        after = target.source.observe().version("embed", "v1")
        assert after == before
        assert target.elector.try_acquire_or_renew(), "the Lease is renewed again"
        target.actuator.apply(plan(2, 1), snapshot(1, 1))
        assert "num_replicas: 2" in target.actuator.client.get(NAME).serve_config_v2
    finally:
        target.close()
