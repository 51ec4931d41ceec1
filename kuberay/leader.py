"""Leader election on a `coordination.k8s.io/v1` Lease, so only one daemon acts at a time.

Each round (every `renew_period_s`) the elector reads the Lease and either renews it (it
holds it), takes it (it is free, released, or unchanged for the holder's lease duration
as measured on this elector's own clock, so clock skew between pods does not matter), or
leaves it. The holder acts only while its last round succeeded and is at most two renew
periods old; with `lease_duration_s > 2 * renew_period_s` it stops before anyone else may
take over.
"""

from __future__ import annotations

import logging
import socket
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from kubernetes import client as k8s

from controller.clock import Clock
from controller.errors import ConfigError, ConflictError, GovernorError
from kuberay.errors import NotFoundError, Operation, k8s_call

log = logging.getLogger(__name__)

GROUP = "coordination.k8s.io"


class MicroTime(datetime):
    """A datetime that serializes as metav1.MicroTime (always six fractional digits)."""

    def isoformat(self, sep: str = "T", timespec: str = "microseconds") -> str:
        """RFC 3339 with microseconds, which the API server requires for MicroTime."""
        return super().isoformat(sep, "microseconds")


def micro_time(t: datetime) -> MicroTime:
    """`t` as a MicroTime."""
    return MicroTime.fromtimestamp(t.timestamp(), tz=t.tzinfo)


def default_identity() -> str:
    """A unique holder identity: the pod's host name plus a random suffix."""
    return f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class LeaseRecord:
    """What a Lease says about who holds it."""

    holder: str | None
    duration_s: float
    transitions: int
    resource_version: str
    acquire_time: datetime | None


