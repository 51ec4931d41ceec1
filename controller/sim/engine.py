"""The discrete-event fleet: arrivals, a router, replicas that start, serve and drain.

One application is simulated. Requests arrive at their trace times; the router splits
them between versions by weight, sends each to the least-loaded ready replica with room
(each accepts up to `max_ongoing_requests`), and queues the rest; past the queue limit a
request is rejected. A policy runs every `interval_s` and sets replicas per version: new
replicas serve only after the start-up delay, removed ones drain first. Every replica
costs from the moment it starts until it stops, starting and draining included.
"""

from __future__ import annotations

import heapq
import math
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from controller.config import AppConfig
from controller.sim.observe import (
    FleetStatus,
    Observations,
    PipelineSettings,
    VersionCounters,
)
from controller.sim.policies.base import Action, Policy, PolicyState, PolicyView
from controller.sim.profile import Profile
from controller.sim.replica import (
    DRAINING,
    IDLE,
    READY,
    STARTING,
    STOPPED,
    EncoderReplica,
    GenerationReplica,
    Replica,
)
from controller.sim.trace import Trace

_REPLICA, _READY, _SAMPLE, _TICK = 0, 1, 2, 3

Progress = Callable[[float, float], None]
"""Called now and then with (simulated seconds done, seconds in the trace)."""


@dataclass(frozen=True)
class SimSettings:
    """Knobs of the simulation itself (not of the fleet or the policy)."""

    seed: int = 0
    sample_s: float = 1.0
    pipeline: PipelineSettings = field(default_factory=PipelineSettings)
    drain_limit_s: float = 1800.0
    """After the last arrival, stop waiting for unfinished requests after this long."""
    startup_s: float | None = None
    """Override the profile's start-up delay."""
    keep_s: float | None = None
    """Keep only this many seconds of samples (a fleet of many simulations); None keeps all."""
    faults: Mapping[str, VersionFault] = field(default_factory=dict)
    """Versions made worse than the profile (canary tests); the seed draws their errors."""


@dataclass(frozen=True)
class VersionFault:
    """A version worse than its profile: every compute time x `slowdown`, and a share of
    its answers turned into errors (counted as the router counts a 5xx)."""

    slowdown: float = 1.0
    error_rate: float = 0.0


@dataclass(frozen=True, eq=False)
class SimResult:
    """Everything a run produced: per-request outcomes, replica lifetimes, observations."""

    policy: str
    app: AppConfig
    profile: Profile
    trace: Trace
    versions: tuple[str, ...]
    version_of: np.ndarray
    first_token_s: np.ndarray
    """Time of the first token (encoder: of the answer); NaN if none."""
    done_s: np.ndarray
    """Time the request was answered; NaN if never."""
    rejected: np.ndarray
    replica_spans: tuple[tuple[str, float, float | None, float], ...]
    """(version, started, ready or None, stopped) per replica."""
    end_s: float
    obs: Observations
    scaling_actions: int
    wall_s: float
    notes: tuple[str, ...] = ()


