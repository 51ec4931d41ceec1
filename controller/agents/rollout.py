"""The rollout agent: metric-gated canary of a candidate version, promote or roll back.

Declaring `candidate` in an app's config starts a canary against the stable version. The
candidate first gets replicas (a floor), then each weight of `rollout.steps` in turn.
At each step the agent sums the observations of disjoint windows (a window counts once it
lies wholly after the router took the step's weight), and after `step_min_duration_s`
and `min_requests` on both sides compares canary with stable (`stats`): a significant
regression of errors or latency rolls back (weight 0 at once, replicas after `drain_s`);
a pass moves to the next step; the last step's pass promotes the candidate, and the old
stable drains and is retired to its `min_replicas`. Too little evidence holds the step,
and a step held past `deadline_s` aborts. An `abort-rollout` command aborts at once.

Versions outside the rollout drain the same way: held while traffic may still reach
them, then scaled to `min_replicas` after `drain_s` without traffic.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from controller.agents.base import AgentState, json_copy
from controller.agents.state import (
    HistogramCounts,
    RolloutAppState,
    Verdict,
    WindowCounts,
    from_iso,
    seconds_since,
    to_iso,
)
from controller.agents.stats import (
    Comparison,
    error_rate_regression,
    latency_regression,
    slo_breach,
)
from controller.config import AppConfig, GovernorConfig
from controller.decisions import Alert, Proposal, ReplicaFloor, ReplicaProposal, WeightProposal
from controller.snapshot import AppSnapshot, LatencyHistogram, Snapshot, VersionSnapshot

AGENT = "rollout"
ABORT = "abort-rollout"
FINISHED = ("promoted", "rolling-back", "rolled-back", "aborted")
"""Phases after a rollout's verdict; the same candidate does not start again from these."""


def _app_state(states: Mapping[str, AgentState], app: str) -> RolloutAppState:
    mine = states.get(AGENT) or {}
    return cast(RolloutAppState, (mine.get("apps") or {}).get(app, {}))


def _stable_of(st: RolloutAppState, app: AppConfig) -> str:
    names = {v.name for v in app.versions}
    known = st.get("stable")
    if known in names and st.get("config_stable") == app.stable_version:
        return cast(str, known)
    return app.stable_version


def current_stable(states: Mapping[str, AgentState], app: AppConfig) -> str:
    """The version that is stable now: the promoted one, unless the config named another since."""
    return _stable_of(_app_state(states, app.name), app)


def rollout_view(states: Mapping[str, AgentState], app: AppConfig) -> dict[str, Any]:
    """Where an app's rollout stands, as plain data for status, metrics and events.

    Keys: phase, stable, candidate, step (index or None), steps, weight (candidate's
    percent while in canary, else None), verdict (pass|fail|inconclusive|abort or None),
    reason, since (UTC ISO-8601 of the phase's start, or None).
    """
    st = _app_state(states, app.name)
    phase = st.get("phase", "idle")
    verdict = st.get("verdict")
    canary = phase == "canary"
    return {
        "phase": phase,
        "stable": _stable_of(st, app),
        "candidate": st.get("candidate") if phase != "idle" else None,
        "step": st.get("step_index") if canary else None,
        "steps": list(app.rollout.steps),
        "weight": st.get("weight") if canary else None,
        "verdict": verdict["result"] if verdict else None,
        "reason": verdict["reason"] if verdict else None,
        "since": st.get("phase_since"),
    }


class RolloutAgent:
    """Runs canaries: step weights, analyse, promote or roll back; drains retired versions."""

    name = AGENT

    def propose(
        self, snapshot: Snapshot, state: AgentState, config: GovernorConfig
    ) -> tuple[Sequence[Proposal], AgentState]:
        """Weights, floors and retirements for every app, and the next rollout state."""
        apps: dict[str, Any] = dict(state.get("apps") or {})
        out: list[Proposal] = []
        for app in config.applications:
            prev = cast(RolloutAppState, apps.get(app.name, {}))
            proposals, apps[app.name] = _Tick(app, prev, snapshot).run()
            out += proposals
        return out, {"apps": apps}


