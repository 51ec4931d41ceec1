"""The control loop: observe -> decide -> save -> act -> record, every interval, surviving failures.

The agents' next state is saved before the plan is applied (write-ahead), so a crash at
any point of a tick leaves a saved state that is at or ahead of the fleet, never behind
it: a restarted daemon re-applies the plan its state implies (the actuators compare with
what is deployed, so re-applying changes only what a crash left undone) and never decides
a rollout step again or moves weights back. A saved state is parsed through its schema
when loaded (`state_check`); parts that fail are dropped, counted and rebuilt.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from controller.actuators.base import Actuator, ApplyResult
from controller.agents.base import AgentState
from controller.agents.rollout import rollout_view
from controller.agents.state_check import StateReset, check_states
from controller.clock import Clock
from controller.config import GovernorConfig
from controller.decide import AgentFailedError, TickDecision, decide
from controller.decisions import Plan, Proposal
from controller.errors import GovernorError, PermanentError, TemporaryError
from controller.events import EventLog
from controller.releases.ledger import (
    LEDGER,
    ReleaseEvent,
    check_ledger,
    effective_config,
    implied_events,
)
from controller.signals.base import FollowsConfig, SignalSource
from controller.signals.commands import Inbox
from controller.snapshot import Snapshot
from controller.state_store import StateStore
from controller.telemetry import Telemetry

DecideFn = Callable[[Snapshot, Mapping[str, AgentState], GovernorConfig], TickDecision]
Checkpoint = Callable[[str], None]
"""Called at each named point of a tick; a fault-injection seam (tests crash there)."""

MAX_BACKOFF_S = 60.0


@dataclass(frozen=True)
class TickReport:
    """What one tick saw, decided and did."""

    at: datetime
    snapshot: Snapshot | None
    plan: Plan | None
    proposals: tuple[Proposal, ...]
    applied: ApplyResult | None
    error: str | None
    duration_s: float
    rollouts: dict[str, dict[str, Any]]


def _unobserved_versions(config: GovernorConfig, snapshot: Snapshot) -> list[str]:
    missing = []
    for app in config.applications:
        for v in app.versions:
            observed = snapshot.version(app.name, v.name)
            if observed is None or observed.target_replicas is None:
                missing.append(f"{app.name}/{v.name}")
    return missing


class Daemon:
    """Runs control ticks against one fleet; a failed tick is reported, never fatal."""

    def __init__(
        self,
        config: GovernorConfig,
        source: SignalSource,
        actuator: Actuator,
        store: StateStore,
        clock: Clock,
        telemetry: Telemetry | None = None,
        events: EventLog | None = None,
        inbox: Inbox | None = None,
        decide_fn: DecideFn = decide,
        is_leader: Callable[[], bool] = lambda: True,
        checkpoint: Checkpoint = lambda point: None,
    ) -> None:
        self.base_config = config
        """The config as written; `config` adds what releases changed (releases/ledger.py)."""
        self.config = config
        self.source = source
        self.actuator = actuator
        self.store = store
        self.clock = clock
        self.telemetry = telemetry or Telemetry()
        self.events = events or EventLog()
        self.inbox = inbox
        self.decide_fn = decide_fn
        self.is_leader = is_leader
        self.checkpoint = checkpoint
        self._following = False
        self.states: dict[str, AgentState] = self._checked(store.load())
        self._follow(effective_config(self.base_config, self.states.get(LEDGER) or {}))
        self._log_missed_releases()
        self._observing_since: datetime | None = None
        self._decided = False
        """Whether `states` moved on from what was loaded at the start."""
        self._leading = False
        self._retry_at: datetime | None = None
        self._backoff_s = 0.0
        self.last: TickReport | None = None

    def tick(self) -> TickReport:
        """Run one observe -> decide -> act -> record pass."""
        started = time.monotonic()
        now = self.clock.now()
        snapshot: Snapshot | None = None
        decision: TickDecision | None = None
        applied: ApplyResult | None = None
        error: str | None = None
        stage = "observe"
        try:
            leading = self.is_leader()
            if leading and not self._leading and self._decided:
                self.states = self._adopt_saved_states(now)
                self._follow(effective_config(self.base_config, self.states.get(LEDGER) or {}))
            self._leading = leading
            snapshot = self.source.observe()
            if self._observing_since is None:
                self._observing_since = snapshot.now
            handled: list[Any] = []
            commands: tuple[Any, ...] = ()
            if self.inbox is not None:
                pending = self.inbox.pending()
                handled = [p for p, _ in pending]
                commands = tuple(c for _, c in pending)
            snapshot = replace(snapshot, commands=commands, observing_since=self._observing_since)
            for problem in snapshot.problems:
                self.events.emit(now, "signal-missing", problem)
            self.checkpoint("observed")
            stage = "decide"
            observed_with = self.config
            decision = self.decide_fn(snapshot, self.states, self.base_config)
            self.checkpoint("decided")
            stage = "save"
            self.states = dict(decision.states)
            self._decided = True
            if leading:
                self.store.save(self.states)
            self.checkpoint("saved")
            if self.inbox is not None:
                self.inbox.done(handled)
            self._follow(decision.config or self.base_config)
            stage = "act"
            applied = self._act(decision.plan, snapshot, now, leading, observed_with)
            self.checkpoint("applied")
            stage = "record"
            self._record(snapshot, decision, applied, now)
            outcome = "held" if applied is not None and applied.held else "ok"
        except AgentFailedError as err:
            error = f"{stage}: {err}"
            outcome = "error"
            self.telemetry.errors.labels("agent", stage).inc()
            self.events.emit(now, "error", error, stage=stage, error_kind="agent")
            if self.states.get(err.agent):
                # An agent that fails on its state would fail on it every tick: rebuild it.
                self._reset(now, StateReset(err.agent, "*", str(err)))
                self.states = {**self.states, err.agent: {}}
        except GovernorError as err:
            error = f"{stage}: {err}"
            outcome = "error"
            self.telemetry.errors.labels(err.kind, stage).inc()
            self.events.emit(now, "error", error, stage=stage, error_kind=err.kind)
        except Exception as err:  # the loop must survive any failed pass, and say why
            error = f"{stage}: unexpected {type(err).__name__}: {err}"
            outcome = "error"
            self.telemetry.errors.labels("unexpected", stage).inc()
            self.events.emit(now, "error", error, stage=stage, error_kind="unexpected")
        duration = time.monotonic() - started
        self.telemetry.ticks.labels(outcome).inc()
        self.telemetry.tick_seconds.observe(duration)
        self.telemetry.last_tick.set(self.clock.now().timestamp())
        report = TickReport(
            at=now,
            snapshot=snapshot,
            plan=decision.plan if decision else None,
            proposals=decision.proposals if decision else (),
            applied=applied,
            error=error,
            duration_s=duration,
            rollouts=self.rollouts(),
        )
        self.last = report
        return report

    def _checked(self, saved: Mapping[str, Any]) -> dict[str, AgentState]:
        """The saved states that parse; each dropped part is an event and a count.

        The release ledger is parsed first: the other states are checked against the
        config it implies (a rollout's candidate may be a released version).
        """
        ledger, dropped = check_ledger(saved.get(LEDGER))
        if dropped is not None:
            self._reset(self.clock.now(), StateReset(LEDGER, "*", dropped))
        config = effective_config(self.base_config, ledger)
        rest = {k: v for k, v in saved.items() if k != LEDGER}
        states, resets = check_states(rest, config)
        for reset in resets:
            self._reset(self.clock.now(), reset)
        if ledger:
            states[LEDGER] = ledger
        return states

    def _log_missed_releases(self) -> None:
        """Log the release events a crash kept out of the event log (its record was saved)."""
        implied = implied_events(self.states.get(LEDGER) or {})
        if not implied or self.events.path is None:
            return  # nothing logged durably to compare with
        logged = self.events.logged("release", "release_id", "outcome")
        now = self.clock.now()
        for r in implied:
            if (r.release_id, r.outcome) not in logged:
                self._release_event(now, r, recovered=True)

    def _release_event(self, now: datetime, r: ReleaseEvent, recovered: bool = False) -> None:
        self.telemetry.releases.labels(r.app, r.outcome).inc()
        self.events.emit(
            now,
            "release",
            f"{r.app}: {r.message}" + (" (recorded before a restart)" if recovered else ""),
            app=r.app,
            version=r.version,
            outcome=r.outcome,
            actor=r.actor,
            release_id=r.release_id,
        )

    def _follow(self, config: GovernorConfig) -> None:
        """Make `config` the one the source observes and the actuator applies plans under."""
        if config is self.config and self._following:
            return
        self.config = config
        self._following = True
        for part in (self.source, self.actuator):
            if isinstance(part, FollowsConfig):
                part.use_config(config)

    def _reset(self, now: datetime, reset: StateReset) -> None:
        self.telemetry.state_resets.labels(reset.agent).inc()
        self.events.emit(
            now,
            "state-reset",
            f"{reset.agent} state of {reset.entry} dropped, rebuilt from the fleet: {reset.reason}",
            agent=reset.agent,
            entry=reset.entry,
        )

    def _adopt_saved_states(self, now: datetime) -> dict[str, AgentState]:
        """A new leader continues from what the last one saved, not from its own view."""
        try:
            return self._checked(self.store.load())
        except PermanentError as err:
            # Its own view (it has been deciding as a follower) beats stopping the fleet.
            self.events.emit(
                now,
                "error",
                f"saved state unreadable, continuing from this replica's own view: {err}",
                stage="observe",
                error_kind=err.kind,
            )
            return self.states

    def rollouts(self) -> dict[str, dict[str, Any]]:
        """The rollout view of every application, from the agents' state."""
        return {a.name: rollout_view(self.states, a) for a in self.config.applications}

    def _act(
        self,
        plan: Plan,
        snapshot: Snapshot,
        now: datetime,
        leading: bool,
        observed_with: GovernorConfig,
    ) -> ApplyResult:
        if self.config.dry_run:
            return ApplyResult(held="dry run: nothing applied")
        if not leading:
            return ApplyResult(held="not the leader: nothing applied")
        # Versions a release added in this tick were not observed yet, and need not be.
        blind = _unobserved_versions(observed_with, snapshot)
        if blind:
            # A plan made without seeing the replicas would fall back to initial counts.
            return ApplyResult(
                held=f"replicas not observed for {', '.join(blind)}: nothing applied"
            )
        if self._retry_at is not None and now < self._retry_at:
            return ApplyResult(held=f"backing off until {self._retry_at.isoformat()}")
        try:
            result = self.actuator.apply(plan, snapshot)
        except TemporaryError as err:
            self._backoff_s = min(MAX_BACKOFF_S, max(err.retry_after_s, self._backoff_s * 2 or 1))
            self._retry_at = now + timedelta(seconds=self._backoff_s)
            self.telemetry.errors.labels(err.kind, "act").inc()
            self.events.emit(
                now,
                "error",
                f"apply failed, retrying in {self._backoff_s:.0f}s: {err}",
                stage="act",
                error_kind=err.kind,
            )
            return ApplyResult(held=f"temporary error: {err}")
        except PermanentError:
            raise
        self._retry_at = None
        self._backoff_s = 0.0
        return result

    def _record(
        self, snapshot: Snapshot, decision: TickDecision, applied: ApplyResult, now: datetime
    ) -> None:
        plan = decision.plan
        for d in plan.replicas:
            observed = snapshot.version(d.app, d.version)
            current = observed.target_replicas if observed else None
            if current is not None and current != d.replicas:
                self.events.emit(
                    now,
                    "replicas",
                    f"{d.app}/{d.version}: {current} -> {d.replicas}",
                    app=d.app,
                    version=d.version,
                    reasons=list(d.reasons),
                )
        for w in plan.weights:
            observed_app = snapshot.app(w.app)
            if (
                observed_app
                and observed_app.weights is not None
                and observed_app.weights != w.weights
            ):
                self.events.emit(
                    now,
                    "weights",
                    f"{w.app}: {observed_app.weights} -> {w.weights}",
                    app=w.app,
                    reasons=list(w.reasons),
                )
        for a in plan.alerts:
            self.events.emit(now, "alert", f"{a.app}: {a.message}", app=a.app, agent=a.agent)
        for r in decision.releases:
            self._release_event(now, r)
        for change in applied.changes:
            self.events.emit(now, "applied", change)
        if applied.held:
            self.events.emit(now, "held", applied.held)
        self.telemetry.record(self.config, snapshot, plan, self.rollouts())

    def run(
        self,
        stop: threading.Event,
        max_ticks: int | None = None,
        on_tick: Callable[[TickReport], None] | None = None,
    ) -> None:
        """Tick every interval until `stop` is set (or `max_ticks` ran)."""
        ticks = 0
        while not stop.is_set():
            began = time.monotonic()
            report = self.tick()
            ticks += 1
            if on_tick is not None:
                on_tick(report)
            if max_ticks is not None and ticks >= max_ticks:
                return
            stop.wait(max(0.0, self.config.interval_s - (time.monotonic() - began)))
