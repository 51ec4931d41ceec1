"""Admission by latency: how many requests each version may have in flight from a router.

A bounded queue bounds how *many* requests wait, not how *long*: how long depends on how
fast the version serves, which changes with its replicas, its batch sizes and the cores
it shares. By Little's law the requests in flight that a version answers within a
latency L number its throughput times L, so the router keeps each version's in-flight
count at a limit it adapts from the latencies it measures, in the manner of TCP's window:
an answer within the target raises the limit by 1/limit (about one per limit's worth of
answers) while the limit is in use; an answer that took L over the target T, with N in
flight, lowers it to N x T / L, the in-flight count the throughput just seen (N / L)
answers within T. The answers of requests admitted before a cut are the congestion that
cut acted on, not news: only one admitted after it can cut again, about once per round
trip, so the late answers of one congestion neither compound nor, as its queue drains,
pull the limit down with them. A request beyond the limit is shed at once, before any
version's queue or compute is spent on it, so answered requests stay near the target
however far the load exceeds capacity.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from serving.errors import AdmissionRefusedError
from serving.spec import ModelUserConfig

REFUSED_CUT = 0.5
"""The cut when the version's own queue refused a request (no latency to scale by): as
TCP halves its window on a loss, once per round trip (refusals of requests admitted
before the last cut are the same signal)."""
FLOOR = ModelUserConfig().max_batch_size
"""A version may always have one (default) batch in flight. Fewer cannot shorten the batch
it computes, only idle it between batches: latency that one batch does not meet comes
from elsewhere (a starved host, a slow model), and a smaller limit would only cut the
throughput that batching gives."""
FORGET_AFTER_TARGETS = 30
"""A limit out of use (under half of it in flight, so it no longer grows) and not lowered
for this many target latencies is forgotten: back to the ceiling. While an overload
lasts the limit is in use and answers run late every round trip or two (it grows until
they do); once it is over, the limit measured then says nothing of the next burst
(replicas were added, the host is no longer busy), and a burst the version's queues
hold should not be refused on an old measurement."""
CEILING = 4096
"""No more than Serve's largest bounded queue holds; the version's own bounds still apply.
A limit starts here: until an answer comes late, nothing says the version is slow, and a
burst is bounded by the version's queues alone."""


@dataclass
class LatencyLimit:
    """The in-flight limit of one version at one router, adapted to answer within `target_s`."""

    target_s: float
    limit: float
    clock: Callable[[], float] = time.monotonic
    floor: int = FLOOR
    in_flight: int = 0
    last_cut_at: float = field(default=-math.inf)
    last_late_at: float = field(default=-math.inf)

    def __post_init__(self) -> None:
        # A limit given at construction is a measurement made now.
        self.last_late_at = self.clock()

    def try_admit(self) -> float | None:
        """Admit one request and return its admission time, or None when the limit is full."""
        self.current()
        if self.in_flight >= max(self.floor, math.floor(self.limit)):
            return None
        self.in_flight += 1
        return self.clock()

    def release(self, admitted_at: float, answered: bool) -> None:
        """One admitted request is done: adapt the limit to how long it took.

        One that was not answered was shed by the version's own queue: as late as late gets.
        """
        used = self.in_flight
        self.in_flight = max(0, self.in_flight - 1)
        now = self.clock()
        latency = now - admitted_at
        if answered and latency <= self.target_s:
            if used >= self.limit / 2:
                self.limit = min(CEILING, self.limit + 1.0 / self.limit)
            return
        self.last_late_at = now
        if admitted_at < self.last_cut_at:
            # Admitted before the last cut: the congestion that cut acted on, not news. As
            # the queue it left drains, counting it again would cut by a shrinking `used`.
            return
        cut = used * self.target_s / latency if answered else min(self.limit, used) * REFUSED_CUT
        self.limit = max(float(self.floor), min(self.limit, cut))
        self.last_cut_at = now

    def current(self) -> float:
        """The limit now: the ceiling again once it is out of use and nothing was late for long.

        A limit in use keeps being measured (it grows until answers run late); one out of
        use is not, and grows stale.
        """
        quiet = self.clock() - self.last_late_at > FORGET_AFTER_TARGETS * self.target_s
        if quiet and self.in_flight < self.limit / 2:
            self.limit = float(CEILING)
        return self.limit

    def forget(self) -> None:
        """A failed request frees its place; it says nothing of the version's speed."""
        self.in_flight = max(0, self.in_flight - 1)


class Admission:
    """Per-version latency limits of one router; none when no target is set."""

    def __init__(
        self,
        target_ms: float | None,
        initial_limit: int = CEILING,
        clock: Callable[[], float] = time.monotonic,
        floor: int = FLOOR,
    ) -> None:
        self.target_s = None if target_ms is None else target_ms / 1000.0
        self.initial_limit = float(max(floor, initial_limit))
        self.clock = clock
        self.floor = floor
        self.limits: dict[str, LatencyLimit] = {}

    def admit(self, version: str) -> float | None:
        """Admit a request to `version`; its admission time, or None when admission is off.

        Raises AdmissionRefusedError when the version already has its limit in flight.
        """
        if self.target_s is None:
            return None
        limit = self.limits.get(version)
        if limit is None:
            limit = LatencyLimit(self.target_s, self.initial_limit, self.clock, self.floor)
            self.limits[version] = limit
        admitted_at = limit.try_admit()
        if admitted_at is None:
            raise AdmissionRefusedError(
                f"{limit.in_flight} requests in flight from this router, the most it "
                f"answers within {self.target_s * 1000:.0f} ms"
            )
        return admitted_at

    def release(self, version: str, admitted_at: float | None, outcome: str) -> None:
        """A request admitted at `admitted_at` ended: `answered`, `shed` or `failed`."""
        if admitted_at is None or version not in self.limits:
            return
        limit = self.limits[version]
        if outcome == "shed":
            limit.release(admitted_at, answered=False)
        elif outcome == "answered":
            limit.release(admitted_at, answered=True)
        else:
            limit.forget()

    def admits(self, weights: dict[str, int]) -> int:
        """How many requests this router admits at once to the versions `weights` send to."""
        return sum(
            max(self.floor, math.floor(self.limits[v].current()))
            if v in self.limits
            else int(self.initial_limit)
            for v, weight in weights.items()
            if weight > 0
        )

    def snapshot(self) -> dict[str, dict[str, float]]:
        """Each version's limit and in-flight count, for /health and the metrics."""
        return {
            version: {"limit": round(limit.current(), 2), "in_flight": limit.in_flight}
            for version, limit in self.limits.items()
        }
