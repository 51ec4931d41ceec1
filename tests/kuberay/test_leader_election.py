"""Two electors against one Lease: exactly one leads; the other takes over after it stops."""

from __future__ import annotations

import re

import pytest
from kubernetes import client as k8s

from controller.errors import ConfigError
from kuberay.leader import LeaderElector
from tests.controller.clock import ManualClock
from tests.kuberay.conftest import NAMESPACE
from tests.kuberay.fake_apiserver import MICRO_TIME, FakeApiServer

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


def test_exactly_one_of_two_leads_and_keeps_leading(
    apiserver: FakeApiServer, api: k8s.ApiClient, clock: ManualClock
) -> None:
    a, b = elector(api, "a", clock), elector(api, "b", clock)
    for _ in range(10):
        rounds(a, b)
        assert [a.is_leader(), b.is_leader()] == [True, False]
        clock.advance(RENEW)
    lease = apiserver.get("leases", NAMESPACE, LEASE)
    assert lease["spec"]["holderIdentity"] == "a"
    assert lease["spec"]["leaseTransitions"] == 0
    assert lease["spec"]["leaseDurationSeconds"] == 15
    assert MICRO_TIME.match(lease["spec"]["renewTime"])
    assert b.observed_holder == "a"


def test_the_other_takes_over_at_once_after_a_release(
    apiserver: FakeApiServer, api: k8s.ApiClient, clock: ManualClock
) -> None:
    a, b = elector(api, "a", clock), elector(api, "b", clock)
    rounds(a, b)
    clock.advance(RENEW)
    a.release()
    assert not a.is_leader()
    stopped = clock.now()

    rounds(b)

    assert b.is_leader()
    assert (clock.now() - stopped).total_seconds() <= DURATION
    lease = apiserver.get("leases", NAMESPACE, LEASE)
    assert lease["spec"]["holderIdentity"] == "b"
    assert lease["spec"]["leaseTransitions"] == 1


def test_the_other_takes_over_within_the_lease_duration_after_a_crash(
    apiserver: FakeApiServer, api: k8s.ApiClient, clock: ManualClock
) -> None:
    a, b = elector(api, "a", clock), elector(api, "b", clock)
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


def test_a_holder_that_cannot_renew_stops_acting_at_once(
    apiserver: FakeApiServer, api: k8s.ApiClient, clock: ManualClock
) -> None:
    a = elector(api, "a", clock)
    rounds(a)
    assert a.is_leader()
    apiserver.add_fault("PUT", LEASE, status=503)
    clock.advance(RENEW)

    rounds(a)

    assert not a.is_leader()
    assert a.last_error is not None and "503" in a.last_error
    clock.advance(RENEW)
    rounds(a)
    assert a.is_leader(), "it leads again once renewing works"


def test_a_holder_whose_renewals_hang_stops_within_one_renew_period(
    apiserver: FakeApiServer, api: k8s.ApiClient, clock: ManualClock
) -> None:
    a = elector(api, "a", clock)
    rounds(a)
    clock.advance(RENEW)
    rounds(a)  # the last renewal that works
    clock.advance(RENEW)  # the next one is due now and never happens (a stuck thread)
    assert a.is_leader()
    clock.advance(RENEW - 0.01)
    assert a.is_leader()
    clock.advance(0.01)
    assert not a.is_leader(), "stopped one renew period after the missed renewal"


def test_a_lost_race_for_a_free_lease_is_not_leadership(
    apiserver: FakeApiServer, api: k8s.ApiClient, clock: ManualClock
) -> None:
    a, b = elector(api, "a", clock), elector(api, "b", clock)
    apiserver.add_fault("POST", r"/leases$", status=409)

    rounds(b)

    assert not b.is_leader()
    assert b.last_error is not None and "another daemon" in b.last_error
    rounds(a)
    assert a.is_leader()


def test_the_lease_times_are_micro_times(
    apiserver: FakeApiServer, api: k8s.ApiClient, clock: ManualClock
) -> None:
    # A whole second: datetime.isoformat() would drop the fraction the API server requires.
    a = elector(api, "a", clock)
    rounds(a)
    lease = apiserver.get("leases", NAMESPACE, LEASE)
    assert re.search(r"\.000000", lease["spec"]["acquireTime"])
    assert apiserver.count("POST", r"/leases$", status=201) == 1


def test_timings_that_would_allow_two_leaders_are_refused(
    api: k8s.ApiClient, clock: ManualClock
) -> None:
    with pytest.raises(ConfigError, match="twice"):
        LeaderElector(
            k8s.CoordinationV1Api(api),
            NAMESPACE,
            LEASE,
            "a",
            clock,
            lease_duration_s=10,
            renew_period_s=5,
        )


def test_start_leads_at_once_and_close_releases_the_lease(
    apiserver: FakeApiServer, api: k8s.ApiClient, clock: ManualClock
) -> None:
    a = elector(api, "a", clock)

    a.start()
    assert a.is_leader()
    a.close()

    assert not a.is_leader()
    lease = apiserver.get("leases", NAMESPACE, LEASE)
    assert "holderIdentity" not in lease["spec"]
    b = elector(api, "b", clock)
    rounds(b)
    assert b.is_leader()


def test_a_holder_whose_leadership_lapsed_still_releases_on_shut_down(
    apiserver: FakeApiServer, api: k8s.ApiClient, clock: ManualClock
) -> None:
    a = elector(api, "a", clock)
    rounds(a)
    clock.advance(3 * RENEW)  # stuck: no longer acting, the lease still names it
    assert not a.is_leader()

    a.release()

    assert "holderIdentity" not in apiserver.get("leases", NAMESPACE, LEASE)["spec"]


def test_one_that_never_led_sends_nothing_on_shut_down(
    apiserver: FakeApiServer, api: k8s.ApiClient, clock: ManualClock
) -> None:
    elector(api, "a", clock).release()

    assert apiserver.requests == []
