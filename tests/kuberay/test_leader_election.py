# Server: the real kube-apiserver and etcd (scripts/build-k8s.sh).
"""Two electors against one real Lease, rounds driven by a hand-moved clock: exactly one
leads; the other takes over after a release or a crash; the Lease's times are MicroTimes.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client as k8s

from kuberay.leader import LeaderElector
from tests.controller.clock import ManualClock
from tests.kuberay.conftest import NAMESPACE
from tests.kuberay.fake_apiserver import MICRO_TIME

pytestmark = pytest.mark.k8s

LEASE = "governor-leader"
DURATION = 15.0
RENEW = 5.0


def elector(api: k8s.ApiClient, identity: str, clock: ManualClock) -> LeaderElector:
    """An elector with the default timings."""
    return LeaderElector(
        k8s.CoordinationV1Api(api),
        NAMESPACE,
        LEASE,
        identity,
        clock,
        lease_duration_s=DURATION,
        renew_period_s=RENEW,
    )


def rounds(*electors: LeaderElector) -> None:
    """One election round for each elector."""
    for e in electors:
        e.try_acquire_or_renew()


def stored_spec(api: k8s.ApiClient) -> dict[str, Any]:
    """The Lease's spec as the server stores it (JSON, not parsed into datetimes)."""
    answer = k8s.CoordinationV1Api(api).read_namespaced_lease(
        LEASE, NAMESPACE, _preload_content=False
    )
    return dict(json.loads(answer.data)["spec"])


def test_exactly_one_of_two_leads_and_keeps_leading(
    admin_api: k8s.ApiClient, clock: ManualClock
) -> None:
    a, b = elector(admin_api, "a", clock), elector(admin_api, "b", clock)
    for _ in range(10):
        rounds(a, b)
        assert [a.is_leader(), b.is_leader()] == [True, False]
        clock.advance(RENEW)
    spec = stored_spec(admin_api)
    assert spec["holderIdentity"] == "a"
    assert spec["leaseTransitions"] == 0
    assert spec["leaseDurationSeconds"] == 15
    assert MICRO_TIME.match(spec["renewTime"])
    assert b.observed_holder == "a"


def test_the_other_takes_over_at_once_after_a_release(
    admin_api: k8s.ApiClient, clock: ManualClock
) -> None:
    a, b = elector(admin_api, "a", clock), elector(admin_api, "b", clock)
    rounds(a, b)
    clock.advance(RENEW)
    a.release()
    assert not a.is_leader()

    rounds(b)

    assert b.is_leader()
    spec = stored_spec(admin_api)
    assert spec["holderIdentity"] == "b"
    assert spec["leaseTransitions"] == 1


def test_the_other_takes_over_within_the_lease_duration_after_a_crash(
    admin_api: k8s.ApiClient, clock: ManualClock
) -> None:
    a, b = elector(admin_api, "a", clock), elector(admin_api, "b", clock)
    step = 1.0
    rounds(a, b)
    for _ in range(5):
        clock.advance(step)
        rounds(a, b)
    last_renew = clock.now()  # a dies here: no more rounds, no release
    took_over_at = None
    while took_over_at is None:
        clock.advance(step)
        rounds(b)
        assert not (a.is_leader() and b.is_leader()), "two leaders at once"
        if b.is_leader():
            took_over_at = clock.now()
    assert (took_over_at - last_renew).total_seconds() <= DURATION + step
    assert not a.is_leader()


def test_a_holder_whose_renewals_hang_stops_within_one_renew_period(
    admin_api: k8s.ApiClient, clock: ManualClock
) -> None:
    a = elector(admin_api, "a", clock)
    rounds(a)
    clock.advance(RENEW)
    rounds(a)  # the last renewal that works
    clock.advance(RENEW)  # the next one is due now and never happens (a stuck thread)
    assert a.is_leader()
    clock.advance(RENEW - 0.01)
    assert a.is_leader()
    clock.advance(0.01)
    assert not a.is_leader(), "stopped one renew period after the missed renewal"


def test_the_lease_times_are_micro_times_the_server_accepts(
    admin_api: k8s.ApiClient, clock: ManualClock
) -> None:
    # A whole second: datetime.isoformat() would drop the fraction the API server requires.
    a = elector(admin_api, "a", clock)
    rounds(a)
    assert a.is_leader(), a.last_error
    spec = stored_spec(admin_api)
    assert spec["acquireTime"].endswith(".000000Z")
    assert MICRO_TIME.match(spec["renewTime"])


def test_start_leads_at_once_and_close_releases_the_lease(
    admin_api: k8s.ApiClient, clock: ManualClock
) -> None:
    a = elector(admin_api, "a", clock)

    a.start()
    assert a.is_leader()
    a.close()

    assert not a.is_leader()
    assert "holderIdentity" not in stored_spec(admin_api)
    b = elector(admin_api, "b", clock)
    rounds(b)
    assert b.is_leader()


def test_a_holder_whose_leadership_lapsed_still_releases_on_shut_down(
    admin_api: k8s.ApiClient, clock: ManualClock
) -> None:
    a = elector(admin_api, "a", clock)
    rounds(a)
    clock.advance(3 * RENEW)  # stuck: no longer acting, the lease still names it
    assert not a.is_leader()

    a.release()

    assert "holderIdentity" not in stored_spec(admin_api)
