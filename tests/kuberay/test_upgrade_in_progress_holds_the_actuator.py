"""While KubeRay upgrades (UpgradeInProgress, or a pending cluster not ready), nothing is written."""

from __future__ import annotations

import copy
from typing import Any

from kuberay.actuator import KubeRayActuator, hold_reason
from kuberay.status import parse_status
from tests.kuberay.conftest import (
    NAME,
    NAMESPACE,
    PATCH,
    RUNNING_STATUS,
    deployed,
    deployments,
    plan,
    snapshot,
    upgrading_status,
)
from tests.kuberay.fake_apiserver import FakeApiServer


def test_upgrade_in_progress_holds_then_the_plan_lands_after_it(
    apiserver: FakeApiServer, actuator: KubeRayActuator, rayservice: dict[str, Any]
) -> None:
    apiserver.set_status(NAMESPACE, NAME, upgrading_status())

    held = actuator.apply(plan(3, 1), snapshot(1, 1))

    assert held.held is not None and "UpgradeInProgress" in held.held
    assert "BothActivePendingClustersExist" in held.held
    assert held.changes == ()
    assert apiserver.count("PATCH", PATCH) == 0

    apiserver.set_status(NAMESPACE, NAME, copy.deepcopy(RUNNING_STATUS))
    applied = actuator.apply(plan(3, 1), snapshot(1, 1))

    assert applied.held is None
    assert deployments(deployed(apiserver))["model_v1"]["num_replicas"] == 3


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


def test_an_upgrade_that_starts_between_read_and_patch_holds(
    apiserver: FakeApiServer, actuator: KubeRayActuator, rayservice: dict[str, Any]
) -> None:
    # The operator starts an upgrade after our read; our patch then meets a 409, and the
    # fresh read shows the upgrade.
    fault = apiserver.add_fault(
        "PATCH",
        PATCH,
        then=lambda: apiserver.set_status(NAMESPACE, NAME, upgrading_status()),
    )

    result = actuator.apply(plan(3, 1), snapshot(1, 1))

    assert fault.times == 0
    assert result.held is not None and "UpgradeInProgress" in result.held
    assert apiserver.count("PATCH", PATCH, status=409) == 1
    assert apiserver.count("PATCH", PATCH, status=200) == 0


def test_hold_reasons_read_the_status() -> None:
    assert hold_reason(NAME, parse_status(RUNNING_STATUS)) is None
    assert hold_reason(NAME, parse_status({})) is None
    ready_pending = upgrading_status()
    ready_pending["pendingServiceStatus"]["applicationStatuses"]["embed"]["status"] = "RUNNING"
    ready_pending["conditions"] = ready_pending["conditions"][:1]
    assert hold_reason(NAME, parse_status(ready_pending)) is None
