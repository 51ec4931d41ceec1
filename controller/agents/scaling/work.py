"""Demand in work units: replica-seconds per second of what a version's requests cost.

A calibrated work model prices each request by its tokens, so demand carries across token
mixes: a long-prompt mix costs more per request than a chatty one, and the count of
replicas follows the work, not the request rate. Without token rates a request costs what
a request of the calibration's reference mix costs.
"""

from __future__ import annotations

from dataclasses import dataclass

from controller.config import ScalingConfig, WorkModel
from controller.snapshot import VersionSnapshot

REQUEST_UNITS = WorkModel(per_request_s=1.0)
"""Without a calibration or a capacity seed a request is one unit: capacity is learned
in requests per second."""


@dataclass(frozen=True)
class Demand:
    """The work a version was asked to do per second, and how it was priced."""

    work: float
    """Replica-seconds of work per second (planned replicas = work / capacity)."""
    requests: float
    """Requests per second."""
    priced_by: str


def work_model(sc: ScalingConfig) -> tuple[WorkModel, bool]:
    """The work model to price requests with, and whether it was calibrated or seeded."""
    model = sc.work_model
    return (model, True) if model is not None else (REQUEST_UNITS, False)


def observed_demand(vs: VersionSnapshot, model: WorkModel) -> Demand | None:
    """The version's demand in work units, or None when its request rate is missing."""
    rate = vs.request_rate
    if rate is None:
        return None
    priced_by_tokens = model.per_prompt_token_s > 0 or model.per_output_token_s > 0
    if priced_by_tokens and vs.prompt_token_rate is not None:
        work = (
            rate * model.per_request_s
            + vs.prompt_token_rate * model.per_prompt_token_s
            + (vs.output_token_rate or 0.0) * model.per_output_token_s
        )
        return Demand(work, rate, "tokens")
    return Demand(rate * model.reference_cost_s, rate, "requests")


def _plus_requests(demand: Demand, extra_rps: float, model: WorkModel, note: str) -> Demand:
    """Demand with `extra_rps` requests more, each priced like the window's answered ones
    (at the reference cost when none was answered)."""
    per_request = demand.work / demand.requests if demand.requests > 0 else model.reference_cost_s
    requests = max(0.0, demand.requests + extra_rps)
    return Demand(requests * per_request, requests, f"{demand.priced_by}, {note}")


def with_backlog_growth(demand: Demand, growth_rps: float, model: WorkModel) -> Demand:
    """Demand as it arrived: answered requests plus the growth of the backlog.

    The answered rate is capped by what the fleet serves: under overload it hides demand,
    and while a backlog drains it shows more than arrives. Arrivals are what to plan for.
    """
    if growth_rps == 0:
        return demand
    return _plus_requests(demand, growth_rps, model, f"backlog {growth_rps:+.2f} req/s")


def with_shed(demand: Demand, shed_rps: float | None, model: WorkModel) -> Demand:
    """Demand with the requests the data plane shed for overload (503 + Retry-After).

    A bounded queue keeps the answered rate at what the replicas serve and their latency
    near normal, so neither shows the overload: the shed requests are demand that arrived
    and was refused. Their tokens were never counted; each is priced like an answered one.
    """
    if not shed_rps or shed_rps <= 0:
        return demand
    return _plus_requests(demand, shed_rps, model, f"shed {shed_rps:.2f} req/s")