class _Tick:
    """One app's rollout at one tick; mutates only its own copy of the state."""

    def __init__(self, app: AppConfig, prev: RolloutAppState, snapshot: Snapshot) -> None:
        self.app = app
        self.cfg = app.rollout
        self.snapshot = snapshot
        self.now = snapshot.now
        self.st = cast(RolloutAppState, json_copy(prev))
        self.out: list[Proposal] = []

    def run(self) -> tuple[list[Proposal], RolloutAppState]:
        """Handle commands and config changes, advance the canary, then propose.

        Without an observation of the app the agent still answers commands and keeps the
        weights where its state says, so a blind tick never sends traffic back to a
        retired version; it only holds back analysis, floors and drains.
        """
        observed = self.snapshot.app(self.app.name)
        st = self.st
        stable = _stable_of(st, self.app)
        st["stable"], st["config_stable"] = stable, self.app.stable_version
        st.setdefault("phase", "idle")
        abort = self._abort_command()
        wanted = self.app.candidate
        if st["phase"] == "canary":
            if abort is not None:
                self._end("aborted", "abort", "aborted by operator")
            elif wanted != st.get("candidate"):
                now_wanted = f"changed to {wanted}" if wanted else "withdrawn"
                self._end("aborted", "abort", f"candidate {now_wanted} in the config")
            elif observed is not None:
                self._advance(observed)
        elif abort is not None:
            self.out.append(
                Alert(self.app.name, AGENT, "abort-rollout ignored: no rollout in progress")
            )
        if st["phase"] != "canary":
            if wanted is None and st["phase"] in FINISHED:
                self._set_phase("idle")
            finished = st["phase"] in FINISHED and st.get("candidate") == wanted
            ready = observed is not None and wanted != st["stable"] and not finished
            if wanted is not None and ready:
                self._start(wanted, observed)
        self._propose(observed)
        return self.out, st

    # -- transitions -------------------------------------------------------------------

    def _abort_command(self) -> datetime | None:
        last = self.st.get("last_command_at")
        newest = None
        for c in self.snapshot.commands:
            if c.action != ABORT or c.app != self.app.name:
                continue
            at = from_iso(to_iso(c.issued_at))
            if (last is None or at > from_iso(last)) and (newest is None or at > newest):
                newest = at
        if newest is not None:
            self.st["last_command_at"] = to_iso(newest)
        return newest

    def _set_phase(self, phase: str) -> None:
        self.st["phase"] = phase
        self.st["phase_since"] = to_iso(self.now)

    def _verdict(self, result: str, reason: str) -> None:
        self.st["verdict"] = Verdict(result=result, reason=reason, at=to_iso(self.now))

    def _end(self, phase: str, result: str, reason: str) -> None:
        self._set_phase(phase)
        self.st["weight"] = 0
        self._verdict(result, reason)
        _forget_samples(self.st)

    def _start(self, candidate: str, observed: AppSnapshot | None) -> None:
        st = self.st
        _forget_samples(st)
        now = to_iso(self.now)
        st["candidate"], st["step_index"], st["weight"] = candidate, 0, 0
        st["started_at"] = st["step_started_at"] = now
        self._set_phase("canary")
        self._verdict("inconclusive", f"canary of {candidate} against {st['stable']} started")
        self._resume_from_the_router(candidate, observed)
        seen = observed.version(st["stable"]) if observed is not None else None
        first = window_counts(seen, self.snapshot.window_s)
        if first is not None:
            st["baseline"] = first

    def _resume_from_the_router(self, candidate: str, observed: AppSnapshot | None) -> None:
        """Start at the last step the router already gives the candidate (a lost state).

        A canary whose saved state was lost or dropped as invalid starts again; where the
        router already sends the candidate traffic, it resumes at the highest step at or
        below that share, so that losing the state never moves weights back to step 1.
        """
        seen = observed.weights if observed is not None else None
        share = (seen or {}).get(candidate, 0)
        steps = self.cfg.steps
        reached = [i for i, w in enumerate(steps) if w <= share]
        if share <= 0 or not reached:
            return
        i = reached[-1]
        self.st["step_index"], self.st["weight"] = i, steps[i]
        self._verdict(
            "inconclusive",
            f"canary of {candidate} resumed at step {i + 1}/{len(steps)}: the router already "
            f"gives it {share}%",
        )

    def _advance(self, observed: AppSnapshot) -> None:
        st, steps = self.st, self.cfg.steps
        i, cand = st["step_index"], st["candidate"]
        target = steps[i]
        in_step = seconds_since(st["step_started_at"], self.now) or 0.0
        if st.get("weight") != target:
            running = _running(observed.version(cand))
            if running >= 1:
                st["weight"] = target
                self._verdict("inconclusive", f"step {i + 1}/{len(steps)}: {target}% to {cand}")
            else:
                self._hold(f"waiting for a running replica of {cand} before {target}%", in_step)
            return
        if "traffic_since" not in st:
            seen = observed.weights
            if seen is None or seen.get(cand, 0) == target:
                st["traffic_since"] = to_iso(self.now)
            else:
                self._hold(f"waiting for the router to give {cand} {target}%", in_step)
                return
        self._sample(observed)
        self._analyse(in_step)

    def _hold(self, reason: str, in_step: float) -> None:
        if in_step >= self.cfg.deadline_s:
            self._end(
                "aborted",
                "abort",
                f"no verdict after {in_step:.0f}s at step {self.st['step_index'] + 1} "
                f"(deadline {self.cfg.deadline_s:.0f}s): {reason}",
            )
        else:
            self._verdict("inconclusive", reason)

    def _sample(self, observed: AppSnapshot) -> None:
        st, window = self.st, self.snapshot.window_s
        after_change = seconds_since(st["traffic_since"], self.now) or 0.0
        since_last = seconds_since(st.get("last_sample_at"), self.now)
        if after_change < window or (since_last is not None and since_last < window):
            return
        canary = window_counts(observed.version(st["candidate"]), window)
        stable = window_counts(observed.version(st["stable"]), window)
        if canary is None:
            return
        st["last_sample_at"] = to_iso(self.now)
        st["canary"] = add_counts(st.get("canary"), canary)
        if stable is not None and st["weight"] < 100:
            st["stable_counts"] = add_counts(st.get("stable_counts"), stable)

    def _reference(self) -> WindowCounts | None:
        """The stable's counts at this step, or an earlier step's when it gets no traffic."""
        if self.st["weight"] < 100:
            return self.st.get("stable_counts")
        return self.st.get("baseline")

    def _analyse(self, in_step: float) -> None:
        st, cfg = self.st, self.cfg
        i, steps = st["step_index"], cfg.steps
        canary, ref = st.get("canary"), self._reference()
        waited = seconds_since(st["traffic_since"], self.now) or 0.0
        n_c = canary["requests"] if canary else 0.0
        n_s = ref["requests"] if ref else 0.0
        label = f"step {i + 1}/{len(steps)} ({steps[i]}%)"
        if waited < cfg.step_min_duration_s or n_c < cfg.min_requests or n_s < cfg.min_requests:
            self._hold(
                f"{label}: {n_c:.0f}/{cfg.min_requests} canary and {n_s:.0f}/{cfg.min_requests} "
                f"stable requests after {waited:.0f}s of {cfg.step_min_duration_s:.0f}s",
                in_step,
            )
            return
        assert canary is not None and ref is not None
        errors = error_rate_regression(
            canary["errors"],
            canary["requests"],
            ref["errors"],
            ref["requests"],
            cfg.max_error_rate_increase,
            cfg.confidence,
        )
        shed = shed_regression(canary, ref, cfg.max_error_rate_increase, cfg.confidence)
        latencies = self._latencies(canary, ref)
        failed = [c.detail for c in (errors, shed, *latencies) if c.outcome == "fail"]
        if failed:
            self._end("rolling-back", "fail", f"{label}: " + "; ".join(failed))
            return
        unsure = [c.detail for c in (errors, *latencies) if c.outcome != "pass"]
        if unsure:
            self._hold(f"{label}: " + "; ".join(unsure), in_step)
            return
        passed = f"{label} passed: " + "; ".join(c.detail for c in (errors, shed, *latencies))
        if i + 1 >= len(steps):
            self._promote(passed)
        else:
            self._next_step(passed)

    def _latencies(self, canary: WindowCounts, ref: WindowCounts) -> list[Comparison]:
        """Latency against the stable's: TTFT and TPOT for generation, else end to end.

        A generation request's end-to-end latency is mostly the length of its answer,
        which a new model may legitimately change and the traffic's mix changes over
        time; time to first token and per output token measure the serving, whatever
        the length.
        """
        full = self.st["weight"] >= 100
        return [
            self._at_full_traffic(c, r, target, what) if full else self._latency(c, r, what)
            for what, c, r, target in self._measures(canary, ref)
        ]

    def _measures(
        self, canary: WindowCounts, ref: WindowCounts
    ) -> list[tuple[str, HistogramCounts | None, HistogramCounts | None, float | None]]:
        """(name, canary buckets, reference buckets, SLO target) of each latency judged."""
        slo = self.app.slo
        tokens = [
            ("TTFT", canary.get("ttft"), ref.get("ttft"), slo.ttft_p95_ms),
            ("TPOT", canary.get("tpot"), ref.get("tpot"), slo.tpot_p95_ms),
        ]
        # Only generation versions have token buckets; both sides must, to be compared.
        found = [m for m in tokens if m[1] and m[2]]
        return found or [("latency", canary["histogram"], ref["histogram"], slo.latency_p95_ms)]

    def _at_full_traffic(
        self,
        canary: HistogramCounts | None,
        ref: HistogramCounts | None,
        target_ms: float | None,
        what: str,
    ) -> Comparison:
        """At 100 % no stable runs beside the canary; the reference is an earlier step's.

        That stable ran at another load per replica and another mix of requests: judged
        against it alone, a healthy candidate rolled back in about one release in ten
        (benchmarks/canary.py). So the canary fails only when it is over the SLO's target
        and worse than that stable too: a breach the stable shared is no evidence.
        """
        if target_ms is None:
            return self._latency(canary, ref, what)
        within = self._within(canary, target_ms, what)
        if within.outcome != "fail":
            return within
        relative = self._latency(canary, ref, what)
        if relative.outcome == "pass":
            return Comparison("pass", f"{within.detail}; as the stable was: {relative.detail}")
        return Comparison(relative.outcome, f"{within.detail}; {relative.detail}")

    def _within(self, canary: HistogramCounts | None, target_ms: float, what: str) -> Comparison:
        hist = to_histogram(canary)
        if hist is None:
            return Comparison("inconclusive", f"no {what} histogram to compare")
        if hist.total < self.cfg.min_requests:
            return Comparison(
                "inconclusive",
                f"{what} samples {hist.total:.0f} canary (need {self.cfg.min_requests})",
            )
        return slo_breach(hist, target_ms, self.cfg.confidence, what=what)

    def _latency(
        self, canary: HistogramCounts | None, ref: HistogramCounts | None, what: str
    ) -> Comparison:
        c_hist, s_hist = to_histogram(canary), to_histogram(ref)
        if c_hist is None or s_hist is None:
            return Comparison("inconclusive", f"no {what} histogram to compare")
        need = self.cfg.min_requests
        if c_hist.total < need or s_hist.total < need:
            return Comparison(
                "inconclusive",
                f"{what} samples {c_hist.total:.0f} canary, {s_hist.total:.0f} stable "
                f"(need {need} each)",
            )
        return latency_regression(
            c_hist, s_hist, self.cfg.max_latency_ratio, self.cfg.confidence, what=what
        )

    def _next_step(self, reason: str) -> None:
        st = self.st
        ref = st.get("stable_counts")
        if st["weight"] < 100 and ref is not None and ref["requests"] >= self.cfg.min_requests:
            st["baseline"] = ref
        _forget(st, "traffic_since", "last_sample_at", "canary", "stable_counts")
        st["step_index"] += 1
        st["step_started_at"] = to_iso(self.now)
        st["weight"] = self.cfg.steps[st["step_index"]]
        self._verdict("pass", reason)

    def _promote(self, reason: str) -> None:
        st = self.st
        old = st["stable"]
        st["stable"] = st["candidate"]
        st["config_stable"] = self.app.stable_version
        st["weight"] = 100
        self._set_phase("promoted")
        self._verdict("pass", f"promoted {st['candidate']} over {old}: {reason}")
        _forget_samples(st)

    # -- proposals ---------------------------------------------------------------------

    def _propose(self, observed: AppSnapshot | None) -> None:
        st, app = self.st, self.app
        stable = st["stable"]
        canary = st["phase"] == "canary"
        cand = st.get("candidate") if canary else None
        names = [v.name for v in app.versions]
        weights = dict.fromkeys(names, 0)
        if cand is not None:
            w = st.get("weight", 0)
            weights[stable], weights[cand] = 100 - w, w
            why = f"canary of {cand}: {st.get('verdict', {}).get('reason', '')}"
        else:
            weights[stable] = 100
            verdict = st.get("verdict")
            why = f"stable {stable} takes all traffic"
            if st["phase"] in FINISHED and verdict is not None:
                why += f" ({st['phase']}: {verdict['reason']})"
        self.out.append(WeightProposal(app.name, weights, AGENT, why))
        if observed is None:
            return
        if cand is not None:
            self._floors(observed, stable, cand)
        self._drain(observed, {stable} | ({cand} if cand else set()))

    def _floors(self, observed: AppSnapshot, stable: str, cand: str) -> None:
        """Keep the stable serving; give the candidate room for its next step's share.

        The room is sized from the stable alone (its replicas per share of traffic), not
        from the candidate's own count, which the floor itself raises.
        """
        st, steps, app = self.st, self.cfg.steps, self.app.name
        i, weight = st["step_index"], st.get("weight", 0)
        nxt = steps[i + 1] if weight == steps[i] and i + 1 < len(steps) else steps[i]
        self.out.append(
            ReplicaFloor(app, stable, 1, AGENT, f"rollout of {cand}: keep {stable} serving")
        )
        if weight >= 100:
            reason = f"rollout of {cand}: it serves all traffic until promoted"
            self.out.append(ReplicaFloor(app, cand, 1, AGENT, reason))
            return
        full = _running(observed.version(stable)) * 100 / (100 - weight)
        now_need = max(1, math.ceil(full * weight / 100 - 1e-9))
        next_need = max(1, math.ceil(full * nxt / 100 - 1e-9))
        # Its current share is a must; room for the next step is a wish that yields to
        # the stable's scaling when a budget forces a choice.
        self.out.append(
            ReplicaFloor(
                app,
                cand,
                now_need,
                AGENT,
                f"rollout of {cand}: carry its {weight}% of traffic that {stable} serves "
                f"with {full:.1f} replicas at 100%",
            )
        )
        if next_need > now_need:
            self.out.append(
                ReplicaProposal(
                    app,
                    cand,
                    next_need,
                    AGENT,
                    f"rollout of {cand}: room for its next step of {nxt}%",
                )
            )

    def _drain(self, observed: AppSnapshot, serving: set[str]) -> None:
        draining = dict(self.st.get("draining", {}))
        seen = observed.weights
        for vc in self.app.versions:
            v = vc.name
            vs = observed.version(v)
            if v in serving or vs is None:
                draining.pop(v, None)
                continue
            count = vs.heading_to or 0
            share = None if seen is None else seen.get(v, 0)
            if share:
                draining.pop(v, None)
                if count:
                    reason = f"draining: the router still sends {v} {share}%"
                    self.out.append(ReplicaFloor(self.app.name, v, count, AGENT, reason))
                continue
            if vs.queue_length:
                # Requests still queued there would fail with their replicas: the drain
                # clock starts only once they are done.
                draining[v] = to_iso(self.now)
                if count:
                    reason = f"draining: {vs.queue_length:.0f} requests still in flight at {v}"
                    self.out.append(ReplicaFloor(self.app.name, v, count, AGENT, reason))
                continue
            since = draining.setdefault(v, to_iso(self.now))
            quiet = seconds_since(since, self.now) or 0.0
            if quiet < self.cfg.drain_s:
                if count:
                    reason = (
                        f"draining: no traffic for {quiet:.0f}s of {self.cfg.drain_s:.0f}s "
                        "before scale-down"
                    )
                    self.out.append(ReplicaFloor(self.app.name, v, count, AGENT, reason))
            else:
                reason = (
                    f"{v} is neither stable nor under canary and drained for {quiet:.0f}s: "
                    f"retire to min_replicas {vc.min_replicas}"
                )
                self.out.append(ReplicaProposal(self.app.name, v, vc.min_replicas, AGENT, reason))
        self.st["draining"] = draining
        cand = self.st.get("candidate")
        if self.st["phase"] == "rolling-back" and cand in draining:
            quiet = seconds_since(draining[cast(str, cand)], self.now) or 0.0
            if quiet >= self.cfg.drain_s:
                self._set_phase("rolled-back")


