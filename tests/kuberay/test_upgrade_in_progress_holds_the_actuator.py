# Server: the stand-in (tests/kuberay/fake_apiserver.py), which counts patches (none may be
# sent); the hold on the real server: test_the_actuator_writes_the_real_rayservice.py.
"""While KubeRay upgrades (UpgradeInProgress, or a pending cluster not ready), nothing is written."""

from __future__ import annotations

from typing import Any

from kuberay.actuator import KubeRayActuator, hold_reason
from kuberay.status import parse_status
from tests.kuberay.conftest import (
    NAME,
    NAMESPACE,
    PATCH,
    RUNNING_STATUS,
    plan,
    snapshot,
    upgrading_status,
)
from tests.kuberay.fake_apiserver import FakeApiServer


def test_a_pending_cluster_that_is_not_ready_holds(
    apiserver: FakeApiServer, actuator: KubeRayActuator, rayservice: dict[str, Any]
) -> None:
    status = upgrading_status()
    status["conditions"] = status["conditions"][:1]  # an operator without the condition

    apiserver.set_status(NAMESPACE, NAME, status)
    result = actuator.apply(plan(3, 1), snapshot(1, 1))

    assert result.held is not None
    assert "pending RayCluster governor-fleet-def34 is not ready (embed=DEPLOYING)" in result.held
    assert apiserver.count("PATCH", PATCH) == 0


def test_hold_reasons_read_the_status() -> None:
    assert hold_reason(NAME, parse_status(RUNNING_STATUS)) is None
    assert hold_reason(NAME, parse_status({})) is None
    ready_pending = upgrading_status()
    ready_pending["pendingServiceStatus"]["applicationStatuses"]["embed"]["status"] = "RUNNING"
    ready_pending["conditions"] = ready_pending["conditions"][:1]
    assert hold_reason(NAME, parse_status(ready_pending)) is None
