"""Demand in work units: tokens price each request, the backlog's growth adds arrivals."""

from __future__ import annotations

import pytest

from controller.agents.scaling.work import (
    REQUEST_UNITS,
    Demand,
    observed_demand,
    with_backlog_growth,
    work_model,
)
from controller.config import ScalingConfig, WorkModel
from tests.controller.fleet import version


def fields(demand: Demand | None) -> tuple[object, ...]:
    """Work, requests and pricing of a demand that must be there."""
    assert demand is not None
    return (demand.work, demand.requests, demand.priced_by)

MODEL = WorkModel(
    per_request_s=0.01,
    per_prompt_token_s=0.0002,
    per_output_token_s=0.004,
    reference_prompt_tokens=100,
    reference_output_tokens=50,
)
"""10 ms a request, 0.2 ms a prompt token, 4 ms an output token; the reference request
(100 in, 50 out) costs 0.01 + 0.02 + 0.2 = 0.23 replica-seconds."""


def test_tokens_price_demand() -> None:
    v = version(rate=10.0, prompt_token_rate=2000.0, output_token_rate=500.0)
    demand = observed_demand(v, MODEL)
    # 10 x 0.01 + 2000 x 0.0002 + 500 x 0.004 = 0.1 + 0.4 + 2.0
    assert fields(demand) == (pytest.approx(2.5), 10.0, "tokens")


def test_a_long_prompt_mix_costs_more_per_request_than_a_chatty_one() -> None:
    # Same requests and output tokens; the long-prompt mix sends 2000 tokens a request.
    long_prompts = observed_demand(
        version(rate=10.0, prompt_token_rate=20000.0, output_token_rate=100.0), MODEL
    )
    chatty = observed_demand(
        version(rate=10.0, prompt_token_rate=200.0, output_token_rate=100.0), MODEL
    )
    assert long_prompts is not None and chatty is not None
    assert long_prompts.work / long_prompts.requests == pytest.approx(0.01 + 0.4 + 0.04)
    assert chatty.work / chatty.requests == pytest.approx(0.01 + 0.004 + 0.04)
    assert long_prompts.work > 8 * chatty.work, "same requests, eight times the work"


def test_without_token_rates_a_request_costs_the_reference_request() -> None:
    demand = observed_demand(version(rate=10.0), MODEL)
    assert MODEL.reference_cost_s == pytest.approx(0.23)
    assert fields(demand) == (pytest.approx(2.3), 10.0, "requests")


def test_a_model_without_token_costs_prices_requests_even_with_token_rates() -> None:
    seeded = WorkModel(per_request_s=0.05)
    demand = observed_demand(version(rate=10.0, prompt_token_rate=5000.0), seeded)
    assert fields(demand) == (pytest.approx(0.5), 10.0, "requests")


def test_output_tokens_missing_with_prompt_tokens_seen_cost_nothing_extra() -> None:
    demand = observed_demand(version(rate=10.0, prompt_token_rate=2000.0), MODEL)
    assert fields(demand) == (pytest.approx(0.1 + 0.4), 10.0, "tokens")


def test_no_request_rate_is_no_demand() -> None:
    assert observed_demand(version(rate=None), MODEL) is None


def test_backlog_growth_adds_arrivals_at_the_cost_of_an_answered_request() -> None:
    answered = Demand(2.5, 10.0, "tokens")
    arrived = with_backlog_growth(answered, 4.0, MODEL)
    assert fields(arrived) == (pytest.approx(3.5), 14.0, "tokens, backlog +4.00 req/s")


def test_a_draining_backlog_takes_its_drain_off_the_answered_rate() -> None:
    answered = Demand(2.5, 10.0, "tokens")
    assert fields(with_backlog_growth(answered, -4.0, MODEL)) == (
        pytest.approx(1.5), 6.0, "tokens, backlog -4.00 req/s"
    )
    drained = with_backlog_growth(answered, -15.0, MODEL)
    assert drained.requests == 0.0 and drained.work == 0.0, "never negative"


def test_no_growth_leaves_demand_as_answered() -> None:
    answered = Demand(2.5, 10.0, "tokens")
    assert with_backlog_growth(answered, 0.0, MODEL) is answered


def test_growth_with_nothing_answered_is_priced_as_the_reference_request() -> None:
    stalled = Demand(0.0, 0.0, "requests")
    arrived = with_backlog_growth(stalled, 2.0, MODEL)
    assert arrived.requests == 2.0
    assert arrived.work == pytest.approx(2.0 * 0.23)


def test_the_work_model_is_the_calibration_else_the_seed_else_one_unit_a_request() -> None:
    assert work_model(ScalingConfig(work=MODEL, capacity_rps_per_replica=4.0)) == (MODEL, True)
    seeded, known = work_model(ScalingConfig(capacity_rps_per_replica=20.0))
    assert known and seeded == WorkModel(per_request_s=0.05)
    assert work_model(ScalingConfig()) == (REQUEST_UNITS, False)
    assert REQUEST_UNITS.reference_cost_s == 1.0
