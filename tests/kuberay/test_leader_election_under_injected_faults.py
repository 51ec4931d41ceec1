# Server: the stand-in (tests/kuberay/fake_apiserver.py), which injects a 503 or a 409 on
# cue and records every request; the same elector on a real Lease: test_leader_election.py.
"""An elector that cannot renew stops acting; a lost race is not leadership; bad timings
are refused; one that never led sends nothing on shut-down.
"""

from __future__ import annotations

import pytest
from kubernetes import client as k8s

from controller.errors import ConfigError
from kuberay.leader import LeaderElector
from tests.controller.clock import ManualClock
from tests.kuberay.conftest import NAMESPACE
from tests.kuberay.fake_apiserver import FakeApiServer
from tests.kuberay.test_leader_election import LEASE, RENEW, elector


def test_a_holder_that_cannot_renew_stops_acting_at_once(
    apiserver: FakeApiServer, api: k8s.ApiClient, clock: ManualClock
) -> None:
    a = elector(api, "a", clock)
    a.try_acquire_or_renew()
    assert a.is_leader()
    apiserver.add_fault("PUT", LEASE, status=503)
    clock.advance(RENEW)

    a.try_acquire_or_renew()

    assert not a.is_leader()
    assert a.last_error is not None and "503" in a.last_error
    clock.advance(RENEW)
    a.try_acquire_or_renew()
    assert a.is_leader(), "it leads again once renewing works"


def test_a_lost_race_for_a_free_lease_is_not_leadership(
    apiserver: FakeApiServer, api: k8s.ApiClient, clock: ManualClock
) -> None:
    a, b = elector(api, "a", clock), elector(api, "b", clock)
    apiserver.add_fault("POST", r"/leases$", status=409)

    b.try_acquire_or_renew()

    assert not b.is_leader()
    assert b.last_error is not None and "another daemon" in b.last_error
    a.try_acquire_or_renew()
    assert a.is_leader()


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


def test_one_that_never_led_sends_nothing_on_shut_down(
    apiserver: FakeApiServer, api: k8s.ApiClient, clock: ManualClock
) -> None:
    elector(api, "a", clock).release()

    assert apiserver.requests == []