# -- observations ----------------------------------------------------------------------


def _forget(st: RolloutAppState, *keys: str) -> None:
    plain = cast(dict[str, Any], st)
    for key in keys:
        plain.pop(key, None)


def _forget_samples(st: RolloutAppState) -> None:
    _forget(st, "traffic_since", "last_sample_at", "canary", "stable_counts", "baseline")


def _running(vs: VersionSnapshot | None) -> int:
    return (vs.running_replicas or 0) if vs is not None else 0


def shed_regression(
    canary: WindowCounts, ref: WindowCounts, margin: float, confidence: float
) -> Comparison:
    """Fail when the canary sheds a larger share of what it is offered than the stable.

    A version that sheds is refused load its latency never shows (a router's admission
    keeps answered latency near its target), so a slow canary would otherwise pass.
    """
    c_shed, s_shed = canary.get("shed", 0.0), ref.get("shed", 0.0)
    return error_rate_regression(
        c_shed,
        canary["requests"] + c_shed,
        s_shed,
        ref["requests"] + s_shed,
        margin,
        confidence,
        what="shed",
    )


def window_counts(vs: VersionSnapshot | None, window_s: float) -> WindowCounts | None:
    """One window's requests, errors and latency buckets of a version; None if unknown."""
    if vs is None:
        return None
    n = vs.request_count
    if n is None and vs.request_rate is not None:
        n = vs.request_rate * window_s
    if n is None:
        return None
    errors = vs.error_count
    if errors is None and vs.error_rate is not None:
        errors = vs.error_rate * n
    if errors is None:
        return None
    shed = (vs.shed_rate or 0.0) * window_s
    counts = WindowCounts(
        requests=n, errors=errors, windows=1, histogram=_stored(vs.latency_histogram), shed=shed
    )
    ttft, tpot = _stored(vs.ttft_histogram), _stored(vs.tpot_histogram)
    if ttft is not None:
        counts["ttft"] = ttft
    if tpot is not None:
        counts["tpot"] = tpot
    return counts


