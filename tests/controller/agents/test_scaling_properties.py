"""Properties of the scaling agent over random snapshots in breach."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from controller.agents.scaling.agent import scale_version
from controller.agents.state import VersionScalingState, to_iso
from controller.config import AppConfig, WorkModel
from controller.decisions import ReplicaProposal
from controller.snapshot import VersionSnapshot
from tests.controller.fleet import T0, app_doc, make_config, version

WINDOW_S = 30.0
SEED_CAPACITY = 1.0
"""A calibrated replica does one work unit per second."""


@dataclass(frozen=True)
class Case:
    """One version in breach, its config and what the agent remembers of it."""

    app: AppConfig
    vs: VersionSnapshot
    prev: VersionScalingState

    @property
    def model(self) -> WorkModel:
        """The calibrated work model."""
        model = self.app.scaling.work
        assert model is not None
        return model

    @property
    def work_per_request(self) -> float:
        """Work units one request of this window costs, computed from the model by hand."""
        m, vs = self.model, self.vs
        rate = vs.request_rate
        assert rate is not None and rate > 0
        if (m.per_prompt_token_s or m.per_output_token_s) and vs.prompt_token_rate is not None:
            work = (rate * m.per_request_s + vs.prompt_token_rate * m.per_prompt_token_s
                    + (vs.output_token_rate or 0.0) * m.per_output_token_s)
            return work / rate
        return m.reference_cost_s

    @property
    def in_flight_work(self) -> float:
        """Work units of the requests in flight or queued."""
        return (self.vs.queue_length or 0.0) * self.work_per_request

    @property
    def startup_s(self) -> float:
        """The start-up time the agent plans with."""
        measured = self.vs.startup_s
        return measured if measured is not None else self.app.scaling.default_startup_s


COST = st.floats(0.0, 0.05)
TOKEN_COST = st.floats(0.0, 1e-3)


@st.composite
def work_models(draw: st.DrawFn) -> dict[str, float]:
    """A work model document: some cost per request, per prompt or per output token."""
    doc = {
        "per_request_s": draw(COST),
        "per_prompt_token_s": draw(TOKEN_COST),
        "per_output_token_s": draw(TOKEN_COST),
        "reference_prompt_tokens": draw(st.floats(1, 4000)),
        "reference_output_tokens": draw(st.floats(0, 1000)),
    }
    tokens = (doc["per_prompt_token_s"] * doc["reference_prompt_tokens"]
              + doc["per_output_token_s"] * doc["reference_output_tokens"])
    if doc["per_request_s"] + tokens <= 0:
        doc["per_request_s"] = draw(st.floats(1e-3, 0.5))
    return doc


@st.composite
def breaches(draw: st.DrawFn) -> Case:
    """A version whose p95 is above its SLO, with random replicas, load, queue and tokens."""
    max_replicas = draw(st.integers(1, 200))
    current = draw(st.integers(1, max_replicas))
    running = draw(st.integers(0, current))
    slo_ms = draw(st.sampled_from([50.0, 200.0, 1000.0]))
    scaling: dict[str, Any] = {
        "work": draw(work_models()),
        "target_utilization": draw(st.floats(0.3, 1.0)),
        "max_upscale_step": draw(st.integers(1, 100)),
        "default_startup_s": draw(st.floats(1.0, 600.0)),
        "upscale_delay_s": draw(st.sampled_from([0.0, 60.0, 600.0])),
        "hysteresis": draw(st.sampled_from([0.0, 0.1, 0.5])),
    }
    if draw(st.booleans()):
        scaling["in_flight_per_replica"] = draw(st.floats(0.5, 64.0))
    app = make_config(app_doc(versions=("v1",), slo_ms=slo_ms,
                              min_replicas=draw(st.integers(0, max_replicas)),
                              max_replicas=max_replicas, scaling=scaling)).applications[0]
    rate = draw(st.floats(-2.0, 3.0).map(lambda x: 10.0**x))
    tokens = draw(st.sampled_from(["none", "prompt", "both"]))
    vs = version(
        replicas=current,
        running_replicas=running,
        starting_replicas=current - running,
        rate=rate,
        p95_ms=slo_ms * draw(st.floats(1.001, 100.0)),
        queue_length=draw(st.just(0.0) | st.floats(-1.0, 4.0).map(lambda x: 10.0**x)),
        request_count=rate * WINDOW_S,
        prompt_token_rate=rate * draw(st.floats(1, 4000)) if tokens != "none" else None,
        output_token_rate=rate * draw(st.floats(0, 1000)) if tokens == "both" else None,
        startup_s=draw(st.none() | st.floats(1.0, 600.0)),
    )
    case = Case(app, vs, {})
    if draw(st.booleans()):
        # A version watched for an hour, demand near its level: this breach may teach.
        work = rate * case.work_per_request
        prev: VersionScalingState = {
            "watched_since": to_iso(T0 - timedelta(hours=1)),
            "running_seen": running,
            "level": work * draw(st.floats(0.5, 1.5)),
            "trend_per_s": work * draw(st.floats(-0.01, 0.01)),
            "observed_at": to_iso(T0 - timedelta(seconds=5)),
        }
        if draw(st.booleans()):
            prev["capacity"] = draw(st.floats(0.05, 0.98))
            prev["capacity_kind"] = "measured"
            prev["capacity_at"] = to_iso(T0)
        case = Case(app, vs, prev)
    return case


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(breaches())
def test_a_breach_starts_enough_replicas_to_clear_the_work_in_flight_within_a_startup(
    case: Case,
) -> None:
    vc = case.app.versions[0]
    current = case.vs.heading_to
    assert current is not None
    scaled = scale_version(case.app, vc, case.vs, 100, case.prev, T0, WINDOW_S)
    (proposal,) = [p for p in scaled.proposals if isinstance(p, ReplicaProposal)]
    r = proposal.replicas
    capacity = scaled.state.get("capacity", SEED_CAPACITY)
    cap = min(vc.max_replicas, current + case.app.scaling.max_upscale_step)
    assert r >= current, proposal.reason
    cleared = r * capacity * case.startup_s
    if r < cap:
        event("planned within the bounds" if r > current else "kept")
        assert cleared >= case.in_flight_work - 1e-6 * capacity * case.startup_s, (
            f"{r} replicas x {capacity:.3g} x {case.startup_s:.0f}s < "
            f"{case.in_flight_work:.3g} units in flight: {proposal.reason}"
        )
    else:
        event("capped")
        assert r == cap, proposal.reason