class Simulation:
    """One run of one policy over one trace."""

    def __init__(
        self,
        trace: Trace,
        profile: Profile,
        app: AppConfig,
        policy: Policy,
        settings: SimSettings | None = None,
    ) -> None:
        self.trace = trace
        self.profile = profile
        self.app = app
        self.policy = policy
        self.settings = settings or SimSettings()
        self.versions = tuple(v.name for v in app.versions)
        self.prompt: list[int] = trace.prompt_tokens.tolist()
        self.output: list[int] = trace.output_tokens.tolist()
        self.arrival: list[float] = trace.arrival_s.tolist()
        n = len(trace)
        self.first = [math.nan] * n
        self.done = [math.nan] * n
        self.rejected = bytearray(n)
        self.version_of = bytearray(n)
        self.now = 0.0
        self._heap: list[tuple[float, int, int, Replica | None, int]] = []
        self._seq = 0
        self._next_id = 0
        self.replicas: dict[str, list[Replica]] = {v: [] for v in self.versions}
        self.ready: dict[str, list[Replica]] = {v: [] for v in self.versions}
        self.queues: dict[str, deque[int]] = {v: deque() for v in self.versions}
        self.counters = {v: VersionCounters() for v in self.versions}
        self.targets: dict[str, int] = {v: 0 for v in self.versions}
        stable = app.stable_version
        self.weights = {v: (100 if v == stable else 0) for v in self.versions}
        self._wrr = {v: 0 for v in self.versions}
        self.startup_measured: dict[str, float | None] = {v: None for v in self.versions}
        self.obs = Observations(self.versions, self.settings.sample_s, self.settings.keep_s)
        self.scaling_actions = 0
        self.outstanding = 0
        self.state: PolicyState = {}
        self.notes: list[str] = []
        self.startup_s = (
            self.settings.startup_s if self.settings.startup_s is not None else profile.startup_s
        )
        self._factory = EncoderReplica if profile.kind == "encoder" else GenerationReplica
        faults = self.settings.faults
        self._profiles = {
            v: profile.slowed(faults[v].slowdown) if v in faults else profile for v in self.versions
        }
        self._error_rate = {v: faults[v].error_rate if v in faults else 0.0 for v in self.versions}
        self._rng = np.random.default_rng(self.settings.seed)
        self._index = {v: i for i, v in enumerate(self.versions)}

    # -- Host protocol (called by replicas) ------------------------------------------------

    def schedule(self, at: float, replica: Replica, token: int) -> None:
        """Deliver an event to `replica` at `at`."""
        self._push(at, _REPLICA, replica, token)

    def first_token(self, rid: int, now: float) -> None:
        """Record the first token (or the answer) of request `rid`."""
        self.first[rid] = now

    def finish(self, replica: Replica, rid: int, now: float) -> None:
        """Record a completed request and hand the freed slot to the router queue."""
        self.done[rid] = now
        self.outstanding -= 1
        arrived = self.arrival[rid]
        c = self.counters[replica.version]
        c.ongoing_at_replicas -= 1
        out = self.output[rid]
        p_error = self._error_rate[replica.version]
        if p_error > 0 and self._rng.random() < p_error:
            c.record_error()
        elif self.profile.kind == "generation":
            ttft = (self.first[rid] - arrived) * 1000.0
            tpot = (now - self.first[rid]) * 1000.0 / (out - 1) if out > 1 else None
            c.record((now - arrived) * 1000.0, ttft, tpot, self.prompt[rid], out)
        else:
            c.record((now - arrived) * 1000.0, None, None, self.prompt[rid], 0)
        replica.accepted -= 1
        if replica.state == READY:
            queue = self.queues[replica.version]
            while queue and replica.accepted < replica.limit:
                self._admit(replica, queue.popleft(), from_queue=True)
        elif replica.state == DRAINING and replica.accepted == 0:
            self._stop(replica)

    def batch(self, replica: Replica, size: int, iterations: int) -> None:
        """Count batches for the observed mean batch size."""
        c = self.counters[replica.version]
        c.batch_sum += size * iterations
        c.batch_count += iterations

    def busy_factor(self, replica: Replica) -> float:
        """Slow-down when more replicas compute at once than the host can run at full speed."""
        share = self.profile.host_parallelism
        if share is None:
            return 1.0
        busy = 1 + sum(
            1
            for rs in self.replicas.values()
            for r in rs
            if r is not replica and r.op != IDLE and r.state != STOPPED
        )
        return max(1.0, busy / share)

    # -- the fleet ---------------------------------------------------------------------------

    def _push(self, at: float, kind: int, replica: Replica | None, token: int = 0) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (at, self._seq, kind, replica, token))

    def _new_replica(self, version: str, ready_now: bool) -> Replica:
        replica = self._factory(self._next_id, version, self, self._profiles[version], self.now)
        self._next_id += 1
        self.replicas[version].append(replica)
        if ready_now:
            replica.state = READY
            replica.ready_at = self.now
            self.ready[version].append(replica)
        else:
            self._push(self.now + self.startup_s, _READY, replica)
        return replica

    def _on_ready(self, replica: Replica) -> None:
        if replica.state != STARTING:
            return
        replica.state = READY
        replica.ready_at = self.now
        v = replica.version
        self.ready[v].append(replica)
        took = self.now - replica.started_at
        old = self.startup_measured[v]
        self.startup_measured[v] = took if old is None else old + 0.5 * (took - old)
        queue = self.queues[v]
        while queue and replica.accepted < replica.limit:
            self._admit(replica, queue.popleft(), from_queue=True)
        replica.kick(self.now)

    def _stop(self, replica: Replica) -> None:
        replica.state = STOPPED
        replica.stopped_at = self.now
        replica.token += 1

    def _admit(self, replica: Replica, rid: int, from_queue: bool = False) -> None:
        c = self.counters[replica.version]
        if from_queue:
            c.queued_at_router -= 1
        c.ongoing_at_replicas += 1
        replica.admit(rid)

    def set_target(self, version: str, n: int) -> None:
        """Start or remove replicas of `version` so that `n` are running or starting."""
        n = max(0, int(n))
        if n != self.targets[version]:
            self.scaling_actions += 1
        self.targets[version] = n
        active = [r for r in self.replicas[version] if r.state in (STARTING, READY)]
        if n > len(active):
            for _ in range(n - len(active)):
                self._new_replica(version, ready_now=False)
            return
        surplus = len(active) - n
        for r in sorted((r for r in active if r.state == STARTING), key=lambda r: -r.started_at):
            if surplus == 0:
                return
            self._stop(r)
            surplus -= 1
        ready = self.ready[version]
        for r in sorted(ready, key=lambda r: r.accepted)[:surplus]:
            ready.remove(r)
            r.state = DRAINING
            if r.accepted == 0:
                self._stop(r)

    def _pick_version(self) -> str:
        if len(self.versions) == 1:
            return self.versions[0]
        # Smooth weighted round robin: deterministic and exact over any stretch of traffic.
        total = 0
        best = self.versions[0]
        for v in self.versions:
            w = self.weights.get(v, 0)
            total += w
            self._wrr[v] += w
            if self._wrr[v] > self._wrr[best]:
                best = v
        self._wrr[best] -= total
        return best

    def _route(self, rid: int) -> None:
        self.outstanding += 1
        v = self._pick_version()
        self.version_of[rid] = self._index[v]
        best: Replica | None = None
        for r in self.ready[v]:
            if r.accepted < r.limit and (best is None or r.accepted < best.accepted):
                best = r
        if best is not None:
            self._admit(best, rid)
            best.kick(self.now)
            return
        queue = self.queues[v]
        if len(queue) < self.profile.serving.queue_limit:
            queue.append(rid)
            self.counters[v].queued_at_router += 1
            return
        self.rejected[rid] = 1
        self.done[rid] = self.now
        self.outstanding -= 1
        self.counters[v].record_error()

    def status(self, version: str) -> FleetStatus:
        """Live replica counts of one version, as the status API reports them."""
        rs = self.replicas[version]
        return FleetStatus(
            running=sum(1 for r in rs if r.state == READY),
            starting=sum(1 for r in rs if r.state == STARTING),
            target=self.targets[version],
        )

    def _sample(self) -> None:
        for v in self.versions:
            s = self.status(v)
            self.obs.add(self.now, v, self.counters[v], s.running, s.starting, s.target)

    def view(self) -> PolicyView:
        """What a policy sees at the current simulated second."""
        return PolicyView(
            t=self.now,
            start=self.trace.start,
            app=self.app,
            obs=self.obs,
            statuses={v: self.status(v) for v in self.versions},
            weights=dict(self.weights),
            pipeline=self.settings.pipeline,
            startup_s=dict(self.startup_measured),
        )

    def apply(self, action: Action) -> None:
        """Set the weights and replica targets a policy decided."""
        if action.weights is not None and action.weights != self.weights:
            self.weights = {v: int(action.weights.get(v, 0)) for v in self.versions}
        for v, n in action.replicas.items():
            if v in self.targets:
                self.set_target(v, n)
        if action.note and (not self.notes or self.notes[-1] != action.note):
            self.notes.append(action.note)

    def _tick(self) -> None:
        action, self.state = self.policy.decide(self.view(), self.state)
        self.apply(action)

    def start(self, ticks: bool = True) -> None:
        """Place the initial replicas and schedule sampling (and the policy's ticks).

        With `ticks=False` the policy is driven from outside through `view` and `apply`
        (a fleet of simulations under one decision), and `advance` only moves time.
        """
        self._wall = time.perf_counter()
        for v, n in self.policy.initial_replicas(self.app).items():
            self.targets[v] = n
            for _ in range(n):
                self._new_replica(v, ready_now=True)
        self._sample()
        self._push(self.settings.sample_s, _SAMPLE, None)
        if ticks:
            self._push(self.policy.interval_s, _TICK, None)
        self._i = 0
        self._last = self.arrival[-1] if self.arrival else 0.0
        self._give_up = self._last + self.settings.drain_limit_s
        self._next_progress = 0.0
        self.over = False

    def advance(self, until: float = math.inf, progress: Progress | None = None) -> bool:
        """Process every event up to simulated second `until`; True once the run is over."""
        arrival = self.arrival
        n = len(arrival)
        heap = self._heap
        i = self._i
        while not self.over:
            next_arrival = arrival[i] if i < n else math.inf
            if min(heap[0][0], next_arrival) > until:
                break
            if heap[0][0] <= next_arrival:
                at, _, kind, replica, token = heapq.heappop(heap)
                self.now = at
                if kind == _REPLICA:
                    assert replica is not None
                    replica.on_event(at, token)
                elif kind == _READY:
                    assert replica is not None
                    self._on_ready(replica)
                elif kind == _SAMPLE:
                    self._sample()
                    self._push(at + self.settings.sample_s, _SAMPLE, None)
                    if progress is not None and at >= self._next_progress:
                        progress(at, self._last)
                        self._next_progress = at + 60.0
                else:
                    self._tick()
                    self._push(at + self.policy.interval_s, _TICK, None)
            else:
                self.now = next_arrival
                self._route(i)
                i += 1
            if i >= n and self.outstanding == 0:
                self.over = True
            elif self.now > self._give_up:
                self.notes.append(
                    f"{self.outstanding} requests unfinished {self.settings.drain_limit_s:.0f} s "
                    "after the last arrival; counted as SLO misses"
                )
                self.over = True
        self._i = i
        return self.over

    def result(self) -> SimResult:
        """Take the last sample and return what happened."""
        end = self.now
        self._sample()
        spans = tuple(
            (r.version, r.started_at, r.ready_at, r.stopped_at if r.stopped_at is not None else end)
            for rs in self.replicas.values()
            for r in rs
        )
        return SimResult(
            policy=self.policy.name,
            app=self.app,
            profile=self.profile,
            trace=self.trace,
            versions=self.versions,
            version_of=np.frombuffer(bytes(self.version_of), dtype=np.uint8),
            first_token_s=np.asarray(self.first, dtype=np.float64),
            done_s=np.asarray(self.done, dtype=np.float64),
            rejected=np.frombuffer(bytes(self.rejected), dtype=np.uint8).astype(bool),
            replica_spans=spans,
            end_s=end,
            obs=self.obs,
            scaling_actions=self.scaling_actions,
            wall_s=time.perf_counter() - self._wall,
            notes=tuple(self.notes),
        )

    def run(self, progress: Progress | None = None) -> SimResult:
        """Simulate the whole trace and return what happened."""
        self.start()
        self.advance(math.inf, progress)
        return self.result()


def simulate(
    trace: Trace,
    profile: Profile,
    app: AppConfig,
    policy: Policy,
    settings: SimSettings | None = None,
    progress: Progress | None = None,
) -> SimResult:
    """Run `policy` over `trace` on a fleet of `profile` replicas serving `app`."""
    return Simulation(trace, profile, app, policy, settings).run(progress)