def _stored(hist: LatencyHistogram | None) -> HistogramCounts | None:
    if hist is None or not hist.counts:
        return None
    return HistogramCounts(
        bounds_ms=[None if math.isinf(b) else b for b in hist.bounds_ms],
        counts=list(hist.counts),
    )


def _added(old: HistogramCounts | None, new: HistogramCounts | None) -> HistogramCounts | None:
    """Buckets of disjoint windows summed; the latest layout wins when the bounds changed."""
    if new is None:
        return old
    if old is None or old["bounds_ms"] != new["bounds_ms"]:
        return new
    return HistogramCounts(
        bounds_ms=new["bounds_ms"],
        counts=[a + b for a, b in zip(old["counts"], new["counts"], strict=True)],
    )


def add_counts(acc: WindowCounts | None, more: WindowCounts) -> WindowCounts:
    """Counts of two sets of disjoint windows together (latest buckets win on a layout change)."""
    if acc is None:
        return more
    total = WindowCounts(
        requests=acc["requests"] + more["requests"],
        errors=acc["errors"] + more["errors"],
        windows=acc["windows"] + more["windows"],
        histogram=_added(acc["histogram"], more["histogram"]),
        shed=acc.get("shed", 0.0) + more.get("shed", 0.0),
    )
    ttft = _added(acc.get("ttft"), more.get("ttft"))
    tpot = _added(acc.get("tpot"), more.get("tpot"))
    if ttft is not None:
        total["ttft"] = ttft
    if tpot is not None:
        total["tpot"] = tpot
    return total


def to_histogram(stored: HistogramCounts | None) -> LatencyHistogram | None:
    """The stored buckets as a LatencyHistogram (None bounds back to +Inf)."""
    if stored is None:
        return None
    bounds = tuple(math.inf if b is None else float(b) for b in stored["bounds_ms"])
    return LatencyHistogram(bounds, tuple(float(c) for c in stored["counts"]))
