# Server: the real kube-apiserver and etcd (scripts/build-k8s.sh).
"""Two daemons' electors run as separate processes on one real Lease: exactly one leads;
after the leader is killed (SIGKILL: no release), the other takes over within the lease
duration plus one renew period; after a SIGTERM it takes over at its next round.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from kubernetes import client as k8s

from tests.kuberay.conftest import NAMESPACE, REPO
from tests.kuberay.control_plane import ControlPlane, stop_process

pytestmark = pytest.mark.k8s

LEASE = "governor-leader"
DURATION_S = 3.0
RENEW_S = 1.0


@dataclass
class Daemon:
    """An elector process and the file it reports to."""

    identity: str
    process: subprocess.Popen[bytes]
    report: Path

    def samples(self) -> list[tuple[float, bool]]:
        """(unix time, leads) for every line it printed so far."""
        lines = self.report.read_text().splitlines() if self.report.exists() else []
        parsed = [json.loads(line) for line in lines if line.startswith("{")]
        return [(float(s["t"]), bool(s["leader"])) for s in parsed]

    def leads(self) -> bool:
        """Whether its last sample says it leads."""
        samples = self.samples()
        return bool(samples) and samples[-1][1]


def start_daemon(cluster: ControlPlane, identity: str, folder: Path) -> Daemon:
    """Run one elector process as `identity`."""
    report = folder / f"{identity}.jsonl"
    with report.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.kuberay.elector_process",
                f"--kubeconfig={cluster.kubeconfig}",
                f"--namespace={NAMESPACE}",
                f"--lease={LEASE}",
                f"--identity={identity}",
                f"--lease-duration={DURATION_S}",
                f"--renew-period={RENEW_S}",
            ],
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return Daemon(identity, process, report)


def read_lease(api: k8s.ApiClient) -> k8s.V1Lease | None:
    """The Lease, or None before anyone created it."""
    try:
        lease: k8s.V1Lease = k8s.CoordinationV1Api(api).read_namespaced_lease(LEASE, NAMESPACE)
    except k8s.ApiException as err:
        if err.status == 404:
            return None
        raise
    return lease


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll `condition()` every 50 ms until it is true."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout_s} s: {what}")


def holder(api: k8s.ApiClient) -> str | None:
    """Who the Lease names now."""
    lease = read_lease(api)
    return lease.spec.holder_identity if lease is not None and lease.spec else None


@pytest.fixture
def daemons(cluster: ControlPlane, tmp_path: Path) -> Iterator[list[Daemon]]:
    """Two elector processes, a then b; stopped by PID afterwards."""
    started: list[Daemon] = []
    try:
        for identity in ("a", "b"):
            started.append(start_daemon(cluster, identity, tmp_path))
        yield started
    finally:
        for d in started:
            if d.process.poll() is None:
                os.kill(d.process.pid, signal.SIGKILL)
            d.process.wait(timeout=10)


def settle(api: k8s.ApiClient, daemons: list[Daemon]) -> tuple[Daemon, Daemon]:
    """Wait until one daemon leads and the Lease names it; (leader, follower)."""
    wait_for(lambda: any(d.leads() for d in daemons), 60, "one daemon leads")
    (leader,) = [d for d in daemons if d.leads()]
    (follower,) = [d for d in daemons if d is not leader]
    wait_for(lambda: len(follower.samples()) > 5, 30, "the other daemon reports")
    assert holder(api) == leader.identity
    return leader, follower


def test_exactly_one_of_two_daemons_leads(admin_api: k8s.ApiClient, daemons: list[Daemon]) -> None:
    leader, follower = settle(admin_api, daemons)
    time.sleep(3 * RENEW_S)  # several renewals

    assert leader.leads() and holder(admin_api) == leader.identity
    assert not any(leads for _, leads in follower.samples()), "the follower never acted"
    lease = read_lease(admin_api)
    assert lease is not None and lease.spec.lease_duration_seconds == int(DURATION_S)
    assert lease.spec.lease_transitions == 0


def test_the_other_takes_over_within_the_lease_duration_after_the_leader_is_killed(
    admin_api: k8s.ApiClient, daemons: list[Daemon], record_property: Callable[[str, object], None]
) -> None:
    leader, follower = settle(admin_api, daemons)
    time.sleep(2 * RENEW_S)

    killed_at = time.time()
    os.kill(leader.process.pid, signal.SIGKILL)
    wait_for(lambda: holder(admin_api) == follower.identity, 30, "the follower holds the Lease")
    wait_for(follower.leads, 5, "the follower acts")

    lease = read_lease(admin_api)
    assert lease is not None and lease.spec.lease_transitions == 1
    acquired: datetime = lease.spec.acquire_time
    takeover_s = acquired.timestamp() - killed_at
    first_act_s = next(t for t, leads in follower.samples() if leads) - killed_at
    record_property("takeover_s", round(takeover_s, 2))
    print(f"takeover after SIGKILL: lease taken {takeover_s:.2f} s, acting {first_act_s:.2f} s")
    assert 0 < takeover_s <= DURATION_S + RENEW_S
    assert first_act_s <= DURATION_S + RENEW_S + 0.3  # plus a sample or two


def test_after_a_sigterm_the_other_takes_over_at_its_next_round(
    admin_api: k8s.ApiClient, daemons: list[Daemon]
) -> None:
    leader, follower = settle(admin_api, daemons)

    stopped_at = time.time()
    stop_process(leader.process)
    wait_for(lambda: holder(admin_api) == follower.identity, 30, "the follower holds the Lease")

    lease = read_lease(admin_api)
    assert lease is not None
    assert lease.spec.acquire_time.timestamp() - stopped_at <= RENEW_S + 0.5
