"""Replicas of the simulated fleet: what each does with the requests it has accepted.

An encoder replica batches like Ray Serve's `@serve.batch` (a partial batch waits up to
`batch_wait_ms` for more requests). A generation replica batches continuously, as vLLM
does: an iteration either prefills newly admitted prompts (decoding pauses meanwhile) or
advances every running sequence by one token. Decode iterations between two events are
simulated as one segment, so the cost is per request, not per token.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from typing import Protocol

from controller.sim.profile import Profile

STARTING, READY, DRAINING, STOPPED = 0, 1, 2, 3
IDLE, BUSY, PREFILL, DECODE = 0, 1, 2, 3


class Host(Protocol):
    """What a replica needs from the simulation around it."""

    prompt: list[int]
    output: list[int]

    def schedule(self, at: float, replica: Replica, token: int) -> None:
        """Call `replica.on_event(at, token)` at time `at`."""
        ...

    def first_token(self, rid: int, now: float) -> None:
        """Request `rid` produced its first token (or, for an encoder, its answer)."""
        ...

    def finish(self, replica: Replica, rid: int, now: float) -> None:
        """Request `rid` completed on `replica`."""
        ...

    def batch(self, replica: Replica, size: int, iterations: int) -> None:
        """`replica` ran `iterations` iterations of `size` requests each."""
        ...

    def busy_factor(self, replica: Replica) -> float:
        """Slow-down from replicas sharing one host's compute (1.0 when unshared)."""
        ...


class Replica:
    """A replica's life cycle and the requests it holds; subclasses batch them."""

    def __init__(self, rid: int, version: str, host: Host, profile: Profile, now: float) -> None:
        self.id = rid
        self.version = version
        self.host = host
        self.profile = profile
        self.state = STARTING
        self.started_at = now
        self.ready_at: float | None = None
        self.stopped_at: float | None = None
        self.accepted = 0
        self.limit = profile.serving.ongoing_limit
        self.token = 0
        self.op = IDLE
        self.handling = False
        """True while an event is handled: admissions then wait for the handler's own kick."""

    @property
    def has_room(self) -> bool:
        """Whether the router may send this replica another request."""
        return self.state == READY and self.accepted < self.limit

    def admit(self, rid: int) -> None:
        """Take request `rid`; call `kick` once all admissions of an instant are done."""
        self.accepted += 1
        self._queue(rid)

    def _queue(self, rid: int) -> None:
        raise NotImplementedError

    def kick(self, now: float) -> None:
        """Start work on newly admitted requests if the replica can."""
        raise NotImplementedError

    def on_event(self, now: float, token: int) -> None:
        """A scheduled event of this replica fired (ignored when `token` is stale)."""
        raise NotImplementedError

    def _new_token(self) -> int:
        self.token += 1
        return self.token


class EncoderReplica(Replica):
    """Dynamic batching: up to max_batch_size requests, a partial batch waits batch_wait_ms."""

    def __init__(self, rid: int, version: str, host: Host, profile: Profile, now: float) -> None:
        super().__init__(rid, version, host, profile, now)
        self.pending: deque[int] = deque()
        self.in_batch: list[int] = []
        self.max_batch = profile.serving.max_batch_size
        self.wait_s = profile.serving.batch_wait_ms / 1000.0
        self.timer_at: float | None = None

    def _queue(self, rid: int) -> None:
        self.pending.append(rid)

    def kick(self, now: float) -> None:
        """Start a full batch now, or arm the batch-wait timer for a partial one."""
        if self.handling or self.op != IDLE or not self.pending:
            return
        if len(self.pending) >= self.max_batch or self.wait_s <= 0:
            self._start(now)
        elif self.timer_at is None:
            self.timer_at = now + self.wait_s
            self.host.schedule(self.timer_at, self, self._new_token())

    def _start(self, now: float) -> None:
        n = min(self.max_batch, len(self.pending))
        batch = [self.pending.popleft() for _ in range(n)]
        longest = max(self.host.prompt[r] for r in batch)
        seconds = self.profile.batch_time_s(n, longest) * self.host.busy_factor(self)
        self.in_batch = batch
        self.op = BUSY
        self.timer_at = None
        self.host.batch(self, n, 1)
        self.host.schedule(now + seconds, self, self._new_token())

    def on_event(self, now: float, token: int) -> None:
        """The batch finished, or the batch-wait timer expired."""
        if token != self.token:
            return
        if self.op == IDLE:
            self.timer_at = None
            if self.pending:
                self._start(now)
            return
        done, self.in_batch = self.in_batch, []
        self.op = IDLE
        self.handling = True
        for rid in done:
            self.host.first_token(rid, now)
            self.host.finish(self, rid, now)
        self.handling = False
        self.kick(now)