class LeaderElector:
    """Acquires, renews and releases one Lease for one identity."""

    def __init__(
        self,
        api: k8s.CoordinationV1Api,
        namespace: str,
        name: str,
        identity: str,
        clock: Clock,
        *,
        lease_duration_s: float = 15.0,
        renew_period_s: float = 5.0,
        request_timeout_s: float = 5.0,
    ) -> None:
        if lease_duration_s <= 2 * renew_period_s:
            raise ConfigError(
                f"kuberay.lease_duration_s ({lease_duration_s}) must exceed twice "
                f"kuberay.renew_period_s ({renew_period_s}), so a holder that cannot renew "
                "stops acting before another daemon may take the lease"
            )
        self.api = api
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.clock = clock
        self.lease_duration_s = lease_duration_s
        self.renew_period_s = renew_period_s
        self.request_timeout_s = request_timeout_s
        self.last_error: str | None = None
        self.observed_holder: str | None = None
        self._lock = threading.Lock()
        self._valid_until: datetime | None = None
        self._may_hold = False
        self._observed_version: str | None = None
        self._observed_at: datetime | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    # -- state ----------------------------------------------------------------------------

    def is_leader(self) -> bool:
        """Whether this identity may act now."""
        with self._lock:
            return self._valid_until is not None and self.clock.now() < self._valid_until

    def _won(self, at: datetime) -> bool:
        with self._lock:
            self._valid_until = at + timedelta(seconds=2 * self.renew_period_s)
            self._may_hold = True
        self.observed_holder = self.identity
        self.last_error = None
        return True

    def _lost(self, why: str | None = None) -> bool:
        with self._lock:
            was = self._valid_until is not None
            self._valid_until = None
        if why is not None:
            self.last_error = why
            if was:
                log.warning("lease %s/%s: stopped acting: %s", self.namespace, self.name, why)
        return False

    # -- API ------------------------------------------------------------------------------

    def _op(self, verb: str, name: str | None = None) -> Operation:
        return Operation(verb, "leases", GROUP, self.namespace, name)

    def _read(self) -> k8s.V1Lease | None:
        try:
            lease: k8s.V1Lease = k8s_call(
                self._op("get", self.name),
                lambda: self.api.read_namespaced_lease(
                    self.name, self.namespace, _request_timeout=self.request_timeout_s
                ),
            )
        except NotFoundError:
            return None
        return lease

    def _spec(
        self,
        now: datetime,
        holder: str | None,
        acquired: datetime | None,
        transitions: int,
        duration_s: float,
    ) -> k8s.V1LeaseSpec:
        return k8s.V1LeaseSpec(
            holder_identity=holder,
            lease_duration_seconds=max(1, round(duration_s)),
            acquire_time=micro_time(acquired) if acquired is not None else None,
            renew_time=micro_time(now),
            lease_transitions=transitions,
        )

    def _create(self, now: datetime) -> None:
        body = k8s.V1Lease(
            metadata=k8s.V1ObjectMeta(name=self.name, namespace=self.namespace),
            spec=self._spec(now, self.identity, now, 0, self.lease_duration_s),
        )
        k8s_call(
            self._op("create", self.name),
            lambda: self.api.create_namespaced_lease(
                self.namespace, body, _request_timeout=self.request_timeout_s
            ),
        )

    def _replace(self, record: LeaseRecord, spec: k8s.V1LeaseSpec) -> None:
        body = k8s.V1Lease(
            metadata=k8s.V1ObjectMeta(
                name=self.name, namespace=self.namespace, resource_version=record.resource_version
            ),
            spec=spec,
        )
        k8s_call(
            self._op("update", self.name),
            lambda: self.api.replace_namespaced_lease(
                self.name, self.namespace, body, _request_timeout=self.request_timeout_s
            ),
        )

    @staticmethod
    def _record(lease: k8s.V1Lease) -> LeaseRecord:
        spec = lease.spec or k8s.V1LeaseSpec()
        return LeaseRecord(
            holder=spec.holder_identity or None,
            duration_s=float(spec.lease_duration_seconds or 0),
            transitions=int(spec.lease_transitions or 0),
            resource_version=str(lease.metadata.resource_version if lease.metadata else ""),
            acquire_time=spec.acquire_time,
        )

    # -- one round ------------------------------------------------------------------------

    def try_acquire_or_renew(self) -> bool:
        """One election round; True when this identity holds the lease afterwards."""
        now = self.clock.now()
        try:
            lease = self._read()
            if lease is None:
                self._create(now)
                return self._won(now)
            record = self._record(lease)
            if record.resource_version != self._observed_version:
                self._observed_version = record.resource_version
                self._observed_at = now
            self.observed_holder = record.holder
            if record.holder == self.identity:
                spec = self._spec(
                    now,
                    self.identity,
                    record.acquire_time or now,
                    record.transitions,
                    self.lease_duration_s,
                )
                self._replace(record, spec)
                return self._won(now)
            assert self._observed_at is not None
            expires = self._observed_at + timedelta(seconds=record.duration_s)
            if record.holder is not None and now < expires:
                return self._lost()
            spec = self._spec(
                now, self.identity, now, record.transitions + 1, self.lease_duration_s
            )
            self._replace(record, spec)
            log.info(
                "lease %s/%s: %s took over from %s",
                self.namespace,
                self.name,
                self.identity,
                record.holder or "nobody",
            )
            return self._won(now)
        except ConflictError as err:
            return self._lost(f"another daemon wrote the lease first: {err}")
        except GovernorError as err:
            return self._lost(str(err))

    def release(self) -> None:
        """Give the lease up (on shut-down) so another daemon takes over at once."""
        self._lost()
        if not self._may_hold:
            return  # never won it: nothing to give back, no request needed
        now = self.clock.now()
        try:
            lease = self._read()
            if lease is None:
                return
            record = self._record(lease)
            if record.holder != self.identity:
                return
            self._replace(record, self._spec(now, None, record.acquire_time, record.transitions, 1))
            self._may_hold = False
        except GovernorError as err:
            log.warning("lease %s/%s: release failed: %s", self.namespace, self.name, err)

    # -- background renewal ---------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Run rounds every renew period until `stop` is set, then release."""
        try:
            while not stop.is_set():
                self.try_acquire_or_renew()
                stop.wait(self.renew_period_s)
        finally:
            self.release()

    def start(self) -> None:
        """Run one round now, then keep renewing in a background thread (idempotent)."""
        if self._thread is not None:
            return
        self.try_acquire_or_renew()
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=f"lease-{self.name}", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        self._stop.wait(self.renew_period_s)
        self.run(self._stop)

    def close(self) -> None:
        """Stop renewing and release the lease."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout=self.request_timeout_s * 2 + 1)
        self._thread = None