class GenerationReplica(Replica):
    """Continuous batching with prefill first, one decode segment between events."""

    def __init__(self, rid: int, version: str, host: Host, profile: Profile, now: float) -> None:
        super().__init__(rid, version, host, profile, now)
        self.waiting: deque[int] = deque()
        self.running: list[tuple[int, int]] = []
        """Heap of (decode step at which the sequence finishes, request id)."""
        self.steps = 0
        self.prompt_sum = 0
        self.start_sum = 0
        self.max_batch = profile.serving.max_batch_size
        self.max_tokens = profile.serving.max_batched_tokens
        self.prefilling: list[int] = []
        self.seg_start = 0.0
        self.seg_step_s = 0.0
        self.seg_steps = 0
        self.interrupted = False

    def _queue(self, rid: int) -> None:
        self.waiting.append(rid)

    def kick(self, now: float) -> None:
        """Begin an iteration when idle; cut a decode segment short to admit new prompts."""
        if self.handling:
            return
        if self.op == IDLE:
            self._next(now)
        elif (
            self.op == DECODE
            and self.waiting
            and len(self.running) < self.max_batch
            and not self.interrupted
        ):
            done = math.floor((now - self.seg_start) / self.seg_step_s)
            if done + 1 < self.seg_steps:
                self.seg_steps = done + 1
                self.interrupted = True
                end = self.seg_start + self.seg_steps * self.seg_step_s
                self.host.schedule(end, self, self._new_token())

    def _next(self, now: float) -> None:
        free = self.max_batch - len(self.running)
        if self.waiting and free > 0:
            batch: list[int] = []
            tokens = 0
            while self.waiting and len(batch) < free:
                p = self.profile.prompt_tokens(self.host.prompt[self.waiting[0]])
                if batch and tokens + p > self.max_tokens:
                    break
                batch.append(self.waiting.popleft())
                tokens += p
            self.prefilling = batch
            self.op = PREFILL
            seconds = self.profile.prefill_time_s(tokens) * self.host.busy_factor(self)
            self.host.schedule(now + seconds, self, self._new_token())
        elif self.running:
            b = len(self.running)
            context = self.prompt_sum + b * self.steps - self.start_sum
            self.seg_step_s = self.profile.decode_step_s(b, context) * self.host.busy_factor(self)
            self.seg_steps = self.running[0][0] - self.steps
            self.seg_start = now
            self.interrupted = False
            self.op = DECODE
            self.host.schedule(now + self.seg_steps * self.seg_step_s, self, self._new_token())
        else:
            self.op = IDLE

    def on_event(self, now: float, token: int) -> None:
        """A prefill iteration or a decode segment ended."""
        if token != self.token:
            return
        host = self.host
        self.handling = True
        if self.op == PREFILL:
            for rid in self.prefilling:
                host.first_token(rid, now)
                out = host.output[rid]
                if out <= 1:
                    host.finish(self, rid, now)
                    continue
                heapq.heappush(self.running, (self.steps + out - 1, rid))
                self.prompt_sum += self.profile.prompt_tokens(host.prompt[rid])
                self.start_sum += self.steps
            self.prefilling = []
        else:
            host.batch(self, len(self.running), self.seg_steps)
            self.steps += self.seg_steps
            while self.running and self.running[0][0] <= self.steps:
                finish_step, rid = heapq.heappop(self.running)
                self.prompt_sum -= self.profile.prompt_tokens(host.prompt[rid])
                self.start_sum -= finish_step - host.output[rid] + 1
                host.finish(self, rid, now)
        self.handling = False
        self.op = IDLE
        self._next(now)
